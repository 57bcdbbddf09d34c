"""The whole API in one resolver, to generate the OpenAPI document from the code and serve it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from pydantic import BaseModel

from loyalty.http import models
from loyalty.http.identifiers import IDENTIFIER
from loyalty.http.resolver import build_resolver, json_response
from loyalty.http.routes import (
    balance,
    claims,
    earn,
    ledger,
    members,
    redeem,
    reports,
    reversal,
    transfers,
    unsubscribe,
)

TITLE = "Loyalty points API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Points as expiring lots: enrol, earn, redeem, balances. Authenticate with a Cognito access token "
    "(`Authorization: Bearer …`): members act on their own account, partners carry the `loyalty/partner` "
    "scope, support agents are in the `support` group, finance in the `finance` group."
)
MEMBER_ID_PARAMETER = {
    "description": "the member's id",
    "required": True,
    "schema": {
        "type": "string",
        "pattern": IDENTIFIER,
        "title": "Memberid",
        "description": "the member's id",
    },
}
SECURITY_SCHEMES: Any = {"cognito": HTTPBearer(bearerFormat="JWT")}


def build_api() -> APIGatewayHttpResolver:
    """Every route of every function, plus `/openapi.json` and the Swagger UI at `/swagger`."""
    app = build_resolver(
        members.router,
        balance.router,
        ledger.router,
        earn.router,
        reversal.router,
        redeem.router,
        transfers.router,
        claims.router,
        reports.router,
        unsubscribe.router,
    )

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Any:
        return json_response(200, openapi_document(app))

    @app.get("/swagger", include_in_schema=False)
    def swagger_ui() -> Any:
        # Powertools' Swagger UI assets (shipped in the package: no CDN), around our document.
        from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

        spec = json.dumps(openapi_document(app)).replace("</", "<\\/")  # no "</script>" inside the page
        html = generate_swagger_html(
            spec, _asset("swagger-ui-bundle.min.js"), _asset("swagger-ui.min.css"), "", None
        )
        return Response(status_code=200, content_type="text/html", body=html)

    return app


def _asset(name: str) -> str:
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as assets

    return (Path(assets.__file__).parent / name).read_text(encoding="utf-8")


def openapi_document(app: APIGatewayHttpResolver | None = None) -> dict[str, Any]:
    """The OpenAPI document of every route, without the schemas no operation refers to."""
    resolver = app or build_api()
    document: dict[str, Any] = json.loads(
        resolver.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            security_schemes=SECURITY_SCHEMES,
            security=[{"cognito": []}],
        )
    )
    # Powertools documents its own body for response-validation faults; ours is the error model.
    for operation in (op for item in document["paths"].values() for op in item.values()):
        if "500" in operation.get("responses", {}):
            operation["responses"]["500"] = {
                "description": "a fault on our side, never caused by the request: retrying is safe",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
            }
    # Powertools documents a 422 of its own on any route with parameters; a route whose
    # parameters cannot fail validation (the unsubscribe token: any text, checked by the route)
    # never answers it.
    for operation in (op for item in document["paths"].values() for op in item.values()):
        unprocessable = operation.get("responses", {}).get("422", {})
        if "HTTPValidationError" in json.dumps(unprocessable):
            del operation["responses"]["422"]
    for operation in (op for item in document["paths"].values() for op in item.values()):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] == "memberId":
                parameter.update(MEMBER_ID_PARAMETER)  # the light routes check it by hand, alike
    schemas = {**document.get("components", {}).get("schemas", {}), **_named_models()}
    used = _referenced(document["paths"], schemas)
    document["components"]["schemas"] = {name: schema for name, schema in schemas.items() if name in used}
    return document


def _named_models() -> dict[str, Any]:
    """Schemas of the models that light routes name without importing (see `resolver.success`)."""
    from pydantic.json_schema import models_json_schema

    named: list[tuple[type[BaseModel], Literal["serialization"]]] = [
        (models.ErrorResponse, "serialization"),
        (models.BalanceResponse, "serialization"),
        (models.LotsResponse, "serialization"),
    ]
    _, top = models_json_schema(named, ref_template="#/components/schemas/{model}")
    return dict(top.get("$defs", {}))


def _referenced(root: Any, schemas: dict[str, Any]) -> set[str]:
    """Names of the component schemas reachable from `root` through `$ref`s."""
    found: set[str] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[-1]
                if name not in found:
                    found.add(name)
                    pending.append(schemas.get(name))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found
