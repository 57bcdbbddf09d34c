"""A member's points as the engine sees them: the wallet, its lots grouped in pages, and what a
movement changes in them. Pure: no I/O, time passed in (docs/design.md, "Lots and pages").

A lot is the points one kind of credit brought on one local day that expire together, so a
member holds at most one lot per (expiry date, day of issue, kind) whatever the number of
purchases. Lots live in pages, one per (expiry bucket, month of issue): the bucket is the month
of the expiry date (`YYYY-MM`), `NEVER`, or `ACTIVITY` (policy inactivity: the expiry belongs
to the wallet and moves with activity). Page keys sort in spend order, month by month.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from loyalty.domain.lots import Lot, is_live

# Imported by `loyalty.domain.expiry` too; defined here so that reading a balance does not build
# the rules schema (docs/design.md, cold start).
NEVER_BUCKET = "NEVER"
ACTIVITY_BUCKET = "ACTIVITY"

KIND_CODES = {"earn": "e", "claim": "c", "transfer": "t", "adjustment": "a"}
KINDS = {code: kind for kind, code in KIND_CODES.items()}


# ---- identity: a lot's id says which page holds it


def lot_id_for(kind: str, earned_on: date, bucket: str, expiry_on: date | None) -> str:
    """`20281124-20261124-e`: expiry date, day of issue, kind (`never-…` / `activity-…` when the
    lot has no date of its own). Unique per member, and enough to find the lot's page."""
    dated = expiry_on is not None and bucket not in _UNDATED
    head = expiry_on.strftime("%Y%m%d") if dated and expiry_on is not None else bucket.lower()
    return f"{head}-{earned_on.strftime('%Y%m%d')}-{KIND_CODES[kind]}"


_UNDATED = {NEVER_BUCKET, ACTIVITY_BUCKET}


def page_key(bucket: str, issue_month: str) -> str:
    """`2028-11/2026-11`: the page of the lots expiring in bucket `2028-11` issued in `2026-11`."""
    return f"{bucket}/{issue_month}"


def page_key_of_lot(lot_id: str) -> str:
    head, earned, _kind = lot_id.split("-")
    bucket = head.upper() if head in ("never", "activity") else f"{head[:4]}-{head[4:6]}"
    return page_key(bucket, f"{earned[:4]}-{earned[4:6]}")


def bucket_of_page(key: str) -> str:
    return key.split("/", 1)[0]


def bucket_of_lot(lot_id: str) -> str:
    return bucket_of_page(page_key_of_lot(lot_id))


def follows_wallet_expiry(lot_id: str) -> bool:
    """An ACTIVITY lot has no expiry of its own: it expires when the wallet's activity says."""
    return bucket_of_lot(lot_id) == ACTIVITY_BUCKET


def is_dated_page(key: str) -> bool:
    return bucket_of_page(key) not in _UNDATED


def expiry_day_of_lot(lot_id: str) -> int | None:
    """The day of month of a dated lot's expiry date (its id starts with it); None if undated."""
    head = lot_id.split("-", 1)[0]
    return int(head[6:8]) if head.isdigit() else None


def issue_month_of_lot(lot_id: str) -> str:
    earned = lot_id.split("-")[1]
    return f"{earned[:4]}-{earned[4:6]}"


def kind_of_lot(lot_id: str) -> str:
    return KINDS[lot_id.rsplit("-", 1)[1]]


def expiry_month(expires_at: datetime | None, tz: tzinfo) -> str | None:
    """The month of the lot's expiry date: the last local day it can be used (`expires_at` is
    the local midnight that ends that day)."""
    if expires_at is None:
        return None
    return (expires_at - timedelta(microseconds=1)).astimezone(tz).strftime("%Y-%m")


# ---- state


@dataclass(frozen=True)
class TransferSent:
    """Points a member sent to another at `at`: the wallet keeps those of the last 24 hours, for
    the rules' maximum per rolling day (`transfers.maxPointsPerDay`)."""

    at: datetime
    points: int


@dataclass(frozen=True)
class WalletState:
    """The wallet item: the member's balance and the directory of its lot pages.

    `available` counts every stored lot, including lots past their expiry that the daily run
    has not expired yet; `pages` maps each page key to the points it holds and `first_days` a
    dated page to the day of month of its soonest expiry (so a read that stopped inside a month
    still knows which lots come first); `last_lot_id` is
    the lot the last credit went to (a second purchase the same day tops it up without reading
    its page). `version` orders every movement of the member. `transfers_sent` are the member's
    transfers of the last 24 hours; `closed_at` is set when the member closes its account (SPEC
    §10: it then sends and receives nothing)."""

    member_id: str
    available: int
    version: int
    enrolled_at: datetime
    last_activity_at: datetime
    pages: Mapping[str, int] = field(default_factory=dict)
    first_days: Mapping[str, int] = field(default_factory=dict)
    next_expiry_at: datetime | None = None
    activity_expires_at: datetime | None = None
    last_lot_id: str | None = None
    owed: int = 0
    transfers_sent: tuple[TransferSent, ...] = ()
    closed_at: datetime | None = None


@dataclass(frozen=True)
class LotPage:
    key: str
    lots: Mapping[str, Lot]

    @property
    def bucket(self) -> str:
        return bucket_of_page(self.key)


@dataclass(frozen=True)
class Snapshot:
    """The wallet and its first pages in spend order, as one read returned them.

    `complete` is True when every page was read. Otherwise the last page's month may go on in
    pages not read (other months of issue); the wallet's `first_days` says how soon those
    expire, so `known_lots` are the lots whose place in the spend order is certain."""

    wallet: WalletState
    pages: tuple[LotPage, ...]
    complete: bool

    def known_lots(self) -> list[Lot]:
        """Every lot read that no unread lot precedes in spend order (soonest expiry, then
        earliest issue: unread pages of a month were issued later than the pages read)."""
        lots = self.lots()
        if self.complete or not self.pages:
            return lots
        read = {page.key for page in self.pages}
        unread = [key for key in self.wallet.pages if key not in read]
        open_bucket = self.pages[-1].bucket
        unread_days = [
            self.wallet.first_days.get(key) for key in unread if bucket_of_page(key) == open_bucket
        ]
        if unread_days and open_bucket not in _UNDATED:
            earliest = min(day or 0 for day in unread_days)  # an unknown day could be the first
            cutoff = open_bucket.replace("-", "") + f"{earliest:02d}"
            lots = [
                lot for lot in lots if bucket_of_lot(lot.lot_id) != open_bucket or lot.lot_id[:8] <= cutoff
            ]
        # Otherwise the month is read whole, or its lots share one (undated) expiry. Policy
        # inactivity: a transfer-in keeps its own date, which may come after the wallet's activity
        # expiry, yet dated pages sort before ACTIVITY ones: unread ACTIVITY lots precede it.
        activity_expiry = self.wallet.activity_expires_at
        if activity_expiry is not None and any(bucket_of_page(key) == ACTIVITY_BUCKET for key in unread):
            lots = [lot for lot in lots if lot.expires_at is not None and lot.expires_at <= activity_expiry]
        return lots

    def lots(self) -> list[Lot]:
        return [lot for page in self.pages for lot in page.lots.values()]


class NeedMorePages(Exception):
    """A step needs pages the snapshot does not hold yet: read on and run it again."""


# ---- what the balance shows


def due_points(snapshot: Snapshot, now: datetime) -> int:
    """Points of lots past their expiry that the daily run has not expired yet: stored, counted in
    `available`, but no longer spendable (invariant 1). They sort first, so a read that starts at
    the first page sees them (but for ACTIVITY lots, after the dated pages of an inactivity wallet
    that received transfers); if it stopped before the end of them, NeedMorePages."""
    wallet = snapshot.wallet
    if wallet.next_expiry_at is None or wallet.next_expiry_at > now:
        return 0
    due = 0
    for page in snapshot.pages:
        for lot in page.lots.values():
            if lot.remaining and not is_live(lot, now):
                due += lot.remaining
    last_read = snapshot.pages[-1] if snapshot.pages else None
    if (
        not snapshot.complete
        and last_read is not None
        and any(lot.remaining and not is_live(lot, now) for lot in last_read.lots.values())
    ):
        raise NeedMorePages()
    if not snapshot.complete and _unread_activity_lots_are_due(snapshot, now):
        raise NeedMorePages()
    return due


def due_points_read(snapshot: Snapshot, now: datetime) -> int:
    """Points of the lots read that are past their expiry at `now`, for a snapshot that holds
    every page that can be due then (`store.wallet.read_expiring_by` with a horizon at or after
    `now`): unlike `due_points`, an incomplete snapshot is no reason to read on."""
    return sum(
        lot.remaining
        for page in snapshot.pages
        for lot in page.lots.values()
        if lot.remaining and not is_live(lot, now)
    )


def _unread_activity_lots_are_due(snapshot: Snapshot, now: datetime) -> bool:
    """Policy inactivity with dated lots (transfers-in keep their dates): the ACTIVITY pages sort
    after the dated ones, so when the activity expiry has passed, due lots may lie unread."""
    expiry = snapshot.wallet.activity_expires_at
    if expiry is None or expiry > now:
        return False
    read = {page.key for page in snapshot.pages}
    return any(
        bucket_of_page(key) == ACTIVITY_BUCKET and points and key not in read
        for key, points in snapshot.wallet.pages.items()
    )


def expiring_by_month(wallet: WalletState, tz: tzinfo) -> list[tuple[str, int]]:
    """Points per expiry month (`YYYY-MM`), soonest first, from the page directory alone: a dated
    page's month is its bucket; ACTIVITY lots (policy inactivity) expire in the month of the
    wallet's activity expiry; lots that never expire are left out."""
    totals: dict[str, int] = {}
    activity_month = expiry_month(wallet.activity_expires_at, tz)
    for key, points in wallet.pages.items():
        bucket = bucket_of_page(key)
        month = bucket if is_dated_page(key) else activity_month if bucket == ACTIVITY_BUCKET else None
        if month is not None and points:
            totals[month] = totals.get(month, 0) + points
    return sorted(totals.items())


def next_expiry(lots: Iterable[Lot]) -> datetime | None:
    """The soonest expiry among lots that still hold points (due ones included: the run must come)."""
    return min((lot.expires_at for lot in lots if lot.remaining and lot.expires_at is not None), default=None)
