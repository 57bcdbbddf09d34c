"""The points transaction under every expiry policy, on DynamoDB Local, with time passed in.

These call the store directly (rules and `now` are parameters there), so each test can run
another program's rules and move the clock without touching the process configuration.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.earning import Purchase
from loyalty.domain.errors import InsufficientPoints, InvalidRequest
from loyalty.domain.ledger import Actor
from loyalty.domain.lots import Lot
from loyalty.domain.rules import ProgramRules, parse_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.store import members, points
from loyalty.store.ledger import ledger_page
from loyalty.store.records import EarnResult, RedeemResult
from loyalty.store.wallet import read_wallet

PARTNER = Actor("partner", "pos-policies")
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)


def rules_with(expiry: dict[str, Any]) -> ProgramRules:
    document = json.loads(default_rules_text())
    return parse_rules({**document, "version": f"test-{expiry['policy']}", "expiry": expiry})


def enrol(member_id: str, now: datetime = NOW) -> None:
    members.enrol_or_update(
        member_id,
        {"email": f"{member_id}@example.com", "name": None, "locale": "en", "emailOptIn": False},
        actor=PARTNER,
        now=now,
    )


def earn(
    member_id: str, rules: ProgramRules, amount: str, occurred_at: datetime, now: datetime
) -> EarnResult:
    purchase = Purchase(amount=Decimal(amount), currency="EUR", occurred_at=occurred_at, channel="store")
    tx = f"{member_id}-{rules.version}-{occurred_at.timestamp()}-{amount}"
    return points.earn(member_id, tx, purchase, actor=PARTNER, rules=rules, now=now)


def redeem(member_id: str, rules: ProgramRules, amount: int, now: datetime, key: str) -> RedeemResult:
    return points.redeem(
        member_id, amount, idempotency_key=key, actor=Actor("member", member_id), rules=rules, now=now
    )


def lots_of(member_id: str) -> list[Lot]:
    snapshot = read_wallet(member_id, consistent=True)
    assert snapshot is not None
    return snapshot.lots()


@pytest.fixture
def member(dynamodb_local: str, member_id: str) -> str:
    enrol(member_id)
    return member_id


def test_under_the_inactivity_policy_every_lot_expires_n_months_after_the_last_activity(member: str) -> None:
    rules = rules_with({"policy": "inactivity", "months": 12})
    # Given two purchases a month apart
    earn(member, rules, "50", NOW, NOW)
    later = NOW + timedelta(days=31)
    response = earn(member, rules, "30", later, later)

    # Then both lots expire 12 months after the second purchase (activity extends the first)
    lots = lots_of(member)
    assert len(lots) == 2
    assert {lot.expires_at for lot in lots} == {datetime(2027, 7, 16, 22, 0, tzinfo=UTC)}
    assert response.expires_at == "2027-07-16T22:00:00.000Z"


def test_under_the_inactivity_policy_a_redemption_is_activity_and_extends_the_remaining_lots(
    member: str,
) -> None:
    rules = rules_with({"policy": "inactivity", "months": 12})
    earn(member, rules, "50", NOW, NOW)

    # When the member redeems five months later
    later = NOW + timedelta(days=150)
    redeem(member, rules, 20, later, "k-inactivity")

    # Then the 30 points left expire 12 months after that redemption
    (lot,) = lots_of(member)
    assert lot.remaining == 30
    assert lot.expires_at == datetime(2027, 11, 12, 23, 0, tzinfo=UTC)


def test_under_the_no_expiry_policy_lots_never_expire_and_are_spent_after_dated_ones(member: str) -> None:
    # Given a lot that expires (old rules) and one that never does (new rules)
    earn(member, rules_with({"policy": "rolling", "months": 24, "endOfMonth": False}), "10", NOW, NOW)
    never = rules_with({"policy": "none"})
    earn(member, never, "10", NOW, NOW)

    # When the member redeems 15 points
    taken = redeem(member, never, 15, NOW, "k-none").lots

    # Then the dated lot goes first, then 5 of the never-expiring one
    assert [(take.points, take.expires_at is None) for take in taken] == [(10, False), (5, True)]


def test_under_a_fixed_date_policy_purchases_of_one_year_share_one_expiry(member: str) -> None:
    rules = rules_with({"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1})
    earn(member, rules, "10", datetime(2026, 2, 1, 9, tzinfo=UTC), NOW)
    earn(member, rules, "10", datetime(2026, 6, 1, 9, tzinfo=UTC), NOW)

    lots = lots_of(member)
    assert len(lots) == 2
    assert {lot.expires_at for lot in lots} == {datetime(2027, 12, 31, 23, 0, tzinfo=UTC)}


def test_under_the_anniversary_policy_a_lot_expires_on_the_anniversary_after_its_membership_year(
    dynamodb_local: str, member_id: str
) -> None:
    # Given a member enrolled on 10 March 2026 (Paris), and a one-year anniversary policy
    enrol(member_id, now=datetime(2026, 3, 10, 9, tzinfo=UTC))
    rules = rules_with({"policy": "anniversary", "years": 1})

    # When it earns on 15 June 2026 (membership year 10 March 2026 - 9 March 2027)
    response = earn(member_id, rules, "10", NOW, NOW)

    # Then the points are valid through 9 March 2027: they end at local midnight
    assert response.expires_at == "2027-03-09T23:00:00.000Z"


def test_lots_past_their_expiry_count_for_nothing_even_before_the_expiry_run(member: str) -> None:
    rules = rules_with({"policy": "rolling", "months": 1, "endOfMonth": False})
    # Given 40 points that expired yesterday (the daily expiry run has not passed yet)
    earn(member, rules, "40", NOW, NOW)
    after_expiry = NOW + timedelta(days=32)

    # When the member earns 10 more points and tries to redeem 20
    response = earn(member, rules, "10", after_expiry, after_expiry)

    # Then the earn reports only the live balance, and the expired points cannot be spent
    assert response.balance == 10
    with pytest.raises(InsufficientPoints):
        redeem(member, rules, 20, after_expiry, "k-expired")


def test_a_lot_is_no_longer_spendable_at_the_exact_instant_it_expires(member: str) -> None:
    rules = rules_with({"policy": "rolling", "months": 1, "endOfMonth": False})
    expires_at = earn(member, rules, "40", NOW, NOW).expires_at
    assert expires_at is not None
    expires = datetime.fromisoformat(expires_at)

    assert redeem(member, rules, 1, expires - timedelta(milliseconds=1), "k-before").balance == 39
    with pytest.raises(InsufficientPoints):
        redeem(member, rules, 1, expires, "k-at")


def test_a_purchase_whose_points_would_already_have_expired_is_refused(member: str) -> None:
    rules = rules_with({"policy": "rolling", "months": 1, "endOfMonth": False})
    with pytest.raises(InvalidRequest) as refused:
        earn(member, rules, "40", NOW - timedelta(days=40), NOW)
    assert refused.value.field == "occurredAt"


def test_the_ledger_records_the_balance_the_member_was_told_even_with_expired_lots_pending(
    member: str,
) -> None:
    rules = rules_with({"policy": "rolling", "months": 1, "endOfMonth": False})
    # Given 40 points that expired before the expiry run reached them
    earn(member, rules, "40", NOW, NOW)
    later = NOW + timedelta(days=32)

    # When the member earns 10 and redeems 5
    told = [
        earn(member, rules, "10", later, later).balance,
        redeem(member, rules, 5, later + timedelta(seconds=1), "k-told").balance,
    ]

    # Then each ledger entry's balanceAfter is the balance the response gave
    entries = ledger_page(member, limit=10, cursor=None).entries
    assert [entry["balanceAfter"] for entry in entries[:2]] == told[::-1] == [5, 10]


def test_the_ledger_is_numbered_in_commit_order_without_gaps_even_within_one_millisecond(member: str) -> None:
    rules = rules_with({"policy": "rolling", "months": 24, "endOfMonth": False})
    # Given movements stamped with the very same instant
    for amount in ("10", "20", "30"):
        earn(member, rules, amount, NOW, NOW)
    redeem(member, rules, 15, NOW, "k-same-ms")

    # Then the ledger lists them newest first, numbered 4, 3, 2, 1
    entries = ledger_page(member, limit=10, cursor=None).entries
    assert [(entry["sequence"], entry["type"], entry["points"]) for entry in entries] == [
        (4, "redeem", -15),
        (3, "earn", 30),
        (2, "earn", 20),
        (1, "earn", 10),
    ]
