"""The one place that maps errors to HTTP: each failure a route can meet gets its status and body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import QueryError

from loyalty.domain.errors import (
    AlreadyCredited,
    InsufficientPoints,
    InvalidRequest,
    MemberNotFound,
    MovementTooLarge,
    Unavailable,
)
from loyalty.http.errors import error_response
from loyalty.http.identity import Forbidden, Unauthenticated
from loyalty.http.resolver import build_resolver


def aws_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, "TransactWriteItems")


def answer(error: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """What the API answers when a route raises `error`."""
    app = build_resolver()

    @app.get("/boom")
    def boom() -> None:
        raise error

    event = {
        "version": "2.0",
        "routeKey": "GET /boom",
        "rawPath": "/boom",
        "rawQueryString": "",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": "/boom"}, "stage": "$default"},
        "isBase64Encoded": False,
    }
    response = app.resolve(event, None)
    return int(response["statusCode"]), json.loads(response["body"]), response["headers"]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidRequest("amount", "must be greater than zero"), 422, "invalid_request"),
        (MemberNotFound("m-1"), 404, "member_not_found"),
        (InsufficientPoints(available=3, requested=5), 409, "insufficient_points"),
        (AlreadyCredited("tx-1"), 409, "transaction_already_credited"),
        (Unauthenticated("no identity"), 401, "unauthenticated"),
        (Forbidden("not yours"), 403, "forbidden"),
        (aws_error("ProvisionedThroughputExceededException"), 503, "service_unavailable"),
        (aws_error("ThrottlingException"), 503, "service_unavailable"),
        (aws_error("AccessDeniedException"), 500, "internal_error"),
        (QueryError("Failed to query items", aws_error("ThrottlingException")), 503, "service_unavailable"),
        (QueryError("Failed to query items", aws_error("AccessDeniedException")), 500, "internal_error"),
        (Unavailable("DynamoDB is throttling"), 503, "service_unavailable"),
        (MovementTooLarge("this movement would write 101 items"), 409, "movement_too_large"),
        (RuntimeError("a bug"), 500, "internal_error"),
    ],
)
def test_each_failure_gets_its_status_and_a_stable_error_code(
    error: Exception, status: int, code: str
) -> None:
    got_status, body, _ = answer(error)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert body["error"]["message"]


def test_an_insufficient_balance_says_how_many_points_are_available() -> None:
    _, body, _ = answer(InsufficientPoints(available=3, requested=5))
    assert (body["error"]["available"], body["error"]["requested"]) == (3, 5)


def test_a_field_error_names_the_field_and_the_reason() -> None:
    _, body, _ = answer(InvalidRequest("occurredAt", "is in the future"))
    assert body["error"]["fields"] == [{"field": "occurredAt", "reason": "is in the future"}]


def test_throttling_asks_the_caller_to_retry_shortly() -> None:
    _, _, headers = answer(aws_error("ThrottlingException"))
    assert headers["Retry-After"] == "1"


def test_an_unexpected_error_does_not_leak_its_details() -> None:
    _, body, _ = answer(RuntimeError("secret table name"))
    assert "secret" not in json.dumps(body)


def test_a_movement_too_large_is_counted_for_the_operators(capsys: pytest.CaptureFixture[str]) -> None:
    # Given metrics are published as EMF lines on stdout
    from loyalty.http.telemetry import metrics

    # When a route refuses a movement too large for one transaction, and metrics are flushed
    answer(MovementTooLarge("this movement would write 101 items"))
    metrics.flush_metrics()

    # Then a MovementTooLarge metric was recorded
    assert '"MovementTooLarge"' in capsys.readouterr().out


def test_unavailable_asks_the_caller_to_retry_shortly() -> None:
    status, _, headers = answer(Unavailable("DynamoDB is throttling"))
    assert (status, headers["Retry-After"]) == (503, "1")


def test_a_detail_named_like_an_argument_stays_a_detail() -> None:
    # Given an error whose details include `status`, `code` and `message`
    details = {"status": "approved", "code": "x", "message": "y"}
    response = error_response(409, "claim_already_decided", "decided", **details)

    # Then `status` is a detail of the body, the status is the response's, and the code and
    # message stay the error's own
    assert response.status_code == 409
    body = json.loads(str(response.body))["error"]
    assert (body["code"], body["message"], body["status"]) == ("claim_already_decided", "decided", "approved")
