"""Expiring one member's due points, exactly once (SPEC §6, invariant 5; docs/design.md,
"Expiring a member").

Read the wallet and only the pages that can hold due lots, strongly consistent; the pure step
(`loyalty.domain.expiring.expire_due`) computes the change; one transaction writes it, the wallet
conditioned on the version read. A second run, or a concurrent one, finds the lots gone (or the
version moved, and reads again): each lot expires once and one ledger entry records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loyalty.domain.expiring import due_through_month, expire_due
from loyalty.domain.ledger import LotMovement
from loyalty.domain.movements import MemberChange
from loyalty.domain.rules import ProgramRules
from loyalty.domain.wallet import Snapshot
from loyalty.ids import new_id
from loyalty.store.movement import attempts, render_change
from loyalty.store.transact import Transaction, TransactionCancelled
from loyalty.store.wallet import read_expiring_by


@dataclass(frozen=True)
class ExpiryResult:
    """What one member's expiry did, for the run's summary: the points and lots expired, the
    ledger entries written (one; more only past 98 due pages, one per transaction) and the
    balance left."""

    member_id: str
    points: int
    lots: tuple[LotMovement, ...]
    entry_ids: tuple[str, ...]
    balance: int

    @property
    def entry_id(self) -> str:
        return self.entry_ids[0]


def expire_member(
    member_id: str, as_of: datetime, *, rules: ProgramRules, now: datetime
) -> ExpiryResult | None:
    """Expire every lot of the member due at `as_of` (expiry at or before it, points remaining):
    one transaction zeroes them, lowers the balance, moves or removes the member's ByNextExpiry
    row and writes one `expiry` ledger entry. None when nothing is due (already expired by an
    earlier or concurrent run, spent meanwhile, or no such member): nothing is written.

    A lost race (the wallet's version moved) reads again and retries (`attempts()`)."""
    changes: list[MemberChange] = []
    while True:
        change = _expire_once(member_id, as_of, rules=rules, now=now)
        if change is None:
            break
        changes.append(change)
        upcoming = change.after.next_expiry_at
        if upcoming is None or upcoming > as_of:
            break  # else more than one transaction's worth of pages was due: go on
    if not changes:
        return None
    return ExpiryResult(
        member_id=member_id,
        points=-sum(change.entry.points for change in changes),
        lots=tuple(lot for change in changes for lot in change.entry.lots),
        entry_ids=tuple(change.entry.entry_id for change in changes),
        balance=changes[-1].after.available,
    )


def _expire_once(
    member_id: str, as_of: datetime, *, rules: ProgramRules, now: datetime
) -> MemberChange | None:
    for _ in attempts():
        snapshot = read_due(member_id, as_of, rules)
        if snapshot is None:
            return None
        change = expire_due(snapshot, as_of, rules=rules, entry_id=new_id("led", now), now=now)
        if change is None:
            return None
        transaction = Transaction()
        render_change(transaction, change)
        try:
            transaction.commit()
        except TransactionCancelled:
            continue  # a concurrent movement or run: the next read tells what is still due
        return change
    raise AssertionError("unreachable: attempts() raises when exhausted")


def read_due(member_id: str, as_of: datetime, rules: ProgramRules) -> Snapshot | None:
    """The wallet and the pages that can hold lots due at `as_of`, strongly consistent: one Query
    of the wallet, the last request and the dated pages of buckets through the as-of month
    (`keys.wallet_and_due_pages_range`); under policy inactivity, when the wallet's activity
    expiry has passed and it holds ACTIVITY pages, one more Query of those. None: no wallet."""
    return read_expiring_by(member_id, due_through_month(as_of, rules), as_of, consistent=True)
