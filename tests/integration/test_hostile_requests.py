"""Oversized values, unicode everywhere and forged identities: each gets its exact 4xx naming the
field, and nothing of the member changes (issue #6). Bodies that are not clean JSON are in
test_hostile_bodies.py; the route-by-caller matrix is in test_authorization_matrix.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devtools.identity import Identity
from tests.integration.conftest import PARTNER, Api, ApiResponse

Send = Callable[[Api, str, str], ApiResponse]
"""(api, member, transactionId) → the response to one hostile request."""


def earn(**purchase: Any) -> Send:
    return lambda api, member, tx: api.earn(
        member, transactionId=purchase.pop("transactionId", tx), **purchase
    )


def redeem(body: Any, key: str = "k-1") -> Send:
    def send(api: Api, member: str, tx: str) -> ApiResponse:
        return api.call(
            "POST",
            f"/members/{member}/redemptions",
            identity=Identity.member(member),
            body=body,
            headers={"idempotency-key": key},
        )

    return send


def profile(**fields: Any) -> Send:
    body = {"email": "someone@example.com", "name": "Some One", "locale": "en", **fields}
    return lambda api, member, tx: api.call("PUT", f"/members/{member}", identity=PARTNER, body=body)


def ledger(**query: str) -> Send:
    return lambda api, member, tx: api.call(
        "GET", f"/members/{member}/ledger", identity=Identity.member(member), query=query
    )


def as_caller(claims: dict[str, Any], scopes: list[str] | None = None) -> Send:
    """A redemption by a caller whose verified claims are odd (what a misconfigured pool could send)."""
    identity = Identity(claims=claims, scopes=scopes)
    return lambda api, member, tx: api.call(
        "POST",
        f"/members/{member}/redemptions",
        identity=identity,
        body={"points": 1},
        headers={"idempotency-key": "k-forged"},
    )


MEGABYTE = 1024 * 1024
FULLWIDTH_2026 = "\uff12\uff10\uff12\uff16"

CASES = [
    # oversized values
    pytest.param(earn(transactionId="t" * 10_000), 422, "transactionId", id="transactionId-10k"),
    pytest.param(earn(amount="1" * 6 * MEGABYTE), 422, "amount", id="amount-6MB"),
    pytest.param(earn(note="x" * MEGABYTE), 422, "note", id="unknown-field-1MB"),
    pytest.param(redeem({"points": 1}, key="k" * 10_000), 422, "Idempotency-Key", id="idempotency-key-10k"),
    pytest.param(redeem({"points": 10**19}), 422, "points", id="points-over-the-maximum"),
    pytest.param(profile(name="n" * 10_000), 422, "name", id="name-10k"),
    pytest.param(ledger(limit="9" * 50), 422, "limit", id="limit-50-digits"),
    pytest.param(ledger(cursor="c" * 600), 422, "cursor", id="cursor-600"),
    # unicode everywhere
    pytest.param(earn(transactionId="tx-é"), 422, "transactionId", id="transactionId-accent"),
    pytest.param(earn(transactionId="tx-\u202e1"), 422, "transactionId", id="transactionId-bidi-override"),
    pytest.param(earn(amount="\uff11\uff12\uff13"), 422, "amount", id="amount-fullwidth-digits"),
    pytest.param(earn(amount="\u0661\u0662\u0663"), 422, "amount", id="amount-arabic-indic-digits"),
    pytest.param(earn(currency="\uff25\uff35\uff32"), 422, "currency", id="currency-fullwidth"),
    pytest.param(earn(channel="störe"), 422, "channel", id="channel-accent"),
    pytest.param(earn(occurredAt=f"{FULLWIDTH_2026}-11-20T10:00:00Z"), 422, "occurredAt", id="year-wide"),
    pytest.param(redeem({"points": "\u0661\u0660"}), 422, "points", id="points-arabic-indic-string"),
    pytest.param(redeem({"points": 1}, key="clé"), 422, "Idempotency-Key", id="idempotency-key-accent"),
    pytest.param(ledger(limit="\u0661\u0660"), 422, "limit", id="limit-arabic-indic"),
    pytest.param(ledger(cursor="é"), 422, "cursor", id="cursor-accent"),
    pytest.param(profile(name="Eve\u202egnp.exe"), 422, "name", id="name-bidi-override"),
    pytest.param(profile(name="Eve\r\nBcc: x@example.com"), 422, "name", id="name-crlf"),
    pytest.param(profile(email="a@example.com\r\nBcc: x@example.com"), 422, "email", id="email-crlf"),
    pytest.param(profile(name="Eve\x00"), 422, "name", id="name-nul"),
    pytest.param(profile(locale="en\u200f"), 422, "locale", id="locale-rtl-mark"),
]


@pytest.mark.parametrize(("send", "status", "field"), CASES)
def test_a_hostile_value_is_refused_naming_its_field_and_changes_nothing(
    api: Api, enrolled: str, member_items: Any, send: Send, status: int, field: str
) -> None:
    # Given an enrolled member, and every item it has
    transaction_id = f"tx-{uuid.uuid4().hex}"
    before = member_items(enrolled, (transaction_id,))

    # When a caller sends the hostile value
    response = send(api, enrolled, transaction_id)

    # Then it gets the exact status with the field and a reason, and nothing was written
    assert response.status == status, response.body
    fields = response.body["error"]["fields"]
    assert [entry["field"] for entry in fields] == [field], fields
    assert all(entry["reason"] for entry in fields)
    assert member_items(enrolled, (transaction_id,)) == before


FORGED = [
    pytest.param({"iss": "https://issuer.example"}, None, 401, id="no-subject"),
    pytest.param({"sub": 42}, None, 401, id="subject-not-a-string"),
    pytest.param({"sub": ""}, None, 401, id="empty-subject"),
    pytest.param({"sub": "agent", "cognito:groups": "[supporters]"}, None, 403, id="group-lookalike"),
    pytest.param({"sub": "app", "client_id": "app"}, None, 403, id="client-credentials-without-scope"),
    pytest.param(
        {"sub": "app", "client_id": "app", "scope": "loyalty/partner2"}, ["loyalty/partner2"], 403,
        id="scope-lookalike",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("claims", "scopes", "status"), FORGED)
def test_a_forged_or_malformed_identity_moves_no_points(
    api: Api, enrolled: str, member_items: Any, claims: dict[str, Any], scopes: list[str] | None, status: int
) -> None:
    assert api.earn(enrolled).status == 201
    before = member_items(enrolled)

    response = as_caller(claims, scopes)(api, enrolled, "")

    assert (response.status, response.error_code) == (
        status,
        "unauthenticated" if status == 401 else "forbidden",
    ), response.body
    assert member_items(enrolled) == before


def test_a_member_id_outside_the_alphabet_is_never_a_member(api: Api, member_items: Any) -> None:
    # An id in emoji, or 5,000 characters, reaches no item and is answered 4xx, never 500
    for member in ("🙂", "a" * 5_000, "m\u202e1"):
        response = api.call("GET", f"/members/{member}/balance", identity=Identity.member(member))
        assert 400 <= response.status < 500, response.body
        assert member_items(member) == []
