"""The development identity scheme: stands in for Cognito in the local mode, never accepted in AWS.

A request carries `Authorization: Dev <role>:<id>` (`Dev member:demo-alice`,
`Dev partner:demo-pos`, `Dev support:agent-1`, `Dev finance:fin-1`). The local server turns it
into the claims an API Gateway JWT authorizer would pass for a Cognito token of that caller,
every one with `iss` = `DEV_ISSUER`, so the shipped code can tell (and, in Lambda, refuse) them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from loyalty.http.identity import DEV_ISSUER  # one issuer: the one the shipped code refuses in Lambda

__all__ = ["DEV_ISSUER", "ROLES", "Identity", "parse_authorization", "refuse_in_lambda"]

ROLES = ("member", "partner", "support", "finance")
PARTNER_SCOPE = "loyalty/partner"
DEV_APP_CLIENT = "loyalty-local-app"
"""The app client a member's or an agent's dev token pretends to come from (a partner is its own client)."""

# The scheme name is case-insensitive (RFC 9110); the role and the id are not.
_AUTHORIZATION = re.compile(r"(?i:Dev) +(member|partner|support|finance):([A-Za-z0-9_.:-]{1,128})")
_USER_SCOPES = ["openid", "email"]
"""A user's Cognito access token always carries some scope; never the partner's."""


@dataclass(frozen=True)
class Identity:
    """What the JWT authorizer passes to the handler: `requestContext.authorizer.jwt`."""

    claims: dict[str, object]
    scopes: list[str] | None

    @classmethod
    def member(cls, member_id: str) -> Identity:
        """A member's Cognito access token: `sub` is the memberId."""
        return cls(claims=_user_claims(member_id), scopes=list(_USER_SCOPES))

    @classmethod
    def partner(cls, client_id: str) -> Identity:
        """A partner's client-credentials token: no user, the client is the caller."""
        claims: dict[str, object] = {
            "iss": DEV_ISSUER,
            "sub": client_id,
            "client_id": client_id,
            "token_use": "access",
            "scope": PARTNER_SCOPE,
        }
        return cls(claims=claims, scopes=[PARTNER_SCOPE])

    @classmethod
    def support(cls, agent_id: str) -> Identity:
        """A support agent: member of the `support` group, passed by HTTP API as the string `[support]`."""
        return cls(
            claims={**_user_claims(agent_id), "cognito:groups": "[support]"}, scopes=list(_USER_SCOPES)
        )

    @classmethod
    def finance(cls, user_id: str) -> Identity:
        """Someone from finance: member of the `finance` group."""
        return cls(claims={**_user_claims(user_id), "cognito:groups": "[finance]"}, scopes=list(_USER_SCOPES))

    @classmethod
    def for_role(cls, role: str, subject: str) -> Identity:
        constructors = {
            "member": cls.member,
            "partner": cls.partner,
            "support": cls.support,
            "finance": cls.finance,
        }
        return constructors[role](subject)

    @property
    def authorizer(self) -> dict[str, object]:
        """The `requestContext.authorizer` block of an HTTP API payload v2.0 event."""
        return {"jwt": {"claims": dict(self.claims), "scopes": list(self.scopes) if self.scopes else None}}


def _user_claims(subject: str) -> dict[str, object]:
    return {
        "iss": DEV_ISSUER,
        "sub": subject,
        "username": subject,
        "client_id": DEV_APP_CLIENT,
        "token_use": "access",
        "scope": " ".join(_USER_SCOPES),
    }


def parse_authorization(header: str | None) -> Identity | None:
    """`Dev <role>:<id>` → the identity; anything else (absent, a real JWT, junk) → None."""
    if header is None:
        return None
    match = _AUTHORIZATION.fullmatch(header.strip())
    if match is None:
        return None
    role, subject = match.groups()
    return Identity.for_role(role, subject)


def refuse_in_lambda() -> None:
    """Stop here when running inside Lambda: the dev identities must never be accepted in AWS."""
    for variable in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV"):
        if os.environ.get(variable):
            raise RuntimeError(
                f"{variable} is set: this is a Lambda environment, where the local mode and its "
                "development identities must never run"
            )
