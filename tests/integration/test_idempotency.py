"""Retries are safe (invariant 7) and a purchase is credited at most once (invariant 2)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from devtools.identity import Identity
from tests.integration.conftest import Api, ApiResponse, ledger_of, lots_of


def header(response: ApiResponse, name: str) -> str | None:
    return next((value for key, value in response.headers.items() if key.lower() == name.lower()), None)


def purchase(**changes: Any) -> dict[str, Any]:
    return {
        "transactionId": f"tx-{uuid.uuid4().hex}",
        "amount": "42.00",
        "currency": "EUR",
        "occurredAt": (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "channel": "store",
        **changes,
    }


# ---- earn: idempotent on transactionId


def test_the_same_earn_twice_returns_the_original_response_and_credits_once(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a purchase that was credited
    body = purchase()
    first = api.earn(enrolled, **body)
    assert first.status == 201
    assert header(first, "Idempotent-Replayed") is None
    after_first = member_items(enrolled, (body["transactionId"],))

    # When the partner sends the very same request again
    second = api.earn(enrolled, **body)

    # Then it gets the original response, marked as replayed, and nothing more is written
    assert second.status == 201
    assert second.body == first.body
    assert header(second, "Idempotent-Replayed") == "true"
    assert member_items(enrolled, (body["transactionId"],)) == after_first
    assert [lot["lotId"] for lot in lots_of(api, enrolled)] == [first.body["lotId"]]
    assert [entry["entryId"] for entry in ledger_of(api, enrolled)] == [first.body["entryId"]]
    assert api.balance(enrolled).body["available"] == 42


def test_a_replayed_earn_answers_with_the_balance_of_the_time_it_was_credited(
    api: Api, enrolled: str
) -> None:
    # Given a purchase credited, and then another one
    body = purchase(amount="10.00")
    first = api.earn(enrolled, **body)
    assert api.earn(enrolled, **purchase(amount="5.00")).status == 201

    # When the first request is retried
    retry = api.earn(enrolled, **body)

    # Then the answer is the original one, balance included
    assert retry.status == 201
    assert retry.body == first.body
    assert retry.body["balance"] == 10
    assert api.balance(enrolled).body["available"] == 15


def test_a_retry_that_writes_the_same_amount_and_instant_differently_is_the_same_request(
    api: Api, enrolled: str
) -> None:
    # Given a purchase of 42.00 EUR at some instant written in UTC
    moment = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    body = purchase(amount="42.00", occurredAt=moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    first = api.earn(enrolled, **body)
    assert first.status == 201

    # When it is retried as 42 EUR at the same instant written as UTC+01:00
    same_instant = moment.astimezone(timezone(timedelta(hours=1))).isoformat()
    retry = api.earn(enrolled, **{**body, "amount": "42", "occurredAt": same_instant})

    # Then it is recognised as the same request
    assert retry.status == 201
    assert retry.body == first.body
    assert header(retry, "Idempotent-Replayed") == "true"


def test_the_same_transaction_with_another_amount_is_a_409_and_changes_nothing(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a purchase that was credited
    body = purchase(amount="42.00")
    assert api.earn(enrolled, **body).status == 201
    before = member_items(enrolled, (body["transactionId"],))

    # When the same transactionId comes again with another amount
    response = api.earn(enrolled, **{**body, "amount": "99.00"})

    # Then it is refused as already credited, and nothing changes
    assert response.status == 409
    assert response.error_code == "transaction_already_credited"
    assert response.body["error"]["transactionId"] == body["transactionId"]
    assert member_items(enrolled, (body["transactionId"],)) == before


def test_the_same_transaction_for_another_member_is_a_409_and_changes_nothing(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a purchase credited to one member, and a second member
    body = purchase()
    assert api.earn(enrolled, **body).status == 201
    other = f"m-{uuid.uuid4().hex[:12]}"
    assert api.enrol(other).status == 201
    first_before = member_items(enrolled, (body["transactionId"],))
    other_before = member_items(other)

    # When the same purchase is reported for the second member
    response = api.earn(other, **body)

    # Then it is refused: a purchase is credited once, program-wide
    assert response.status == 409
    assert response.error_code == "transaction_already_credited"
    assert member_items(enrolled, (body["transactionId"],)) == first_before
    assert member_items(other) == other_before
    assert api.balance(other).body["available"] == 0


def test_the_same_purchase_reported_by_another_partner_is_a_409(api: Api, enrolled: str) -> None:
    body = purchase()
    assert api.earn(enrolled, **body).status == 201

    response = api.earn(enrolled, identity=Identity.partner("web-shop"), **body)

    assert response.status == 409
    assert response.error_code == "transaction_already_credited"
    assert api.balance(enrolled).body["available"] == 42


def test_a_refused_earn_is_not_remembered(api: Api, member_id: str) -> None:
    # Given a purchase refused because the member was not enrolled yet
    body = purchase()
    assert api.earn(member_id, **body).status == 404

    # When the member enrols and the partner retries the same request
    assert api.enrol(member_id).status == 201
    retry = api.earn(member_id, **body)

    # Then it is credited now
    assert retry.status == 201
    assert header(retry, "Idempotent-Replayed") is None
    assert retry.body["points"] == 42


# ---- redeem: idempotent on the Idempotency-Key header


def test_the_same_redemption_twice_returns_the_original_response_and_debits_once(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a member with 100 points who redeemed 30 with a key
    assert api.earn(enrolled, amount="100.00").status == 201
    first = api.redeem(enrolled, 30, key="order-123")
    assert first.status == 201
    assert header(first, "Idempotent-Replayed") is None
    after_first = member_items(enrolled)

    # When the same request is retried with the same key
    second = api.redeem(enrolled, 30, key="order-123")

    # Then it gets the original response, marked as replayed, and is debited only once
    assert second.status == 201
    assert second.body == first.body
    assert header(second, "Idempotent-Replayed") == "true"
    assert member_items(enrolled) == after_first
    assert api.balance(enrolled).body["available"] == 70
    assert [entry["type"] for entry in ledger_of(api, enrolled)] == ["redeem", "earn"]


def test_a_replayed_redemption_answers_with_the_original_balance(api: Api, enrolled: str) -> None:
    # Given a redemption, then another one with another key
    assert api.earn(enrolled, amount="100.00").status == 201
    first = api.redeem(enrolled, 30, key="first")
    assert api.redeem(enrolled, 20, key="second").status == 201

    # When the first is retried
    retry = api.redeem(enrolled, 30, key="first")

    # Then the original answer comes back, and the balance is 100 - 30 - 20
    assert retry.status == 201
    assert retry.body == first.body
    assert retry.body["balance"] == 70
    assert api.balance(enrolled).body["available"] == 50


def test_a_retried_redemption_is_replayed_even_when_the_balance_no_longer_covers_it(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a redemption of 30 points, then another that spent everything left
    assert api.earn(enrolled, amount="100.00").status == 201
    first = api.redeem(enrolled, 30, key="first")
    assert first.status == 201
    assert api.redeem(enrolled, 70, key="second").status == 201
    before = member_items(enrolled)

    # When the first is retried (its answer was lost), the balance now being 0
    retry = api.redeem(enrolled, 30, key="first")

    # Then the original answer comes back, marked as replayed: a retry is never refused
    assert retry.status == 201, retry.body
    assert retry.body == first.body
    assert header(retry, "Idempotent-Replayed") == "true"
    assert member_items(enrolled) == before


def test_a_key_reused_for_other_points_is_a_mismatch_even_when_the_balance_no_longer_covers_them(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a redemption of 30 points with a key, then another that spent everything left
    assert api.earn(enrolled, amount="100.00").status == 201
    assert api.redeem(enrolled, 30, key="order-5").status == 201
    assert api.redeem(enrolled, 70, key="order-6").status == 201
    before = member_items(enrolled)

    # When the first key comes again with 40 points
    response = api.redeem(enrolled, 40, key="order-5")

    # Then it is refused as a reuse of the key, not judged as a new redemption
    assert response.status == 409
    assert response.error_code == "idempotency_mismatch", response.body
    assert member_items(enrolled) == before


def test_the_same_key_with_other_points_is_a_409_and_changes_nothing(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a redemption of 30 points with a key
    assert api.earn(enrolled, amount="100.00").status == 201
    assert api.redeem(enrolled, 30, key="order-9").status == 201
    before = member_items(enrolled)

    # When the same key comes with 40 points
    response = api.redeem(enrolled, 40, key="order-9")

    # Then it is refused as a mismatch, naming the key, and nothing changes
    assert response.status == 409
    assert response.error_code == "idempotency_mismatch"
    assert response.body["error"]["idempotencyKey"] == "order-9"
    assert member_items(enrolled) == before


def age_past_ttl(table: Any, key: dict[str, str]) -> None:
    """Move a stored request record's ttl into the past (TTL deletes such records days late)."""
    table.update_item(
        Key=key,
        UpdateExpression="SET #ttl = :past",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":past": int(datetime.now(UTC).timestamp()) - 60},
    )


def request_record(table: Any, member_id: str, sort_key: str) -> dict[str, Any]:
    key = {"pk": f"MEMBER#{member_id}", "sk": sort_key}
    return dict(table.get_item(Key=key, ConsistentRead=True)["Item"])


def test_an_idempotency_record_past_its_ttl_no_longer_counts(api: Api, enrolled: str, table: Any) -> None:
    # Given a redemption, the member's last request, whose record has outlived its ttl: both
    # its own record and the copy kept as the member's last request
    assert api.earn(enrolled, amount="100.00").status == 201
    first = api.redeem(enrolled, 30, key="old-key")
    assert first.status == 201
    own, last = "IDEMPOTENCY#redeem#old-key", "WALLET#LAST"
    assert request_record(table, enrolled, own)["requestId"] == "redeem#old-key"
    assert request_record(table, enrolled, last)["requestId"] == "redeem#old-key"
    for sort_key in (own, last):
        age_past_ttl(table, {"pk": f"MEMBER#{enrolled}", "sk": sort_key})

    # When the key is used again for another amount
    response = api.redeem(enrolled, 40, key="old-key")

    # Then it is a new redemption, not a mismatch nor a replay
    assert response.status == 201
    assert header(response, "Idempotent-Replayed") is None
    assert response.body["redemptionId"] != first.body["redemptionId"]
    assert api.balance(enrolled).body["available"] == 30
    # and the record now holds the new request, live again, so a retry of it is a replay
    record = request_record(table, enrolled, own)
    assert json.loads(record["result"])["redemption_id"] == response.body["redemptionId"]
    assert int(record["ttl"]) > datetime.now(UTC).timestamp()
    retry = api.redeem(enrolled, 40, key="old-key")
    assert retry.body == response.body
    assert header(retry, "Idempotent-Replayed") == "true"


def test_an_idempotency_record_past_its_ttl_no_longer_counts_after_later_requests(
    api: Api, enrolled: str, table: Any
) -> None:
    # Given a redemption whose record has outlived its ttl, and a later redemption (so the
    # member's last request is another one)
    assert api.earn(enrolled, amount="100.00").status == 201
    first = api.redeem(enrolled, 30, key="old-key")
    assert first.status == 201
    assert api.redeem(enrolled, 5, key="later-key").status == 201
    assert request_record(table, enrolled, "WALLET#LAST")["requestId"] == "redeem#later-key"
    age_past_ttl(table, {"pk": f"MEMBER#{enrolled}", "sk": "IDEMPOTENCY#redeem#old-key"})

    # When the old key is used again for another amount
    response = api.redeem(enrolled, 40, key="old-key")

    # Then it is a new redemption, not a mismatch, and a retry of it is a replay
    assert response.status == 201
    assert header(response, "Idempotent-Replayed") is None
    assert response.body["redemptionId"] != first.body["redemptionId"]
    assert api.balance(enrolled).body["available"] == 25
    retry = api.redeem(enrolled, 40, key="old-key")
    assert retry.body == response.body
    assert header(retry, "Idempotent-Replayed") == "true"


def test_an_idempotency_record_within_its_ttl_still_counts_after_later_requests(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a redemption, and a later one with another key (the member's last request moved on)
    assert api.earn(enrolled, amount="100.00").status == 201
    first = api.redeem(enrolled, 30, key="older-key")
    assert api.redeem(enrolled, 5, key="newer-key").status == 201
    before = member_items(enrolled)

    # When the first is retried, and then its key is sent with other points
    retry = api.redeem(enrolled, 30, key="older-key")
    mismatch = api.redeem(enrolled, 40, key="older-key")

    # Then the retry is the original answer and the other points a mismatch; nothing changes
    assert retry.status == 201
    assert retry.body == first.body
    assert header(retry, "Idempotent-Replayed") == "true"
    assert mismatch.status == 409
    assert mismatch.error_code == "idempotency_mismatch"
    assert member_items(enrolled) == before


def test_each_member_has_its_own_idempotency_keys(api: Api, enrolled: str) -> None:
    # Given two members with 100 points each
    other = f"m-{uuid.uuid4().hex[:12]}"
    assert api.enrol(other).status == 201
    assert api.earn(enrolled, amount="100.00").status == 201
    assert api.earn(other, amount="100.00").status == 201

    # When each redeems with the same key, different amounts
    mine = api.redeem(enrolled, 30, key="shared-key")
    theirs = api.redeem(other, 45, key="shared-key")

    # Then both are fresh redemptions of their own accounts
    assert mine.status == theirs.status == 201
    assert header(theirs, "Idempotent-Replayed") is None
    assert mine.body["redemptionId"] != theirs.body["redemptionId"]
    assert api.balance(enrolled).body["available"] == 70
    assert api.balance(other).body["available"] == 55


def test_a_refused_redemption_does_not_use_up_its_key(api: Api, enrolled: str) -> None:
    # Given a redemption refused for lack of points
    assert api.redeem(enrolled, 30, key="order-77").status == 409

    # When the member earns points and retries with the same key
    assert api.earn(enrolled, amount="100.00").status == 201
    retry = api.redeem(enrolled, 30, key="order-77")

    # Then the redemption goes through
    assert retry.status == 201
    assert header(retry, "Idempotent-Replayed") is None
    assert retry.body["balance"] == 70
