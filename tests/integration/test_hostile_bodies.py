"""Bodies no caller should send: each gets its exact 4xx, and nothing changes (issue #6)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.identity import Identity
from devtools.lambda_runtime import http_event
from tests.integration.conftest import PARTNER, Api, ApiResponse, match

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")


def purchase_json(transaction_id: str) -> str:
    return json.dumps(
        {
            "transactionId": transaction_id,
            "amount": "10.00",
            "currency": "EUR",
            "occurredAt": YESTERDAY,
            "channel": "store",
        }
    )


def send_earn(
    api: Api,
    member_id: str,
    body: str,
    *,
    content_type: str | None = "application/json",
    base64_encoded: bool = False,
    identity: Identity | None = PARTNER,
) -> ApiResponse:
    """POST …/earn with exactly this body text, as API Gateway would pass it."""
    path = f"/members/{member_id}/earn"
    route, params = match(api.routes, "POST", path)
    headers = {"content-type": content_type} if content_type is not None else {}
    event = http_event(
        "POST",
        path,
        route_key=f"POST {route.path}",
        path_parameters=params,
        headers=headers,
        identity=identity,
    )
    if content_type is None:
        event["headers"].pop("content-type", None)
    event["body"], event["isBase64Encoded"] = body, base64_encoded
    return api.invoke(route, event)


def latin1(text: str) -> str:
    return base64.b64encode(text.encode("latin-1")).decode()


def utf16(text: str) -> str:
    return base64.b64encode(text.encode("utf-16")).decode()


CASES = [
    pytest.param(lambda tx: (latin1(purchase_json(tx).replace("store", "stör")), {"base64_encoded": True}),
                 400, "invalid_encoding", id="latin-1-bytes"),
    pytest.param(lambda tx: (utf16(purchase_json(tx)), {"base64_encoded": True}),
                 400, "invalid_encoding", id="utf-16-bytes"),
    pytest.param(lambda tx: ("not base64 at all!", {"base64_encoded": True}),
                 400, "invalid_body", id="base64-that-does-not-decode"),
    pytest.param(lambda tx: (purchase_json(tx)[:-1] + '"\udcff"}', {}),
                 400, "invalid_encoding", id="stray-byte-as-surrogate"),
    pytest.param(lambda tx: (purchase_json(tx), {"content_type": "text/plain"}),
                 415, "unsupported_media_type", id="text-plain"),
    pytest.param(lambda tx: (purchase_json(tx), {"content_type": "application/x-www-form-urlencoded"}),
                 415, "unsupported_media_type", id="form-encoded"),
    pytest.param(lambda tx: (purchase_json(tx), {"content_type": None}),
                 415, "unsupported_media_type", id="no-content-type"),
    pytest.param(lambda tx: (purchase_json(tx), {"content_type": "application/json; charset=latin-1"}),
                 415, "unsupported_media_type", id="json-in-latin-1"),
    pytest.param(lambda tx: ("[" * 1000 + "]" * 1000, {}), 400, "invalid_json", id="nested-1000-deep"),
    pytest.param(lambda tx: ('{"a":' * 40 + "1" + "}" * 40, {}), 400, "invalid_json", id="nested-40-objects"),
    pytest.param(lambda tx: ('{"points": ' + "9" * 5000 + "}", {}),
                 400, "invalid_json", id="integer-5000-digits"),
    pytest.param(lambda tx: ('{"points": NaN}', {}), 400, "invalid_json", id="nan"),
    pytest.param(lambda tx: (f"[{purchase_json(tx)}]", {}),
                 422, "validation_error", id="array-of-one-purchase"),
    pytest.param(lambda tx: (purchase_json(tx)[:-1] + ', "amount": "900.00"}', {}),
                 400, "invalid_json", id="duplicate-amount"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "status", "code"), CASES)
def test_a_hostile_body_gets_its_own_error_and_changes_nothing(
    api: Api, enrolled: str, member_items: Any, make: Any, status: int, code: str
) -> None:
    # Given an enrolled member
    transaction_id = f"tx-{uuid.uuid4().hex}"
    before = member_items(enrolled, (transaction_id,))

    # When a partner sends a body no API should accept
    body, options = make(transaction_id)
    response = send_earn(api, enrolled, body, **options)

    # Then it gets its exact status and code, a message, and nothing was written
    assert (response.status, response.error_code) == (status, code), response.body
    assert response.body["error"]["message"]
    assert member_items(enrolled, (transaction_id,)) == before


def test_an_anonymous_caller_with_a_bad_body_is_told_it_has_no_identity(api: Api, enrolled: str) -> None:
    response = send_earn(api, enrolled, "[" * 1000, identity=None)
    assert (response.status, response.error_code) == (401, "unauthenticated")


def test_a_clean_purchase_in_base64_is_credited(api: Api, enrolled: str) -> None:
    body = base64.b64encode(purchase_json(f"tx-{uuid.uuid4().hex}").encode()).decode()
    response = send_earn(api, enrolled, body, base64_encoded=True)
    assert response.status == 201
    assert response.body["points"] == 10


def test_a_json_content_type_with_utf8_charset_is_accepted(api: Api, enrolled: str) -> None:
    body = purchase_json(f"tx-{uuid.uuid4().hex}")
    response = send_earn(api, enrolled, body, content_type="application/json; charset=UTF-8")
    assert response.status == 201


@pytest.mark.parametrize(
    "identity",
    [Identity.member("someone-else"), Identity.support("agent-1")],
    ids=["another-member", "a-support-agent"],
)
def test_a_caller_without_the_right_gets_403_before_its_body_is_read(
    api: Api, enrolled: str, identity: Identity
) -> None:
    # Given a caller who may not report purchases for this member, and a body that is not JSON
    # When it posts, Then it is told it may not, whatever the body (SPEC §5: rights first)
    response = send_earn(api, enrolled, '{"amount": ', identity=identity)
    assert (response.status, response.error_code) == (403, "forbidden")


def test_a_member_redeeming_for_another_member_gets_403_before_validation(api: Api, enrolled: str) -> None:
    path = f"/members/{enrolled}/redemptions"
    response = api.call(
        "POST",
        path,
        identity=Identity.member("someone-else"),
        body={"points": "not a number"},
        headers={"idempotency-key": "k-1"},
    )
    assert (response.status, response.error_code) == (403, "forbidden")
