"""Earn and redeem: read a snapshot, run the domain step, render one transaction, retry on a race.

See docs/design.md ("The points transaction") for the items each writes and what it costs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from loyalty.domain.claims import ClaimOutcome
from loyalty.domain.earning import Purchase, quote_points
from loyalty.domain.errors import AlreadyCredited, IdempotencyMismatch, InsufficientPoints, MemberNotFound
from loyalty.domain.ledger import Actor, EntryType
from loyalty.domain.movements import check_purchase_time, credit_purchase, debit_points
from loyalty.domain.rules import ProgramRules
from loyalty.domain.wallet import LotPage, NeedMorePages, WalletState
from loyalty.ids import new_id
from loyalty.store import claims, keys
from loyalty.store.models import (
    PurchaseGuardItem,
    RequestRecordItem,
    TableItem,
    WalletItem,
    bind,
)
from loyalty.store.movement import (
    attempts,
    page_part,
    read_request,
    render_change,
    render_request,
    replay_request,
    request_part,
)
from loyalty.store.records import EarnResult, LotTaken, RedeemResult, fingerprint, replayed
from loyalty.store.transact import Transaction, TransactionCancelled
from loyalty.store.wallet import read_live, read_member, read_on, read_page, wallet_state
from loyalty.timefmt import format_instant

REDEEM = "redeem"
GUARD = "guard"


# ---- earn


def earn(
    member_id: str,
    transaction_id: str,
    purchase: Purchase,
    *,
    actor: Actor,
    rules: ProgramRules,
    now: datetime,
) -> EarnResult:
    """Credit a purchase: the day's lot, the balance, a ledger entry and the purchase guard, at once.

    A `transactionId` is credited at most once (invariant 2): the guard is put with
    `attribute_not_exists` in the same transaction and keeps the result, so a retry gets that
    result again and a different request with the same id gets a 409.
    """
    check_purchase_time(purchase, now)
    request_hash = fingerprint(
        {
            "operation": "earn",
            "memberId": member_id,
            "transactionId": transaction_id,
            "amount": str(Decimal(purchase.amount).normalize()),
            "currency": purchase.currency,
            "occurredAt": format_instant(purchase.occurred_at),
            "channel": purchase.channel,
            "category": purchase.category,
            "actor": actor.as_dict(),
        }
    )
    already = AlreadyCredited(transaction_id)
    quote = quote_points(rules, purchase)
    page: LotPage | None = None
    for _ in attempts():
        wallet, guard = _read_wallet_and_guard(member_id, transaction_id)
        if guard is not None and not claims.guard_claimed(guard):
            return replayed(EarnResult, guard.request_hash, guard.result, request_hash, already)
        if wallet is None:
            raise MemberNotFound(member_id)
        credit = credit_purchase(
            wallet,
            purchase,
            quote,
            transaction_id=transaction_id,
            rules=rules,
            actor=actor,
            now=now,
            entry_id=new_id("led", now),
            due=_due(member_id, wallet, now),
            page=page,
        )
        entry = credit.change.entry
        lot = credit.lot
        result = EarnResult(
            entry_id=entry.entry_id,
            transaction_id=transaction_id,
            points=quote.points,
            lot_id=lot.lot_id if lot else None,
            expires_at=format_instant(lot.expires_at) if lot and lot.expires_at else None,
            balance=entry.balance_after,
            rules_version=quote.rules_version,
            owed_settled=int(entry.details.get("owedSettled", 0)),
        )
        transaction = Transaction()
        render_change(transaction, credit.change)
        credited_guard = PurchaseGuardItem(
            keys.purchase_pk(transaction_id),
            keys.PURCHASE,
            member_id=member_id,
            transaction_id=transaction_id,
            status="credited",
            credited_by="earn",
            entry_id=entry.entry_id,
            sequence=credit.change.sequence,
            lot_id=result.lot_id,
            points=quote.points,
            amount=str(purchase.amount),
            currency=purchase.currency,
            occurred_at=purchase.occurred_at,
            request_hash=request_hash,
            result=result.to_json(),
            claim_id=guard.claim_id if guard is not None else None,
            created_at=now,
        )
        closed: ClaimOutcome | None = None
        if guard is None:
            transaction.put(GUARD, credited_guard, TableItem.pk.does_not_exist(), return_old=True)
        else:
            # A claim waits on this purchase: it closes in this very transaction (matched, or
            # rejected when the purchase is another member's), so the purchase is credited once.
            transaction.put(GUARD, credited_guard, claims.claimed_by_condition(guard), return_old=True)
            closed = claims.render_closing(
                transaction,
                guard,
                earner_id=member_id,
                credited=claims.credited_points(quote.points, credit),
                occurred_at=purchase.occurred_at,
                actor=actor,
                now=now,
            )
        try:
            transaction.commit()
        except TransactionCancelled as cancelled:
            stored = cancelled.failed.get(GUARD)
            if stored is not None:
                guard = PurchaseGuardItem.from_raw_data(stored)
                if not claims.guard_claimed(guard):
                    return replayed(EarnResult, guard.request_hash, guard.result, request_hash, already)
            if lot is not None:
                key = credit.change.pages[0].key
                if cancelled.stale_path or page_part(member_id, key) in cancelled.failed:
                    # The day's lot is (or is not) in its page, unlike what the wallet said: read it.
                    page = read_page(member_id, key, wallet)
            continue  # someone moved first (or the guard appeared, or the claim was decided): read again
        return result if closed is None else replace(result, closed_claim=closed)
    raise AssertionError("unreachable: attempts() raises when exhausted")


def _read_wallet_and_guard(
    member_id: str, transaction_id: str
) -> tuple[WalletState | None, PurchaseGuardItem | None]:
    """The wallet and the purchase guard, strongly consistent, in one BatchGetItem."""
    bind()
    wanted = [
        (keys.member_pk(member_id), keys.wallet_sk()),
        (keys.purchase_pk(transaction_id), keys.PURCHASE),
    ]
    wallet: WalletState | None = None
    guard: PurchaseGuardItem | None = None
    for item in TableItem.batch_get(wanted, consistent_read=True):
        if isinstance(item, WalletItem):
            wallet = wallet_state(item)
        elif isinstance(item, PurchaseGuardItem):
            guard = item
    return wallet, guard


def _due(member_id: str, wallet: WalletState, now: datetime) -> int:
    """Points past their expiry that the run has not expired yet; read only when some exist
    (the wallet's next expiry says so: between an expiry instant and the daily run)."""
    if wallet.next_expiry_at is None or wallet.next_expiry_at > now:
        return 0
    return read_live(member_id, now, consistent=True).due


# ---- redeem


def _replayed_redemption(
    member_id: str, record: RequestRecordItem, request_hash: str, mismatch: IdempotencyMismatch
) -> RedeemResult:
    return replay_request(
        member_id,
        record,
        request_hash,
        mismatch,
        from_result=lambda text: replace(RedeemResult.from_json(text), replayed=True),
        from_entry=lambda entry: RedeemResult(
            redemption_id=entry.entry_id,
            points=-int(entry.points),
            balance=int(entry.balance_after),
            lots=tuple(LotTaken.of(lot) for lot in entry.lots),
            replayed=True,
        ),
    )


def redeem(
    member_id: str,
    points: int,
    *,
    idempotency_key: str,
    actor: Actor,
    rules: ProgramRules,
    now: datetime,
) -> RedeemResult:
    """Spend `points`, soonest-expiring lots first (invariant 4), never more than the live balance.

    One strongly consistent Query reads the wallet, the member's last request and the first
    lot pages (reading on only when a large redemption needs more); one transaction then writes
    the wallet (conditioned on its version), the pages it touches, the ledger entry and the
    request record. A retry of an older request is caught by the record's own condition.
    """
    request_hash = fingerprint(
        {"operation": REDEEM, "memberId": member_id, "points": points, "actor": actor.as_dict()}
    )
    mismatch = IdempotencyMismatch.of_key(idempotency_key)
    for _ in attempts():
        read = read_member(member_id, consistent=True)
        last = read.last_request_for(REDEEM, idempotency_key, now)
        if last is not None:
            return _replayed_redemption(member_id, last, request_hash, mismatch)
        while True:
            snapshot = read.snapshot()
            if snapshot is None:
                raise MemberNotFound(member_id)
            try:
                debit = debit_points(
                    snapshot,
                    points,
                    entry_type=EntryType.REDEEM,
                    reason="redemption",
                    rules=rules,
                    actor=actor,
                    now=now,
                    entry_id=new_id("led", now),
                    details={"idempotencyKey": idempotency_key},
                )
                break
            except NeedMorePages:
                read = read_on(read)
            except InsufficientPoints:
                # A retry of an older request is answered by its record, not by today's balance.
                stored = read_request(member_id, REDEEM, idempotency_key, now)
                if stored is None:
                    raise
                return _replayed_redemption(member_id, stored, request_hash, mismatch)
        result = RedeemResult(
            redemption_id=debit.change.entry.entry_id,
            points=points,
            balance=debit.change.entry.balance_after,
            lots=tuple(LotTaken.of(take) for take in debit.takes),
        )
        transaction = Transaction()
        render_change(transaction, debit.change)
        render_request(
            transaction,
            member_id,
            operation=REDEEM,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            result=result.to_json(),
            sequence=debit.change.sequence,
            now=now,
        )
        try:
            transaction.commit()
        except TransactionCancelled as cancelled:
            raw = cancelled.failed.get(request_part(member_id))
            if raw is not None:
                record = RequestRecordItem.from_raw_data(raw)
                return _replayed_redemption(member_id, record, request_hash, mismatch)
            continue  # a concurrent movement: the next read tells
        return result
    raise AssertionError("unreachable: attempts() raises when exhausted")
