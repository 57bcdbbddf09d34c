"""The shared resolver, the caller of the current request, and the program rules in force."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.http.body import BadBody, checked_body, has_body
from loyalty.http.errors import error_response, register_error_handlers
from loyalty.http.identity import (
    PUBLIC_ROUTES,
    ROUTE_RIGHTS,
    Caller,
    Forbidden,
    Unauthenticated,
    caller_from_event,
)
from loyalty.settings import settings

if TYPE_CHECKING:
    pass


class LoyaltyResolver(APIGatewayHttpResolver):
    """Powertools' HTTP API resolver, with the request body checked before any route sees it:
    first the caller's identity and its rights on the route (SPEC §5: identity and rights before
    the body), then `checked_body`. A public route (`PUBLIC_ROUTES`) is given its body as sent."""

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if has_body(event) and str(event.get("routeKey")) not in PUBLIC_ROUTES:
            try:
                caller = caller_from_event(dict(event), in_lambda=settings().running_in_lambda)
                rights = ROUTE_RIGHTS.get(str(event.get("routeKey")))
                if rights is not None:
                    rights.check(caller, (event.get("pathParameters") or {}).get("memberId"))
                event = {**event, "body": checked_body(event), "isBase64Encoded": False}
            except Unauthenticated as error:
                return refusal(401, "unauthenticated", str(error))
            except Forbidden as error:
                return refusal(403, "forbidden", str(error))
            except BadBody as error:
                return refusal(error.status, error.code, error.message)
        return super().resolve(event, context)

    def _convert_matches_into_route_keys(self, match: re.Match[str]) -> dict[str, str]:
        # Powertools reads path parameters from `rawPath`, as the client wrote it: a member id
        # `a:b` sent as `a%3Ab` would fail its pattern. Decode them, as API Gateway decodes
        # `pathParameters` (which the identity and rights checks read).
        return {name: unquote(value) for name, value in match.groupdict().items()}


def refusal(status: int, code: str, message: str) -> dict[str, Any]:
    """An error answered before routing: the error model of `error_response`, in the proxy
    response shape the resolver gives every other answer."""
    response = error_response(status, code, message)
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": response.content_type},
        "body": response.body,
        "isBase64Encoded": False,
        "cookies": [],
    }


def build_resolver(*routers: APIGatewayHttpRouter, validation: bool = True) -> APIGatewayHttpResolver:
    """An HTTP API resolver with our error model and the given routes.

    `validation` (pydantic, on by default) parses and checks bodies, queries and headers. The
    balance read has none of those: it turns it off, checks its one path parameter itself and
    keeps pydantic off its cold start (README, "Benchmarks").
    """
    if validation:
        # A response that fails its own model is our bug: a 500, never a 422 blamed on the caller.
        app = LoyaltyResolver(enable_validation=True, response_validation_error_http_code=500)
    else:
        app = LoyaltyResolver()
    register_error_handlers(app)
    for router in routers:
        app.include_router(router)
    return app


def current_caller(router: APIGatewayHttpRouter) -> Caller:
    return caller_from_event(router.current_event.raw_event, in_lambda=settings().running_in_lambda)


@cache
def program_timezone() -> ZoneInfo:
    """The program timezone alone, for the read paths that only need to name local dates."""
    from loyalty.domain.rules_source import program_timezone as read_timezone

    return read_timezone(settings().rules_source)


def json_response(status_code: int, body: Any) -> Response[Any]:
    return Response(
        status_code=status_code, content_type=content_types.APPLICATION_JSON, body=json.dumps(body)
    )


def movement_response(status_code: int, body: Any, *, replayed: bool) -> Response[Any]:
    """The response of a mutating request, first time or replayed (marked by a header)."""
    response = json_response(status_code, body)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def errors(*statuses: int) -> dict[int, Any]:
    """OpenAPI entries for the error statuses a route really returns (503 always: every route reads)."""
    described = {
        400: "malformed request: a body that is not JSON, not UTF-8 or not base64, nests too deeply, "
        "repeats a key or holds a huge integer",
        415: "the body is not application/json in UTF-8",
        401: "no verified identity",
        403: "the caller may not do this on this member",
        404: "unknown member",
        409: "conflict: insufficient points, idempotency mismatch, already credited, or concurrent update",
        422: "invalid field: the error names the field and the reason",
    }
    documented: dict[int, Any] = {
        status: {"description": described[status], "content": _schema_ref("ErrorResponse")}
        for status in statuses
    }
    documented[503] = {
        "description": "DynamoDB keeps throttling: retry after `Retry-After` seconds (a movement: same key)",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
        "content": _schema_ref("ErrorResponse"),
    }
    return documented


def success(status: int, description: str, model: type[Any] | str) -> dict[int, Any]:
    """The OpenAPI entry of a route's success response: a model, or the name of one in
    `loyalty.http.models` (for routes that do not import pydantic; the document adds its schema)."""
    if isinstance(model, str):
        return {status: {"description": description, "content": _schema_ref(model)}}
    return {status: {"description": description, "content": {"application/json": {"model": model}}}}


def _schema_ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
