"""The liability aggregator: new ledger entries from the table's stream, added to the period
figures (docs/design.md, "Liability and breakage").

A batch of stream records is cut into *runs* of consecutive records whose figures fit one
transaction (at most 99 period items beside the run's marker). Runs are cut from the records
alone, so a batch delivered again is cut the same way from wherever it starts: each run found
already applied (its marker) is skipped by the number of records its marker says, and the rest
goes on. A run that cannot be written (another writer kept getting in the way, DynamoDB
throttling) ends the batch there: the answer names its first record as failed, and Lambda
delivers the batch again from that record (`ReportBatchItemFailures`). A record that is not a
readable ledger entry is failed the same way: after the event source's retries it goes to the
dead-letter queue with an alarm, never silently lost.

A single record whose figures need more than one transaction (an expiry of lots due on many
different days, after runs were paused for weeks) is written in parts, each with a marker of its
own (`<eventID>#<part>`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.domain.errors import Unavailable
from loyalty.domain.ledger import EntryType
from loyalty.domain.liability import Figure, Level, LotPoints, Movement, by_period, figures_of
from loyalty.http.telemetry import count_event, logger
from loyalty.store.liability import MAX_PERIODS, AlreadyApplied, apply_run
from loyalty.store.models import LedgerEntryItem
from loyalty.store.transact import TransactionCancelled

ATTEMPTS = 6
Periods = dict[tuple[Level, str], dict[str, int]]


class UnreadableRecord(Exception):
    """A stream record that says it is a new ledger entry but cannot be read as one."""


@dataclass(frozen=True)
class Record:
    """A stream record as the aggregator needs it: its ids, and its figures (none when it is not
    a new ledger entry)."""

    event_id: str
    sequence_number: str
    figures: tuple[Figure, ...]


@dataclass(frozen=True)
class Run:
    """Records `first`..`first + count - 1` of a batch (or a part of one record's figures),
    applied by one transaction under `marker`."""

    first: int
    count: int
    marker: str
    periods: Periods
    part: int | None = None


def read_record(raw: Mapping[str, Any]) -> Record:
    """One record of the event: a new ledger entry gives its figures; anything else (another
    item type, a modification, a removal) gives none."""
    try:
        event_id = str(raw["eventID"])
        sequence_number = str(raw["dynamodb"]["SequenceNumber"])
    except (KeyError, TypeError) as missing:
        raise UnreadableRecord(f"a stream record without eventID or SequenceNumber ({missing})") from None
    image = raw.get("dynamodb", {}).get("NewImage") or {}
    if raw.get("eventName") != "INSERT" or image.get("itemType", {}).get("S") != "ledger":
        return Record(event_id, sequence_number, ())
    try:
        movement = movement_of(LedgerEntryItem.from_raw_data(image))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UnreadableRecord(f"record {event_id} is not a readable ledger entry ({error!r})") from None
    return Record(event_id, sequence_number, tuple(figures_of(movement)))


def movement_of(item: LedgerEntryItem) -> Movement:
    raw: Any = item.details
    details = raw.as_dict() if raw else {}
    return Movement(
        type=EntryType(item.type),
        points=int(item.points),
        recorded_at=item.recorded_at,
        occurred_at=item.occurred_at,
        lots=tuple(LotPoints(lot.lot_id, int(lot.points), lot.expires_at) for lot in item.lots),
        owed_added=int(details.get("owedAdded", 0)),
        owed_settled=int(details.get("owedSettled", 0)),
    )


def runs_from(records: Sequence[Record], first: int) -> list[Run]:
    """The run that starts at record `first`: as many records as fit one transaction; or, when
    that record alone does not fit, its parts."""
    periods: Periods = {}
    index = first
    while index < len(records):
        more = by_period(records[index].figures)
        if len(periods.keys() | more.keys()) > MAX_PERIODS:
            break
        for period, figures in more.items():  # added in place: no copy of the run's sums a record
            into = periods.setdefault(period, {})
            for name, points in figures.items():
                into[name] = into.get(name, 0) + points
        index += 1
    if index > first:
        return [Run(first, index - first, records[first].event_id, periods)]
    alone = sorted(by_period(records[first].figures).items())
    return [
        Run(first, 1, f"{records[first].event_id}#{part}", dict(alone[start : start + MAX_PERIODS]), part)
        for part, start in enumerate(range(0, len(alone), MAX_PERIODS))
    ]


def handle_stream_batch(
    event: Mapping[str, Any],
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Apply a batch of stream records; the partial-failure answer Lambda reads."""
    raw_records = list(event.get("Records") or [])
    records: list[Record] = []
    for raw in raw_records:
        try:
            records.append(read_record(raw))
        except UnreadableRecord as error:
            logger.error("liability: a stream record is not readable", extra={"problem": str(error)})
            break  # the records before it are applied; the batch comes again from it
    index = applied = replayed = 0
    while index < len(records):
        step = _apply_from(records, index, now=now, sleep=sleep)
        if step is None:
            _count(applied, replayed)
            return _failed_from(raw_records, index)
        index += step.covered
        applied += step.applied
        replayed += step.replayed
    _count(applied, replayed)
    if len(records) < len(raw_records):
        return _failed_from(raw_records, len(records))
    return {"batchItemFailures": []}


@dataclass(frozen=True)
class Step:
    """Records a run covered: of them, the ledger entries added now, and those added before."""

    covered: int
    applied: int = 0
    replayed: int = 0


def _apply_from(
    records: Sequence[Record], index: int, *, now: Callable[[], datetime], sleep: Callable[[float], None]
) -> Step | None:
    """Write the run starting at record `index` (or every part of that record); None when it
    could not be written."""
    runs = runs_from(records, index)
    entries = sum(1 for record in records[index : index + runs[0].count] if record.figures)
    wrote = False
    for run in runs:
        if not run.periods:
            return Step(run.count)  # no ledger entry among these records: nothing to add or mark
        outcome = _apply(run, now=now, sleep=sleep)
        if outcome is None:
            return None
        if isinstance(outcome, AlreadyApplied) and run.part is None:
            covered = max(outcome.records, 1)
            return Step(
                covered, replayed=sum(1 for record in records[index : index + covered] if record.figures)
            )
        wrote = wrote or not isinstance(outcome, AlreadyApplied)
    return Step(runs[0].count, applied=entries if wrote else 0, replayed=0 if wrote else entries)


def _apply(run: Run, *, now: Callable[[], datetime], sleep: Callable[[float], None]) -> Any:
    """The run written (`Applied`), found written before (`AlreadyApplied`), or None when it
    could not be written after `ATTEMPTS` tries."""
    for attempt in range(ATTEMPTS):
        try:
            return apply_run(run.marker, run.count, run.periods, now=now())
        except (TransactionCancelled, Unavailable) as error:
            logger.info(
                "liability: run not written, trying again", extra={"attempt": attempt + 1, "why": str(error)}
            )
            sleep(random.uniform(0, 0.05 * 2**attempt))
    logger.warning(
        "liability: a run could not be written; the batch will come again", extra={"marker": run.marker}
    )
    return None


def _failed_from(raw_records: Sequence[Mapping[str, Any]], index: int) -> dict[str, Any]:
    """Lambda delivers the batch again from record `index`."""
    sequence_number = raw_records[index].get("dynamodb", {}).get("SequenceNumber", "")
    return {"batchItemFailures": [{"itemIdentifier": str(sequence_number)}]}


def _count(applied: int, skipped: int) -> None:
    if applied:
        count_event("LiabilityRecordsApplied", applied)
    if skipped:
        count_event("LiabilityRecordsAlreadyApplied", skipped)
