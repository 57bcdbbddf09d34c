"""Transfers under every expiry policy, on DynamoDB Local, with time passed in: the receiver's lots
keep the sender's expiry dates (a transfer never extends validity), and the rest of the engine
(balance, spend order, due points, next expiry) handles the dated lots a transfer brings to a
wallet under the inactivity policy. Also the rolling day of the daily maximum.

These call the store directly (rules and `now` are parameters there), as test_points_policies.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.earning import Purchase
from loyalty.domain.errors import InsufficientPoints, TransferDailyLimitReached
from loyalty.domain.expiry import end_of_day, expires_at
from loyalty.domain.ledger import Actor
from loyalty.domain.lots import Lot
from loyalty.domain.rules import ProgramRules, parse_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.store import members, points, transfers
from loyalty.store.records import RedeemResult
from loyalty.store.transfers import TransferResult
from loyalty.store.wallet import read_live, read_wallet
from tests.integration.conftest import PARIS

PARTNER = Actor("partner", "pos-transfers")
ENROLLED_SENDER = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
ENROLLED_RECEIVER = datetime(2025, 9, 20, 9, 0, tzinfo=UTC)
EARNED = datetime(2026, 2, 15, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)  # noon in Paris, 15 June 2026


def rules_with(expiry: dict[str, Any], **transfer_rules: Any) -> ProgramRules:
    document = json.loads(default_rules_text())
    document["transfers"] = {**document["transfers"], **transfer_rules}
    return parse_rules({**document, "version": f"test-{expiry['policy']}", "expiry": expiry})


def enrol(member_id: str, now: datetime) -> str:
    profile = {"email": f"{member_id}@example.com", "name": None, "locale": "en", "emailOptIn": False}
    members.enrol_or_update(member_id, profile, actor=PARTNER, now=now)
    return member_id


def earn(member_id: str, rules: ProgramRules, amount: str, at: datetime) -> None:
    purchase = Purchase(amount=Decimal(amount), currency="EUR", occurred_at=at, channel="store")
    tx = f"{member_id}-{rules.version}-{at.timestamp()}-{amount}"
    points.earn(member_id, tx, purchase, actor=PARTNER, rules=rules, now=at)


def transfer(sender: str, receiver: str, amount: int, rules: ProgramRules, now: datetime) -> TransferResult:
    key = f"k-{now.timestamp()}-{amount}"
    return transfers.transfer(
        sender, receiver, amount, idempotency_key=key, actor=Actor("member", sender), rules=rules, now=now
    )


def redeem(member_id: str, rules: ProgramRules, amount: int, now: datetime) -> RedeemResult:
    key = f"r-{now.timestamp()}-{amount}"
    return points.redeem(
        member_id, amount, idempotency_key=key, actor=Actor("member", member_id), rules=rules, now=now
    )


def lots_of(member_id: str) -> list[Lot]:
    snapshot = read_wallet(member_id, consistent=True)
    assert snapshot is not None
    return snapshot.lots()


def wallet_of(member_id: str) -> Any:
    snapshot = read_wallet(member_id, consistent=True)
    assert snapshot is not None
    return snapshot.wallet


@pytest.fixture
def pair(dynamodb_local: str, member_id: str) -> tuple[str, str]:
    """A sender and a receiver enrolled on different days (their anniversaries differ)."""
    return enrol(f"{member_id}-s", ENROLLED_SENDER), enrol(f"{member_id}-r", ENROLLED_RECEIVER)


# ---- the receiver's lots keep the sender's dates, under every policy


@pytest.mark.parametrize(
    ("expiry", "expiry_date"),
    [
        ({"policy": "rolling", "months": 12}, "20270215"),
        ({"policy": "rolling", "months": 12, "endOfMonth": True}, "20270228"),
        ({"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1}, "20271231"),
        ({"policy": "anniversary", "years": 2}, "20270309"),  # the sender's anniversary, not the receiver's
    ],
    ids=["rolling", "rolling-end-of-month", "fixed-date", "anniversary"],
)
def test_under_a_dated_policy_the_receivers_lot_keeps_the_senders_expiry(
    pair: tuple[str, str], expiry: dict[str, Any], expiry_date: str
) -> None:
    # Given a sender whose purchase of 15 February expires on `expiry_date`
    sender, receiver = pair
    rules = rules_with(expiry)
    earn(sender, rules, "300", EARNED)
    (sent_lot,) = lots_of(sender)
    assert sent_lot.lot_id.startswith(expiry_date)

    # When it transfers 200 points on 15 June
    result = transfer(sender, receiver, 200, rules, NOW)

    # Then the receiver holds one transfer lot of that date, issued today, expiring at the same instant
    (lot,) = lots_of(receiver)
    assert (lot.lot_id, lot.remaining, lot.source_kind) == (f"{expiry_date}-20260615-t", 200, "transfer")
    assert lot.expires_at == sent_lot.expires_at == datetime.fromisoformat(str(result.lots[0].expires_at))
    assert lot.earned_at == NOW
    # And never later than points the receiver would earn today: a transfer extends nothing
    own = expires_at(rules, earned_at=NOW, enrolled_at=ENROLLED_RECEIVER, last_activity_at=NOW)
    assert own is not None and lot.expires_at is not None and lot.expires_at <= own
    # And the receiver's next expiry (its row in ByNextExpiry) is that instant
    assert wallet_of(receiver).next_expiry_at == lot.expires_at


def test_under_the_no_expiry_policy_the_receivers_lot_never_expires(pair: tuple[str, str]) -> None:
    sender, receiver = pair
    rules = rules_with({"policy": "none"})
    earn(sender, rules, "300", EARNED)

    transfer(sender, receiver, 200, rules, NOW)

    (lot,) = lots_of(receiver)
    assert (lot.lot_id, lot.remaining, lot.expires_at) == ("never-20260615-t", 200, None)
    assert wallet_of(receiver).next_expiry_at is None


def test_points_with_and_without_a_date_become_one_lot_each_dated_first(pair: tuple[str, str]) -> None:
    # Given a sender holding a dated lot (earlier rules) and a never-expiring one
    sender, receiver = pair
    earn(sender, rules_with({"policy": "rolling", "months": 12}), "100", EARNED)
    never = rules_with({"policy": "none"})
    earn(sender, never, "100", EARNED + timedelta(days=1))

    # When it transfers 150 points
    result = transfer(sender, receiver, 150, never, NOW)

    # Then 100 dated points and 50 that never expire arrive, as two lots
    assert [(take.points, take.expires_at is None) for take in result.lots] == [(100, False), (50, True)]
    assert [(lot.lot_id, lot.remaining) for lot in lots_of(receiver)] == [
        ("20270215-20260615-t", 100),
        ("never-20260615-t", 50),
    ]


def test_transfers_in_the_same_day_from_two_senders_share_the_lot_of_their_date(
    dynamodb_local: str, member_id: str
) -> None:
    # Given two senders whose points both expire on 31 December 2027
    rules = rules_with({"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1})
    first, second = (enrol(f"{member_id}-{n}", ENROLLED_SENDER) for n in (1, 2))
    receiver = enrol(f"{member_id}-r", ENROLLED_RECEIVER)
    earn(first, rules, "300", EARNED)
    earn(second, rules, "300", EARNED + timedelta(days=30))

    # When both send points the same day
    transfer(first, receiver, 100, rules, NOW)
    transfer(second, receiver, 250, rules, NOW + timedelta(hours=2))

    # Then the receiver holds one lot of that date, topped up
    (lot,) = lots_of(receiver)
    assert (lot.lot_id, lot.original, lot.remaining) == ("20271231-20260615-t", 350, 350)
    assert lot.earned_at == NOW


# ---- inactivity: the sender's ACTIVITY points arrive dated, and stay so


INACTIVITY = {"policy": "inactivity", "months": 12}


def test_under_inactivity_the_senders_activity_points_arrive_as_a_lot_dated_by_the_senders_activity(
    pair: tuple[str, str],
) -> None:
    # Given a sender whose last activity (a purchase on 15 February) keeps its points until 15 February 2027
    sender, receiver = pair
    rules = rules_with(INACTIVITY)
    earn(sender, rules, "300", EARNED)

    # When it transfers 200 points on 15 June
    transfer(sender, receiver, 200, rules, NOW)

    # Then the receiver's lot is dated 15 February 2027 (its month's page, not ACTIVITY)
    (lot,) = lots_of(receiver)
    assert lot.lot_id == "20270215-20260615-t"
    assert lot.expires_at == end_of_day(datetime(2027, 2, 15).date(), PARIS)
    # And sending was the sender's activity: its own remaining points now last until 15 June 2027
    (kept,) = lots_of(sender)
    assert kept.expires_at == end_of_day(datetime(2027, 6, 15).date(), PARIS)


def test_under_inactivity_the_receivers_activity_never_moves_a_transferred_lot(pair: tuple[str, str]) -> None:
    # Given a receiver holding 200 transferred points dated 15 February 2027
    sender, receiver = pair
    rules = rules_with(INACTIVITY)
    earn(sender, rules, "300", EARNED)
    transfer(sender, receiver, 200, rules, NOW)

    # When it buys something a month later (activity: its own points move to a year later)
    later = NOW + timedelta(days=30)
    earn(receiver, rules, "100", later)

    # Then its own lot follows its activity, the transferred one keeps its date, and the next expiry
    # (its ByNextExpiry row) is the transferred lot's
    transferred, own = sorted(lots_of(receiver), key=lambda lot: lot.lot_id)
    assert transferred.expires_at == end_of_day(datetime(2027, 2, 15).date(), PARIS)
    assert own.expires_at == end_of_day(datetime(2027, 7, 15).date(), PARIS)
    assert wallet_of(receiver).next_expiry_at == transferred.expires_at

    # And a redemption takes the transferred points first, then its own
    taken = redeem(receiver, rules, 250, later + timedelta(days=1)).lots
    assert [(take.lot_id, take.points) for take in taken] == [(transferred.lot_id, 200), (own.lot_id, 50)]
    assert wallet_of(receiver).next_expiry_at == end_of_day(datetime(2027, 7, 16).date(), PARIS)


def receiver_with_dated_pages_before_its_activity_lot(member_id: str, rules: ProgramRules) -> str:
    """A receiver whose own points (100, purchase of 24 June 2025, its last activity) expire on
    24 June 2026, holding six lots of 100 transferred points dated 2027, each in a page of its own:
    the dated pages sort before its ACTIVITY page, so a read of the first pages stops before it."""
    sender = enrol(f"{member_id}-s", ENROLLED_SENDER)
    receiver = enrol(f"{member_id}-r", datetime(2025, 6, 1, 9, 0, tzinfo=UTC))
    earn(receiver, rules, "100", datetime(2025, 6, 24, 10, 0, tzinfo=UTC))
    earn(sender, rules, "1000", datetime(2026, 1, 9, 10, 0, tzinfo=UTC))
    for month in (1, 2, 3, 4, 5, 6):
        transfer(sender, receiver, 100, rules, datetime(2026, month, 10, 10, 0, tzinfo=UTC))
    snapshot = read_wallet(receiver, consistent=True)
    assert snapshot is not None
    assert sorted(snapshot.wallet.pages)[-1].startswith("ACTIVITY/") and len(snapshot.wallet.pages) == 7
    assert snapshot.wallet.next_expiry_at == end_of_day(datetime(2026, 6, 24).date(), PARIS)
    return receiver


def test_under_inactivity_the_receivers_activity_points_expiring_first_are_spent_first_past_the_first_pages(
    dynamodb_local: str, member_id: str
) -> None:
    rules = rules_with(INACTIVITY)
    receiver = receiver_with_dated_pages_before_its_activity_lot(member_id, rules)

    # When the receiver redeems 50 points on 11 June 2026
    taken = redeem(receiver, rules, 50, datetime(2026, 6, 11, 10, 0, tzinfo=UTC)).lots

    # Then they come from its own points, expiring 24 June 2026, not from the first pages read
    assert [(take.lot_id, take.points) for take in taken] == [("activity-20250624-e", 50)]


def test_under_inactivity_the_receivers_own_points_past_their_expiry_count_for_nothing_past_the_first_pages(
    dynamodb_local: str, member_id: str
) -> None:
    rules = rules_with(INACTIVITY)
    receiver = receiver_with_dated_pages_before_its_activity_lot(member_id, rules)
    transferred = 600

    # When its own points have expired (24 June 2026), before the expiry run
    after = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)

    # Then its balance is the transferred points alone, and no more can be spent
    assert read_live(receiver, after, consistent=True).available == transferred
    with pytest.raises(InsufficientPoints):
        redeem(receiver, rules, transferred + 1, after)
    assert redeem(receiver, rules, transferred, after).balance == 0


def test_under_inactivity_a_purchase_moves_the_next_expiry_to_the_transferred_lot_when_it_comes_first(
    dynamodb_local: str, member_id: str
) -> None:
    # Given a receiver whose own points expire on 24 June 2026, and 100 transferred points
    # dated 9 January 2027
    rules = rules_with(INACTIVITY)
    sender = enrol(f"{member_id}-s", ENROLLED_SENDER)
    receiver = enrol(f"{member_id}-r", datetime(2025, 6, 1, 9, 0, tzinfo=UTC))
    earn(receiver, rules, "100", datetime(2025, 6, 24, 10, 0, tzinfo=UTC))
    earn(sender, rules, "300", datetime(2026, 1, 9, 10, 0, tzinfo=UTC))
    transfer(sender, receiver, 100, rules, datetime(2026, 1, 10, 10, 0, tzinfo=UTC))
    assert wallet_of(receiver).next_expiry_at == end_of_day(datetime(2026, 6, 24).date(), PARIS)

    # When it buys something on 1 March 2026: its own points now last until 1 March 2027
    earn(receiver, rules, "50", datetime(2026, 3, 1, 10, 0, tzinfo=UTC))

    # Then its next expiry (its ByNextExpiry row) is the transferred lot's, not the old activity's
    assert wallet_of(receiver).next_expiry_at == end_of_day(datetime(2027, 1, 9).date(), PARIS)


# ---- the daily maximum is a rolling day


def test_the_daily_maximum_is_a_rolling_24_hours(pair: tuple[str, str]) -> None:
    # Given a sender (10,000 a day at most, 5,000 a transfer) that sent 5,000 at 10:00 and 11:00
    sender, receiver = pair
    rules = rules_with({"policy": "rolling", "months": 24})
    earn(sender, rules, "20000", NOW - timedelta(days=1))
    transfer(sender, receiver, 5000, rules, NOW)
    transfer(sender, receiver, 5000, rules, NOW + timedelta(hours=1))

    # When it sends 100 more a minute before the first is 24 hours old: refused, until then
    with pytest.raises(TransferDailyLimitReached) as refused:
        transfer(sender, receiver, 100, rules, NOW + timedelta(hours=23, minutes=59))
    assert refused.value.details["remaining"] == 0
    assert refused.value.details["availableAt"] == "2026-06-16T10:00:00.000Z"

    # Then at that instant 5,000 fit again; and the wallet keeps only the last 24 hours
    transfer(sender, receiver, 5000, rules, NOW + timedelta(hours=24))
    assert [sent.points for sent in wallet_of(sender).transfers_sent] == [5000, 5000]
    with pytest.raises(TransferDailyLimitReached) as again:
        transfer(sender, receiver, 100, rules, NOW + timedelta(hours=24, seconds=1))
    assert again.value.details["availableAt"] == "2026-06-16T11:00:00.000Z"
