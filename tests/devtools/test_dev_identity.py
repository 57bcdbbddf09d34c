"""devtools.identity: the development identity scheme that stands in for Cognito locally."""

from __future__ import annotations

import pytest

from devtools.identity import DEV_ISSUER, Identity, parse_authorization, refuse_in_lambda


def test_given_a_member_header_when_parsing_then_sub_is_the_member_id() -> None:
    identity = parse_authorization("Dev member:m1")

    assert identity == Identity.member("m1")
    assert identity.claims["sub"] == "m1"
    assert "cognito:groups" not in identity.claims
    assert "loyalty/partner" not in (identity.scopes or [])


def test_given_a_partner_header_when_parsing_then_it_is_a_client_credentials_token() -> None:
    identity = parse_authorization("Dev partner:demo-pos")

    assert identity is not None
    assert identity.claims == {
        "iss": DEV_ISSUER,
        "sub": "demo-pos",
        "client_id": "demo-pos",
        "token_use": "access",
        "scope": "loyalty/partner",
    }
    assert identity.scopes == ["loyalty/partner"]


@pytest.mark.parametrize(("role", "group"), [("support", "[support]"), ("finance", "[finance]")])
def test_given_a_staff_header_when_parsing_then_the_group_is_the_string_http_api_passes(
    role: str, group: str
) -> None:
    identity = parse_authorization(f"Dev {role}:agent-7")

    assert identity is not None
    assert identity.claims["sub"] == "agent-7"
    assert identity.claims["cognito:groups"] == group


@pytest.mark.parametrize("role", ["member", "partner", "support", "finance"])
def test_given_any_role_when_parsing_then_the_claims_carry_the_dev_issuer(role: str) -> None:
    identity = parse_authorization(f"Dev {role}:x")

    assert identity is not None
    assert identity.claims["iss"] == DEV_ISSUER


def test_given_an_id_with_every_allowed_character_when_parsing_then_it_is_kept_whole() -> None:
    identity = parse_authorization("  dev member:Ab0_.:-z  ")

    assert identity is not None
    assert identity.claims["sub"] == "Ab0_.:-z"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Dev",
        "Dev member",
        "Dev member:",
        "Dev admin:x",
        "Dev Member:x",
        "Devmember:x",
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig",
        "Dev member:has space",
        "Dev member:slash/no",
        "Dev member:" + "x" * 129,
        "Dev member:m1 extra",
    ],
)
def test_given_anything_else_when_parsing_then_there_is_no_identity(header: str | None) -> None:
    assert parse_authorization(header) is None


def test_given_an_identity_when_building_the_authorizer_then_it_is_the_jwt_block() -> None:
    identity = Identity.partner("p")

    assert identity.authorizer == {"jwt": {"claims": identity.claims, "scopes": ["loyalty/partner"]}}


@pytest.mark.parametrize("variable", ["AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV"])
def test_given_a_lambda_environment_when_starting_then_the_local_mode_refuses(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "something")

    with pytest.raises(RuntimeError, match=variable):
        refuse_in_lambda()


def test_given_a_laptop_when_starting_then_the_local_mode_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)

    refuse_in_lambda()
