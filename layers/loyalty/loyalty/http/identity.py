"""Who is calling, from the claims API Gateway's JWT authorizer verified (SPEC §2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from loyalty.domain.ledger import Actor

PARTNER_SCOPE = "loyalty/partner"
# Claims minted by the local development identity scheme (devtools.identity) carry this issuer;
# they are refused whenever the code runs in Lambda.
DEV_ISSUER = "https://loyalty.local/dev-identity"
DEV_ISSUER_HOST = "loyalty.local"


class Role(StrEnum):
    MEMBER = "member"
    PARTNER = "partner"
    SUPPORT = "support"
    FINANCE = "finance"


class Unauthenticated(Exception):
    """No identity, or one that cannot be read (HTTP 401)."""


class Forbidden(Exception):
    """A known caller acting outside its rights (HTTP 403)."""


@dataclass(frozen=True)
class Caller:
    subject: str
    roles: frozenset[Role]

    def is_self(self, member_id: str) -> bool:
        return Role.MEMBER in self.roles and self.subject == member_id

    def require(self, member_id: str | None, *roles: Role, self_allowed: bool = True) -> None:
        """Allow the member itself (unless `self_allowed` is False) or any of `roles`; 403 otherwise."""
        if self_allowed and member_id is not None and self.is_self(member_id):
            return
        if self.roles.intersection(roles):
            return
        raise Forbidden("this caller may not do this on this member")

    @property
    def actor(self) -> Actor:
        """How the ledger names this caller: partner client, support agent or member."""
        if Role.PARTNER in self.roles:
            return Actor("partner", self.subject)
        if Role.SUPPORT in self.roles:
            return Actor("agent", self.subject)
        return Actor("member", self.subject)

    def acting_as(self, member_id: str) -> Actor:
        """The actor of a movement on `member_id`: the member itself when acting on its own account."""
        return Actor("member", self.subject) if self.is_self(member_id) else self.actor


@dataclass(frozen=True)
class Rights:
    """Who may call a route on a member: the member itself (unless `self_allowed` is False) or
    any caller holding one of `roles`."""

    roles: tuple[Role, ...]
    self_allowed: bool = True

    def check(self, caller: Caller, member_id: str | None) -> None:
        caller.require(member_id, *self.roles, self_allowed=self.self_allowed)


# Route key ("POST /members/{memberId}/earn") -> its rights, for the routes that take a body: the
# resolver checks them before reading the body (SPEC §5: identity and rights come first).
ROUTE_RIGHTS: dict[str, Rights] = {}


# Route keys anyone may call, with no identity (the unsubscribe link of an email): the resolver
# neither asks them for an identity nor reads their body; what they are given (a signed token)
# decides. A route is public only by being declared here, next to its code.
PUBLIC_ROUTES: set[str] = set()


def public_route(route_key: str) -> str:
    """Declare a route public (see `PUBLIC_ROUTES`)."""
    PUBLIC_ROUTES.add(route_key)
    return route_key


def route_rights(route_key: str, rights: Rights) -> Rights:
    """Declare a route's rights once: the route checks them, and so does the resolver, early."""
    ROUTE_RIGHTS[route_key] = rights
    return rights


def _groups(value: Any) -> set[str]:
    """`cognito:groups` as a list, or as HTTP API passes it: a string such as "[support finance]"."""
    if isinstance(value, str):
        return {part for part in value.strip("[]").replace(",", " ").split() if part}
    if isinstance(value, Iterable):
        return {str(part) for part in value}
    return set()


def _scopes(jwt: dict[str, Any], claims: dict[str, Any]) -> set[str]:
    scopes = jwt.get("scopes")
    if isinstance(scopes, list):
        return {str(scope) for scope in scopes}
    scope_claim = claims.get("scope")
    return set(scope_claim.split()) if isinstance(scope_claim, str) else set()


def is_development_issuer(issuer: Any) -> bool:
    """Whether `iss` names the development identity scheme, however it is spelt (case, trailing
    slash, scheme, path, spaces); an issuer that cannot be read counts as one (fail closed)."""
    if not isinstance(issuer, str):
        return False
    try:
        host = urlsplit(issuer.strip()).hostname or ""
    except ValueError:
        return True
    return host.rstrip(".") == DEV_ISSUER_HOST or DEV_ISSUER_HOST in issuer.lower()


def caller_from_event(event: dict[str, Any], *, in_lambda: bool) -> Caller:
    """The verified caller of an HTTP API (payload 2.0) event; `Unauthenticated` when there is none."""
    jwt = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt")
    if not isinstance(jwt, dict) or not isinstance(jwt.get("claims"), dict):
        raise Unauthenticated("no verified identity on this request")
    claims: dict[str, Any] = jwt["claims"]
    if in_lambda and is_development_issuer(claims.get("iss")):
        raise Unauthenticated("development identities are not accepted here")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("the identity has no subject")
    roles: set[Role] = set()
    if PARTNER_SCOPE in _scopes(jwt, claims):
        roles.add(Role.PARTNER)
    elif claims.get("client_id") != subject:
        # A client-credentials token (its subject is its own client id) names an application,
        # never a person: it is nobody's member account.
        roles.add(Role.MEMBER)
    groups = _groups(claims.get("cognito:groups"))
    roles.update(role for role in (Role.SUPPORT, Role.FINANCE) if role.value in groups)
    return Caller(subject=subject, roles=frozenset(roles))
