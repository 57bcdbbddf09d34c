"""Bad input is a 4xx that names the field and why, and changes nothing (never a 500)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.identity import Identity
from tests.integration.conftest import PARTNER, Api, ApiResponse

MISSING = object()


def yesterday() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def earn_body(transaction_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transactionId": transaction_id,
        "amount": "10.00",
        "currency": "EUR",
        "occurredAt": yesterday(),
        "channel": "store",
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not MISSING}


def fields_of(response: ApiResponse) -> list[str]:
    return [problem["field"] for problem in response.body["error"].get("fields") or []]


def assert_names(response: ApiResponse, field: str) -> None:
    """A 400/422 whose error names `field`, in `fields` or in its message."""
    assert response.status in {400, 422}, response.body
    error = response.body["error"]
    assert error["code"] in {"validation_error", "invalid_request", "invalid_json"}
    assert field in fields_of(response) or field in error["message"], error


@pytest.fixture
def rich(api: Api, enrolled: str) -> str:
    """An enrolled member with 50 points, so that a wrongly accepted redemption would succeed."""
    assert api.earn(enrolled, amount="50.00").status == 201
    return enrolled


# ---- earn


EARN_CASES = [
    pytest.param({"transactionId": MISSING}, "transactionId", id="transactionId-missing"),
    pytest.param({"amount": MISSING}, "amount", id="amount-missing"),
    pytest.param({"currency": MISSING}, "currency", id="currency-missing"),
    pytest.param({"occurredAt": MISSING}, "occurredAt", id="occurredAt-missing"),
    pytest.param({"channel": MISSING}, "channel", id="channel-missing"),
    pytest.param({"transactionId": 12345}, "transactionId", id="transactionId-number"),
    pytest.param({"transactionId": "tx 1"}, "transactionId", id="transactionId-with-space"),
    pytest.param({"transactionId": "t" * 129}, "transactionId", id="transactionId-too-long"),
    pytest.param({"amount": 42.5}, "amount", id="amount-number"),
    pytest.param({"amount": None}, "amount", id="amount-null"),
    pytest.param({"amount": "-1"}, "amount", id="amount-negative"),
    pytest.param({"amount": "0"}, "amount", id="amount-zero"),
    pytest.param({"amount": "0.00"}, "amount", id="amount-zero-decimals"),
    pytest.param({"amount": "abc"}, "amount", id="amount-not-a-number"),
    pytest.param({"amount": "1.23456"}, "amount", id="amount-five-decimals"),
    pytest.param({"amount": "1e3"}, "amount", id="amount-exponent"),
    pytest.param({"amount": ""}, "amount", id="amount-empty"),
    pytest.param({"currency": "eur"}, "currency", id="currency-lower-case"),
    pytest.param({"currency": "EURO"}, "currency", id="currency-four-letters"),
    pytest.param({"currency": 978}, "currency", id="currency-number"),
    pytest.param({"channel": "phone"}, "channel", id="channel-unknown"),
    pytest.param({"channel": 1}, "channel", id="channel-number"),
    pytest.param({"occurredAt": "2026-11-01T10:00:00"}, "occurredAt", id="occurredAt-without-timezone"),
    pytest.param({"occurredAt": "yesterday"}, "occurredAt", id="occurredAt-not-a-date"),
    pytest.param({"occurredAt": "2026-13-01T10:00:00Z"}, "occurredAt", id="occurredAt-bad-month"),
    pytest.param({"occurredAt": True}, "occurredAt", id="occurredAt-boolean"),
    pytest.param({"amount": "\u0661\u0662\u0663"}, "amount", id="amount-arabic-indic-digits"),
    pytest.param({"amount": "\uff11\uff12\uff13"}, "amount", id="amount-fullwidth-digits"),
    pytest.param({"amount": "\U0001d7cf\U0001d7d0\U0001d7d1"}, "amount", id="amount-mathematical-digits"),
    pytest.param({"amount": "12.\uff15"}, "amount", id="amount-fullwidth-decimal"),
    pytest.param({"occurredAt": "1764000000"}, "occurredAt", id="occurredAt-epoch-string"),
    pytest.param({"occurredAt": 1764000000}, "occurredAt", id="occurredAt-epoch-number"),
    pytest.param({"occurredAt": "2026-W47-3T10:00:00Z"}, "occurredAt", id="occurredAt-week-date"),
    pytest.param({"occurredAt": "20261120T174210Z"}, "occurredAt", id="occurredAt-basic-format"),
    pytest.param({"occurredAt": "2026-11-20 17:42:10+01:00"}, "occurredAt", id="occurredAt-space"),
    pytest.param(
        {"occurredAt": "\uff12\uff10\uff12\uff16-11-20T17:42:10Z"},
        "occurredAt",
        id="occurredAt-fullwidth-year",
    ),
    pytest.param({"category": ""}, "category", id="category-empty"),
    pytest.param({"category": "c" * 65}, "category", id="category-too-long"),
    pytest.param({"coupon": "SPRING"}, "coupon", id="unknown-extra-field"),
]


@pytest.mark.parametrize(("changes", "field"), EARN_CASES)
def test_an_earn_with_a_bad_field_is_refused_naming_it_and_changes_nothing(
    api: Api, enrolled: str, member_items: Any, changes: dict[str, Any], field: str
) -> None:
    # Given an enrolled member
    transaction_id = f"tx-{uuid.uuid4().hex}"
    before = member_items(enrolled, (transaction_id,))

    # When a partner reports a purchase with one bad field
    response = api.call(
        "POST", f"/members/{enrolled}/earn", identity=PARTNER, body=earn_body(transaction_id, **changes)
    )

    # Then it is refused naming that field, and nothing is written
    assert_names(response, field)
    assert member_items(enrolled, (transaction_id,)) == before


@pytest.mark.parametrize(
    "raw",
    ['{"transactionId": "tx-1", "amount": ', "not json at all", '{"amount": "10.00",}'],
    ids=["truncated", "text", "trailing-comma"],
)
def test_an_earn_whose_body_is_not_json_is_a_400_invalid_json(
    api: Api, enrolled: str, member_items: Any, raw: str
) -> None:
    before = member_items(enrolled)

    response = api.call("POST", f"/members/{enrolled}/earn", identity=PARTNER, body=raw)

    assert response.status == 400
    assert response.error_code == "invalid_json"
    assert member_items(enrolled) == before


@pytest.mark.parametrize(
    "raw", ["[]", '"a string"', "42", "null", ""], ids=["array", "string", "number", "null", "empty"]
)
def test_an_earn_whose_body_is_not_an_object_is_refused(
    api: Api, enrolled: str, member_items: Any, raw: str
) -> None:
    before = member_items(enrolled)

    response = api.call("POST", f"/members/{enrolled}/earn", identity=PARTNER, body=raw)

    assert response.status in {400, 422}
    assert response.body["error"]["code"] in {"validation_error", "invalid_json"}
    assert member_items(enrolled) == before


# ---- redeem


REDEEM_CASES = [
    pytest.param({"points": 0}, "points", id="points-zero"),
    pytest.param({"points": -5}, "points", id="points-negative"),
    pytest.param({"points": "ten"}, "points", id="points-text"),
    pytest.param({"points": 1.5}, "points", id="points-fraction"),
    pytest.param({"points": True}, "points", id="points-boolean"),
    pytest.param({"points": None}, "points", id="points-null"),
    pytest.param({"points": 100_000_001}, "points", id="points-too-many"),
    pytest.param({}, "points", id="points-missing"),
    pytest.param({"rewardId": "reward-1"}, "rewardId", id="rewardId-given"),
    pytest.param({"points": 10, "rewardId": "reward-1"}, "rewardId", id="points-and-rewardId"),
    pytest.param({"points": 10, "note": "x"}, "note", id="unknown-extra-field"),
]


@pytest.mark.parametrize(("body", "field"), REDEEM_CASES)
def test_a_redemption_with_a_bad_body_is_refused_naming_the_field_and_changes_nothing(
    api: Api, rich: str, member_items: Any, body: dict[str, Any], field: str
) -> None:
    # Given a member with 50 points
    before = member_items(rich)

    # When it asks for a redemption with a bad body
    response = api.call(
        "POST",
        f"/members/{rich}/redemptions",
        identity=Identity.member(rich),
        body=body,
        headers={"idempotency-key": uuid.uuid4().hex},
    )

    # Then it is refused naming the field, and nothing is spent
    assert_names(response, field)
    assert member_items(rich) == before


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"idempotency-key": ""}, id="empty"),
        pytest.param({"idempotency-key": "k" * 129}, id="129-characters"),
        pytest.param({"idempotency-key": "my key"}, id="with-a-space"),
        pytest.param({"idempotency-key": "key/1"}, id="with-a-slash"),
    ],
)
def test_a_redemption_without_a_valid_idempotency_key_is_refused_and_changes_nothing(
    api: Api, rich: str, member_items: Any, headers: dict[str, str]
) -> None:
    before = member_items(rich)

    response = api.call(
        "POST",
        f"/members/{rich}/redemptions",
        identity=Identity.member(rich),
        body={"points": 10},
        headers=headers,
    )

    assert_names(response, "Idempotency-Key")
    assert member_items(rich) == before


def test_an_idempotency_key_of_128_characters_is_accepted(api: Api, rich: str) -> None:
    response = api.redeem(rich, 10, key="k" * 128)

    assert response.status == 201


def test_a_redemption_whose_body_is_not_json_is_a_400_invalid_json(
    api: Api, rich: str, member_items: Any
) -> None:
    before = member_items(rich)

    response = api.call(
        "POST",
        f"/members/{rich}/redemptions",
        identity=Identity.member(rich),
        body='{"points": 1',
        headers={"idempotency-key": uuid.uuid4().hex},
    )

    assert response.status == 400
    assert response.error_code == "invalid_json"
    assert member_items(rich) == before


# ---- member ids in the path


@pytest.mark.parametrize(
    "bad_id",
    ["bad!id", "-starts-with-dash", "x" * 129, "with space"],
    ids=["bang", "leading-dash", "too-long", "space"],
)
@pytest.mark.parametrize(
    ("method", "suffix", "identity"),
    [
        ("GET", "", Identity.support("agent-1")),
        ("GET", "/balance", Identity.support("agent-1")),
        ("GET", "/lots", Identity.support("agent-1")),
        ("GET", "/ledger", Identity.support("agent-1")),
    ],
    ids=["profile", "balance", "lots", "ledger"],
)
def test_a_member_id_with_illegal_characters_is_refused_on_reads(
    api: Api, bad_id: str, method: str, suffix: str, identity: Identity
) -> None:
    response = api.call(method, f"/members/{bad_id}{suffix}", identity=identity)

    assert_names(response, "memberId")


@pytest.mark.parametrize("bad_id", ["bad!id", "x" * 129], ids=["bang", "too-long"])
def test_a_member_id_with_illegal_characters_is_refused_on_writes(api: Api, bad_id: str, table: Any) -> None:
    enrol = api.call("PUT", f"/members/{bad_id}", identity=PARTNER, body={"email": "a@example.com"})
    earn = api.call(
        "POST", f"/members/{bad_id}/earn", identity=PARTNER, body=earn_body(f"tx-{uuid.uuid4().hex}")
    )
    redeem = api.call(
        "POST",
        f"/members/{bad_id}/redemptions",
        identity=PARTNER,
        body={"points": 1},
        headers={"idempotency-key": uuid.uuid4().hex},
    )

    for response in (enrol, earn, redeem):
        assert_names(response, "memberId")
    assert "Item" not in table.get_item(Key={"pk": f"MEMBER#{bad_id}", "sk": "PROFILE"})


# ---- profiles


PROFILE_CASES = [
    pytest.param({"email": "not-an-email"}, "email", id="email-without-at"),
    pytest.param({"email": "ada@example"}, "email", id="email-without-domain-dot"),
    pytest.param({"email": "ada lovelace@example.com"}, "email", id="email-with-space"),
    pytest.param({"email": MISSING}, "email", id="email-missing"),
    pytest.param({"email": 42}, "email", id="email-number"),
    pytest.param({"locale": "de"}, "locale", id="locale-unsupported"),
    pytest.param({"locale": "FR"}, "locale", id="locale-upper-case"),
    pytest.param({"name": ""}, "name", id="name-empty"),
    pytest.param({"name": "n" * 201}, "name", id="name-too-long"),
    pytest.param({"name": "Eve\r\nBcc: all@example.com"}, "name", id="name-with-crlf"),
    pytest.param({"name": "Eve\x00"}, "name", id="name-with-nul"),
    pytest.param({"name": "Eve\u202egnp.exe"}, "name", id="name-with-right-to-left-override"),
    pytest.param({"name": "Eve\u2066x\u2069"}, "name", id="name-with-bidi-isolate"),
    pytest.param({"name": "Eve\x1b[31m"}, "name", id="name-with-escape"),
    pytest.param({"email": "eve\u202e@example.com"}, "email", id="email-with-right-to-left-override"),
    pytest.param({"email": "eve@example.com\x00"}, "email", id="email-with-nul"),
    pytest.param({"emailOptIn": "maybe"}, "emailOptIn", id="emailOptIn-not-a-boolean"),
    pytest.param({"nickname": "Ada"}, "nickname", id="unknown-extra-field"),
]


@pytest.mark.parametrize(("changes", "field"), PROFILE_CASES)
def test_a_profile_with_a_bad_field_is_refused_naming_it_and_changes_nothing(
    api: Api, enrolled: str, member_items: Any, changes: dict[str, Any], field: str
) -> None:
    # Given an enrolled member
    before = member_items(enrolled)
    body = {"email": "new@example.com", "name": "New", "locale": "fr", "emailOptIn": True, **changes}
    body = {name: value for name, value in body.items() if value is not MISSING}

    # When its profile is PUT with one bad field
    response = api.call("PUT", f"/members/{enrolled}", identity=Identity.member(enrolled), body=body)

    # Then it is refused naming that field, and the profile is unchanged
    assert_names(response, field)
    assert member_items(enrolled) == before


@pytest.mark.parametrize(("changes", "field"), PROFILE_CASES[:2] + PROFILE_CASES[5:6])
def test_an_enrolment_with_a_bad_field_creates_no_member(
    api: Api, member_id: str, member_items: Any, changes: dict[str, Any], field: str
) -> None:
    body = {"email": f"{member_id}@example.com", **changes}

    response = api.call("PUT", f"/members/{member_id}", identity=PARTNER, body=body)

    assert_names(response, field)
    assert member_items(member_id) == []


# ---- ledger query


@pytest.mark.parametrize("cursor", ["c" * 513], ids=["cursor-too-long"])
def test_a_ledger_cursor_longer_than_512_characters_is_refused(api: Api, enrolled: str, cursor: str) -> None:
    response = api.call(
        "GET", f"/members/{enrolled}/ledger", identity=Identity.member(enrolled), query={"cursor": cursor}
    )

    assert_names(response, "cursor")


def test_a_profile_name_is_stored_in_nfc_and_may_use_joiners(api: Api, member_id: str) -> None:
    # Given a name typed with a combining accent, and a family emoji (joined by ZWJ)
    decomposed = "Le\u0301a \U0001f468\u200d\U0001f469\u200d\U0001f467"

    # When the member enrols with it
    response = api.call(
        "PUT",
        f"/members/{member_id}",
        identity=PARTNER,
        body={"email": "lea@example.com", "name": decomposed},
    )

    # Then it is accepted and stored composed (NFC), joiners kept
    assert response.status == 201
    assert response.body["name"] == "L\u00e9a \U0001f468\u200d\U0001f469\u200d\U0001f467"
