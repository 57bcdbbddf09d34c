"""Lots: the points of one credit, each with its own expiry. Debits take from the lots expiring soonest."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from loyalty.domain.errors import InsufficientPoints

__all__ = ["Lot", "Take", "allocate", "available", "expiring_summary", "is_live", "spend_order"]


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True)
class Lot:
    """Points credited to a member on one local day, by one kind of credit (earn, approved claim,
    transfer-in, adjustment), that expire together (docs/design.md, "Lots").

    `remaining` of `original` points are left; they can be used until `expires_at` (exclusive;
    None: never). `earned_at` is the first credit's instant; `rules_version` the version of the
    rules that produced it (every credit's own version is in its ledger entry)."""

    lot_id: str
    original: int
    remaining: int
    earned_at: datetime
    expires_at: datetime | None
    source_kind: str
    rules_version: str

    def __post_init__(self) -> None:
        if not 0 <= self.remaining <= self.original:
            raise ValueError(f"lot {self.lot_id}: remaining must be between 0 and original ({self.original})")
        _require_aware("earned_at", self.earned_at)
        if self.expires_at is not None:
            _require_aware("expires_at", self.expires_at)


@dataclass(frozen=True)
class Take:
    """Points taken from one lot by a debit; carries the lot's expiry (a transfer keeps it)."""

    lot_id: str
    points: int
    expires_at: datetime | None


def is_live(lot: Lot, now: datetime) -> bool:
    """A lot can be spent while it has points left and has not expired; it is expired from the
    instant `expires_at` (a lot whose `expires_at == now` is expired)."""
    _require_aware("now", now)
    return lot.remaining > 0 and (lot.expires_at is None or lot.expires_at > now)


def spend_order(lots: Iterable[Lot]) -> list[Lot]:
    """The order in which lots are spent (invariant 4): soonest expiry first, never-expiring
    lots last; ties by `earned_at`, then `lot_id`, so the order is total and stable."""
    return sorted(
        lots,
        key=lambda lot: (lot.expires_at is None, lot.expires_at or lot.earned_at, lot.earned_at, lot.lot_id),
    )


def available(lots: Iterable[Lot], now: datetime) -> int:
    """The member's available balance at `now`: the remaining points of its live lots (invariant 1)."""
    return sum(lot.remaining for lot in lots if is_live(lot, now))


def allocate(lots: Iterable[Lot], points: int, now: datetime) -> list[Take]:
    """Which lots a debit of `points` takes from: live lots in spend order, each emptied before
    the next is touched, so points that expire soonest are used first (invariant 4).

    Raises `InsufficientPoints(available, requested)` when the live lots hold fewer points,
    `ValueError` when `points` is not a positive integer or two lots share an id."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    live = [lot for lot in lots if is_live(lot, now)]
    if len({lot.lot_id for lot in live}) != len(live):
        raise ValueError("lot ids must be unique")
    balance = sum(lot.remaining for lot in live)
    if balance < points:
        raise InsufficientPoints(balance, points)
    takes: list[Take] = []
    needed = points
    for lot in spend_order(live):
        if needed == 0:
            break
        taken = min(lot.remaining, needed)
        takes.append(Take(lot_id=lot.lot_id, points=taken, expires_at=lot.expires_at))
        needed -= taken
    return takes


def expiring_summary(lots: Iterable[Lot], now: datetime, tz: tzinfo) -> list[tuple[date, datetime, int]]:
    """Points per upcoming expiry: `(expiry date in tz, expires_at in UTC, points)` for each
    distinct `expires_at` of the live lots, soonest first. Never-expiring lots are left out.
    The expiry date is the last local day the points can be used (`expires_at` is the local
    midnight that ends it)."""
    totals: dict[datetime, int] = {}
    for lot in lots:
        if lot.expires_at is not None and is_live(lot, now):
            instant = lot.expires_at.astimezone(UTC)
            totals[instant] = totals.get(instant, 0) + lot.remaining
    return [
        ((instant - timedelta(microseconds=1)).astimezone(tz).date(), instant, points)
        for instant, points in sorted(totals.items())
    ]
