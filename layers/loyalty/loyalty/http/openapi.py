"""The whole API in one resolver, to generate the OpenAPI document from the code and serve it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from loyalty.http.resolver import build_resolver, json_response
from loyalty.http.routes import balance, earn, ledger, members, redeem

TITLE = "Loyalty points API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Points as expiring lots: enrol, earn, redeem, balances. Authenticate with a Cognito access token "
    "(`Authorization: Bearer …`): members act on their own account, partners carry the `loyalty/partner` "
    "scope, support agents are in the `support` group."
)
SECURITY_SCHEMES: Any = {"cognito": HTTPBearer(bearerFormat="JWT")}


def build_api() -> APIGatewayHttpResolver:
    """Every route of every function, plus `/openapi.json` and the Swagger UI at `/swagger`."""
    app = build_resolver(members.router, balance.router, ledger.router, earn.router, redeem.router)
    app.enable_swagger(
        path="/swagger",
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes=SECURITY_SCHEMES,
        security=[{"cognito": []}],
    )

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Any:
        return json_response(200, openapi_document(app))

    return app


def openapi_document(app: APIGatewayHttpResolver | None = None) -> dict[str, Any]:
    import json

    resolver = app or build_api()
    return json.loads(
        resolver.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            security_schemes=SECURITY_SCHEMES,
            security=[{"cognito": []}],
        )
    )
