"""The OpenAPI document is generated from the code: the committed copy, the served copy and
template.yaml's routes must all agree with it."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from devtools import REPO_ROOT
from devtools.lambda_runtime import LambdaContext, http_event, load_handler
from devtools.openapi_export import DOCUMENT, render
from devtools.template import http_routes, load_template

DOCUMENTATION_ROUTES = {("GET", "/openapi.json"), ("GET", "/swagger")}


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return json.loads(render())


def test_the_committed_openapi_document_matches_the_code(generated: dict[str, Any]) -> None:
    committed = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert committed == generated, "docs/openapi.json is stale: run `make openapi` and commit it"


def test_every_documented_operation_is_a_route_of_the_template_and_the_reverse(
    generated: dict[str, Any],
) -> None:
    documented = {(method.upper(), path) for path, item in generated["paths"].items() for method in item}
    routed = {(route.method, route.path) for route in http_routes(load_template(REPO_ROOT / "template.yaml"))}
    assert documented == routed - DOCUMENTATION_ROUTES


def test_every_error_response_documented_uses_the_error_model(generated: dict[str, Any]) -> None:
    for path, item in generated["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)


def test_the_api_serves_the_same_document_at_openapi_json(generated: dict[str, Any]) -> None:
    os.environ.setdefault("TABLE_NAME", "contract")
    handler = load_handler("functions/openapi", "app.lambda_handler", root=REPO_ROOT)
    response = handler(
        http_event("GET", "/openapi.json", route_key="GET /openapi.json"), LambdaContext("OpenApi")
    )
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == generated


def test_the_api_serves_a_swagger_ui_page() -> None:
    os.environ.setdefault("TABLE_NAME", "contract")
    handler = load_handler("functions/openapi", "app.lambda_handler", root=REPO_ROOT)
    response = handler(http_event("GET", "/swagger", route_key="GET /swagger"), LambdaContext("OpenApi"))
    assert response["statusCode"] == 200
    assert "swagger-ui" in response["body"].lower()
    # the page embeds the same document as /openapi.json, light routes' schemas included
    assert '"BalanceResponse"' in response["body"] and "/members/{memberId}/redemptions" in response["body"]
