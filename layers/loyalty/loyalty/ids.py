"""Identifiers: time-ordered, random-suffixed, URL-safe (ULID layout, Crockford base32)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str, now: datetime) -> str:
    """A new id like `led_01JD3V...`: sorts by creation time (ms), 80 random bits break ties."""
    millis = int(now.timestamp() * 1000)
    return f"{prefix}_{_base32(millis, 10)}{_base32(secrets.randbits(80), 16)}"


def derived_id(prefix: str, *parts: str) -> str:
    """An id derived from `parts` (`clm_…`, 26 characters after the prefix): the same parts always
    give the same id, different parts practically never (130 bits of a BLAKE2b digest), so an
    item keyed by it is unique per `parts` without a lookup item."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=17).digest()
    return f"{prefix}_{_base32(int.from_bytes(digest) >> 6, 26)}"
