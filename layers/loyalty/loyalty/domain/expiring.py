"""Expiring a member's due points: the pure step of the daily expiry run (SPEC §6, invariant 5).

Given the wallet and its due pages, and the run's as-of instant, one `MemberChange` zeroes every
lot whose `expiresAt` is at or before that instant and still holds points, lowers the balance by
as much, settles nothing else, and records one `expiry` ledger entry. Time is passed in.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from loyalty.domain.expiry import end_of_day
from loyalty.domain.ledger import Actor, EntryType, LedgerEntry, LotMovement
from loyalty.domain.lots import Lot
from loyalty.domain.movements import Drop, MemberChange, PageChange
from loyalty.domain.rules import ProgramRules
from loyalty.domain.wallet import (
    ACTIVITY_BUCKET,
    NeedMorePages,
    Snapshot,
    bucket_of_page,
    expiry_day_of_lot,
    expiry_month,
    is_dated_page,
    issue_month_of_lot,
)
from loyalty.timefmt import format_instant

EXPIRY_ACTOR = Actor("schedule", "expiry")
# A transaction holds at most 100 items: the wallet, the ledger entry and up to 98 pages. Past
# that a member's due lots are expired in several changes (each its own entry), soonest first.
MAX_PAGES_PER_CHANGE = 98


def is_due(lot: Lot, as_of: datetime) -> bool:
    """A lot is due when it still holds points and its expiry is at or before `as_of` (an ACTIVITY
    lot's expiry is the wallet's activity expiry: the store gives it that one when it reads it)."""
    return lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= as_of


def due_through_month(as_of: datetime, rules: ProgramRules) -> str:
    """The last expiry bucket (`YYYY-MM`) that can hold a lot due at `as_of`: the month of the last
    local day that ends at or before `as_of`. Later dated pages hold nothing due."""
    month = expiry_month(as_of, rules.tz)
    assert month is not None
    return month


def activity_due(snapshot: Snapshot, as_of: datetime) -> bool:
    """Policy inactivity: every ACTIVITY lot is due once the wallet's activity expiry has passed."""
    expiry = snapshot.wallet.activity_expires_at
    return expiry is not None and expiry <= as_of


def expire_due(
    snapshot: Snapshot,
    as_of: datetime,
    *,
    rules: ProgramRules,
    entry_id: str,
    now: datetime,
    max_pages: int | None = None,
) -> MemberChange | None:
    """Zero every lot due at `as_of` (`is_due`) in the snapshot's pages, or None when none is.

    The snapshot must hold every page that can hold a due lot: the dated pages of buckets up to
    `due_through_month(as_of)` and, when `activity_due`, the ACTIVITY pages (else NeedMorePages).
    Due lots leave their pages (`Drop`; a page left empty is deleted); `available` falls by their
    points; the directory (`pages`, `first_days`) follows; the next expiry becomes the soonest
    expiry still held (None: the member leaves the ByNextExpiry index). Owed points, activity and
    everything else stay as they are: expiry is not the member's activity and settles nothing.

    One `expiry` entry records the points (negative), the lots and their points, `asOf` in
    `details`. With more than `max_pages` due pages (default `MAX_PAGES_PER_CHANGE`), only the
    first `max_pages` are expired: the next expiry is then still due, and the caller runs the step
    again on a fresh read.
    """
    wallet = snapshot.wallet
    _require_due_pages(snapshot, as_of, rules)
    due_pages = [page for page in snapshot.pages if any(is_due(lot, as_of) for lot in page.lots.values())]
    expiring = due_pages[: max_pages or MAX_PAGES_PER_CHANGE]
    if not expiring:
        return None
    expiring_keys = {page.key for page in expiring}
    directory = dict(wallet.pages)
    first_days = dict(wallet.first_days)
    changes: list[PageChange] = []
    expired: list[Lot] = []
    kept: list[Lot] = []  # lots of the pages read that still hold points after the change
    for page in snapshot.pages:
        if page.key not in expiring_keys:
            kept += [lot for lot in page.lots.values() if lot.remaining > 0]
            continue
        dropped = [lot for lot in page.lots.values() if is_due(lot, as_of)]
        left = [lot for lot in page.lots.values() if not is_due(lot, as_of)]
        expired += dropped
        kept += [lot for lot in left if lot.remaining > 0]
        changes.append(
            PageChange(
                page.key,
                exists=True,
                writes=tuple(Drop(lot.lot_id) for lot in dropped),
                emptied=not left,
            )
        )
        first_days.pop(page.key, None)
        if not left:
            directory.pop(page.key, None)
            continue
        directory[page.key] = sum(lot.remaining for lot in left)
        days = [day for lot in left if (day := expiry_day_of_lot(lot.lot_id)) is not None]
        if days:
            first_days[page.key] = min(days)
    points = sum(lot.remaining for lot in expired)
    read = {page.key for page in snapshot.pages}
    unread = {key: entry for key, entry in directory.items() if key not in read}
    dropped_ids = {lot.lot_id for lot in expired}
    after = replace(
        wallet,
        available=wallet.available - points,
        version=wallet.version + 1,
        pages=directory,
        first_days=first_days,
        next_expiry_at=_soonest(kept, unread, first_days, wallet.activity_expires_at, rules),
        last_lot_id=None if wallet.last_lot_id in dropped_ids else wallet.last_lot_id,
    )
    tz = rules.tz
    expired.sort(key=lambda lot: (lot.expires_at, lot.lot_id))
    entry = LedgerEntry(
        entry_id=entry_id,
        type=EntryType.EXPIRY,
        points=-points,
        balance_after=after.available,
        occurred_at=as_of,
        recorded_at=now,
        actor=EXPIRY_ACTOR,
        reason="expiry",
        lots=tuple(
            LotMovement(
                lot.lot_id,
                lot.remaining,
                lot.expires_at,
                issue_month_of_lot(lot.lot_id),
                expiry_month(lot.expires_at, tz),
            )
            for lot in expired
        ),
        details={"asOf": format_instant(as_of)},
    )
    return MemberChange(before=wallet, after=after, pages=tuple(changes), entry=entry)


def _require_due_pages(snapshot: Snapshot, as_of: datetime, rules: ProgramRules) -> None:
    """Every page of the directory that can hold a due lot must have been read."""
    read = {page.key for page in snapshot.pages}
    last_month = due_through_month(as_of, rules)
    activity = activity_due(snapshot, as_of)
    for key, points in snapshot.wallet.pages.items():
        if key in read or not points:
            continue
        bucket = bucket_of_page(key)
        if (is_dated_page(key) and bucket <= last_month) or (bucket == ACTIVITY_BUCKET and activity):
            raise NeedMorePages(key)


def _soonest(
    kept: list[Lot],
    unread: dict[str, int],
    first_days: dict[str, int],
    activity_expires_at: datetime | None,
    rules: ProgramRules,
) -> datetime | None:
    """The soonest expiry the member still holds: the lots read that keep points, and the unread
    pages from the directory (a dated page's month and soonest day, the first of the month when
    unknown: sooner, never later; an ACTIVITY page's is the wallet's activity expiry)."""
    moments = [lot.expires_at for lot in kept if lot.expires_at is not None]
    for key, points in unread.items():
        if not points:
            continue
        bucket = bucket_of_page(key)
        if is_dated_page(key):
            day = date(int(bucket[:4]), int(bucket[5:7]), first_days.get(key, 1))
            moments.append(end_of_day(day, rules.tz))
        elif bucket == ACTIVITY_BUCKET and activity_expires_at is not None:
            moments.append(activity_expires_at)
    return min(moments, default=None)
