"""Expiring one member's due points on DynamoDB Local, exactly once (SPEC §6, invariants 1 and 5).

These call the store directly with the rules and `now` passed in: a member earns far in the past,
then the run expires it at a later as-of instant.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from devtools.identity import Identity
from loyalty.domain.earning import Purchase
from loyalty.domain.errors import InsufficientPoints
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import ProgramRules, default_rules, parse_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.settings import settings
from loyalty.store import expiring, keys, members, points
from loyalty.store.due import members_due
from loyalty.store.expiring import ExpiryResult
from loyalty.store.records import EarnResult
from loyalty.store.transact import Transaction
from loyalty.store.wallet import read_wallet
from loyalty.timefmt import format_instant
from tests.integration.conftest import Api, lots_of

PARTNER = Actor("partner", "pos-expiring")
RULES = parse_rules({**json.loads(default_rules_text()), "version": "expiring-test"})
FIRST = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
SECOND = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def rules_with(expiry: dict[str, Any]) -> ProgramRules:
    document = json.loads(default_rules_text())
    return parse_rules({**document, "version": f"expiring-{expiry['policy']}", "expiry": expiry})


def enrol(member_id: str, now: datetime = FIRST - timedelta(days=30)) -> None:
    profile = {"email": f"{member_id}@example.com", "name": None, "locale": "en", "emailOptIn": False}
    members.enrol_or_update(member_id, profile, actor=PARTNER, now=now)


def earn(member_id: str, at: datetime, amount: str = "100", rules: ProgramRules = RULES) -> EarnResult:
    purchase = Purchase(amount=Decimal(amount), currency="EUR", occurred_at=at, channel="store")
    tx = f"{member_id}-{rules.version}-{at.timestamp()}-{amount}"
    return points.earn(member_id, tx, purchase, actor=PARTNER, rules=rules, now=at)


def expiry_of(result: EarnResult) -> datetime:
    assert result.expires_at is not None
    return datetime.fromisoformat(result.expires_at)


def expire(member_id: str, as_of: datetime, rules: ProgramRules = RULES) -> ExpiryResult | None:
    return expiring.expire_member(member_id, as_of, rules=rules, now=as_of + timedelta(minutes=1))


def ledger(table: Any, member_id: str) -> list[dict[str, Any]]:
    response = table.query(
        KeyConditionExpression=Key("pk").eq(keys.member_pk(member_id))
        & Key("sk").between(*keys.LEDGER_RANGE),
        ConsistentRead=True,
    )
    return list(response["Items"])


def expiry_entries(table: Any, member_id: str) -> list[dict[str, Any]]:
    return [entry for entry in ledger(table, member_id) if entry["type"] == "expiry"]


def wallet_item(table: Any, member_id: str) -> dict[str, Any]:
    return dict(
        table.get_item(Key={"pk": keys.member_pk(member_id), "sk": "WALLET"}, ConsistentRead=True)["Item"]
    )


def lots_total(member_id: str) -> int:
    snapshot = read_wallet(member_id, consistent=True)
    assert snapshot is not None
    return sum(lot.remaining for lot in snapshot.lots())


def assert_balanced(table: Any, member_id: str) -> int:
    """Invariant 1 once the run has passed: balance = Σ lots = Σ ledger. Returns the balance."""
    available = int(wallet_item(table, member_id)["available"])
    assert available == lots_total(member_id)
    assert available == sum(int(entry["points"]) for entry in ledger(table, member_id))
    assert available >= 0
    return available


def shard_of(member_id: str) -> int:
    return int(keys.expiry_shard(member_id, settings().expiry_shards).removeprefix("EXPIRY#"))


def is_listed_due(member_id: str, as_of: datetime) -> bool:
    return member_id in set(members_due(as_of, shard_of(member_id)))


@pytest.fixture
def member(dynamodb_local: str, member_id: str) -> str:
    enrol(member_id)
    return member_id


# ---- what one run does


def test_a_due_lot_expires_and_the_balance_equals_the_lots_and_the_ledger(table: Any, member: str) -> None:
    # Given a lot due at the run and a later one
    first = earn(member, FIRST)
    second = earn(member, SECOND)
    as_of = expiry_of(first) + timedelta(hours=3)

    # When the run expires the member
    result = expire(member, as_of)

    # Then the due lot's points are gone, the later lot's are left, and everything agrees
    assert result is not None
    assert result.points == first.points
    assert [lot.lot_id for lot in result.lots] == [first.lot_id]
    assert result.balance == second.points
    assert assert_balanced(table, member) == second.points
    snapshot = read_wallet(member)
    assert snapshot is not None and [lot.lot_id for lot in snapshot.lots()] == [second.lot_id]


def test_the_run_writes_one_expiry_entry_with_the_lots_and_the_as_of_instant(table: Any, member: str) -> None:
    first = earn(member, FIRST)
    earn(member, SECOND)
    as_of = expiry_of(first) + timedelta(hours=3)
    result = expire(member, as_of)
    assert result is not None

    [entry] = expiry_entries(table, member)
    assert entry["entryId"] == result.entry_id
    assert int(entry["points"]) == -first.points
    assert entry["actor"] == {"kind": "schedule", "id": "expiry"}
    assert entry["details"]["asOf"] == format_instant(as_of)
    assert [(lot["lotId"], int(lot["points"])) for lot in entry["lots"]] == [(first.lot_id, first.points)]
    assert entry["lots"][0]["issueMonth"] == "2026-01" and entry["lots"][0]["expiryMonth"] == "2028-01"


def test_a_lot_due_exactly_at_the_as_of_instant_expires(table: Any, member: str) -> None:
    first = earn(member, FIRST)
    assert expire(member, expiry_of(first) - timedelta(milliseconds=1)) is None
    result = expire(member, expiry_of(first))
    assert result is not None and result.points == first.points
    assert assert_balanced(table, member) == 0


def test_the_index_row_moves_to_the_next_expiry(table: Any, member: str) -> None:
    # Given a member due at the run, with a later lot
    first = earn(member, FIRST)
    second = earn(member, SECOND)
    as_of = expiry_of(first) + timedelta(hours=3)
    assert is_listed_due(member, as_of)

    # When it is expired
    expire(member, as_of)

    # Then its row is no longer due, and sits at the later lot's expiry
    assert not is_listed_due(member, as_of)
    assert is_listed_due(member, expiry_of(second))
    item = wallet_item(table, member)
    assert item["gsi1sk"] == keys.next_expiry_sk(format_instant(expiry_of(second)), member)
    assert item["gsi1pk"] == keys.expiry_shard(member, settings().expiry_shards)


def test_a_member_left_with_nothing_that_expires_leaves_the_index(table: Any, member: str) -> None:
    first = earn(member, FIRST)
    as_of = expiry_of(first) + timedelta(hours=3)
    assert expire(member, as_of) is not None
    item = wallet_item(table, member)
    assert "gsi1pk" not in item and "gsi1sk" not in item and "nextExpiryAt" not in item
    assert not is_listed_due(member, datetime(2099, 1, 1, tzinfo=UTC))
    assert item["pages"] == {}


def test_a_member_with_several_due_lots_in_several_pages_gets_one_entry(table: Any, member: str) -> None:
    # Given lots issued in three months (three pages), all due, and one later lot
    earned = [earn(member, FIRST + timedelta(days=31 * n)) for n in range(3)]
    later = earn(member, SECOND + timedelta(days=90))
    as_of = expiry_of(earned[-1]) + timedelta(hours=3)

    result = expire(member, as_of)

    assert result is not None
    assert sorted(lot.lot_id for lot in result.lots) == sorted(str(e.lot_id) for e in earned)
    assert len(expiry_entries(table, member)) == 1
    assert assert_balanced(table, member) == later.points


def test_items_outside_the_due_pages_are_neither_read_for_nor_changed(table: Any, member: str) -> None:
    # Given a due lot and a lot of a later expiry month
    first = earn(member, FIRST)
    second = earn(member, SECOND)
    page_sk = keys.lot_page_sk("2028-06/2026-06")
    before = table.get_item(Key={"pk": keys.member_pk(member), "sk": page_sk}, ConsistentRead=True)["Item"]
    assert second.lot_id in before["lots"]

    expire(member, expiry_of(first) + timedelta(hours=3))

    # Then the later page is as it was, and the due page is gone
    after = table.get_item(Key={"pk": keys.member_pk(member), "sk": page_sk}, ConsistentRead=True)["Item"]
    assert after == before
    due_sk = keys.lot_page_sk("2028-01/2026-01")
    assert "Item" not in table.get_item(Key={"pk": keys.member_pk(member), "sk": due_sk}, ConsistentRead=True)


def test_more_due_pages_than_one_transaction_holds_expire_in_several_each_once(
    table: Any, member: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three due pages, and transactions that hold one page each
    monkeypatch.setattr("loyalty.domain.expiring.MAX_PAGES_PER_CHANGE", 1)
    earned = [earn(member, FIRST + timedelta(days=31 * n)) for n in range(3)]
    later = earn(member, SECOND + timedelta(days=90))
    as_of = expiry_of(earned[-1]) + timedelta(hours=3)

    # When the member is expired
    result = expire(member, as_of)

    # Then three transactions expired the pages soonest first, one entry each, and nothing is left due
    assert result is not None and len(result.entry_ids) == 3
    assert [lot.lot_id for lot in result.lots] == [e.lot_id for e in earned]
    assert len(expiry_entries(table, member)) == 3
    assert assert_balanced(table, member) == later.points
    assert not is_listed_due(member, as_of)
    assert expire(member, as_of) is None


# ---- exactly once


def test_running_twice_expires_each_lot_once(table: Any, member: str) -> None:
    first = earn(member, FIRST)
    second = earn(member, SECOND)
    as_of = expiry_of(first) + timedelta(hours=3)
    assert expire(member, as_of) is not None
    version = int(wallet_item(table, member)["version"])

    # When the same run goes again (a replayed day, a retried batch)
    again = expire(member, as_of)

    # Then nothing is due and nothing is written
    assert again is None
    assert int(wallet_item(table, member)["version"]) == version
    assert len(expiry_entries(table, member)) == 1
    assert assert_balanced(table, member) == second.points


class Killed(Exception):
    """The run's process dies around the commit (before the write is sent, or after it landed)."""


@pytest.mark.parametrize("committed", [False, True], ids=["before-the-write", "after-the-write"])
def test_a_run_killed_around_its_write_and_run_again_expires_each_lot_once(
    table: Any, member: str, monkeypatch: pytest.MonkeyPatch, committed: bool
) -> None:
    first = earn(member, FIRST)
    second = earn(member, SECOND)
    as_of = expiry_of(first) + timedelta(hours=3)

    class Dying(Transaction):
        def commit(self) -> None:
            if committed:
                super().commit()
            raise Killed()

    # Given a run that dies around its transaction
    monkeypatch.setattr("loyalty.store.expiring.Transaction", Dying)
    with pytest.raises(Killed):
        expire(member, as_of)
    monkeypatch.undo()

    # When the run goes again
    again = expire(member, as_of)

    # Then the lot expired once: by the first run if its write landed, else by the second
    assert (again is None) is committed
    assert len(expiry_entries(table, member)) == 1
    assert assert_balanced(table, member) == second.points


def test_two_runs_at_once_write_one_entry(table: Any, member: str) -> None:
    first = earn(member, FIRST)
    second = earn(member, SECOND)
    as_of = expiry_of(first) + timedelta(hours=3)
    start = threading.Barrier(4)

    def run() -> ExpiryResult | None:
        start.wait()
        return expire(member, as_of)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: run(), range(4)))

    done = [result for result in results if result is not None]
    assert len(done) == 1 and done[0].points == first.points
    assert len(expiry_entries(table, member)) == 1
    assert assert_balanced(table, member) == second.points


def test_a_member_spent_to_zero_after_the_index_read_has_nothing_to_expire(table: Any, member: str) -> None:
    # Given a member listed as due, then spending everything before the run reaches it
    first = earn(member, FIRST)
    as_of = expiry_of(first) + timedelta(hours=3)
    assert is_listed_due(member, as_of)
    points.redeem(
        member, first.points, idempotency_key="all", actor=Actor("member", member), rules=RULES, now=SECOND
    )

    # Then the run has nothing to do and writes nothing
    assert expire(member, as_of) is None
    assert expiry_entries(table, member) == []
    assert assert_balanced(table, member) == 0


def test_an_unknown_member_has_nothing_to_expire(dynamodb_local: str, member_id: str) -> None:
    assert expire(member_id, SECOND) is None


@pytest.mark.parametrize("round_", range(4))
def test_a_redemption_racing_the_expiry_never_overspends_nor_double_counts(
    table: Any, member_id: str, round_: int
) -> None:
    # Given a due lot and a live one, at the run's instant
    enrol(member_id)
    first = earn(member_id, FIRST)
    second = earn(member_id, SECOND)
    as_of = expiry_of(first) + timedelta(hours=3)
    start = threading.Barrier(3)

    def run() -> object:
        start.wait()
        return expire(member_id, as_of)

    def spend(points_asked: int, key: str) -> object:
        start.wait()
        try:
            return points.redeem(
                member_id,
                points_asked,
                idempotency_key=key,
                actor=Actor("member", member_id),
                rules=RULES,
                now=as_of,
            )
        except InsufficientPoints as refused:
            return refused

    # When the run and two redemptions (the live points; then all points) race
    with ThreadPoolExecutor(3) as pool:
        expired = pool.submit(run)
        live = pool.submit(spend, second.points, f"live-{round_}")
        greedy = pool.submit(spend, first.points + second.points, f"all-{round_}")

    # Then the due lot expired once, the live points were spent once, nothing else was taken
    result = expired.result()
    assert isinstance(result, ExpiryResult) and result.points == first.points
    assert not isinstance(live.result(), InsufficientPoints)
    assert isinstance(greedy.result(), InsufficientPoints)
    assert len(expiry_entries(table, member_id)) == 1
    assert assert_balanced(table, member_id) == 0


# ---- policy inactivity


def test_under_inactivity_every_lot_expires_through_the_same_path(table: Any, member: str) -> None:
    rules = rules_with({"policy": "inactivity", "months": 12})
    # Given two purchases a month apart: both follow the last activity
    earn(member, FIRST, rules=rules)
    last = earn(member, FIRST + timedelta(days=31), rules=rules)
    activity_expiry = expiry_of(last)
    assert not is_listed_due(member, activity_expiry - timedelta(seconds=1))
    assert expire(member, activity_expiry - timedelta(seconds=1), rules) is None

    # When the run passes the activity expiry
    result = expire(member, activity_expiry, rules)

    # Then every point expires in one entry and the member leaves the index
    assert result is not None and len(result.lots) == 2
    assert len(expiry_entries(table, member)) == 1
    assert assert_balanced(table, member) == 0
    assert "gsi1pk" not in wallet_item(table, member)
    assert expire(member, activity_expiry + timedelta(days=1), rules) is None


def test_under_inactivity_later_activity_keeps_every_lot_alive(table: Any, member: str) -> None:
    rules = rules_with({"policy": "inactivity", "months": 12})
    first = earn(member, FIRST, rules=rules)
    earn(member, SECOND, rules=rules)
    assert expire(member, expiry_of(first) + timedelta(days=1), rules) is None
    assert len(expiry_entries(table, member)) == 0


# ---- the routes afterwards


def test_the_balance_and_lots_routes_agree_with_the_ledger_after_the_run(
    api: Api, table: Any, member_id: str
) -> None:
    # Given a member with a lot of three years ago (due now) and a purchase of yesterday,
    # under the deployment's own rules
    rules = default_rules()
    long_ago = datetime.now(UTC) - timedelta(days=3 * 365)
    enrol(member_id, now=long_ago - timedelta(days=1))
    old = earn(member_id, long_ago, rules=rules)
    assert api.earn(member_id).status == 201
    before = api.call("GET", f"/members/{member_id}/balance", identity=Identity.member(member_id))

    # When the run expires it
    result = expiring.expire_member(member_id, datetime.now(UTC), rules=rules, now=datetime.now(UTC))

    # Then the balance did not change (the due lot no longer counted), and it equals the lots
    # listed and the ledger's sum
    assert result is not None and result.points == old.points
    after = api.call("GET", f"/members/{member_id}/balance", identity=Identity.member(member_id))
    assert after.status == 200
    assert after.body["available"] == before.body["available"]
    assert after.body["available"] == sum(lot["remaining"] for lot in lots_of(api, member_id))
    assert assert_balanced(table, member_id) == after.body["available"]
