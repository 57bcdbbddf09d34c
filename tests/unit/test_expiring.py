"""Expiring a member's due points as a pure step: what the daily run's change holds, time passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from loyalty.domain.expiring import MAX_PAGES_PER_CHANGE, due_through_month, expire_due
from loyalty.domain.expiry import end_of_day
from loyalty.domain.ledger import Actor, EntryType
from loyalty.domain.lots import Lot
from loyalty.domain.movements import Drop, MemberChange
from loyalty.domain.rules import default_rules
from loyalty.domain.wallet import (
    ACTIVITY_BUCKET,
    NEVER_BUCKET,
    LotPage,
    NeedMorePages,
    Snapshot,
    WalletState,
    expiry_day_of_lot,
    lot_id_for,
    page_key_of_lot,
)

RULES = default_rules()
TZ = RULES.tz
AS_OF = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # the run of 20 November, 03:00 in Paris
NOW = AS_OF + timedelta(minutes=3)


def expires(day: date) -> datetime:
    return end_of_day(day, TZ)


def lot(
    points: int,
    expiry: date | None,
    *,
    issued: date = date(2024, 11, 5),
    kind: str = "earn",
    bucket: str | None = None,
    wallet_expiry: datetime | None = None,
    original: int | None = None,
) -> Lot:
    """A lot as the store reads it: an ACTIVITY lot carries the wallet's activity expiry."""
    bucket = bucket or (f"{expiry.year:04d}-{expiry.month:02d}" if expiry else NEVER_BUCKET)
    lot_id = lot_id_for(kind, issued, bucket, expiry)
    at = wallet_expiry if bucket == ACTIVITY_BUCKET else (expires(expiry) if expiry else None)
    return Lot(
        lot_id=lot_id,
        original=original or points,
        remaining=points,
        earned_at=datetime(issued.year, issued.month, issued.day, 10, tzinfo=UTC),
        expires_at=at,
        source_kind=kind,
        rules_version="2026-11-default",
    )


def pages_of(*lots: Lot) -> tuple[LotPage, ...]:
    grouped: dict[str, dict[str, Lot]] = {}
    for item in lots:
        grouped.setdefault(page_key_of_lot(item.lot_id), {})[item.lot_id] = item
    return tuple(LotPage(key, grouped[key]) for key in sorted(grouped))


def snapshot(*read: Lot, unread: tuple[Lot, ...] = (), **wallet_fields: Any) -> Snapshot:
    """The wallet of `read` + `unread` lots (directory, first days, next expiry as the engine keeps
    them) and the pages of the `read` lots only."""
    everything = (*read, *unread)
    directory: dict[str, int] = {}
    first_days: dict[str, int] = {}
    for item in everything:
        key = page_key_of_lot(item.lot_id)
        directory[key] = directory.get(key, 0) + item.remaining
        day = expiry_day_of_lot(item.lot_id)
        if day is not None:
            first_days[key] = min(first_days.get(key, day), day)
    fields: dict[str, Any] = {
        "member_id": "m-1",
        "available": sum(item.remaining for item in everything),
        "version": 7,
        "enrolled_at": datetime(2024, 1, 1, tzinfo=UTC),
        "last_activity_at": datetime(2025, 1, 1, tzinfo=UTC),
        "pages": directory,
        "first_days": first_days,
        "next_expiry_at": min((i.expires_at for i in everything if i.expires_at), default=None),
    }
    wallet = WalletState(**{**fields, **wallet_fields})
    pages = pages_of(*read)
    return Snapshot(wallet, pages, complete=all(key in {p.key for p in pages} for key in directory))


def expire(snap: Snapshot, as_of: datetime = AS_OF, **options: Any) -> MemberChange | None:
    return expire_due(snap, as_of, rules=RULES, entry_id="led_1", now=NOW, **options)


def expired_change(snap: Snapshot, as_of: datetime = AS_OF, **options: Any) -> MemberChange:
    change = expire(snap, as_of, **options)
    assert change is not None
    return change


# ---- what expires


def test_due_lots_across_pages_are_dropped_and_the_balance_falls_by_their_points() -> None:
    # Given lots due in October and November, and one of November not due yet
    october = lot(40, date(2026, 10, 15), issued=date(2024, 10, 15))
    november = lot(25, date(2026, 11, 10), issued=date(2024, 11, 10))
    later = lot(30, date(2026, 11, 30), issued=date(2024, 11, 30))
    snap = snapshot(october, november, later)

    # When the run of 20 November expires the member
    change = expired_change(snap)

    # Then the two due lots leave their pages and the balance falls by 65
    assert change.after.available == 30
    writes = {page.key: page.writes for page in change.pages}
    assert writes == {
        page_key_of_lot(october.lot_id): (Drop(october.lot_id),),
        page_key_of_lot(november.lot_id): (Drop(november.lot_id),),
    }


def test_a_page_left_empty_is_deleted_and_a_page_keeping_lots_is_updated() -> None:
    october = lot(40, date(2026, 10, 15), issued=date(2024, 10, 15))
    november = lot(25, date(2026, 11, 10), issued=date(2024, 11, 10))
    later = lot(30, date(2026, 11, 30), issued=date(2024, 11, 30))
    change = expired_change(snapshot(october, november, later))
    emptied = {page.key: page.emptied for page in change.pages}
    assert emptied == {page_key_of_lot(october.lot_id): True, page_key_of_lot(november.lot_id): False}
    assert all(page.exists for page in change.pages)


def test_the_directory_drops_emptied_pages_and_recounts_the_others_with_their_soonest_day() -> None:
    # Given a November page with a due lot (the 10th) and one that is not (the 30th), and an
    # October page whose only lot is due
    october = lot(40, date(2026, 10, 15), issued=date(2024, 10, 15))
    november = lot(25, date(2026, 11, 10), issued=date(2024, 11, 10))
    later = lot(30, date(2026, 11, 30), issued=date(2024, 11, 30))
    change = expired_change(snapshot(october, november, later))

    # Then the directory keeps the November page with 30 points, soonest on the 30th
    key = page_key_of_lot(later.lot_id)
    assert change.after.pages == {key: 30}
    assert change.after.first_days == {key: 30}


def test_a_lot_expiring_exactly_at_the_as_of_instant_expires() -> None:
    due = lot(10, date(2026, 11, 19))
    snap = snapshot(due)
    assert due.expires_at is not None
    change = expired_change(snap, as_of=due.expires_at)
    assert change.entry.points == -10


def test_a_lot_expiring_a_microsecond_after_the_as_of_instant_does_not() -> None:
    due = lot(10, date(2026, 11, 19))
    assert due.expires_at is not None
    assert expire(snapshot(due), as_of=due.expires_at - timedelta(microseconds=1)) is None


def test_nothing_due_gives_no_change() -> None:
    # Given lots that expire after the run
    snap = snapshot(lot(10, date(2026, 11, 25)), lot(5, date(2027, 1, 3)))
    # Then there is nothing to write
    assert expire(snap) is None


def test_a_wallet_without_lots_gives_no_change() -> None:
    assert expire(snapshot()) is None


def test_lots_that_never_expire_never_expire() -> None:
    # Given only a lot that never expires, read with the run far in the future
    snap = snapshot(lot(10, None))
    assert expire(snap, as_of=datetime(2099, 1, 1, tzinfo=UTC)) is None


def test_a_lot_that_never_expires_stays_when_dated_lots_expire_and_the_member_leaves_the_index() -> None:
    never = lot(10, None)
    due = lot(20, date(2026, 11, 1))
    change = expired_change(snapshot(due, unread=(never,)))
    assert change.after.available == 10
    assert change.after.pages == {page_key_of_lot(never.lot_id): 10}
    assert change.after.next_expiry_at is None


# ---- the wallet after


def test_the_next_expiry_becomes_the_soonest_lot_left_among_the_pages_read() -> None:
    due = lot(20, date(2026, 11, 1), issued=date(2024, 11, 1))
    left = lot(5, date(2026, 11, 28), issued=date(2024, 11, 28))
    change = expired_change(snapshot(due, left))
    assert change.after.next_expiry_at == expires(date(2026, 11, 28))


def test_the_next_expiry_comes_from_the_directory_for_pages_not_read() -> None:
    # Given a due lot read and a January page not read, whose soonest lot expires on the 9th
    due = lot(20, date(2026, 11, 1))
    january = lot(5, date(2027, 1, 9), issued=date(2025, 1, 9))
    change = expired_change(snapshot(due, unread=(january,)))
    # Then the next expiry is that lot's, from the directory alone
    assert change.after.next_expiry_at == expires(date(2027, 1, 9))


def test_the_next_expiry_is_the_soonest_of_the_pages_read_and_not_read() -> None:
    due = lot(20, date(2026, 11, 1), issued=date(2024, 11, 1))
    read_left = lot(5, date(2026, 11, 29), issued=date(2024, 11, 29))
    unread = lot(5, date(2026, 12, 2), issued=date(2024, 12, 2))
    change = expired_change(snapshot(due, read_left, unread=(unread,)))
    assert change.after.next_expiry_at == expires(date(2026, 11, 29))
    # and when the page read keeps nothing, the page not read gives it
    change = expired_change(snapshot(due, unread=(unread,)))
    assert change.after.next_expiry_at == expires(date(2026, 12, 2))


def test_a_page_of_the_due_month_issued_later_must_be_read_too() -> None:
    # Given a November page read, and another November page (issued a month later) not read
    due = lot(20, date(2026, 11, 1), issued=date(2024, 11, 1))
    unread_same_month = lot(5, date(2026, 11, 25), issued=date(2024, 12, 25))
    # Then the step asks for it: it could hold lots due at the run
    with pytest.raises(NeedMorePages):
        expire(snapshot(due, unread=(unread_same_month,)))


def test_a_member_left_with_nothing_that_expires_leaves_the_index() -> None:
    change = expired_change(snapshot(lot(20, date(2026, 11, 1))))
    assert change.after.available == 0
    assert change.after.pages == {}
    assert change.after.first_days == {}
    assert change.after.next_expiry_at is None


def test_expiry_settles_nothing_else_and_is_not_the_members_activity() -> None:
    activity = datetime(2025, 3, 1, tzinfo=UTC)
    snap = snapshot(lot(20, date(2026, 11, 1)), owed=15, last_activity_at=activity)
    change = expired_change(snap)
    assert change.after.owed == 15
    assert change.after.last_activity_at == activity
    assert change.after.activity_expires_at == snap.wallet.activity_expires_at
    assert change.after.transfers_sent == snap.wallet.transfers_sent
    assert change.after.version == snap.wallet.version + 1
    assert change.sequence == 8


def test_the_last_lot_is_forgotten_when_it_expires_and_kept_otherwise() -> None:
    due = lot(20, date(2026, 11, 1))
    left = lot(5, date(2026, 11, 28), issued=date(2024, 11, 28))
    assert expired_change(snapshot(due, left, last_lot_id=due.lot_id)).after.last_lot_id is None
    assert expired_change(snapshot(due, left, last_lot_id=left.lot_id)).after.last_lot_id == left.lot_id


def test_only_points_remaining_expire_for_a_lot_partly_spent() -> None:
    partly = lot(12, date(2026, 11, 1), original=50)
    change = expired_change(snapshot(partly))
    assert change.entry.points == -12
    assert change.entry.lots[0].points == 12


# ---- the ledger entry


def test_one_expiry_entry_records_the_points_lots_months_actor_and_as_of() -> None:
    october = lot(40, date(2026, 10, 15), issued=date(2024, 10, 15))
    november = lot(25, date(2026, 11, 10), issued=date(2024, 11, 10))
    later = lot(30, date(2026, 12, 30), issued=date(2024, 12, 30))
    change = expired_change(snapshot(october, november, unread=(later,)))
    entry = change.entry
    assert entry.type is EntryType.EXPIRY
    assert entry.points == -65
    assert entry.balance_after == 30
    assert entry.actor == Actor("schedule", "expiry")
    assert entry.occurred_at == AS_OF and entry.recorded_at == NOW
    assert entry.details == {"asOf": "2026-11-20T02:00:00.000Z"}
    assert entry.entry_id == "led_1"
    assert [(m.lot_id, m.points, m.issue_month, m.expiry_month) for m in entry.lots] == [
        (october.lot_id, 40, "2024-10", "2026-10"),
        (november.lot_id, 25, "2024-11", "2026-11"),
    ]
    assert [m.expires_at for m in entry.lots] == [october.expires_at, november.expires_at]


# ---- policy inactivity


def test_under_inactivity_every_activity_lot_expires_at_the_wallets_activity_expiry() -> None:
    # Given two ACTIVITY pages whose lots follow the wallet's activity expiry, passed at the run
    activity_expiry = expires(date(2026, 11, 15))
    first = lot(10, None, bucket=ACTIVITY_BUCKET, issued=date(2025, 10, 3), wallet_expiry=activity_expiry)
    second = lot(7, None, bucket=ACTIVITY_BUCKET, issued=date(2025, 11, 15), wallet_expiry=activity_expiry)
    snap = snapshot(first, second, activity_expires_at=activity_expiry)

    # Then both expire, their pages are deleted and the member leaves the index
    change = expired_change(snap)
    assert change.entry.points == -17
    assert all(page.emptied for page in change.pages) and len(change.pages) == 2
    assert change.after.pages == {}
    assert change.after.next_expiry_at is None
    assert [m.expiry_month for m in change.entry.lots] == ["2026-11", "2026-11"]


def test_under_inactivity_activity_lots_stay_while_the_activity_expiry_is_ahead() -> None:
    activity_expiry = expires(date(2027, 5, 1))
    kept = lot(10, None, bucket=ACTIVITY_BUCKET, issued=date(2026, 5, 1), wallet_expiry=activity_expiry)
    assert expire(snapshot(kept, activity_expires_at=activity_expiry)) is None


def test_a_dated_transfer_lot_on_an_inactivity_wallet_expires_on_its_own_date() -> None:
    # Given an inactivity wallet with ACTIVITY lots alive until May (not read) and a transfer lot
    # received with its own date, due at the run
    activity_expiry = expires(date(2027, 5, 1))
    activity = lot(10, None, bucket=ACTIVITY_BUCKET, issued=date(2026, 5, 1), wallet_expiry=activity_expiry)
    transfer = lot(8, date(2026, 11, 12), kind="transfer", issued=date(2026, 6, 2))
    snap = snapshot(transfer, unread=(activity,), activity_expires_at=activity_expiry)

    # Then only the transfer lot expires, and the next expiry is the wallet's activity expiry
    change = expired_change(snap)
    assert [m.lot_id for m in change.entry.lots] == [transfer.lot_id]
    assert change.after.available == 10
    assert change.after.next_expiry_at == activity_expiry


def test_dated_transfer_lots_and_activity_lots_due_together_expire_in_one_entry() -> None:
    activity_expiry = expires(date(2026, 11, 18))
    activity = lot(10, None, bucket=ACTIVITY_BUCKET, issued=date(2025, 11, 18), wallet_expiry=activity_expiry)
    transfer = lot(8, date(2026, 11, 12), kind="transfer", issued=date(2026, 6, 2))
    never = lot(3, None, kind="adjustment", issued=date(2026, 1, 1))
    change = expired_change(
        snapshot(transfer, activity, unread=(never,), activity_expires_at=activity_expiry)
    )
    assert change.entry.points == -18
    assert [m.lot_id for m in change.entry.lots] == [transfer.lot_id, activity.lot_id]
    assert change.after.pages == {page_key_of_lot(never.lot_id): 3}
    assert change.after.next_expiry_at is None


# ---- what the snapshot must hold


def test_a_due_page_not_read_is_asked_for() -> None:
    read = lot(5, date(2026, 10, 1), issued=date(2024, 10, 1))
    unread_due = lot(20, date(2026, 11, 1), issued=date(2024, 11, 1))
    with pytest.raises(NeedMorePages):
        expire(snapshot(read, unread=(unread_due,)))


def test_an_activity_page_not_read_is_asked_for_once_the_activity_expiry_has_passed() -> None:
    activity_expiry = expires(date(2026, 11, 1))
    unread = lot(10, None, bucket=ACTIVITY_BUCKET, issued=date(2025, 11, 1), wallet_expiry=activity_expiry)
    with pytest.raises(NeedMorePages):
        expire(snapshot(unread=(unread,), activity_expires_at=activity_expiry))


def test_the_due_months_end_with_the_last_local_day_ended_at_the_as_of_instant() -> None:
    # Midnight in Paris on 1 December ends 30 November: nothing of December is due yet
    assert due_through_month(datetime(2026, 11, 30, 23, 0, tzinfo=UTC), RULES) == "2026-11"
    assert due_through_month(datetime(2026, 11, 30, 23, 0, 1, tzinfo=UTC), RULES) == "2026-12"


# ---- a member with more due pages than one transaction holds


def test_past_the_page_limit_the_soonest_pages_expire_and_the_next_expiry_stays_due() -> None:
    # Given three due pages and a limit of two per change
    lots = [lot(10, date(2026, month, 3), issued=date(2024, month, 3)) for month in (8, 9, 10)]
    change = expired_change(snapshot(*lots), max_pages=2)

    # Then the first two pages expire, and the third's lot keeps the member due
    assert [m.lot_id for m in change.entry.lots] == [lots[0].lot_id, lots[1].lot_id]
    assert change.after.available == 10
    assert change.after.next_expiry_at == lots[2].expires_at
    assert change.after.next_expiry_at is not None and change.after.next_expiry_at <= AS_OF


def test_the_default_limit_leaves_room_for_the_wallet_and_the_ledger_entry() -> None:
    assert MAX_PAGES_PER_CHANGE + 2 == 100
