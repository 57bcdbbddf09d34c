"""POST /members/{memberId}/earn/{transactionId}/reversal: a returned purchase's points taken back,
on DynamoDB Local. Own lot first, then the soonest-expiring lots, then points owed; cumulative
partial returns; every refusal changes nothing; retries replay."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from devtools.identity import Identity
from loyalty.domain.earning import Purchase
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import default_rules
from loyalty.settings import LAMBDA_VARIABLES, settings
from loyalty.store import members, points
from tests.integration.conftest import PARTNER, ROOT, Api, ApiResponse, ledger_of, lots_of

ROUTE = "POST /members/{memberId}/earn/{transactionId}/reversal"


def days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def earn(api: Api, member_id: str, amount: str = "100.00", days: int = 1, **fields: Any) -> dict[str, Any]:
    """A purchase of `amount` EUR `days` days ago (floor rounding, 1 point per EUR)."""
    response = api.earn(member_id, amount=amount, occurredAt=days_ago(days), **fields)
    assert response.status == 201, response.body
    return dict(response.body)


def reverse(
    api: Api,
    member_id: str,
    transaction_id: str,
    body: Any = None,
    *,
    key: str | None = None,
    identity: Identity | None = PARTNER,
    headers: dict[str, str] | None = None,
) -> ApiResponse:
    return api.call(
        "POST",
        f"/members/{member_id}/earn/{transaction_id}/reversal",
        identity=identity,
        body=body,
        headers={"idempotency-key": key or uuid.uuid4().hex} if headers is None else headers,
    )


def guard_of(table: Any, transaction_id: str) -> dict[str, Any]:
    item = table.get_item(Key={"pk": f"PURCHASE#{transaction_id}", "sk": "PURCHASE"}, ConsistentRead=True)
    return dict(item["Item"])


def balance_of(api: Api, member_id: str) -> tuple[int, int]:
    body = api.balance(member_id).body
    return body["available"], body["owed"]


def figures(body: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """A return's points: (reversed, taken from lots, owed added, owed in all, balance after)."""
    return body["points"], body["taken"], body["owedAdded"], body["owed"], body["balance"]


def ledger_sum(api: Api, member_id: str) -> int:
    return sum(entry["points"] for entry in ledger_of(api, member_id))


# ---- full and partial returns


def test_a_full_return_takes_back_every_point_of_the_purchase(api: Api, enrolled: str, table: Any) -> None:
    # Given a purchase of 100 EUR that earned 100 points
    bought = earn(api, enrolled, "100.00")

    # When the partner reports its return, with an empty object
    response = reverse(api, enrolled, bought["transactionId"], {})

    # Then its 100 points are taken from its own lot, and nothing is owed
    assert response.status == 201, response.body
    body = response.body
    assert body["reversalId"].startswith("led_")
    assert body["transactionId"] == bought["transactionId"]
    assert (body["amount"], body["currency"]) == ("100.00", "EUR")
    assert figures(body) == (100, 100, 0, 0, 0)
    assert (body["reversedAmount"], body["reversedPoints"]) == ("100.00", 100)
    assert body["lots"] == [{"lotId": bought["lotId"], "points": 100, "expiresAt": bought["expiresAt"]}]
    assert balance_of(api, enrolled) == (0, 0)
    assert lots_of(api, enrolled) == []
    # and the guard keeps the totals returned
    guard = guard_of(table, bought["transactionId"])
    assert (guard["reversedAmount"], int(guard["reversedPoints"])) == ("100.00", 100)


def test_a_request_without_a_body_is_a_full_return(api: Api, enrolled: str) -> None:
    bought = earn(api, enrolled, "42.00")

    response = api.call(
        "POST",
        f"/members/{enrolled}/earn/{bought['transactionId']}/reversal",
        identity=PARTNER,
        headers={"idempotency-key": "no-body-1", "content-type": ""},
    )

    assert response.status == 201, response.body
    assert response.body["points"] == 42


def test_partial_returns_take_back_their_share_computed_on_the_total_returned(
    api: Api, enrolled: str, table: Any
) -> None:
    # Given a purchase of 129.90 EUR that earned 129 points (floor)
    bought = earn(api, enrolled, "129.90")
    assert bought["points"] == 129
    tx = bought["transactionId"]

    # When 29.90, then 50.00, then the rest are returned
    first = reverse(api, enrolled, tx, {"amount": "29.90", "currency": "EUR"})
    second = reverse(api, enrolled, tx, {"amount": "50.00"})
    rest = reverse(api, enrolled, tx, {})

    # Then each takes floor(129 * total returned / 129.90) minus what was reversed before
    assert [r.status for r in (first, second, rest)] == [201, 201, 201]
    assert [r.body["points"] for r in (first, second, rest)] == [29, 50, 50]  # 29.69 and 79.35 rounded down
    assert [r.body["amount"] for r in (first, second, rest)] == ["29.90", "50.00", "50.00"]
    assert [r.body["reversedPoints"] for r in (first, second, rest)] == [29, 79, 129]
    assert rest.body["reversedAmount"] == "129.90"
    assert balance_of(api, enrolled) == (0, 0)
    guard = guard_of(table, tx)
    assert (guard["reversedAmount"], int(guard["reversedPoints"])) == ("129.90", 129)


def test_a_return_takes_the_purchases_own_lot_first(api: Api, enrolled: str) -> None:
    # Given an older purchase whose lot expires sooner, and the purchase returned
    older = earn(api, enrolled, "50.00", days=300)
    bought = earn(api, enrolled, "100.00", days=10)

    # When 30 EUR of it are returned
    response = reverse(api, enrolled, bought["transactionId"], {"amount": "30"})

    # Then the 30 points come from its own lot, not from the lot expiring first
    assert response.status == 201
    assert [(lot["lotId"], lot["points"]) for lot in response.body["lots"]] == [(bought["lotId"], 30)]
    assert [(lot["lotId"], lot["remaining"]) for lot in lots_of(api, enrolled)] == [
        (older["lotId"], 50),
        (bought["lotId"], 70),
    ]


def test_what_the_own_lot_lacks_comes_from_the_soonest_expiring_lots_then_is_owed(
    api: Api, enrolled: str
) -> None:
    # Given the returned purchase's lot (100) partly spent: 30 left, and a later lot of 50
    oldest = earn(api, enrolled, "50.00", days=300)
    bought = earn(api, enrolled, "100.00", days=150)
    later = earn(api, enrolled, "50.00", days=10)
    assert api.redeem(enrolled, 120).status == 201  # the oldest 50, then 70 of the purchase's lot
    assert oldest["lotId"] not in {lot["lotId"] for lot in lots_of(api, enrolled)}

    # When the whole purchase is returned
    response = reverse(api, enrolled, bought["transactionId"])

    # Then 30 come from its lot, 50 from the next lot, and 20 are owed
    assert response.status == 201
    assert [(lot["lotId"], lot["points"]) for lot in response.body["lots"]] == [
        (bought["lotId"], 30),
        (later["lotId"], 50),
    ]
    body = response.body
    assert figures(body) == (100, 80, 20, 20, 0)
    assert balance_of(api, enrolled) == (0, 20)
    assert ledger_sum(api, enrolled) == 0


def test_the_own_lot_is_found_in_a_page_the_first_read_does_not_reach(api: Api, enrolled: str) -> None:
    # Given five lots issued in five months before the purchase's (six pages: a read takes four)
    for days in (330, 290, 250, 210, 170):
        earn(api, enrolled, "10.00", days=days)
    bought = earn(api, enrolled, "100.00", days=5)

    # When 40 EUR of it are returned, counting the calls to DynamoDB
    with dynamodb_calls() as calls:
        response = reverse(api, enrolled, bought["transactionId"], {"amount": "40.00"})

    # Then its own page was read by key and the points came from it, the older lots untouched
    assert response.status == 201
    assert [(lot["lotId"], lot["points"]) for lot in response.body["lots"]] == [(bought["lotId"], 40)]
    assert calls == ["Query", "GetItem", "GetItem", "TransactWriteItems"]
    assert [lot["remaining"] for lot in lots_of(api, enrolled)] == [10, 10, 10, 10, 10, 60]


# ---- the buy → earn → redeem → return loophole


def test_buy_earn_redeem_return_leaves_the_points_owed_and_the_next_credits_settle_them(
    api: Api, enrolled: str
) -> None:
    # Given a member earns 100 points and redeems them all
    bought = earn(api, enrolled, "100.00")
    assert api.redeem(enrolled, 100).status == 201

    # When the purchase is returned
    returned = reverse(api, enrolled, bought["transactionId"])

    # Then the balance stays at zero and the 100 points are owed
    assert returned.status == 201
    body = returned.body
    assert figures(body) == (100, 0, 100, 100, 0)
    assert body["lots"] == []
    assert balance_of(api, enrolled) == (0, 100)
    profile = api.call("GET", f"/members/{enrolled}", identity=Identity.member(enrolled)).body
    assert profile["balance"] == {"available": 0, "owed": 100}

    # When the member then earns 40 points, Then they all pay the debt: 60 owed, balance 0
    next_earn = earn(api, enrolled, "40.00")
    assert (next_earn["points"], next_earn["owedSettled"], next_earn["balance"]) == (40, 40, 0)
    assert next_earn["lotId"] is None
    assert balance_of(api, enrolled) == (0, 60)

    # When it earns 100 more, Then 60 settle the rest of the debt and 40 are spendable
    last = earn(api, enrolled, "100.00")
    assert (last["points"], last["owedSettled"], last["balance"]) == (100, 60, 40)
    assert balance_of(api, enrolled) == (40, 0)
    assert api.redeem(enrolled, 41).status == 409
    assert [(lot["remaining"]) for lot in lots_of(api, enrolled)] == [40]

    # And the ledger tells the story, its sum equal to the balance (owed is shown apart)
    entries = ledger_of(api, enrolled)
    assert [(entry["type"], entry["points"]) for entry in entries] == [
        ("earn", 40),
        ("earn", 0),
        ("reversal", 0),
        ("redeem", -100),
        ("earn", 100),
    ]
    assert sum(entry["points"] for entry in entries) == 40
    assert entries[0]["details"]["earned"] == 100 and entries[0]["details"]["owedSettled"] == 60
    assert entries[1]["details"]["earned"] == 40 and entries[1]["details"]["owedSettled"] == 40
    reversal = entries[2]
    assert reversal["details"]["transactionId"] == bought["transactionId"]
    assert reversal["details"]["pointsReversed"] == 100
    assert reversal["details"]["owedAdded"] == 100
    assert reversal["reason"] == "purchase returned"
    assert reversal["actor"] == {"kind": "partner", "id": PARTNER.claims["sub"]}


def test_points_owed_are_settled_by_a_claim_or_transfer_credit_too(api: Api, enrolled: str) -> None:
    """Settled by credits of any kind: the store's earn stands for them here (credit_purchase)."""
    bought = earn(api, enrolled, "30.00")
    assert api.redeem(enrolled, 30).status == 201
    assert reverse(api, enrolled, bought["transactionId"]).status == 201

    # A later purchase of 10 EUR pays back 10 of the 30 owed
    assert earn(api, enrolled, "10.00")["owedSettled"] == 10
    assert balance_of(api, enrolled) == (0, 20)


def test_lots_past_their_expiry_not_yet_run_are_not_taken(api: Api, member_id: str, table: Any) -> None:
    # Given a lot that expired two days ago (the expiry run has not passed) and a purchase of 100
    long_ago = datetime.now(UTC) - timedelta(days=733)
    partner = Actor("partner", "pos-test")
    profile = {"email": f"{member_id}@example.com", "name": None, "locale": "en", "emailOptIn": False}
    members.enrol_or_update(member_id, profile, actor=partner, now=long_ago)
    old = Purchase(Decimal("20"), "EUR", long_ago, "store")
    points.earn(member_id, f"{member_id}-old", old, actor=partner, rules=default_rules(), now=long_ago)
    bought = earn(api, member_id, "100.00")
    assert api.redeem(member_id, 80).status == 201  # the due lot cannot be spent: 80 of the 100
    assert balance_of(api, member_id) == (20, 0)

    # When the purchase is returned
    response = reverse(api, member_id, bought["transactionId"])

    # Then 20 come from its lot, the due lot is left to the run, and 80 are owed
    assert response.status == 201
    assert [(lot["lotId"], lot["points"]) for lot in response.body["lots"]] == [(bought["lotId"], 20)]
    assert (response.body["owedAdded"], response.body["balance"]) == (80, 0)
    assert balance_of(api, member_id) == (0, 80)
    pages = table.query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :page)",
        ExpressionAttributeValues={":pk": f"MEMBER#{member_id}", ":page": "WALLET#LOTS#"},
        ConsistentRead=True,
    )["Items"]
    assert [int(lot["r"]) for page in pages for lot in page["lots"].values()] == [20]


# ---- refusals: each changes nothing


def test_a_purchase_never_reported_is_not_found(api: Api, enrolled: str, member_items: Any) -> None:
    earn(api, enrolled)
    before = member_items(enrolled)

    response = reverse(api, enrolled, f"tx-{uuid.uuid4().hex}")

    assert response.status == 404
    assert response.error_code == "purchase_not_found"
    assert member_items(enrolled) == before


def test_another_members_purchase_is_not_found_and_neither_member_changes(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a purchase credited to another member
    other = f"m-{uuid.uuid4().hex[:12]}"
    assert api.enrol(other).status == 201
    theirs = earn(api, other)["transactionId"]
    earn(api, enrolled)
    before = (member_items(enrolled), member_items(other, (theirs,)))

    # When a partner tries to reverse it on this member
    response = reverse(api, enrolled, theirs)

    # Then it is not found here, and nothing of either member (nor the guard) changed
    assert response.status == 404
    assert response.error_code == "purchase_not_found"
    assert (member_items(enrolled), member_items(other, (theirs,))) == before


def test_a_purchase_only_claimed_is_not_found(api: Api, enrolled: str, table: Any, member_items: Any) -> None:
    # Given a claim pending for a purchase the partner never reported: the guard is only `claimed`
    tx = f"tx-{uuid.uuid4().hex}"
    table.put_item(
        Item={
            "pk": f"PURCHASE#{tx}",
            "sk": "PURCHASE",
            "itemType": "purchase",
            "memberId": enrolled,
            "transactionId": tx,
            "status": "claimed",
            "claimId": "clm_1",
            "creditedBy": "claim",
            "amount": "50.00",
            "currency": "EUR",
            "occurredAt": days_ago(10),
            "createdAt": days_ago(1),
        }
    )
    earn(api, enrolled)
    before = member_items(enrolled, (tx,))

    # When the partner reports its return, Then nothing was credited, so nothing can be reversed
    response = reverse(api, enrolled, tx)

    assert response.status == 404
    assert response.error_code == "purchase_not_found"
    assert member_items(enrolled, (tx,)) == before


def test_an_unknown_member_is_not_found(api: Api) -> None:
    response = reverse(api, f"m-{uuid.uuid4().hex[:12]}", "tx-1")

    assert response.status == 404
    assert response.error_code == "member_not_found"


def test_a_return_in_another_currency_is_refused(api: Api, enrolled: str, member_items: Any) -> None:
    tx = earn(api, enrolled)["transactionId"]
    before = member_items(enrolled, (tx,))

    response = reverse(api, enrolled, tx, {"amount": "10.00", "currency": "USD"})

    assert response.status == 422
    assert response.error_code == "currency_mismatch"
    assert response.body["error"]["fields"] == [
        {"field": "currency", "reason": "the purchase was paid in EUR, not USD"}
    ]
    assert member_items(enrolled, (tx,)) == before


def test_returning_more_than_is_left_of_the_purchase_is_refused(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a purchase of 100 EUR of which 60 were returned
    tx = earn(api, enrolled)["transactionId"]
    assert reverse(api, enrolled, tx, {"amount": "60"}).status == 201
    before = member_items(enrolled, (tx,))

    # When 40.01 more are returned
    response = reverse(api, enrolled, tx, {"amount": "40.01"})

    # Then it is refused with what is left, and nothing changes
    assert response.status == 409
    assert response.error_code == "reversal_exceeds_purchase"
    assert (response.body["error"]["requested"], response.body["error"]["reversible"]) == ("40.01", "40.00")
    assert member_items(enrolled, (tx,)) == before


def test_a_purchase_returned_in_full_cannot_be_returned_again(
    api: Api, enrolled: str, member_items: Any
) -> None:
    tx = earn(api, enrolled)["transactionId"]
    assert reverse(api, enrolled, tx).status == 201
    before = member_items(enrolled, (tx,))

    again = reverse(api, enrolled, tx)
    partial = reverse(api, enrolled, tx, {"amount": "0.01"})

    assert (again.status, again.error_code) == (409, "purchase_already_reversed")
    assert (partial.status, partial.error_code) == (409, "purchase_already_reversed")
    assert member_items(enrolled, (tx,)) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "0.00"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1e2"}, "amount"),
        ({"amount": "\u0661\u0660"}, "amount"),  # Arabic-Indic digits
        ({"amount": "10.12345"}, "amount"),
        ({"amount": 10}, "amount"),
        ({"currency": "eur"}, "currency"),
        ({"points": 10}, "points"),
    ],
    ids=["zero", "zeros", "negative", "exponent", "arabic", "five-decimals", "number", "lower", "extra"],
)
def test_an_invalid_body_is_a_422_naming_the_field_and_changes_nothing(
    api: Api, enrolled: str, member_items: Any, body: dict[str, Any], field: str
) -> None:
    tx = earn(api, enrolled)["transactionId"]
    before = member_items(enrolled, (tx,))

    response = reverse(api, enrolled, tx, body)

    assert response.status == 422, response.body
    assert field in [problem["field"] for problem in response.body["error"]["fields"]]
    assert member_items(enrolled, (tx,)) == before


def test_a_return_without_an_idempotency_key_is_a_422(api: Api, enrolled: str, member_items: Any) -> None:
    tx = earn(api, enrolled)["transactionId"]
    before = member_items(enrolled, (tx,))

    response = reverse(api, enrolled, tx, {}, headers={})

    assert response.status == 422
    assert response.body["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert member_items(enrolled, (tx,)) == before


@pytest.mark.parametrize(
    ("caller", "status"),
    [("self", 403), ("support", 403), ("finance", 403), ("none", 401)],
)
def test_only_a_partner_may_reverse_an_earn(
    api: Api, enrolled: str, member_items: Any, caller: str, status: int
) -> None:
    tx = earn(api, enrolled)["transactionId"]
    before = member_items(enrolled, (tx,))
    identity = {
        "self": Identity.member(enrolled),
        "support": Identity.support("agent-1"),
        "finance": Identity.finance("fin-1"),
        "none": None,
    }[caller]

    response = reverse(api, enrolled, tx, {"amount": "not checked before the rights"}, identity=identity)

    assert response.status == status
    assert member_items(enrolled, (tx,)) == before


@pytest.mark.parametrize("variable", LAMBDA_VARIABLES)
def test_the_development_identity_is_refused_in_lambda_before_the_body(
    api: Api, enrolled: str, member_items: Any, variable: str
) -> None:
    # Given a credited purchase, and the handler running as in Lambda
    tx = earn(api, enrolled)["transactionId"]
    before = member_items(enrolled, (tx,))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, "")
        settings.cache_clear()
        try:
            # When a development partner token asks for the return (with a body it would refuse)
            response = reverse(api, enrolled, tx, {"amount": "0"})
        finally:
            patch.undo()
            settings.cache_clear()

    # Then it is a 401, and nothing changed
    assert (response.status, response.error_code) == (401, "unauthenticated")
    assert member_items(enrolled, (tx,)) == before


# ---- idempotency


def test_a_retry_with_the_same_key_replays_the_original_response(
    api: Api, enrolled: str, member_items: Any
) -> None:
    tx = earn(api, enrolled)["transactionId"]
    first = reverse(api, enrolled, tx, {"amount": "25.00"}, key="ret-1")
    after_first = member_items(enrolled, (tx,))

    with dynamodb_calls() as calls:
        again = reverse(api, enrolled, tx, {"amount": "25.00"}, key="ret-1")

    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert calls == ["Query"]  # the member's last request answers it
    assert member_items(enrolled, (tx,)) == after_first


def test_a_retry_of_an_older_return_replays_it_even_when_nothing_is_left(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a full return, then a redemption (the member's last request is no longer the return)
    tx = earn(api, enrolled)["transactionId"]
    earn(api, enrolled, "10.00")
    first = reverse(api, enrolled, tx, key="ret-old")
    assert api.redeem(enrolled, 5).status == 201
    before = member_items(enrolled, (tx,))

    # When the return is retried with its key
    again = reverse(api, enrolled, tx, key="ret-old")

    # Then its original response comes back, not a 409 for a purchase returned in full
    assert again.status == 201
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert member_items(enrolled, (tx,)) == before


def test_a_retry_of_an_older_partial_return_replays_it_from_its_record(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a partial return, then another movement of the member
    tx = earn(api, enrolled)["transactionId"]
    first = reverse(api, enrolled, tx, {"amount": "10"}, key="ret-part")
    assert api.redeem(enrolled, 5).status == 201
    before = member_items(enrolled, (tx,))

    # When the partial return is retried (the purchase still has 90 EUR to return)
    again = reverse(api, enrolled, tx, {"amount": "10"}, key="ret-part")

    # Then it is replayed, not made twice
    assert again.status == 201
    assert again.body == first.body
    assert member_items(enrolled, (tx,)) == before


def test_the_same_key_with_another_body_is_a_409(api: Api, enrolled: str, member_items: Any) -> None:
    tx = earn(api, enrolled)["transactionId"]
    assert reverse(api, enrolled, tx, {"amount": "10"}, key="ret-2").status == 201
    before = member_items(enrolled, (tx,))

    response = reverse(api, enrolled, tx, {"amount": "11"}, key="ret-2")

    assert response.status == 409
    assert response.error_code == "idempotency_mismatch"
    assert member_items(enrolled, (tx,)) == before


def test_a_return_taken_from_many_lots_is_replayed_from_its_ledger_entry(api: Api, enrolled: str) -> None:
    # Given the returned purchase's lot spent, and fifteen later lots of 10 points
    bought = earn(api, enrolled, "200.00", days=300)
    for days in range(10, 25):
        earn(api, enrolled, "10.00", days=days)
    assert api.redeem(enrolled, 200).status == 201  # the purchase's lot expires first

    # When it is returned: 150 points from fifteen lots (too long a result to copy in the records)
    first = reverse(api, enrolled, bought["transactionId"], key="ret-many")
    assert first.status == 201
    assert (len(first.body["lots"]), first.body["taken"], first.body["owedAdded"]) == (15, 150, 50)

    # Then a retry gets the same response, rebuilt from the ledger entry
    again = reverse(api, enrolled, bought["transactionId"], key="ret-many")
    assert again.status == 201
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"


# ---- cost


def test_a_return_costs_three_calls_to_dynamodb(api: Api, enrolled: str) -> None:
    tx = earn(api, enrolled)["transactionId"]

    with dynamodb_calls() as calls:
        assert reverse(api, enrolled, tx, {"amount": "50"}).status == 201

    assert calls == ["Query", "GetItem", "TransactWriteItems"]


@contextmanager
def dynamodb_calls() -> Iterator[list[str]]:
    """The DynamoDB operations made in the block, in order."""
    calls: list[str] = []
    original = BaseClient._make_api_call

    def record(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(client, operation, params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", record)
        yield calls


# ---- concurrency


WORKERS = 4


def _reversal_worker(environment: dict[str, str], member_id: str, tx: str, amounts: list[str]) -> list[Any]:
    """Runs in a fresh interpreter: the earn function's handler, returns back to back."""
    os.environ.update(environment)
    from devtools.lambda_runtime import LambdaContext, http_event, load_handler

    handler = load_handler("functions/earn", "app.lambda_handler", root=Path(ROOT))
    results = []
    for amount in amounts:
        event = http_event(
            "POST",
            f"/members/{member_id}/earn/{tx}/reversal",
            route_key=ROUTE,
            path_parameters={"memberId": member_id, "transactionId": tx},
            headers={"content-type": "application/json", "idempotency-key": uuid.uuid4().hex},
            body={"amount": amount},
            identity=PARTNER,
        )
        response = handler(event, LambdaContext("EarnFunction"))
        results.append((int(response["statusCode"]), response["body"], amount))
    return results


def _environment() -> dict[str, str]:
    names = ("AWS_ENDPOINT_URL_DYNAMODB", "TABLE_NAME", "RULES_SOURCE", "AWS_ACCESS_KEY_ID")
    names += ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "POWERTOOLS_LOG_LEVEL")
    return {name: os.environ[name] for name in names if name in os.environ}


@pytest.mark.slow
def test_concurrent_partial_returns_of_one_purchase_never_reverse_more_than_it_earned(
    api: Api, enrolled: str, table: Any
) -> None:
    # Given a purchase of 100 EUR (100 points), 60 of them already spent
    bought = earn(api, enrolled, "100.00")
    tx = bought["transactionId"]
    assert api.redeem(enrolled, 60).status == 201

    # When 4 processes return parts of it at once, 135 EUR asked in all
    batches = [["12.50", "7.25", "20.00"], ["15.75", "9.90", "10.00"], ["8.40", "14.20"], ["19.99", "17.01"]]
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        results = pool.starmap(_reversal_worker, [(_environment(), enrolled, tx, batch) for batch in batches])
    outcomes = [outcome for batch in results for outcome in batch]

    # Then every answer is a success or a clean conflict
    statuses = Counter(status for status, _, _ in outcomes)
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] >= 1
    returned = sum(Decimal(amount) for status, _, amount in outcomes if status == 201)
    assert returned <= Decimal("100.00")

    # And the guard counts exactly the successes: amount, and points by the cumulative rule
    guard = guard_of(table, tx)
    assert Decimal(guard["reversedAmount"]) == returned
    assert int(guard["reversedPoints"]) == int(returned)  # floor(100 * returned / 100)
    entries = [entry for entry in ledger_of(api, enrolled) if entry["type"] == "reversal"]
    assert len(entries) == statuses[201]
    assert sum(entry["details"]["pointsReversed"] for entry in entries) == int(returned)

    # And the points reversed were taken from the 40 left, the rest owed; the ledger sums to the balance
    available, owed = balance_of(api, enrolled)
    assert available == max(0, 40 - int(returned))
    assert owed == int(returned) - (40 - available)
    assert ledger_sum(api, enrolled) == available
