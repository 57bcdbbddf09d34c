"""The one place that maps errors to HTTP: `{"error": {"code", "message", ...}}` with the right status."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from loyalty.domain.errors import (
    Conflict,
    DomainError,
    InvalidRequest,
    MovementTooLarge,
    NotFound,
    Unavailable,
)
from loyalty.http.identity import Forbidden, Unauthenticated
from loyalty.http.telemetry import count_refusal, logger
from loyalty.store.transact import NO_ANSWER, aws_error_code, no_answer

# Capacity and contention errors left after botocore's own retries: the caller should retry.
RETRYABLE_AWS_ERRORS = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)

DOMAIN_STATUS: list[tuple[type[DomainError], int]] = [
    (InvalidRequest, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
]


def error_response(status: int, code: str, message: str, /, **details: Any) -> Response[Any]:
    """The one error body. Positional-only, so that a detail named `status`, `code` or `message`
    is a detail, never a clash with the arguments (a TypeError, then a 500)."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": {"code": code, "message": message, **_details(details)}}, default=str),
    )


def _details(details: dict[str, Any]) -> dict[str, Any]:
    """Details never replace the error's own code and message."""
    return {name: value for name, value in details.items() if name not in ("code", "message")}


def internal_error() -> Response[Any]:
    """A fault on our side: the details go to the log, never to the caller."""
    return error_response(500, "internal_error", "something went wrong on our side; retrying is safe")


def busy() -> Response[Any]:
    """Throttled, or no answer: a movement may or may not have been made, and the caller's retry
    with the same key (transactionId, Idempotency-Key) makes it once or replays it."""
    response = error_response(
        503, "service_unavailable", "busy or not answering right now: retry shortly with the same key"
    )
    response.headers["Retry-After"] = "1"
    return response


def aws_error(code: str) -> Response[Any]:
    """DynamoDB throttling or contention left after the SDK's retries is a 503; anything else a 500."""
    if code in RETRYABLE_AWS_ERRORS:
        logger.warning("DynamoDB is throttling or busy", extra={"awsError": code})
        return busy()
    logger.exception("unexpected AWS error", extra={"awsError": code})
    return internal_error()


def status_of(error: DomainError) -> int:
    return next((status for kind, status in DOMAIN_STATUS if isinstance(error, kind)), 400)


def field_name(location: tuple[Any, ...]) -> str:
    """`("body", "amount")` → `amount`; `("header", "idempotency-key")` → `Idempotency-Key` (header)."""
    where, *path = location or ("request",)
    if where == "header" and path:
        return "-".join(part.capitalize() for part in str(path[0]).split("-"))
    if where in {"body", "query", "path"} and path:
        return ".".join(str(part) for part in path)
    return str(where)


def validation_failed(error: RequestValidationError) -> Response[Any]:
    problems = list(error.errors())
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    fields = [
        {
            "field": field_name(tuple(problem.get("loc", ()))),
            "in": (problem.get("loc") or ("body",))[0],
            "reason": problem.get("msg", "is not valid").removeprefix("Value error, "),
        }
        for problem in problems
    ]
    summary = "; ".join(f"{field['field']}: {field['reason']}" for field in fields)
    return error_response(422, "validation_error", summary or "the request is not valid", fields=fields)


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    """Every error a caller can cause becomes a 4xx; anything else is logged and a plain 500."""

    @app.exception_handler(RequestValidationError)
    def _validation(error: RequestValidationError) -> Response[Any]:
        return validation_failed(error)

    @app.exception_handler(DomainError)
    def _domain(error: DomainError) -> Response[Any]:
        if isinstance(error, MovementTooLarge):
            logger.warning("a movement ran into a DynamoDB limit", extra={"limit": error.message})
            count_refusal("MovementTooLarge")
        if isinstance(error, Unavailable):
            return busy()
        return error_response(status_of(error), error.code, error.message, **error.details)

    @app.exception_handler(Unauthenticated)
    def _unauthenticated(error: Unauthenticated) -> Response[Any]:
        return error_response(401, "unauthenticated", str(error))

    @app.exception_handler(Forbidden)
    def _forbidden(error: Forbidden) -> Response[Any]:
        return error_response(403, "forbidden", str(error))

    @app.exception_handler(ClientError)
    def _aws(error: ClientError) -> Response[Any]:
        return aws_error(error.response.get("Error", {}).get("Code", ""))

    @app.exception_handler(PynamoDBException)
    def _store(error: PynamoDBException) -> Response[Any]:
        if no_answer(error):
            logger.warning("DynamoDB did not answer", extra={"awsError": type(error.cause).__name__})
            return busy()
        return aws_error(aws_error_code(error))

    @app.exception_handler(BotoCoreError)
    def _botocore(error: BotoCoreError) -> Response[Any]:
        if isinstance(error, NO_ANSWER):
            logger.warning("an AWS service did not answer", extra={"awsError": type(error).__name__})
            return busy()
        logger.exception("unexpected botocore error")
        return internal_error()

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[Any]:
        logger.exception("unexpected error")
        return internal_error()

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[Any]:
        return error_response(404, "not_found", "no such route")
