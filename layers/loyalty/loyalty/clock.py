"""The only place that reads the wall clock; everything below the handlers takes `now` as a parameter."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
