"""Transfers between members, as a pure step (docs/design.md, "Transfers"): the sender's
soonest-expiring lots leave its wallet, and the receiver gets lots that keep their expiry dates.
The store renders the two `MemberChange`s and the sender's request record into one transaction.
Time and ids are passed in.

A transfer never extends validity (invariant 4), under every policy: each distinct expiry date
taken becomes one receiver lot of kind `transfer`, issued today (program timezone), id
`<expiry date>-<today>-t` (`never-<today>-t` for points that never expire). Under `inactivity`
the sender's ACTIVITY lots expire with the sender's activity (`activityExpiresAt`): at the
receiver they become dated lots of that date, so they never start following the receiver's
activity. Receiving points is not the receiver's activity either (it did nothing): its own lots
keep their expiry. Sending is the sender's (as a redemption is).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from loyalty.domain.errors import (
    MemberClosed,
    RecipientClosed,
    RecipientNotFound,
    TransferAboveMaximum,
    TransferBelowMinimum,
    TransferDailyLimitReached,
    TransfersDisabled,
    TransferToSelf,
)
from loyalty.domain.expiry import NEVER_BUCKET, dated_bucket, last_day
from loyalty.domain.ledger import Actor, EntryType, LedgerEntry, LotMovement
from loyalty.domain.lots import Lot
from loyalty.domain.movements import (
    LotWrite,
    MemberChange,
    NewLot,
    PageChange,
    TopUp,
    debit_points,
    settle_owed,
)
from loyalty.domain.rules import ProgramRules, TransferRules
from loyalty.domain.wallet import (
    LotPage,
    Snapshot,
    TransferSent,
    WalletState,
    expiry_day_of_lot,
    expiry_month,
    issue_month_of_lot,
    lot_id_for,
    page_key_of_lot,
)

# The rules' "maximum per day" is a rolling window, not a calendar day (no rush at midnight).
TRANSFER_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class TransferIds:
    """The ids a transfer writes: its own (in both ledger entries) and each member's entry id."""

    transfer_id: str
    sent_entry_id: str
    received_entry_id: str


@dataclass(frozen=True)
class Transfer:
    """The sender's change (`sent`) and the receiver's (`received`), one transaction's worth.

    `taken` are the sender's lots taken, in spend order (the caller's response); `credited` the
    receiver's lots, soonest expiry first (what is left of each once points owed are settled)."""

    transfer_id: str
    sent: MemberChange
    received: MemberChange
    taken: tuple[LotMovement, ...]
    credited: tuple[Lot, ...]

    @property
    def changes(self) -> tuple[MemberChange, MemberChange]:
        return self.sent, self.received


# ---- the refusals


def check_request(rules: TransferRules, sender_id: str, receiver_id: str, points: int) -> None:
    """Refusals that depend on the request and the rules alone: transfers off, to oneself, fewer
    points than the minimum, more than the maximum."""
    if not rules.enabled:
        raise TransfersDisabled()
    if receiver_id == sender_id:
        raise TransferToSelf()
    if points < rules.min_points:
        raise TransferBelowMinimum(rules.min_points)
    if rules.max_points is not None and points > rules.max_points:
        raise TransferAboveMaximum(rules.max_points)


def check_recipient(receiver: WalletState | None) -> WalletState:
    """The receiver's wallet: it must exist (an enrolled member) and not be closed."""
    if receiver is None:
        raise RecipientNotFound()
    if receiver.closed_at is not None:
        raise RecipientClosed()
    return receiver


def sent_in_window(sent: Iterable[TransferSent], now: datetime) -> tuple[TransferSent, ...]:
    """The transfers of the rolling day that ends at `now`: sent less than 24 hours before it. A
    transfer stamped after `now` (another instance's clock ahead of ours) still counts."""
    start = now - TRANSFER_WINDOW
    return tuple(transfer for transfer in sent if transfer.at > start)


def check_daily_limit(
    rules: TransferRules, wallet: WalletState, points: int, now: datetime
) -> tuple[TransferSent, ...]:
    """The member's transfers of the last 24 hours with this one added (what its wallet keeps), or
    TransferDailyLimitReached when they would exceed `maxPointsPerDay`."""
    recent = sent_in_window(wallet.transfers_sent, now)
    sent = sum(transfer.points for transfer in recent)
    limit = rules.max_points_per_day
    if sent + points > limit:
        fits_at = _fits_at(recent, limit, points)
        raise TransferDailyLimitReached(limit=limit, sent=sent, requested=points, fits_at=fits_at)
    return (*recent, TransferSent(now, points))


def _fits_at(recent: tuple[TransferSent, ...], limit: int, points: int) -> datetime | None:
    """The first instant `points` fit the window, as the oldest transfers leave it (None: never)."""
    if points > limit:
        return None
    total = sum(transfer.points for transfer in recent)
    for transfer in sorted(recent, key=lambda sent: sent.at):
        total -= transfer.points
        if total + points <= limit:
            return transfer.at + TRANSFER_WINDOW
    return None


# ---- the step, in two halves: the store reads the receiver once it knows the sender's side


@dataclass(frozen=True)
class Sending:
    """The sender's half of a transfer: its change (lots taken, the transfer kept in its last 24
    hours, a TRANSFER_OUT entry) and the lots taken, in spend order."""

    to_member_id: str
    points: int
    change: MemberChange
    taken: tuple[LotMovement, ...]

    def receiver_page_keys(self, rules: ProgramRules, now: datetime) -> tuple[str, ...]:
        """The receiver's pages its lots go to (today's month of issue, one per expiry month):
        the store reads those that exist with the receiver's wallet, to top up today's lots."""
        return tuple(
            dict.fromkeys(
                page_key_of_lot(lot.lot_id) for lot in credit_lots(self.taken, 0, rules=rules, now=now)
            )
        )


def transfer_points(
    sender: Snapshot,
    to_member_id: str,
    receiver: WalletState | None,
    points: int,
    *,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    ids: TransferIds,
    receiver_due: int = 0,
    receiver_pages: Mapping[str, LotPage] | None = None,
    details: Mapping[str, object] | None = None,
) -> Transfer:
    """Move `points` from the sender (its snapshot) to the receiver (its wallet; None: unknown).

    Refusals, in this order, each changing nothing: what the request and the rules alone decide
    (`check_request`: transfers disabled, to oneself, below the minimum, above the maximum), the
    receiver unknown or closed (`check_recipient`), then the sender's state (`send_points`: its
    account closed, the daily maximum reached, fewer live points than asked). `send_points` may
    also raise NeedMorePages: the store reads on and calls again.

    The store runs the same steps in two halves (`send_points`, then `receive_points` once it
    has read the receiver), in the same order.
    """
    check_request(rules.transfers, sender.wallet.member_id, to_member_id, points)
    check_recipient(receiver)
    sending = send_points(
        sender, to_member_id, points, rules=rules, actor=actor, now=now, ids=ids, details=details
    )
    return receive_points(
        sending, receiver, rules=rules, actor=actor, now=now, ids=ids, due=receiver_due, pages=receiver_pages
    )


def send_points(
    sender: Snapshot,
    to_member_id: str,
    points: int,
    *,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    ids: TransferIds,
    details: Mapping[str, object] | None = None,
) -> Sending:
    """The sender's half: `check_request`, then its account must be open, the transfer within its
    daily maximum (`check_daily_limit`), and its live points enough: they are taken soonest
    expiry first (`debit_points`, a TRANSFER_OUT entry naming the transfer and the receiver).
    Sending is the sender's activity (policy inactivity), as a redemption is."""
    wallet = sender.wallet
    check_request(rules.transfers, wallet.member_id, to_member_id, points)
    if wallet.closed_at is not None:
        raise MemberClosed(wallet.member_id)
    window = check_daily_limit(rules.transfers, wallet, points, now)
    debit = debit_points(
        sender,
        points,
        entry_type=EntryType.TRANSFER_OUT,
        reason="transfer to another member",
        rules=rules,
        actor=actor,
        now=now,
        entry_id=ids.sent_entry_id,
        details={"transferId": ids.transfer_id, "toMemberId": to_member_id, **(details or {})},
    )
    change = replace(debit.change, after=replace(debit.change.after, transfers_sent=window))
    return Sending(to_member_id, points, change, debit.takes)


def receive_points(
    sending: Sending,
    receiver: WalletState | None,
    *,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    ids: TransferIds,
    due: int = 0,
    pages: Mapping[str, LotPage] | None = None,
) -> Transfer:
    """The receiver's half: it must be enrolled and open (`check_recipient`). Its points owed
    after a return are settled first (`settle_owed`), from the soonest-expiring points; the rest
    become its lots (`credit_lots`). `due` is its points past expiry not yet expired (they do not
    count in the balance its entry records); `pages` its pages as read: a lot of today found
    there is topped up, any other added (conditioned on being new)."""
    recipient = check_recipient(receiver)
    settled, _ = settle_owed(recipient.owed, sending.points)
    credited = credit_lots(sending.taken, settled, rules=rules, now=now)
    received = _receive(
        recipient,
        credited,
        points=sending.points,
        settled=settled,
        rules=rules,
        actor=actor,
        now=now,
        ids=ids,
        from_member_id=sending.change.member_id,
        due=due,
        pages=pages or {},
    )
    return Transfer(ids.transfer_id, sending.change, received, sending.taken, credited)


def credit_lots(
    taken: Iterable[LotMovement], settled: int, *, rules: ProgramRules, now: datetime
) -> tuple[Lot, ...]:
    """The receiver's lots for the points taken: one per distinct expiry date, issued today, kind
    transfer, soonest expiry first, with `settled` points (owed) removed from the soonest first.

    A lot keeps the soonest instant of its date (it never ends later than a point it holds); a
    date of an ACTIVITY lot becomes a dated lot of that date's month, whatever the policy."""
    tz = rules.tz
    today = now.astimezone(tz).date()
    expiries: dict[str, datetime | None] = {}
    points: dict[str, int] = {}
    for take in taken:
        expires = take.expires_at
        if expires is None:
            lot_id = lot_id_for("transfer", today, NEVER_BUCKET, None)
        else:
            lot_id = lot_id_for("transfer", today, dated_bucket(expires, tz), last_day(expires, tz))
        known = expiries.get(lot_id, expires)
        expiries[lot_id] = min(known, expires) if known is not None and expires is not None else expires
        points[lot_id] = points.get(lot_id, 0) + take.points
    lots: list[Lot] = []
    to_settle = settled
    for lot_id in sorted(points, key=lambda lot: (expiries[lot] is None, expiries[lot] or now)):
        settled_here = min(to_settle, points[lot_id])
        to_settle -= settled_here
        left = points[lot_id] - settled_here
        if left:
            lots.append(Lot(lot_id, left, left, now, expiries[lot_id], "transfer", rules.version))
    return tuple(lots)


def _receive(
    receiver: WalletState,
    lots: tuple[Lot, ...],
    *,
    points: int,
    settled: int,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    ids: TransferIds,
    from_member_id: str,
    due: int,
    pages: Mapping[str, LotPage],
) -> MemberChange:
    """The receiver's change: its lots credited page by page, its owed settled, its balance, its
    next expiry (the sooner of its own and its new lots'), and its TRANSFER_IN entry. Receiving is
    not the receiver's activity: its last activity and activity expiry stay as they are."""
    writes: dict[str, list[LotWrite]] = {}
    directory = dict(receiver.pages)
    first_days = dict(receiver.first_days)
    for lot in lots:
        key = page_key_of_lot(lot.lot_id)
        # Today's lot of that date already in its page (a second transfer-in today): a top-up.
        known = key in receiver.pages and key in pages and lot.lot_id in pages[key].lots
        writes.setdefault(key, []).append(TopUp(lot.lot_id, lot.original) if known else NewLot(lot))
        directory[key] = directory.get(key, 0) + lot.original
        day = expiry_day_of_lot(lot.lot_id)
        if day is not None:
            first_days[key] = min(first_days.get(key, day), day)
    changes = tuple(
        PageChange(key, exists=key in receiver.pages, writes=tuple(page_writes))
        for key, page_writes in writes.items()
    )
    credited = sum(lot.original for lot in lots)
    expiries = [moment for moment in (receiver.next_expiry_at, *(lot.expires_at for lot in lots)) if moment]
    after = replace(
        receiver,
        available=receiver.available + credited,
        owed=receiver.owed - settled,
        version=receiver.version + 1,
        pages=directory,
        first_days=first_days,
        next_expiry_at=min(expiries, default=None),
    )
    tz = rules.tz
    entry = LedgerEntry(
        entry_id=ids.received_entry_id,
        type=EntryType.TRANSFER_IN,
        points=credited,
        balance_after=receiver.available - due + credited,
        occurred_at=now,
        recorded_at=now,
        actor=actor,
        reason="transfer from another member",
        rules_version=rules.version,
        lots=tuple(
            LotMovement(
                lot.lot_id,
                lot.original,
                lot.expires_at,
                issue_month_of_lot(lot.lot_id),
                expiry_month(lot.expires_at, tz),
            )
            for lot in lots
        ),
        details={
            "transferId": ids.transfer_id,
            "fromMemberId": from_member_id,
            **({"transferred": points, "owedSettled": settled} if settled else {}),
        },
    )
    return MemberChange(before=receiver, after=after, pages=changes, entry=entry)
