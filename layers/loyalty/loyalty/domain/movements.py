"""Movements as pure steps: from a snapshot of a member's points to the change one transaction
writes (docs/design.md, "The points transaction"). Time and ids are passed in.

A step returns a `MemberChange`: the wallet before and after, the lot writes per page, and one
typed ledger entry. `loyalty.store.movement` renders one or more changes (a transfer has two)
plus the idempotency record into a single `TransactWriteItems`; adding a movement type means
a step here and a call to the renderer there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo

from loyalty.domain.earning import EarnQuote, Purchase
from loyalty.domain.errors import InsufficientPoints, InvalidRequest
from loyalty.domain.expiry import (
    ACTIVITY_BUCKET,
    bucket_for,
    end_of_day,
    expires_at,
    follows_activity,
    last_day,
)
from loyalty.domain.ledger import Actor, EntryType, LedgerEntry, LotMovement
from loyalty.domain.lots import Lot, Take, allocate, is_live
from loyalty.domain.rules import ProgramRules
from loyalty.domain.wallet import (
    LotPage,
    NeedMorePages,
    Snapshot,
    WalletState,
    bucket_of_page,
    due_points,
    expiry_day_of_lot,
    expiry_month,
    follows_wallet_expiry,
    is_dated_page,
    issue_month_of_lot,
    lot_id_for,
    next_expiry,
    page_key_of_lot,
)

# A purchase reported a little ahead of our clock is clock skew, not a purchase from the future.
CLOCK_SKEW = timedelta(minutes=5)


# ---- what a step asks the store to write


@dataclass(frozen=True)
class NewLot:
    """Add a lot that is not in its page (the write is conditioned on that)."""

    lot: Lot


@dataclass(frozen=True)
class TopUp:
    """Add points to a lot known to exist, without reading it (a second credit the same day)."""

    lot_id: str
    points: int


@dataclass(frozen=True)
class Spend:
    """A lot read before the movement keeps some points: `lot` is the lot after (written whole)."""

    lot: Lot


@dataclass(frozen=True)
class Drop:
    """A lot read before the movement has no points left: it leaves its page (the ledger keeps it)."""

    lot_id: str


LotWrite = NewLot | TopUp | Spend | Drop


@dataclass(frozen=True)
class PageChange:
    """The writes to one page. `exists` says whether the page is in the table (the wallet's
    directory knows); `emptied` that no lot is left in it, so it is deleted."""

    key: str
    exists: bool
    writes: tuple[LotWrite, ...]
    emptied: bool = False


@dataclass(frozen=True)
class MemberChange:
    before: WalletState
    after: WalletState
    pages: tuple[PageChange, ...]
    entry: LedgerEntry

    @property
    def member_id(self) -> str:
        return self.before.member_id

    @property
    def sequence(self) -> int:
        """The ledger sequence of the entry: the wallet version the transaction writes."""
        return self.before.version + 1


# ---- credit: a purchase becomes points


def settle_owed(owed: int, points: int) -> tuple[int, int]:
    """Points owed after a return are settled first by the next credit of any kind:
    `(settled, credited)`, what the credit pays back and what is left to credit into lots."""
    settled = min(max(owed, 0), points)
    return settled, points - settled


@dataclass(frozen=True)
class ClaimCredit:
    """A purchase credited by an approved claim rather than by the partner's earn: the lot is
    issued on the approval day (kind `claim`), its expiry computed from the purchase date but
    never sooner than `minimum_validity` after the approval's local day."""

    claim_id: str
    approved_at: datetime
    reason: str = "claim approved"
    minimum_validity: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class Credit:
    """A credited purchase: the change to write, and the lot (None when it earned no point)."""

    change: MemberChange
    lot: Lot | None


def check_purchase_time(purchase: Purchase, now: datetime) -> None:
    """A purchase from the future (beyond clock skew) is refused before anything is read."""
    if purchase.occurred_at > now + CLOCK_SKEW:
        raise InvalidRequest("occurredAt", "is in the future")


def credit_purchase(
    wallet: WalletState,
    purchase: Purchase,
    quote: EarnQuote,
    *,
    transaction_id: str,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    entry_id: str,
    due: int = 0,
    page: LotPage | None = None,
    claim: ClaimCredit | None = None,
) -> Credit:
    """Credit `quote.points` for a purchase into the lot of its day and expiry.

    The purchase is activity (policy inactivity moves every undated lot's expiry). A purchase
    whose points would already have expired is refused. `due` is the points of lots past their
    expiry that the run has not expired yet (they do not count in the balance the entry
    records); `page` is the lot's page when the store had to read it (the lot was there but
    the wallet did not say so). With `claim`, the credit is an approved claim's (see ClaimCredit).

    Points owed after a return are settled first (`settle_owed`): only the rest makes the lot.
    The entry's `points` is what the balance gained; `details` keep the points earned and settled.
    """
    check_purchase_time(purchase, now)
    activity_at = max(wallet.last_activity_at, purchase.occurred_at)
    expiry = expires_at(
        rules, earned_at=purchase.occurred_at, enrolled_at=wallet.enrolled_at, last_activity_at=activity_at
    )
    tz = rules.tz
    if claim is not None and expiry is not None:
        expiry = max(expiry, end_of_day(claim.approved_at.astimezone(tz).date() + claim.minimum_validity, tz))
    if expiry is not None and expiry <= now:
        raise InvalidRequest("occurredAt", "the purchase is too old: its points would already have expired")
    kind = "earn" if claim is None else "claim"
    bucket = bucket_for(rules, expiry)
    issued_on = (purchase.occurred_at if claim is None else claim.approved_at).astimezone(tz).date()
    lot_id = lot_id_for(kind, issued_on, bucket, last_day(expiry, tz) if expiry else None)
    key = page_key_of_lot(lot_id)
    owed_settled, credited = settle_owed(wallet.owed, quote.points)
    # The day's lot: its expiry is the end of the expiry date (or the wallet's, for ACTIVITY lots).
    lot = (
        Lot(
            lot_id=lot_id,
            original=credited,
            remaining=credited,
            earned_at=purchase.occurred_at if claim is None else claim.approved_at,
            expires_at=expiry,
            source_kind=kind,
            rules_version=quote.rules_version,
        )
        if credited > 0
        else None
    )
    pages: tuple[PageChange, ...] = ()
    directory = dict(wallet.pages)
    first_days = dict(wallet.first_days)
    if lot is not None:
        pages = (_add_to_page(wallet, key, lot, page),)
        directory[key] = directory.get(key, 0) + lot.original
        day = expiry_day_of_lot(lot_id)
        if day is not None:
            first_days[key] = min(first_days.get(key, day), day)
    activity_expiry = expiry if follows_activity(rules) else wallet.activity_expires_at
    after = replace(
        wallet,
        available=wallet.available + credited,
        owed=wallet.owed - owed_settled,
        version=wallet.version + 1,
        last_activity_at=activity_at,
        pages=directory,
        first_days=first_days,
        last_lot_id=lot_id if lot is not None else wallet.last_lot_id,
        activity_expires_at=activity_expiry,
        # A credit that only settled what was owed makes no lot: nothing new can expire.
        next_expiry_at=_next_expiry_after_credit(
            wallet, directory, first_days, expiry if lot is not None else None, bucket, activity_expiry, tz
        ),
    )
    entry = LedgerEntry(
        entry_id=entry_id,
        type=EntryType.EARN if claim is None else EntryType.CLAIM_CREDIT,
        points=credited,
        balance_after=wallet.available - due + credited,
        occurred_at=purchase.occurred_at,
        recorded_at=now,
        actor=actor,
        reason="purchase" if claim is None else claim.reason,
        rules_version=quote.rules_version,
        lots=(LotMovement(lot_id, credited, expiry, issue_month_of_lot(lot_id), expiry_month(expiry, tz)),)
        if lot is not None
        else (),
        details={
            **({} if claim is None else {"claimId": claim.claim_id}),
            **({"earned": quote.points, "owedSettled": owed_settled} if owed_settled else {}),
            "transactionId": transaction_id,
            "amount": str(purchase.amount),
            "currency": purchase.currency,
            "channel": purchase.channel,
            "category": purchase.category,
            "multiplier": str(quote.multiplier),
            "bonusPoints": quote.bonus_points,
            "campaigns": list(quote.campaigns),
        },
    )
    return Credit(MemberChange(before=wallet, after=after, pages=pages, entry=entry), lot)


def _add_to_page(wallet: WalletState, key: str, lot: Lot, page: LotPage | None) -> PageChange:
    """A new page, a top-up of the day's lot, or a new lot in an existing page."""
    if key not in wallet.pages:
        return PageChange(key, exists=False, writes=(NewLot(lot),))
    known = page is not None and lot.lot_id in page.lots
    if known or wallet.last_lot_id == lot.lot_id:
        return PageChange(key, exists=True, writes=(TopUp(lot.lot_id, lot.original),))
    return PageChange(key, exists=True, writes=(NewLot(lot),))


def _next_expiry_after_credit(
    wallet: WalletState,
    directory: dict[str, int],
    first_days: dict[str, int],
    expiry: datetime | None,
    bucket: str,
    activity_expiry: datetime | None,
    tz: tzinfo,
) -> datetime | None:
    candidates = [wallet.next_expiry_at]
    if bucket != ACTIVITY_BUCKET:
        candidates.append(expiry)
    if any(bucket_of_page(key) == ACTIVITY_BUCKET and points for key, points in directory.items()):
        # Activity moved every undated lot's expiry, so the wallet's next expiry may be the
        # activity's old one: the next is the activity's new one or the soonest dated lot's
        # (under inactivity, transfers-in keep their dates), which the directory gives.
        candidates = [activity_expiry, _soonest_dated_expiry(directory, first_days, tz)]
    return min((moment for moment in candidates if moment is not None), default=None)


def _soonest_dated_expiry(
    directory: dict[str, int], first_days: dict[str, int], tz: tzinfo
) -> datetime | None:
    """The soonest expiry of the dated pages, from the directory alone: a page's month and the day
    of its soonest lot (the first of the month when unknown: sooner, never later)."""
    days = [
        date(int(bucket[:4]), int(bucket[5:7]), first_days.get(key, 1))
        for key, points in directory.items()
        if points and is_dated_page(key) and (bucket := bucket_of_page(key))
    ]
    return end_of_day(min(days), tz) if days else None


# ---- debit: points leave the soonest-expiring lots


@dataclass(frozen=True)
class Debit:
    """A debit's change and the lots it took (in the order taken). `owed_added` is the part of a
    return's points the lots could not cover: it became points owed (`shortfall_to_owed`)."""

    change: MemberChange
    takes: tuple[LotMovement, ...]
    owed_added: int = 0

    @property
    def taken(self) -> int:
        """Points taken from lots (what the balance lost)."""
        return sum(take.points for take in self.takes)


class NeedLotPage(NeedMorePages):
    """The lot to take first is in a page the read did not reach: read that one page (by key)
    and run the step again with it as `first_page`."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def debit_points(
    snapshot: Snapshot,
    points: int,
    *,
    entry_type: EntryType,
    reason: str,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    entry_id: str,
    details: dict[str, object] | None = None,
    first_lot_id: str | None = None,
    first_page: LotPage | None = None,
    shortfall_to_owed: bool = False,
    activity: bool = True,
) -> Debit:
    """Take `points` from the live lots, soonest expiry first (invariant 4), never more than the
    live balance (InsufficientPoints). The member's activity moves undated lots' expiry.

    For a return (earn reversal): `first_lot_id` is taken from first when it is live (the
    purchase's own lot; `first_page` is its page when the read did not reach it, else
    NeedLotPage), then the soonest-expiring lots; with `shortfall_to_owed`, what the live lots
    cannot cover becomes points owed instead of a refusal (the balance never goes below zero).
    Lots past their expiry that the run has not expired yet are never taken. `activity=False`:
    the movement is not the member's activity (a return does not keep points alive).

    Raises NeedMorePages when the snapshot's whole pages do not hold the points, or hold no lot
    after the ones taken (the next expiry must be known): the store reads on and calls again.
    """
    wallet = snapshot.wallet
    live = wallet.available - due_points(snapshot, now)
    if points > live and not shortfall_to_owed:
        raise InsufficientPoints(live, points)
    taking = min(points, live)
    first, pages = _first_lot(snapshot, first_lot_id, first_page)
    first_points = min(first.remaining, taking) if first is not None and is_live(first, now) else 0
    rest = taking - first_points
    known = snapshot.known_lots()
    others = [lot for lot in known if first is None or lot.lot_id != first.lot_id]
    if sum(lot.remaining for lot in others if is_live(lot, now)) < rest:
        raise NeedMorePages()
    takes = [Take(first.lot_id, first_points, first.expires_at)] if first is not None and first_points else []
    if rest:
        takes += allocate(others, rest, now)
    changes, remaining_lots = _take_from_pages(pages, takes)
    known_ids = {lot.lot_id for lot in known}
    upcoming = [lot for lot in remaining_lots if lot.lot_id in known_ids and lot.remaining]
    if not snapshot.complete and not upcoming:
        raise NeedMorePages()
    directory = dict(wallet.pages)
    first_days = dict(wallet.first_days)
    for change in changes:
        left = [lot for lot in remaining_lots if page_key_of_lot(lot.lot_id) == change.key]
        days = [day for lot in left if (day := expiry_day_of_lot(lot.lot_id)) is not None]
        first_days.pop(change.key, None)
        if change.emptied or not left:
            directory.pop(change.key, None)
            continue
        directory[change.key] = sum(lot.remaining for lot in left)
        if days:
            first_days[change.key] = min(days)
    activity_at = max(wallet.last_activity_at, now) if activity else wallet.last_activity_at
    activity_expiry = wallet.activity_expires_at
    if activity and follows_activity(rules):
        activity_expiry = expires_at(
            rules, earned_at=now, enrolled_at=wallet.enrolled_at, last_activity_at=activity_at
        )
    upcoming = [
        replace(lot, expires_at=activity_expiry) if follows_wallet_expiry(lot.lot_id) else lot
        for lot in upcoming
    ]
    tz = rules.tz
    movements = tuple(
        LotMovement(
            take.lot_id,
            take.points,
            take.expires_at,
            issue_month_of_lot(take.lot_id),
            expiry_month(take.expires_at, tz),
        )
        for take in takes
    )
    after = replace(
        wallet,
        available=wallet.available - taking,
        owed=wallet.owed + points - taking,
        version=wallet.version + 1,
        last_activity_at=activity_at,
        pages=directory,
        first_days=first_days,
        activity_expires_at=activity_expiry,
        next_expiry_at=next_expiry(upcoming),
        last_lot_id=None if wallet.last_lot_id in _dropped(changes) else wallet.last_lot_id,
    )
    entry = LedgerEntry(
        entry_id=entry_id,
        type=entry_type,
        points=-taking,
        balance_after=live - taking,
        occurred_at=now,
        recorded_at=now,
        actor=actor,
        reason=reason,
        lots=movements,
        details=dict(details or {}),
    )
    member_change = MemberChange(before=wallet, after=after, pages=changes, entry=entry)
    return Debit(member_change, movements, owed_added=points - taking)


def _first_lot(
    snapshot: Snapshot, lot_id: str | None, page: LotPage | None
) -> tuple[Lot | None, tuple[LotPage, ...]]:
    """The lot to take first, and the pages a debit may write: the snapshot's, plus the first
    lot's own page when the read did not reach it. None when that lot is gone (its page left the
    wallet's directory, or no longer holds it: spent, expired)."""
    if lot_id is None:
        return None, snapshot.pages
    key = page_key_of_lot(lot_id)
    for read in snapshot.pages:
        if read.key == key:
            return read.lots.get(lot_id), snapshot.pages
    if key not in snapshot.wallet.pages:
        return None, snapshot.pages
    if page is None or page.key != key:
        raise NeedLotPage(key)
    return page.lots.get(lot_id), (*snapshot.pages, page)


def _dropped(changes: tuple[PageChange, ...]) -> set[str]:
    return {write.lot_id for change in changes for write in change.writes if isinstance(write, Drop)}


def _take_from_pages(
    pages: tuple[LotPage, ...], takes: list[Take]
) -> tuple[tuple[PageChange, ...], list[Lot]]:
    """The page writes of `takes`, and every lot of these pages that still holds points after."""
    taken = {take.lot_id: take.points for take in takes}
    changes: list[PageChange] = []
    remaining: list[Lot] = []
    for page in pages:
        writes: list[LotWrite] = []
        kept = 0
        for lot in page.lots.values():
            if lot.lot_id not in taken:
                kept += 1
                remaining.append(lot)
                continue
            left = lot.remaining - taken[lot.lot_id]
            if left == 0:
                writes.append(Drop(lot.lot_id))
            else:
                spent = replace(lot, remaining=left)
                writes.append(Spend(spent))
                remaining.append(spent)
                kept += 1
        if writes:
            changes.append(PageChange(page.key, exists=True, writes=tuple(writes), emptied=kept == 0))
    return tuple(changes), remaining
