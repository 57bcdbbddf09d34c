"""The liability figures in the table: added to by the stream aggregator, read back by the report.

One partition, `LIABILITY`, holds one item per period (`<level>#<label>`, see
`loyalty.domain.liability`) with one number attribute per figure, and the markers of the stream
records already applied. A run of records is applied by one transaction: its figures, added to
every period item they fall in, and its marker (`APPLIED#<eventID of its first record>`,
conditioned on being new, holding how many records it covered). Delivered again, the same run
finds its marker and adds nothing (docs/design.md, "Liability and breakage").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.expressions.update import Action

from loyalty.domain.liability import LabelRange, Level, periods_through, totals
from loyalty.settings import settings
from loyalty.store import keys
from loyalty.store.models import LiabilityAppliedItem, LiabilityPeriodItem, bind
from loyalty.store.transact import (
    MAX_TRANSACTION_ITEMS,
    Transaction,
    TransactionCancelled,
)

# Longer than the stream keeps records (24 hours): a batch can come again that long.
MARKER_KEPT = timedelta(days=2)
# Period items one transaction can add to, beside its marker.
MAX_PERIODS = MAX_TRANSACTION_ITEMS - 1
_KIND = UnicodeAttribute(attr_name="itemType")
_NOT_FIGURES = frozenset({"pk", "sk", "itemType"})


@dataclass(frozen=True)
class Applied:
    """The run's figures were added now."""


@dataclass(frozen=True)
class AlreadyApplied:
    """A run starting at the same record was applied before, covering `records` records."""

    records: int


def apply_run(
    first_event_id: str,
    records: int,
    periods: Mapping[tuple[Level, str], Mapping[str, int]],
    *,
    now: datetime,
) -> Applied | AlreadyApplied:
    """Add `periods`' figures and mark the run of `records` records starting at `first_event_id`
    applied, in one transaction. Another writer on the same items raises `TransactionCancelled`
    (nothing written: try again)."""
    if len(periods) > MAX_PERIODS:
        raise ValueError(f"a run adds to {len(periods)} periods; one transaction holds {MAX_PERIODS}")
    bind()
    transaction = Transaction()
    marker = LiabilityAppliedItem(
        keys.liability_pk(),
        keys.liability_applied_sk(first_event_id),
        records=records,
        ttl=int((now + MARKER_KEPT).timestamp()),
    )
    transaction.put("marker", marker, LiabilityAppliedItem.pk.does_not_exist(), return_old=True)
    for index, ((level, label), figures) in enumerate(sorted(periods.items())):
        item = LiabilityPeriodItem(keys.liability_pk(), keys.liability_period_sk(level, label))
        transaction.update(f"period {index}", item, _additions(figures))
    try:
        transaction.commit()
    except TransactionCancelled as cancelled:
        if "marker" not in cancelled.failed:
            raise
        old = cancelled.failed["marker"] or {}
        covered = old.get("records", {}).get("N")
        return AlreadyApplied(int(covered) if covered is not None else records)
    return Applied()


def _additions(figures: Mapping[str, int]) -> list[Action]:
    actions: list[Action] = [_KIND.set("liability")]
    for name, points in sorted(figures.items()):
        actions.append(NumberAttribute(attr_name=name).add(points))
    return actions


def figures_as_of(as_of: datetime) -> dict[str, int]:
    """The figures summed over every period through `as_of` (a minute boundary): four queries of
    one partition, O(months) items."""
    return totals(figures for label_range in periods_through(as_of) for figures in _read(label_range))


def _read(label_range: LabelRange) -> Iterator[dict[str, int]]:
    """The figures of each period of `label_range` (strongly consistent: a report just after a
    batch sees it)."""
    client = bind()
    first = keys.liability_period_sk(label_range.level, label_range.first)
    last = keys.liability_period_sk(label_range.level, label_range.last)
    request: dict[str, Any] = {
        "TableName": settings().table_name,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.liability_pk()},
            ":first": {"S": first},
            ":last": {"S": last},
        },
        "ConsistentRead": True,
    }
    while True:
        # Throttling or no answer left after botocore's retries: the HTTP error mapping makes it a
        # 503 with Retry-After (loyalty.http.errors), as for every other read.
        page = client.query(**request)
        for item in page.get("Items", []):
            if item["sk"]["S"] == last and not label_range.include_last:
                continue
            yield {name: int(value["N"]) for name, value in item.items() if name not in _NOT_FIGURES}
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
