"""POST /members/{memberId}/transfers through the handler, on DynamoDB Local: every rule and every
refusal (each changing nothing on either member), idempotency, faults, the transaction's size,
and members transferring at once from several processes.

The rules in force are the shipped default (minimum 100 points, maximum 5,000 per transfer,
10,000 per rolling day) unless a test puts others in force (`rules_in_force`). Expiry policies
and the rolling day with time passed in: test_transfer_policies.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.identity import Identity
from loyalty.domain.rules_source import default_rules_text
from loyalty.http import resolver
from loyalty.http.routes.transfers import TransferResponse
from loyalty.settings import program_rules, settings
from tests.integration.conftest import (
    PARTNER,
    ROOT,
    Api,
    ApiResponse,
    expiry_day,
    ledger_of,
    lots_of,
    paris_day,
)
from tests.integration.test_concurrency import _environment, _ledger_sum, _stored_lots_sum
from tests.integration.test_faults import (  # noqa: F401 - `faults` is a fixture
    CASES,
    Case,
    Injector,
    assert_first_answer,
    call_with,
    faults,
)

# ---- helpers


def send(
    api: Api,
    sender: str,
    to: str,
    points: Any,
    *,
    key: str | None = None,
    identity: Identity | None = None,
) -> ApiResponse:
    """A transfer request, as the sender itself unless another identity is given."""
    return api.call(
        "POST",
        f"/members/{sender}/transfers",
        identity=identity or Identity.member(sender),
        body={"toMemberId": to, "points": points},
        headers={"idempotency-key": key or uuid.uuid4().hex},
    )


def days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def available(api: Api, member_id: str) -> int:
    return int(api.balance(member_id).body["available"])


def new_member(api: Api) -> str:
    member_id = f"m-{uuid.uuid4().hex[:12]}"
    assert api.enrol(member_id).status == 201
    return member_id


@pytest.fixture
def receiver(api: Api) -> str:
    return new_member(api)


@pytest.fixture
def rich(api: Api, enrolled: str) -> str:
    """A sender with 1,000 points in one lot, earned yesterday."""
    assert api.earn(enrolled, amount="1000", occurredAt=days_ago(1)).status == 201
    return enrolled


@pytest.fixture
def both_unchanged(member_items: Any) -> Callable[[str, str], Callable[[], None]]:
    """Snapshots every item of two members; the returned check fails if any changed."""

    def snapshot(first: str, second: str) -> Callable[[], None]:
        before = (member_items(first), member_items(second))

        def check() -> None:
            assert member_items(first) == before[0], "the sender's items changed"
            assert member_items(second) == before[1], "the receiver's items changed"

        return check

    return snapshot


@pytest.fixture
def rules_in_force(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """Puts a rules document in force for the handlers (a `file:` source, as a deployment's own
    rules): the default with the given `transfers` (and `expiry`) fields changed."""
    patch = pytest.MonkeyPatch()

    def use(expiry: dict[str, Any] | None = None, **transfers: Any) -> None:
        document = json.loads(default_rules_text())
        document["version"] = f"test-{uuid.uuid4().hex[:8]}"
        document["transfers"] = {**document["transfers"], **transfers}
        if expiry is not None:
            document["expiry"] = expiry
        path = tmp_path / "rules.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        patch.setenv("RULES_SOURCE", f"file:{path}")
        forget_configuration()

    yield use
    patch.undo()
    forget_configuration()


def forget_configuration() -> None:
    settings.cache_clear()
    program_rules.cache_clear()
    resolver.program_timezone.cache_clear()


def set_wallet(table: Any, member_id: str, expression: str, **values: Any) -> None:
    """Writes a wallet attribute directly, as work not built yet will (closure's `closedAt`)."""
    table.update_item(
        Key={"pk": f"MEMBER#{member_id}", "sk": "WALLET"},
        UpdateExpression=expression,
        ExpressionAttributeValues={f":{name}": value for name, value in values.items()},
    )


# ---- the transfer


def test_a_transfer_takes_the_soonest_expiring_points_and_the_receiver_keeps_their_dates(
    api: Api, enrolled: str, receiver: str
) -> None:
    # Given a sender with 150 points earned 60 days ago and 200 earned yesterday
    older = api.earn(enrolled, amount="150", occurredAt=days_ago(60)).body
    newer = api.earn(enrolled, amount="200", occurredAt=days_ago(1)).body

    # When it transfers 200 points
    response = send(api, enrolled, receiver, 200)

    # Then the 150 points expiring first go, then 50 of the others; the sender keeps 150
    assert response.status == 201, response.body
    body = response.body
    assert body["transferId"].startswith("trf_")
    assert (body["points"], body["balance"]) == (200, 150)
    assert body["lots"] == [
        {"lotId": older["lotId"], "points": 150, "expiresAt": older["expiresAt"]},
        {"lotId": newer["lotId"], "points": 50, "expiresAt": newer["expiresAt"]},
    ]
    # And the receiver holds one transfer lot per expiry date, issued today, expiring as the sender's
    lots = lots_of(api, receiver)
    issued = paris_day(lots[0]["earnedAt"])
    assert [(lot["lotId"], lot["remaining"], lot["expiresAt"], lot["source"]["kind"]) for lot in lots] == [
        (f"{expiry_day(older['expiresAt']):%Y%m%d}-{issued:%Y%m%d}-t", 150, older["expiresAt"], "transfer"),
        (f"{expiry_day(newer['expiresAt']):%Y%m%d}-{issued:%Y%m%d}-t", 50, newer["expiresAt"], "transfer"),
    ]
    assert (available(api, enrolled), available(api, receiver)) == (150, 200)


def test_both_ledgers_get_entries_linked_by_the_transfer_id_and_the_counterpart(
    api: Api, rich: str, receiver: str
) -> None:
    # When the member transfers 300 points
    response = send(api, rich, receiver, 300, key="gift-1")

    # Then the sender's ledger has a transfer-out and the receiver's a transfer-in, linked
    transfer_id = response.body["transferId"]
    (sent, *_) = ledger_of(api, rich)
    (received,) = ledger_of(api, receiver)
    assert (sent["type"], sent["points"], sent["balanceAfter"]) == ("transfer-out", -300, 700)
    assert (received["type"], received["points"], received["balanceAfter"]) == ("transfer-in", 300, 300)
    assert sent["details"]["transferId"] == received["details"]["transferId"] == transfer_id
    assert sent["details"]["toMemberId"] == receiver
    assert received["details"]["fromMemberId"] == rich
    # And the sender made both: the receiver's entry names it, not the receiver
    assert sent["actor"] == received["actor"] == {"kind": "member", "id": rich}
    assert [lot["lotId"] for lot in received["lots"]] == [lot["lotId"] for lot in lots_of(api, receiver)]


def test_a_second_transfer_in_the_same_day_with_the_same_expiry_tops_up_the_receivers_lot(
    api: Api, rich: str, receiver: str
) -> None:
    # Given a first transfer of points expiring on one date
    assert send(api, rich, receiver, 100).status == 201
    (first,) = lots_of(api, receiver)

    # When a second transfer brings points of the same date, the same day
    second = send(api, rich, receiver, 250)

    # Then the receiver's one lot of that date grows, and it holds no second lot
    assert second.status == 201, second.body
    (lot,) = lots_of(api, receiver)
    assert (lot["lotId"], lot["original"], lot["remaining"]) == (first["lotId"], 350, 350)
    assert lot["expiresAt"] == first["expiresAt"] and lot["earnedAt"] == first["earnedAt"]
    assert available(api, receiver) == 350
    # And a third tops it up again
    assert send(api, rich, receiver, 150).status == 201
    assert [lot["remaining"] for lot in lots_of(api, receiver)] == [500]


def test_a_receiver_who_owes_points_settles_them_first_from_the_soonest_expiring(
    api: Api, enrolled: str, receiver: str, table: Any
) -> None:
    # Given a receiver owing 150 points after a return, and a sender with 100 points expiring
    # soon and 100 later
    soon = api.earn(enrolled, amount="100", occurredAt=days_ago(60)).body
    later = api.earn(enrolled, amount="100", occurredAt=days_ago(1)).body
    set_wallet(table, receiver, "SET owed = :owed", owed=150)

    # When 200 points are transferred to it
    response = send(api, enrolled, receiver, 200)

    # Then the debt takes the 100 expiring soon and 50 of the later ones; 50 are credited
    assert response.status == 201, response.body
    assert [(lot["expiresAt"], lot["remaining"]) for lot in lots_of(api, receiver)] == [
        (later["expiresAt"], 50)
    ]
    assert soon["expiresAt"] < later["expiresAt"]
    wallet = table.get_item(Key={"pk": f"MEMBER#{receiver}", "sk": "WALLET"}, ConsistentRead=True)["Item"]
    assert (int(wallet["owed"]), int(wallet["available"])) == (0, 50)
    (entry,) = ledger_of(api, receiver)
    assert (entry["points"], entry["balanceAfter"]) == (50, 50)
    assert (entry["details"]["transferred"], entry["details"]["owedSettled"]) == (200, 150)
    # And the sender gave all 200
    assert available(api, enrolled) == 0


def test_a_receiver_who_owes_more_than_the_transfer_gets_no_lot_and_owes_less(
    api: Api, rich: str, receiver: str, table: Any
) -> None:
    set_wallet(table, receiver, "SET owed = :owed", owed=500)

    assert send(api, rich, receiver, 200).status == 201

    wallet = table.get_item(Key={"pk": f"MEMBER#{receiver}", "sk": "WALLET"}, ConsistentRead=True)["Item"]
    assert (int(wallet["owed"]), int(wallet["available"])) == (300, 0)
    assert lots_of(api, receiver) == []
    (entry,) = ledger_of(api, receiver)
    assert (entry["points"], entry["lots"], entry["details"]["owedSettled"]) == (0, [], 200)


def test_a_transfer_to_a_member_with_points_due_but_not_yet_expired_records_its_live_balance(
    api: Api, enrolled: str, receiver: str, table: Any
) -> None:
    # Given a receiver with 30 points whose lot expired yesterday, before the expiry run
    assert api.earn(receiver, amount="30", occurredAt=days_ago(2)).status == 201
    lot_page = next(
        item
        for item in table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :lots)",
            ExpressionAttributeValues={":pk": f"MEMBER#{receiver}", ":lots": "WALLET#LOTS#"},
        )["Items"]
    )
    (lot_id,) = lot_page["lots"]
    yesterday = int((datetime.now(UTC) - timedelta(days=1)).timestamp())
    table.update_item(
        Key={"pk": lot_page["pk"], "sk": lot_page["sk"]},
        UpdateExpression="SET lots.#lot.x = :x",
        ExpressionAttributeNames={"#lot": lot_id},
        ExpressionAttributeValues={":x": yesterday},
    )
    set_wallet(table, receiver, "SET nextExpiryAt = :at", at="2000-01-01T00:00:00.000Z")
    assert api.earn(enrolled, amount="100", occurredAt=days_ago(1)).status == 201

    # When 100 points are transferred to it
    assert send(api, enrolled, receiver, 100).status == 201

    # Then its entry records the live balance (the expired 30 do not count), and so does its balance
    entry = ledger_of(api, receiver)[0]
    assert entry["type"] == "transfer-in"
    assert entry["balanceAfter"] == 100 == available(api, receiver)


# ---- idempotency


def test_a_retry_with_the_same_key_replays_the_original_response_and_moves_nothing(
    api: Api, rich: str, receiver: str, both_unchanged: Any
) -> None:
    first = send(api, rich, receiver, 300, key="gift")
    unchanged = both_unchanged(rich, receiver)

    again = send(api, rich, receiver, 300, key="gift")

    assert again.status == 201
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    unchanged()


def test_a_retry_of_an_older_transfer_replays_it_even_when_the_daily_maximum_is_now_reached(
    api: Api, enrolled: str, receiver: str, rules_in_force: Any, both_unchanged: Any
) -> None:
    # Given a member that sent its whole daily maximum, then redeemed (its last request changed)
    rules_in_force(maxPoints=300, maxPointsPerDay=300)
    assert api.earn(enrolled, amount="500", occurredAt=days_ago(1)).status == 201
    first = send(api, enrolled, receiver, 300, key="gift")
    assert first.status == 201
    assert api.redeem(enrolled, 10).status == 201
    unchanged = both_unchanged(enrolled, receiver)

    # When it retries the transfer with the same key
    again = send(api, enrolled, receiver, 300, key="gift")

    # Then it gets the original response, not a refusal, and nothing moves
    assert (again.status, again.body) == (201, first.body)
    assert again.headers.get("Idempotent-Replayed") == "true"
    unchanged()


def test_the_same_key_with_another_body_is_an_idempotency_mismatch_and_changes_nothing(
    api: Api, rich: str, receiver: str, both_unchanged: Any
) -> None:
    assert send(api, rich, receiver, 300, key="gift").status == 201
    unchanged = both_unchanged(rich, receiver)

    for points in (301, 50):  # a valid body, and one the rules would refuse anyway
        response = send(api, rich, receiver, points, key="gift")

        assert (response.status, response.error_code) == (409, "idempotency_mismatch")
    unchanged()


def test_a_transfer_too_large_to_copy_into_its_records_is_replayed_from_the_ledger(
    api: Api, enrolled: str, receiver: str, table: Any
) -> None:
    # Given a sender with 30 lots (one purchase every 3 days)
    for day in range(30):
        assert api.earn(enrolled, amount="10", occurredAt=days_ago(100 - 3 * day)).status == 201

    # When it transfers all of them (a result of ~3 KB)
    first = send(api, enrolled, receiver, 300, key="all")
    assert first.status == 201 and len(first.body["lots"]) == 30
    last = table.get_item(Key={"pk": f"MEMBER#{enrolled}", "sk": "WALLET#LAST"}, ConsistentRead=True)["Item"]
    assert "result" not in last

    # Then a retry gets the same response, from the ledger entry, as the last request and after another
    again = send(api, enrolled, receiver, 300, key="all")
    assert (again.status, again.body) == (201, first.body)
    assert api.earn(enrolled, amount="100", occurredAt=days_ago(1)).status == 201
    assert send(api, enrolled, receiver, 100, key="other").status == 201
    later = send(api, enrolled, receiver, 300, key="all")
    assert (later.status, later.body) == (201, first.body)
    assert later.headers.get("Idempotent-Replayed") == "true"


# ---- refusals: each has its own code, and changes nothing on either member


def test_transfers_turned_off_by_the_rules_are_refused(
    api: Api, rich: str, receiver: str, rules_in_force: Any, both_unchanged: Any
) -> None:
    rules_in_force(enabled=False)
    unchanged = both_unchanged(rich, receiver)

    response = send(api, rich, receiver, 100)

    assert (response.status, response.error_code) == (409, "transfers_disabled")
    unchanged()


@pytest.mark.parametrize(
    ("points", "code", "detail"),
    [
        (99, "transfer_below_minimum", {"minPoints": 100}),
        (5001, "transfer_above_maximum", {"maxPoints": 5000}),
    ],
    ids=["below-minimum", "above-maximum"],
)
def test_a_transfer_outside_the_rules_limits_is_a_422_naming_points(
    api: Api, rich: str, receiver: str, both_unchanged: Any, points: int, code: str, detail: dict[str, int]
) -> None:
    unchanged = both_unchanged(rich, receiver)

    response = send(api, rich, receiver, points)

    assert (response.status, response.error_code) == (422, code)
    assert [field["field"] for field in response.body["error"]["fields"]] == ["points"]
    assert detail.items() <= response.body["error"].items()
    unchanged()


def test_the_rules_limits_are_inclusive(api: Api, enrolled: str, receiver: str) -> None:
    assert api.earn(enrolled, amount="5100", occurredAt=days_ago(1)).status == 201

    assert send(api, enrolled, receiver, 100).status == 201
    assert send(api, enrolled, receiver, 5000).status == 201


def test_a_transfer_to_oneself_is_refused(api: Api, rich: str, member_items: Any) -> None:
    before = member_items(rich)

    response = send(api, rich, rich, 100)

    assert (response.status, response.error_code) == (422, "transfer_to_self")
    assert response.body["error"]["fields"][0]["field"] == "toMemberId"
    assert member_items(rich) == before


def test_a_transfer_to_an_unknown_member_is_refused(api: Api, rich: str, member_items: Any) -> None:
    stranger = f"m-{uuid.uuid4().hex[:12]}"
    before = member_items(rich)

    response = send(api, rich, stranger, 100)

    assert (response.status, response.error_code) == (422, "recipient_not_found")
    assert response.body["error"]["fields"][0]["field"] == "toMemberId"
    assert member_items(rich) == before
    assert member_items(stranger) == []


def test_a_transfer_to_a_closed_member_is_refused(
    api: Api, rich: str, receiver: str, table: Any, both_unchanged: Any
) -> None:
    # Given a receiver whose account is closed (closure, not built yet, will set closedAt)
    set_wallet(table, receiver, "SET closedAt = :at", at="2026-11-20T10:00:00.000Z")
    unchanged = both_unchanged(rich, receiver)

    response = send(api, rich, receiver, 100)

    assert (response.status, response.error_code) == (422, "recipient_closed")
    assert response.body["error"]["fields"][0]["field"] == "toMemberId"
    unchanged()


def test_a_closed_member_cannot_send_points(
    api: Api, rich: str, receiver: str, table: Any, both_unchanged: Any
) -> None:
    set_wallet(table, rich, "SET closedAt = :at", at="2026-11-20T10:00:00.000Z")
    unchanged = both_unchanged(rich, receiver)

    response = send(api, rich, receiver, 100)

    assert (response.status, response.error_code) == (409, "member_closed")
    unchanged()


def test_a_transfer_of_more_points_than_the_sender_has_is_refused(
    api: Api, rich: str, receiver: str, both_unchanged: Any
) -> None:
    unchanged = both_unchanged(rich, receiver)

    response = send(api, rich, receiver, 1001)

    assert (response.status, response.error_code) == (409, "insufficient_points")
    assert (response.body["error"]["available"], response.body["error"]["requested"]) == (1000, 1001)
    unchanged()


def test_the_daily_maximum_is_refused_saying_how_much_is_left_and_when_the_request_fits(
    api: Api, enrolled: str, receiver: str, both_unchanged: Any
) -> None:
    # Given a member that sent 9,900 points in the last 24 hours (10,000 allowed)
    assert api.earn(enrolled, amount="12000", occurredAt=days_ago(1)).status == 201
    first = send(api, enrolled, receiver, 5000)
    assert first.status == 201
    assert send(api, enrolled, receiver, 4900).status == 201
    unchanged = both_unchanged(enrolled, receiver)

    # When it tries to send 200 more
    response = send(api, enrolled, receiver, 200)

    # Then it is told 100 are left, and that 200 fit once the first transfer is 24 hours old
    assert (response.status, response.error_code) == (409, "transfer_daily_limit_reached")
    error = response.body["error"]
    assert (error["maxPointsPerDay"], error["sentInLast24Hours"], error["remaining"]) == (10000, 9900, 100)
    sent_at = datetime.fromisoformat(ledger_of(api, enrolled)[1]["occurredAt"])
    assert abs(datetime.fromisoformat(error["availableAt"]) - (sent_at + timedelta(hours=24))) < timedelta(
        seconds=1
    )
    unchanged()
    # And what is left can still be sent
    assert send(api, enrolled, receiver, 100).status == 201


def test_the_daily_maximum_counts_what_a_member_sends_not_what_it_receives(
    api: Api, enrolled: str, receiver: str, rules_in_force: Any
) -> None:
    rules_in_force(maxPoints=300, maxPointsPerDay=300)
    assert api.earn(enrolled, amount="300", occurredAt=days_ago(1)).status == 201
    assert api.earn(receiver, amount="300", occurredAt=days_ago(1)).status == 201

    assert send(api, enrolled, receiver, 300).status == 201
    assert send(api, receiver, enrolled, 300).status == 201


def test_a_sender_that_is_not_enrolled_is_a_404(api: Api, receiver: str, member_items: Any) -> None:
    stranger = f"m-{uuid.uuid4().hex[:12]}"
    before = member_items(receiver)

    response = send(api, stranger, receiver, 100)

    assert (response.status, response.error_code) == (404, "member_not_found")
    assert member_items(receiver) == before
    assert member_items(stranger) == []


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"toMemberId": "bad id", "points": 100}, None, "toMemberId"),
        ({"points": 100}, None, "toMemberId"),
        ({"toMemberId": "RECEIVER", "points": 0}, None, "points"),
        ({"toMemberId": "RECEIVER", "points": 100.5}, None, "points"),
        ({"toMemberId": "RECEIVER", "points": "100"}, None, "points"),
        ({"toMemberId": "RECEIVER", "points": 100, "extra": 1}, None, "extra"),
        ({"toMemberId": "RECEIVER", "points": 100}, {}, "Idempotency-Key"),
    ],
    ids=["member-id", "no-member", "zero", "fraction", "string", "extra-field", "no-key"],
)
def test_an_invalid_request_is_a_422_naming_the_field_and_changes_nothing(
    api: Api,
    rich: str,
    receiver: str,
    both_unchanged: Any,
    body: dict[str, Any],
    headers: dict[str, str] | None,
    field: str,
) -> None:
    unchanged = both_unchanged(rich, receiver)
    payload = {name: receiver if value == "RECEIVER" else value for name, value in body.items()}

    response = api.call(
        "POST",
        f"/members/{rich}/transfers",
        identity=Identity.member(rich),
        body=payload,
        headers={"idempotency-key": "k-1"} if headers is None else headers,
    )

    assert (response.status, response.error_code) == (422, "validation_error")
    assert field in [problem["field"] for problem in response.body["error"]["fields"]]
    unchanged()


@pytest.mark.parametrize(
    "identity",
    [Identity.member("someone-else"), PARTNER, Identity.support("agent-7")],
    ids=["other-member", "partner", "support"],
)
def test_only_the_member_itself_may_transfer_its_points(
    api: Api, rich: str, receiver: str, both_unchanged: Any, identity: Identity
) -> None:
    unchanged = both_unchanged(rich, receiver)

    response = send(api, rich, receiver, 100, identity=identity)

    assert (response.status, response.error_code) == (403, "forbidden")
    unchanged()


def test_a_development_identity_is_refused_in_lambda_and_moves_nothing(
    api: Api, rich: str, receiver: str, both_unchanged: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the handler running in Lambda, and the member's own development identity
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "")
    settings.cache_clear()
    unchanged = both_unchanged(rich, receiver)
    try:
        # When it transfers, Then it is not authenticated, and nothing moved
        response = send(api, rich, receiver, 100)
    finally:
        monkeypatch.undo()
        settings.cache_clear()
    assert (response.status, response.error_code) == (401, "unauthenticated")
    unchanged()


def test_the_response_has_exactly_its_documented_shape(api: Api, rich: str, receiver: str) -> None:
    response = send(api, rich, receiver, 300)

    assert (
        TransferResponse.model_validate(response.body).model_dump(mode="json", by_alias=True) == response.body
    )


# ---- the size of one transaction (docs/design.md, "Bounds")


def test_a_transfer_touching_more_pages_than_one_transaction_holds_is_refused_before_anything_is_sent(
    api: Api, enrolled: str, receiver: str, rules_in_force: Any, both_unchanged: Any
) -> None:
    # Given the longest horizon (84 months) and a sender with one lot in each of 50 expiry months
    rules_in_force({"policy": "rolling", "months": 84}, minPoints=1, maxPoints=None, maxPointsPerDay=100_000)
    for month in range(50):
        assert api.earn(enrolled, amount="10", occurredAt=days_ago(31 * month + 1)).status == 201
    unchanged = both_unchanged(enrolled, receiver)

    # When it transfers everything: 50 pages on each side, 106 items
    response = send(api, enrolled, receiver, 500)

    # Then it is refused with movement_too_large, and nothing changed
    assert (response.status, response.error_code) == (409, "movement_too_large")
    error = response.body["error"]
    assert (error["items"], error["senderPages"], error["receiverPages"]) == (106, 50, 50)
    unchanged()
    # And a transfer of the 47 soonest-expiring lots fits (6 + 47 + 47 = 100 items)
    smaller = send(api, enrolled, receiver, 470)
    assert smaller.status == 201, smaller.body
    assert len(lots_of(api, receiver)) == 47
    assert available(api, enrolled) == 30


# ---- faults: the caller's retry with the same key makes one transfer


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_transfer_hit_by_a_fault_then_retried_with_the_same_key_is_made_once(
    api: Api,
    rich: str,
    receiver: str,
    case: Case,
    faults: Injector,  # noqa: F811
) -> None:
    # When the transfer meets the fault
    first = call_with(faults, case, lambda: send(api, rich, receiver, 300, key="gift"))

    # Then the caller gets a clear answer (never a 500), and the points moved only if it committed
    assert_first_answer(case, first)
    assert (available(api, rich), available(api, receiver)) == ((700, 300) if case.committed else (1000, 0))

    # And the retry with the same key leaves exactly one transfer on both sides
    retry = send(api, rich, receiver, 300, key="gift")
    assert retry.status == 201, retry.body
    assert (retry.headers.get("Idempotent-Replayed") == "true") == case.committed
    if first is not None and first.status == 201:
        assert retry.body == first.body
    assert (available(api, rich), available(api, receiver)) == (700, 300)
    sent = [entry for entry in ledger_of(api, rich) if entry["type"] == "transfer-out"]
    received = ledger_of(api, receiver)
    assert [entry["details"]["transferId"] for entry in sent + received] == [retry.body["transferId"]] * 2


def test_a_transfer_costs_three_dynamodb_calls_and_its_replay_one(
    api: Api,
    rich: str,
    receiver: str,
    faults: Injector,  # noqa: F811
) -> None:
    # When a member transfers points, then retries
    faults.calls.clear()
    assert send(api, rich, receiver, 300, key="gift").status == 201
    made = dict(faults.calls)
    faults.calls.clear()
    assert send(api, rich, receiver, 300, key="gift").status == 201

    # Then the transfer read the sender and the receiver's wallet, and wrote once; the replay only read
    assert made == {"Query": 1, "BatchGetItem": 1, "TransactWriteItems": 1}
    assert dict(faults.calls) == {"Query": 1}


# ---- members transferring at once, from several processes


WORKERS = 4
TRANSFERS_PER_WORKER = 6


def _transfer_worker(environment: dict[str, str], moves: list[tuple[str, str, int]]) -> list[tuple[int, Any]]:
    """Runs in a fresh interpreter: the transfer Lambda handler, called back to back."""
    os.environ.update(environment)
    from devtools.lambda_runtime import LambdaContext, http_event, load_handler

    handler = load_handler("functions/transfer", "app.lambda_handler", root=Path(ROOT))
    results = []
    for sender, to, points in moves:
        event = http_event(
            "POST",
            f"/members/{sender}/transfers",
            route_key="POST /members/{memberId}/transfers",
            path_parameters={"memberId": sender},
            headers={"content-type": "application/json", "idempotency-key": uuid.uuid4().hex},
            body={"toMemberId": to, "points": points},
            identity=Identity.member(sender),
        )
        response = handler(event, LambdaContext("TransferFunction"))
        results.append((int(response["statusCode"]), json.loads(response["body"])))
    return results


@pytest.mark.slow
def test_concurrent_transfers_never_overspend_and_conserve_every_point(api: Api, table: Any) -> None:
    # Given A with 2,000 points over 20 lots, C with 1,000, B with none
    a, b, c = (new_member(api) for _ in range(3))
    for day in range(20):
        assert api.earn(a, amount="100", occurredAt=days_ago(200 - 9 * day)).status == 201
    assert api.earn(c, amount="1000", occurredAt=days_ago(3)).status == 201
    initial = {a: 2000, b: 0, c: 1000}

    # When 4 processes transfer at once: A → B, C → B, A → C, asking for more than A holds
    plan = [
        [((a, b), (c, b), (a, c))[(worker + n) % 3] + (100 + 37 * ((worker * 5 + n) % 7),) for n in range(6)]
        for worker in range(WORKERS)
    ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        batches = pool.starmap(_transfer_worker, [(_environment(), moves) for moves in plan])
    outcomes = [
        (move, status, body)
        for moves, batch in zip(plan, batches, strict=True)
        for move, (status, body) in zip(moves, batch, strict=True)
    ]

    # Then every answer is a success or a clean conflict
    assert {status for _, status, _ in outcomes} <= {201, 409}
    made = [(move, body) for move, status, body in outcomes if status == 201]
    assert made, "some transfers succeeded"
    # And each member's balance is what its successful transfers left: never negative, sum conserved
    expected = dict(initial)
    for (sender, to, points), _ in made:
        expected[sender] -= points
        expected[to] += points
    for member, points in expected.items():
        assert available(api, member) == points >= 0
        lots_sum, counter = _stored_lots_sum(table, member)
        assert lots_sum == counter == points
        assert _ledger_sum(table, member) == points
    assert sum(expected.values()) == sum(initial.values())
    # And every success is in both ledgers exactly once
    ids = [body["transferId"] for _, body in made]
    logged = [
        item["details"]["transferId"]
        for member in (a, b, c)
        for item in table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ledger)",
            ExpressionAttributeValues={":pk": f"MEMBER#{member}", ":ledger": "LEDGER#"},
        )["Items"]
        if item["type"].startswith("transfer")
    ]
    assert sorted(logged) == sorted(ids * 2)
