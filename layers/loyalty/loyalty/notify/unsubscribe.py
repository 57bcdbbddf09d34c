"""Signed, expiring unsubscribe tokens: the link in a reminder identifies the member without a login.

A token is four dot-separated fields, all in the URL-safe alphabet (`[A-Za-z0-9_-]`, plus the dots),
so it goes into a query string or a `List-Unsubscribe` header as is:

    1.1795000000.1797592000.bWVtXzAxSkQzVjhRNVE.<43 characters: the tag>
    |  |          |          |
    |  |          |          member id, UTF-8, base64url without padding
    |  |          expires at (Unix seconds, UTC): issued at + the lifetime chosen by the signer
    |  issued at (Unix seconds, UTC)
    version

The tag is HMAC-SHA256, keyed with the unsubscribe secret, over a purpose label and the first three
dot-joined fields exactly as written (`loyalty.unsubscribe\\0` + `1.1795000000.…`), base64url
without padding. Every character of the token before the tag is therefore signed: changing the
version, a time or the member changes the tag. The label keeps a tag made for another purpose with
the same secret from passing as an unsubscribe tag.

Reading checks, in order and before trusting anything in the token: its shape (`MalformedToken`),
its version (`UnsupportedTokenVersion`: a later version may sign differently), the tag against every
accepted secret with `hmac.compare_digest` (`TamperedToken`), then the times (`ExpiredToken`).
All four are `InvalidUnsubscribeToken`, whose `reason` names why; the HTTP layer answers 410 for an
expired token and 400 for the others. Nothing else escapes `read_token`, whatever the input.

Rotation: `secret` is one secret or a sequence of them; the first signs, every one is accepted.
To rotate, put the new secret first and keep the old one after it until the tokens it signed have
expired (the longest lifetime in use), then remove it. Removing a secret revokes its tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from loyalty.notify.errors import EmailConfigurationError, EmailError
from loyalty.notify.messages import Program, checked_link

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "MAX_TOKEN_LENGTH",
    "ExpiredToken",
    "InvalidUnsubscribeToken",
    "MalformedToken",
    "TamperedToken",
    "TokenProblem",
    "UnsupportedTokenVersion",
    "make_token",
    "read_token",
    "unsubscribe_url",
]

VERSION = "1"
PURPOSE = b"loyalty.unsubscribe\0"
# Long enough for a member to act on an old reminder (US CAN-SPAM asks that an opt-out mechanism
# keep working for at least 30 days after the message is sent), short enough that a leaked link
# stops working on its own.
DEFAULT_TOKEN_TTL = timedelta(days=90)
# A signer whose clock runs a little ahead of the reader's must not make fresh links fail.
CLOCK_SKEW = timedelta(minutes=5)
MAX_MEMBER_ID_LENGTH = 128
# Version, two times, a 128-character member id in base64 (UTF-8: up to 4 bytes a character) and
# the tag: anything longer is refused before it is even split.
MAX_TOKEN_LENGTH = 800

_TAG_BYTES = hashlib.sha256().digest_size
_B64 = r"[A-Za-z0-9_-]+"
# Matched with `fullmatch`: `$` would accept a trailing newline.
_SHAPE = re.compile(rf"([0-9]{{1,3}})\.([0-9]{{1,12}})\.([0-9]{{1,12}})\.({_B64})\.({_B64})")

Secret = str | bytes
Secrets = Secret | Sequence[Secret]


class TokenProblem(StrEnum):
    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    TAMPERED = "tampered"
    EXPIRED = "expired"


class InvalidUnsubscribeToken(EmailError, ValueError):
    """The token cannot unsubscribe anyone; `reason` says why (the HTTP layer's status depends on it).
    The message never repeats the token."""

    reason: TokenProblem

    def __init__(self, detail: str) -> None:
        super().__init__(f"unsubscribe token {self.reason.value}: {detail}")
        self.detail = detail


class MalformedToken(InvalidUnsubscribeToken):
    """Not a token of any version we know the shape of (truncated, re-encoded, not text, too long)."""

    reason = TokenProblem.MALFORMED


class UnsupportedTokenVersion(InvalidUnsubscribeToken):
    """Shaped like a token, but of a version this code does not read."""

    reason = TokenProblem.UNSUPPORTED_VERSION


class TamperedToken(InvalidUnsubscribeToken):
    """The tag does not match with any accepted secret: altered, forged, or its secret was retired."""

    reason = TokenProblem.TAMPERED


class ExpiredToken(InvalidUnsubscribeToken):
    """Genuine, but its lifetime is over (HTTP 410: the member signs in to change their choices)."""

    reason = TokenProblem.EXPIRED


def make_token(member_id: str, *, secret: Secrets, now: datetime, ttl: timedelta = DEFAULT_TOKEN_TTL) -> str:
    """A token naming `member_id`, issued at `now` (an aware instant) and valid for `ttl` (whole
    seconds, at least one), signed with the first of `secret`."""
    _check_member_id(member_id)
    seconds = int(ttl.total_seconds())
    if seconds < 1:
        raise ValueError("an unsubscribe token must live at least one second")
    issued = _unix(now)
    member = _b64encode(member_id.encode("utf-8"))
    signed = f"{VERSION}.{issued}.{issued + seconds}.{member}"
    return f"{signed}.{_b64encode(_tag(_keys(secret)[0], signed))}"


def read_token(token: object, *, secret: Secrets, now: datetime) -> str:
    """The member id a genuine, unexpired token names; else `InvalidUnsubscribeToken` with the reason.

    Accepts any input (a query parameter may be anything): only the typed error comes out."""
    keys = _keys(secret)
    instant = _unix(now)
    if not isinstance(token, str):
        raise MalformedToken("not text")
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken("too long")
    shape = _SHAPE.fullmatch(token) if token.isascii() else None
    if shape is None:
        raise MalformedToken("not four dot-separated fields in the URL-safe alphabet")
    version, issued_text, expires_text, member_text, tag_text = shape.groups()
    if version != VERSION:
        raise UnsupportedTokenVersion(f"version {version}, this code reads version {VERSION}")
    tag = _b64decode(tag_text)
    if tag is None or len(tag) != _TAG_BYTES:
        raise MalformedToken("the tag is not a base64url SHA-256 digest")
    signed = token.rpartition(".")[0]
    # Every key is tried, so the time taken does not tell which one (or whether any) matched.
    matches = [hmac.compare_digest(_tag(key, signed), tag) for key in keys]
    if not any(matches):
        raise TamperedToken("the signature does not match")
    issued, expires = int(issued_text), int(expires_text)
    member_bytes = _b64decode(member_text)
    member_id = _utf8(member_bytes) if member_bytes is not None else None
    if member_id is None or expires <= issued or not _is_member_id(member_id):
        # Signed with our secret yet not something `make_token` writes: a signer's bug, not a member's.
        raise MalformedToken("signed, but its fields are not valid")
    if issued > instant + CLOCK_SKEW.total_seconds():
        raise MalformedToken("issued in the future")
    if instant >= expires:
        raise ExpiredToken("its lifetime is over")
    return member_id


def unsubscribe_url(links_base_url: str, token: str) -> str:
    """`<links base>/unsubscribe?token=<token>`: the link in the body and in `List-Unsubscribe`."""
    url = Program(name="", links_base_url=links_base_url).link("unsubscribe", query={"token": token})
    return checked_link(url)


# ---- internals


def _keys(secret: Secrets) -> tuple[bytes, ...]:
    candidates = [secret] if isinstance(secret, str | bytes) else list(secret)
    keys = tuple(key.encode("utf-8") if isinstance(key, str) else bytes(key) for key in candidates)
    if not keys or not all(keys):
        raise EmailConfigurationError("the unsubscribe secret is missing or empty (UNSUBSCRIBE_SECRET)")
    return keys


def _tag(key: bytes, signed: str) -> bytes:
    return hmac.new(key, PURPOSE + signed.encode("ascii"), hashlib.sha256).digest()


def _unix(now: datetime) -> int:
    if now.tzinfo is None or now.utcoffset() is None:
        raise TypeError("now must be an aware instant")
    return int(now.timestamp())


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict base64url without padding: None unless `text` is the canonical encoding of its bytes."""
    if len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == text else None


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_member_id(member_id: str) -> bool:
    return (
        0 < len(member_id) <= MAX_MEMBER_ID_LENGTH
        and member_id.isprintable()
        and member_id.strip() == member_id
    )


def _check_member_id(member_id: str) -> None:
    if not isinstance(member_id, str) or not _is_member_id(member_id):
        raise ValueError(
            f"a member id is 1 to {MAX_MEMBER_ID_LENGTH} printable characters without surrounding spaces"
        )
