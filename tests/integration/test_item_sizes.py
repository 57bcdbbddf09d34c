"""Items approaching the 400 KB item limit (issue #9, observability), on DynamoDB Local: the store
counts `ItemsNearSizeLimit` for an item it writes or reads past 300 KB, and for nothing smaller.

A lot page grown in place (an update, as transfers-in grow a receiver's page) is seen when the
member is next read, before any movement writes it again; a ledger entry is seen as it is put; one
past 400 KB is counted before DynamoDB refuses it (`MovementTooLarge`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.earning import Purchase
from loyalty.domain.errors import MovementTooLarge
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import default_rules
from loyalty.http import telemetry
from loyalty.store import keys, members, points
from loyalty.store.models import ActorAttribute, LedgerEntryItem, LotMovementAttribute, TableItem
from loyalty.store.transact import Transaction
from loyalty.store.wallet import read_wallet
from tests.unit.test_item_sizes import flushed

PARTNER = Actor("partner", "pos-sizes")
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """A function giving the `ItemsNearSizeLimit` counts published since the last call."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    telemetry.metrics.clear_metrics()
    capsys.readouterr()

    yield lambda: flushed(capsys)
    telemetry.metrics.clear_metrics()


def member_with_a_page(table: Any) -> tuple[str, str]:
    """A member with one lot, in one page: its id and the page's sort key."""
    member = f"m-{uuid.uuid4().hex[:12]}"
    profile = {"email": f"{member}@example.com", "name": None, "locale": "en", "emailOptIn": False}
    members.enrol_or_update(member, profile, actor=PARTNER, now=NOW)
    purchase = Purchase(Decimal("150"), "EUR", NOW, "store")
    points.earn(member, f"{member}-tx", purchase, actor=PARTNER, rules=default_rules(), now=NOW)
    [page] = [
        item["sk"]
        for item in table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :pages)",
            ExpressionAttributeValues={":pk": keys.member_pk(member), ":pages": keys.LOT_PAGE_PREFIX},
        )["Items"]
    ]
    return member, page


def grow_page(table: Any, member: str, page_sk: str, size: int) -> None:
    """Grow the page in place to about `size` bytes: one update, outside the store (as if its lots
    had piled up; an attribute the page's model ignores stands for them, the size is what counts)."""
    table.update_item(
        Key={"pk": keys.member_pk(member), "sk": page_sk},
        UpdateExpression="SET grown = :lots",
        ExpressionAttributeValues={":lots": "x" * size},
    )


def test_a_page_grown_past_300_kb_by_updates_is_counted_when_the_member_is_read(
    table: Any, counted: Any
) -> None:
    # Given a member whose page grew by an update to ~310 KB (an update carries no item to measure)
    member, page = member_with_a_page(table)
    grow_page(table, member, page, 310 * 1024)
    assert counted() == []

    # When the store reads the member (as every movement does before writing)
    snapshot = read_wallet(member, consistent=True)

    # Then the page was counted, once
    assert snapshot is not None and snapshot.wallet.available == 150
    assert counted() == [1.0]


def test_a_member_with_ordinary_items_counts_nothing(table: Any, counted: Any) -> None:
    # Given a page grown to ~250 KB: big, still under the threshold, read then written by an earn
    member, page = member_with_a_page(table)
    grow_page(table, member, page, 250 * 1024)

    read_wallet(member, consistent=True)
    points.earn(
        member,
        f"{member}-tx2",
        Purchase(Decimal("10"), "EUR", NOW, "store"),
        actor=PARTNER,
        rules=default_rules(),
        now=NOW,
    )

    assert counted() == []


def ledger_entry(member: str, sequence: int, lots: int) -> LedgerEntryItem:
    """A ledger entry with `lots` lines (~100 bytes each), as a redemption of that many lots writes."""
    return LedgerEntryItem(
        keys.member_pk(member),
        keys.ledger_sk(sequence),
        member_id=member,
        sequence=sequence,
        entry_id=f"led_{uuid.uuid4().hex}",
        type="redeem",
        points=-lots,
        balance_after=0,
        occurred_at=NOW,
        recorded_at=NOW,
        actor=ActorAttribute(kind="member", id=member),
        reason="redemption",
        lots=[
            LotMovementAttribute(
                lot_id=f"lot_01JD3V{n:020d}", points=1, expires_at=NOW, issue_month="2026-11"
            )
            for n in range(lots)
        ],
    )


def test_a_ledger_entry_put_past_300_kb_is_counted_as_it_is_written(counted: Any) -> None:
    member = f"m-{uuid.uuid4().hex[:12]}"
    transaction = Transaction()
    transaction.put("ledger", ledger_entry(member, 1, 3_600), TableItem.pk.does_not_exist())

    transaction.commit()

    assert counted() == [1.0]


def test_an_entry_past_400_kb_is_counted_before_dynamodb_refuses_it(counted: Any) -> None:
    member = f"m-{uuid.uuid4().hex[:12]}"
    transaction = Transaction()
    transaction.put("ledger", ledger_entry(member, 1, 5_000), TableItem.pk.does_not_exist())

    with pytest.raises(MovementTooLarge):
        transaction.commit()

    assert counted() == [1.0]
