"""Identifiers: time-ordered, random-suffixed, URL-safe (ULID layout, Crockford base32)."""

from __future__ import annotations

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
