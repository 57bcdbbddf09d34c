"""Every route of template.yaml, for every kind of caller: the status it gets, from one table.

A route added to the template without its row here fails the first test: new routes declare
who may call them before they ship (issue #6).
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.identity import DEV_ISSUER, Identity
from devtools.template import http_routes
from tests.integration.conftest import PARTNER, Api, ApiResponse
from tests.integration.test_authorization import call, user_identity

CALLERS = ("self", "other member", "partner", "support", "finance", "none", "malformed")

# route key -> (how to call it, the status each caller gets, in CALLERS' order)
MATRIX: dict[str, tuple[str, tuple[int, ...]]] = {
    "PUT /members/{memberId}": ("put-profile", (200, 403, 200, 403, 403, 401, 401)),
    "GET /members/{memberId}": ("get-profile", (200, 403, 403, 200, 403, 401, 401)),
    "GET /members/{memberId}/balance": ("balance", (200, 403, 200, 200, 403, 401, 401)),
    "GET /members/{memberId}/lots": ("lots", (200, 403, 403, 200, 403, 401, 401)),
    "GET /members/{memberId}/ledger": ("ledger", (200, 403, 403, 200, 403, 401, 401)),
    "POST /members/{memberId}/earn": ("earn", (403, 403, 201, 403, 403, 401, 401)),
    "POST /members/{memberId}/earn/{transactionId}/reversal": (
        "reversal",
        (403, 403, 201, 403, 403, 401, 401),
    ),
    "POST /members/{memberId}/redemptions": ("redeem", (201, 403, 201, 403, 403, 401, 401)),
    "POST /members/{memberId}/transfers": ("transfer", (201, 403, 403, 403, 403, 401, 401)),
    # "self" on /claims/{claimId} is the claim's member; any other caller that may hold claims (a
    # member, finance) is told nothing of it: 404, as for a claim that does not exist
    "POST /members/{memberId}/claims": ("file-claim", (201, 403, 403, 201, 403, 401, 401)),
    "GET /claims": ("claims-queue", (403, 403, 403, 200, 403, 401, 401)),
    "GET /claims/{claimId}": ("get-claim", (200, 404, 403, 200, 404, 401, 401)),
    "POST /claims/{claimId}/decision": ("decide-claim", (403, 403, 403, 200, 403, 401, 401)),
    "GET /reports/liability": ("liability", (403, 403, 403, 200, 200, 401, 401)),
    "GET /openapi.json": ("openapi", (200,) * len(CALLERS)),
    "GET /swagger": ("swagger", (200,) * len(CALLERS)),
    # public: the signed token of the email's link decides, whoever calls
    "GET /unsubscribe": ("unsubscribe-page", (200,) * len(CALLERS)),
    "POST /unsubscribe": ("unsubscribe", (200,) * len(CALLERS)),
}


def identity_of(caller: str, member_id: str) -> Identity | None:
    return {
        "self": Identity.member(member_id),
        "other member": Identity.member(f"{member_id}-other"),
        "partner": PARTNER,
        "support": Identity.support("agent-matrix"),
        "finance": user_identity("finance-matrix", **{"cognito:groups": "[finance]"}),
        "none": None,
        "malformed": Identity(claims={"iss": DEV_ISSUER, "token_use": "access"}, scopes=[]),
    }[caller]


def request(api: Api, how: str, member_id: str, identity: Identity | None) -> ApiResponse:
    if how == "openapi":
        return api.call("GET", "/openapi.json", identity=identity)
    if how == "swagger":
        return api.call("GET", "/swagger", identity=identity)
    return call(api, how, member_id, identity)


def test_every_route_of_the_template_has_a_row(template: dict[str, Any]) -> None:
    declared = {route.route_key for route in http_routes(template)}
    assert declared == set(MATRIX), "add the new route's row to MATRIX"


@pytest.mark.parametrize(
    ("route_key", "caller"),
    [(route_key, caller) for route_key in MATRIX for caller in CALLERS],
)
def test_each_caller_gets_the_status_its_rights_give_on_each_route(
    api: Api, enrolled: str, route_key: str, caller: str
) -> None:
    # Given an enrolled member with points (so that a wrongly allowed redemption would succeed)
    assert api.earn(enrolled, amount="20.00").status == 201
    how, statuses = MATRIX[route_key]

    # When this caller calls the route with a valid request
    response = request(api, how, enrolled, identity_of(caller, enrolled))

    # Then it gets exactly the status of the table
    assert response.status == statuses[CALLERS.index(caller)], response.body
