"""Instants as the API and the table write them: UTC, fixed width, so that strings sort like time."""

from __future__ import annotations

from datetime import UTC, datetime


def format_instant(moment: datetime) -> str:
    """`2028-11-23T23:00:00.000Z`: milliseconds always present, so lexicographic order is time order."""
    if moment.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
