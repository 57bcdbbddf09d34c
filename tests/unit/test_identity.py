"""Who is calling, from the claims API Gateway's JWT authorizer verified (SPEC §2)."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.http.identity import (
    DEV_ISSUER,
    PARTNER_SCOPE,
    Caller,
    Forbidden,
    Role,
    Unauthenticated,
    caller_from_event,
)

COGNITO = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example"


def event(claims: dict[str, Any] | None, scopes: list[str] | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"http": {"method": "GET"}}
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": scopes}}
    return {"version": "2.0", "requestContext": context}


def test_a_member_token_makes_a_member_acting_on_its_own_account() -> None:
    caller = caller_from_event(event({"sub": "m-1", "iss": COGNITO}), in_lambda=True)
    assert caller.roles == {Role.MEMBER}
    assert caller.is_self("m-1") and not caller.is_self("m-2")


def test_the_partner_scope_makes_a_partner_that_is_nobody_s_member_account() -> None:
    claims = {"sub": "pos-1", "client_id": "pos-1", "iss": COGNITO}
    caller = caller_from_event(event(claims, [PARTNER_SCOPE]), in_lambda=True)
    assert caller.roles == {Role.PARTNER}
    assert not caller.is_self("pos-1")
    assert caller.actor.as_dict() == {"kind": "partner", "id": "pos-1"}


def test_the_partner_scope_is_also_read_from_the_scope_claim() -> None:
    claims = {"sub": "pos-1", "client_id": "pos-1", "scope": f"openid {PARTNER_SCOPE}"}
    assert caller_from_event(event(claims), in_lambda=True).roles == {Role.PARTNER}


def test_an_application_token_without_the_partner_scope_has_no_role_at_all() -> None:
    caller = caller_from_event(event({"sub": "app-9", "client_id": "app-9"}, ["other/scope"]), in_lambda=True)
    assert caller.roles == frozenset()
    with pytest.raises(Forbidden):
        caller.require("app-9", Role.SUPPORT)


@pytest.mark.parametrize("groups", ["[support]", "[finance support]", ["support"], ["finance", "support"]])
def test_the_support_group_is_read_from_the_string_form_and_from_a_list(groups: Any) -> None:
    caller = caller_from_event(event({"sub": "agent-1", "cognito:groups": groups}), in_lambda=True)
    assert Role.SUPPORT in caller.roles
    assert caller.actor.as_dict() == {"kind": "agent", "id": "agent-1"}


@pytest.mark.parametrize("groups", ["[supporters]", "", [], None, 42])
def test_other_groups_or_malformed_ones_grant_nothing(groups: Any) -> None:
    caller = caller_from_event(event({"sub": "m-1", "cognito:groups": groups}), in_lambda=True)
    assert caller.roles == {Role.MEMBER}


@pytest.mark.parametrize(
    "bad_event",
    [
        {},
        {"requestContext": None},
        {"requestContext": {"authorizer": {"lambda": {}}}},
        {"requestContext": {"authorizer": {"jwt": {"claims": "sub=m-1"}}}},
        event({"iss": COGNITO}),
        event({"sub": ""}),
        event({"sub": ["m-1"]}),
    ],
    ids=[
        "no-context",
        "null-context",
        "other-authorizer",
        "claims-not-a-map",
        "no-sub",
        "empty-sub",
        "sub-list",
    ],
)
def test_a_missing_or_malformed_identity_is_unauthenticated(bad_event: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated):
        caller_from_event(bad_event, in_lambda=True)


def test_a_development_identity_is_refused_whenever_the_code_runs_in_lambda() -> None:
    dev = event({"sub": "m-1", "iss": DEV_ISSUER})
    assert caller_from_event(dev, in_lambda=False).is_self("m-1")
    with pytest.raises(Unauthenticated):
        caller_from_event(dev, in_lambda=True)


def test_require_lets_the_member_itself_or_a_listed_role_through_and_nobody_else() -> None:
    member = Caller(subject="m-1", roles=frozenset({Role.MEMBER}))
    member.require("m-1", Role.PARTNER)
    with pytest.raises(Forbidden):
        member.require("m-2", Role.PARTNER)
    with pytest.raises(Forbidden):
        member.require("m-1", Role.PARTNER, self_allowed=False)
