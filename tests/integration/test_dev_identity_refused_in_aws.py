"""The development identity is never accepted in AWS (SPEC §9, issue #6, docs/security.md).

"In AWS" is read from the variables Lambda sets in every execution environment and reserves
(`loyalty.settings.LAMBDA_VARIABLES`): any one of them, even empty, and every route refuses the
claims of the development issuer, however a forged token spells it, before reading its body.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.identity import DEV_ISSUER, PARTNER_SCOPE, Identity
from devtools.template import serverless_functions
from loyalty.http.identity import PUBLIC_ROUTES
from loyalty.http.routes import unsubscribe
from loyalty.settings import LAMBDA_VARIABLES, settings
from tests.integration.conftest import PARTNER, ROOT, Api

COGNITO_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI"

# Every route that needs an identity, called by the dev caller that would otherwise succeed.
ROUTES: list[tuple[str, str, str, Any]] = [
    ("PUT", "", "partner", {"email": "dev@example.com", "locale": "en"}),
    ("PUT", "", "member", {"email": "dev@example.com", "locale": "en"}),
    ("GET", "", "member", None),
    ("GET", "", "support", None),
    ("GET", "/balance", "member", None),
    ("GET", "/balance", "partner", None),
    ("GET", "/lots", "member", None),
    ("GET", "/ledger", "support", None),
    ("POST", "/earn", "partner", None),
    ("POST", "/redemptions", "member", {"points": 1}),
]

# A partner's access token as Cognito would issue it, with the issuer a forger chose.
FORGED_ISSUERS = [
    DEV_ISSUER,
    DEV_ISSUER + "/",
    DEV_ISSUER.upper(),
    f"  {DEV_ISSUER} ",
    DEV_ISSUER.replace("https://", "http://"),
    "https://loyalty.local",
    "https://loyalty.local./anything",
    "https://user@loyalty.local:443/dev-identity",
    "https://[broken",
]


@pytest.fixture(params=LAMBDA_VARIABLES)
def in_lambda(request: pytest.FixtureRequest) -> Iterator[str]:
    """The handlers run as in Lambda: one of the variables Lambda sets (empty, to be strict)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(request.param, "")
        settings.cache_clear()
        yield request.param
    settings.cache_clear()


@pytest.fixture
def with_points(api: Api, enrolled: str) -> str:
    """An enrolled member holding 100 points."""
    assert api.earn(enrolled).status == 201
    return enrolled


def partner_token(issuer: str, client_id: str = "pos-forged") -> Identity:
    claims = {"iss": issuer, "sub": client_id, "client_id": client_id, "token_use": "access"}
    return Identity(claims={**claims, "scope": PARTNER_SCOPE}, scopes=[PARTNER_SCOPE])


def call(api: Api, member: str, route: tuple[str, str, str, Any], identity: Identity) -> Any:
    method, suffix, _, body = route
    path = f"/members/{member}{suffix}"
    if suffix == "/earn":
        return api.earn(member, identity=identity)
    headers = {"idempotency-key": uuid.uuid4().hex} if suffix == "/redemptions" else None
    return api.call(method, path, identity=identity, body=body, headers=headers)


def dev_identity(role: str, member: str) -> Identity:
    return Identity.member(member) if role == "member" else Identity.for_role(role, f"{role}-1")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1] or '/'} as {r[2]}")
def test_every_route_refuses_the_development_identity_in_lambda(
    api: Api, with_points: str, route: tuple[str, str, str, Any], in_lambda: str, member_items: Any
) -> None:
    # Given a member with points, and the handlers running in Lambda
    before = member_items(with_points)

    # When a development identity calls the route, Then it is 401 and nothing changed
    response = call(api, with_points, route, dev_identity(route[2], with_points))
    assert (response.status, response.error_code) == (401, "unauthenticated"), response.body
    assert member_items(with_points) == before


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1] or '/'} as {r[2]}")
def test_the_same_development_identity_is_accepted_outside_lambda(
    api: Api, with_points: str, route: tuple[str, str, str, Any]
) -> None:
    """The control: the refusal above is Lambda's doing, not a broken identity."""
    assert not settings().running_in_lambda
    response = call(api, with_points, route, dev_identity(route[2], with_points))
    assert response.status < 400, response.body


@pytest.mark.parametrize("issuer", FORGED_ISSUERS)
def test_a_forged_token_with_the_development_issuer_is_refused_in_lambda(
    api: Api, member_id: str, issuer: str, in_lambda: str, member_items: Any
) -> None:
    # When a token shaped like a Cognito partner token, but of the development issuer, enrols
    response = api.enrol(member_id, identity=partner_token(issuer))

    # Then it is refused and no member was created
    assert (response.status, response.error_code) == (401, "unauthenticated"), response.body
    assert member_items(member_id) == []


def test_the_same_token_from_cognito_is_accepted_in_lambda(api: Api, member_id: str, in_lambda: str) -> None:
    """The control: in Lambda, the partner's Cognito token enrols the member."""
    assert settings().running_in_lambda
    assert api.enrol(member_id, identity=partner_token(COGNITO_ISSUER)).status == 201


def test_the_running_environment_is_not_lambda_when_none_of_its_variables_is_set() -> None:
    assert not settings().running_in_lambda
    assert PARTNER.claims["iss"] == DEV_ISSUER


# ---------------------------------------------------------------- nothing in the template enables it


def test_the_template_sets_none_of_the_variables_that_say_lambda(template: dict[str, Any]) -> None:
    """Lambda refuses them anyway (reserved); a template that tried would hint at a bypass."""
    environments = [template.get("Globals", {}).get("Function", {}).get("Environment", {})]
    environments += [f.get("Environment", {}) for f in serverless_functions(template).values()]
    named = {name for env in environments for name in env.get("Variables", {})}
    assert named.isdisjoint(LAMBDA_VARIABLES)


def test_the_api_verifies_cognito_tokens_and_never_names_the_development_issuer(
    template: dict[str, Any],
) -> None:
    api = template["Resources"]["LoyaltyApi"]["Properties"]
    authorizer = api["Auth"]["Authorizers"][api["Auth"]["DefaultAuthorizer"]]
    # The stack's own pool, or the operator's existing one (ExistingUserPoolId): Cognito either way
    condition, own, existing = authorizer["JwtConfiguration"]["issuer"]["Fn::If"]
    assert condition == "CreatesUserPool"
    assert own == {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"}
    template_text, _ = existing["Fn::Sub"]
    assert template_text == "https://cognito-idp.${PoolRegion}.amazonaws.com/${ExistingUserPoolId}"
    text = (ROOT / "template.yaml").read_text(encoding="utf-8").lower()
    assert "loyalty.local" not in text
    assert "dev-identity" not in text
    assert "authorization: dev" not in text


def test_only_the_documentation_and_unsubscribe_routes_are_open_to_anyone(template: dict[str, Any]) -> None:
    """Every other route is behind the JWT authorizer: a request without a Cognito token never
    reaches a handler in AWS, whatever its Authorization header says. The unsubscribe link reads
    no identity at all: its signed token is its credential (issue #8)."""
    open_routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for function in serverless_functions(template).values()
        for event in function.get("Events", {}).values()
        if event["Type"] == "HttpApi" and event["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
    }
    assert open_routes == {
        ("GET", "/openapi.json"),
        ("GET", "/swagger"),
        ("GET", "/unsubscribe"),
        ("POST", "/unsubscribe"),
    }
    # and the routes the resolver lets through without an identity are among them
    assert {unsubscribe.PAGE_ROUTE, unsubscribe.ACTION_ROUTE} <= PUBLIC_ROUTES
    assert {tuple(key.split(" ", 1)) for key in PUBLIC_ROUTES} <= open_routes
