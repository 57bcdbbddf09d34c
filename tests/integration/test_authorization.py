"""Who may do what (SPEC §2): 401 without a verified identity, 403 outside the caller's rights."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.identity import DEV_ISSUER, Identity
from loyalty.notify.unsubscribe import make_token
from tests.integration.conftest import PARTNER, UNSUBSCRIBE_SECRET, Api, ApiResponse

ALL_ROUTES = ["put-profile", "get-profile", "balance", "lots", "ledger", "earn", "redeem"]
READS = ["get-profile", "balance", "lots", "ledger"]


def call(api: Api, route: str, member_id: str, identity: Identity | None) -> ApiResponse:
    """A valid request to one of the member routes, as `identity` (None: no authorizer at all)."""
    path = f"/members/{member_id}"
    if route == "put-profile":
        body = {"email": f"{member_id}@example.com", "locale": "en"}
        return api.call("PUT", path, identity=identity, body=body)
    if route == "get-profile":
        return api.call("GET", path, identity=identity)
    if route in {"balance", "lots", "ledger"}:
        return api.call("GET", f"{path}/{route}", identity=identity)
    if route == "earn":
        body = {
            "transactionId": f"tx-{uuid.uuid4().hex}",
            "amount": "10.00",
            "currency": "EUR",
            "occurredAt": (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "channel": "store",
        }
        return api.call("POST", f"{path}/earn", identity=identity, body=body)
    if route == "redeem":
        headers = {"idempotency-key": uuid.uuid4().hex}
        return api.call("POST", f"{path}/redemptions", identity=identity, body={"points": 1}, headers=headers)
    if route == "reversal":
        # The return of a purchase a partner has just credited to this member (so a 201 is possible).
        earned = api.earn(member_id, amount="10.00").body or {}
        tx = earned.get("transactionId", f"tx-{uuid.uuid4().hex}")
        headers = {"idempotency-key": uuid.uuid4().hex}
        return api.call("POST", f"{path}/earn/{tx}/reversal", identity=identity, body={}, headers=headers)
    if route == "transfer":
        # To an enrolled member, from a sender holding the rules' minimum transfer (100 points).
        receiver = f"{member_id}-receiver"
        api.enrol(receiver)
        api.earn(member_id, amount="100.00")
        headers = {"idempotency-key": uuid.uuid4().hex}
        body = {"toMemberId": receiver, "points": 100}
        return api.call("POST", f"{path}/transfers", identity=identity, body=body, headers=headers)
    if route in {"file-claim", "get-claim", "decide-claim"}:
        # A purchase of 10 days ago the member claims (filed by support, so that any caller's
        # attempt meets a real claim of this member: "self" on /claims/{claimId} is its member).
        body = {
            "transactionId": f"tx-{uuid.uuid4().hex}",
            "occurredAt": (datetime.now(UTC) - timedelta(days=10)).isoformat(),
            "amount": "10.00",
            "currency": "EUR",
        }
        if route == "file-claim":
            return api.call("POST", f"{path}/claims", identity=identity, body=body)
        filed = api.call("POST", f"{path}/claims", identity=Identity.support("agent-filing"), body=body)
        claim = f"/claims/{filed.body['claimId']}"
        if route == "get-claim":
            return api.call("GET", claim, identity=identity)
        decision = {"decision": "approve", "reason": "receipt checked"}
        return api.call("POST", f"{claim}/decision", identity=identity, body=decision)
    if route == "claims-queue":
        return api.call("GET", "/claims", identity=identity, query={"status": "pending", "limit": "1"})
    if route == "liability":
        return api.call("GET", "/reports/liability", identity=identity)
    if route in {"unsubscribe-page", "unsubscribe"}:
        # Public: the link of the member's email, with its signed token; the identity changes nothing.
        token = make_token(member_id, secret=UNSUBSCRIBE_SECRET, now=datetime.now(UTC) - timedelta(minutes=1))
        method = "GET" if route == "unsubscribe-page" else "POST"
        body = None if method == "GET" else "List-Unsubscribe=One-Click"
        headers = {"content-type": "application/x-www-form-urlencoded"}
        return api.call(
            method, "/unsubscribe", identity=identity, query={"token": token}, body=body, headers=headers
        )
    raise AssertionError(route)


def user_identity(subject: str, **claims: Any) -> Identity:
    """A Cognito user's access token, with extra claims (such as `cognito:groups`)."""
    base = Identity.member(subject)
    return Identity(claims={**base.claims, **claims}, scopes=base.scopes)


@pytest.fixture
def rich(api: Api, enrolled: str) -> str:
    """An enrolled member with 50 points, so that a wrongly allowed redemption would succeed."""
    assert api.earn(enrolled, amount="50.00").status == 201
    return enrolled


# ---- 401


@pytest.mark.parametrize("route", ALL_ROUTES)
def test_a_request_without_identity_is_a_401_and_changes_nothing(
    api: Api, rich: str, member_items: Any, route: str
) -> None:
    before = member_items(rich)

    response = call(api, route, rich, identity=None)

    assert response.status == 401
    assert response.error_code == "unauthenticated"
    assert member_items(rich) == before


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": DEV_ISSUER, "token_use": "access"},
        {"iss": DEV_ISSUER, "sub": "", "token_use": "access"},
        {"iss": DEV_ISSUER, "sub": 12345, "token_use": "access"},
    ],
    ids=["no-sub", "empty-sub", "numeric-sub"],
)
def test_an_identity_without_a_usable_subject_is_a_401(api: Api, rich: str, claims: dict[str, Any]) -> None:
    response = call(api, "balance", rich, identity=Identity(claims=claims, scopes=None))

    assert response.status == 401
    assert response.error_code == "unauthenticated"


# ---- members


@pytest.mark.parametrize("route", READS)
def test_a_member_cannot_read_another_members_account(api: Api, rich: str, route: str) -> None:
    response = call(api, route, rich, identity=Identity.member(f"other-{uuid.uuid4().hex[:8]}"))

    assert response.status == 403
    assert response.error_code == "forbidden"


def test_a_member_cannot_redeem_another_members_points(api: Api, rich: str, member_items: Any) -> None:
    # Given a member with 50 points and another member
    before = member_items(rich)
    intruder = Identity.member(f"other-{uuid.uuid4().hex[:8]}")

    # When the other member tries to redeem them
    response = api.redeem(rich, 10, identity=intruder)

    # Then it is forbidden and nothing is spent
    assert response.status == 403
    assert member_items(rich) == before


def test_a_member_cannot_change_another_members_profile(api: Api, rich: str, member_items: Any) -> None:
    before = member_items(rich)

    response = call(api, "put-profile", rich, identity=Identity.member(f"other-{uuid.uuid4().hex[:8]}"))

    assert response.status == 403
    assert member_items(rich) == before


def test_a_member_cannot_earn_points_even_for_itself(api: Api, rich: str, member_items: Any) -> None:
    # Given an enrolled member
    before = member_items(rich)

    # When it reports a purchase for itself
    response = call(api, "earn", rich, identity=Identity.member(rich))

    # Then it is forbidden: only partners report purchases
    assert response.status == 403
    assert member_items(rich) == before


@pytest.mark.parametrize("route", READS)
def test_a_member_reads_its_own_account(api: Api, rich: str, route: str) -> None:
    response = call(api, route, rich, identity=Identity.member(rich))

    assert response.status == 200


# ---- partners


@pytest.mark.parametrize("route", ["get-profile", "lots", "ledger"])
def test_a_partner_cannot_read_a_members_profile_lots_or_ledger(api: Api, rich: str, route: str) -> None:
    response = call(api, route, rich, identity=PARTNER)

    assert response.status == 403
    assert response.error_code == "forbidden"


def test_a_partner_can_read_a_members_balance(api: Api, rich: str) -> None:
    response = call(api, "balance", rich, identity=PARTNER)

    assert response.status == 200
    assert response.body["available"] == 50


def test_a_client_credentials_token_without_the_partner_scope_is_not_a_member(
    api: Api, rich: str, member_items: Any
) -> None:
    # Given an application token whose client id happens to equal the member's id, without the partner scope
    app_token = Identity(
        claims={
            "iss": DEV_ISSUER,
            "sub": rich,
            "client_id": rich,
            "token_use": "access",
            "scope": "other/scope",
        },
        scopes=["other/scope"],
    )
    before = member_items(rich)

    # When it reads the balance and tries to redeem
    balance = call(api, "balance", rich, identity=app_token)
    redeem = call(api, "redeem", rich, identity=app_token)

    # Then it is not taken for the member: both are forbidden, nothing is spent
    assert balance.status == 403
    assert redeem.status == 403
    assert member_items(rich) == before


# ---- support and finance


@pytest.mark.parametrize("route", READS)
def test_a_support_agent_reads_any_member(api: Api, rich: str, route: str) -> None:
    response = call(api, route, rich, identity=Identity.support("agent-1"))

    assert response.status == 200


@pytest.mark.parametrize("route", ["earn", "redeem", "put-profile"])
def test_a_support_agent_cannot_move_points_or_edit_a_profile(
    api: Api, rich: str, member_items: Any, route: str
) -> None:
    before = member_items(rich)

    response = call(api, route, rich, identity=Identity.support("agent-1"))

    assert response.status == 403
    assert member_items(rich) == before


@pytest.mark.parametrize("route", ALL_ROUTES)
def test_finance_gets_a_403_on_member_routes(api: Api, rich: str, member_items: Any, route: str) -> None:
    before = member_items(rich)

    response = call(api, route, rich, identity=Identity.finance("fin-1"))

    assert response.status == 403
    assert member_items(rich) == before


@pytest.mark.parametrize(
    "groups",
    ["[support]", ["support"], "[finance support]", ["finance", "support"]],
    ids=["string", "list", "string-of-two", "list-of-two"],
)
def test_the_support_group_is_recognised_as_a_string_or_a_list(api: Api, rich: str, groups: Any) -> None:
    agent = user_identity("agent-2", **{"cognito:groups": groups})

    response = call(api, "lots", rich, identity=agent)

    assert response.status == 200
    assert response.body["lots"][0]["remaining"] == 50


@pytest.mark.parametrize(
    "groups", ["[supporters]", ["support-team"], "", []], ids=["s1", "l1", "empty", "none"]
)
def test_a_group_that_is_not_exactly_support_gives_no_support_rights(
    api: Api, rich: str, groups: Any
) -> None:
    user = user_identity("someone", **{"cognito:groups": groups})

    response = call(api, "lots", rich, identity=user)

    assert response.status == 403
