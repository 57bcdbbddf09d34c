"""Returns (earn reversal): read the member and the purchase guard, run the domain step, render
one transaction, retry on a race (docs/design.md, "Returns and points owed").

One transaction writes the wallet (conditioned on its version), the pages the return takes from,
the ledger entry, the guard's running totals (conditioned on the totals read, so two returns of
one purchase cannot both count the same amount) and the request record.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.expressions.condition import Condition

from loyalty.domain.errors import (
    IdempotencyMismatch,
    MemberNotFound,
    PurchaseAlreadyReversed,
    ReversalExceedsPurchase,
)
from loyalty.domain.ledger import Actor
from loyalty.domain.movements import Debit, NeedLotPage
from loyalty.domain.reversals import (
    CREDITED,
    CreditedPurchase,
    ReversalQuote,
    check_reversible,
    quote_reversal,
    reverse_purchase,
)
from loyalty.domain.rules import ProgramRules
from loyalty.domain.wallet import LotPage, NeedMorePages
from loyalty.ids import new_id
from loyalty.store import keys
from loyalty.store.models import LedgerEntryItem, PurchaseGuardItem, RequestRecordItem, bind
from loyalty.store.movement import (
    attempts,
    read_request,
    render_change,
    render_request,
    replay_request,
    request_part,
)
from loyalty.store.records import LotTaken, ReversalResult, fingerprint
from loyalty.store.transact import Transaction, TransactionCancelled
from loyalty.store.wallet import MemberRead, read_member, read_on, read_page

REVERSAL = "reversal"
GUARD = "guard"


def reverse(
    member_id: str,
    transaction_id: str,
    *,
    amount: Decimal | None,
    currency: str | None,
    idempotency_key: str,
    actor: Actor,
    rules: ProgramRules,
    now: datetime,
) -> ReversalResult:
    """Take back the points of a returned purchase (all of them, or `amount`'s share).

    Reads: the member's wallet, last request and first pages (one strongly consistent Query,
    which also answers a retry of the member's last request), then the purchase guard (GetItem);
    the own lot's page when the first read did not reach it (GetItem), more pages when those read
    do not cover the points (Query). Then one transaction. A retry of an older request is caught
    by its record's condition, or, when the purchase has no amount left for it, by its record.
    """
    request_hash = fingerprint(
        {
            "operation": REVERSAL,
            "memberId": member_id,
            "transactionId": transaction_id,
            "amount": None if amount is None else str(amount.normalize()),
            "currency": currency,
            "actor": actor.as_dict(),
        }
    )
    mismatch = IdempotencyMismatch.of_key(idempotency_key)
    for _ in attempts():
        read = read_member(member_id, consistent=True)
        last = read.last_request_for(REVERSAL, idempotency_key, now)
        if last is not None:
            return _replayed(member_id, last, request_hash, mismatch)
        if read.wallet is None:
            raise MemberNotFound(member_id)
        guard = _read_guard(transaction_id)
        purchase = check_reversible(_purchase_of(guard), transaction_id, member_id)
        try:
            quote = quote_reversal(purchase, amount, rounding=rules.earning.rounding, currency=currency)
        except (PurchaseAlreadyReversed, ReversalExceedsPurchase):
            # A retry of an older request is answered by its record, not by what is left today.
            stored = read_request(member_id, REVERSAL, idempotency_key, now)
            if stored is None:
                raise
            return _replayed(member_id, stored, request_hash, mismatch)
        debit = _reversal(read, purchase, quote, rules=rules, actor=actor, now=now, key=idempotency_key)
        change = debit.change
        result = ReversalResult(
            reversal_id=change.entry.entry_id,
            transaction_id=transaction_id,
            amount=str(quote.amount),
            currency=purchase.currency,
            points=quote.points,
            taken=debit.taken,
            owed_added=debit.owed_added,
            owed=change.after.owed,
            balance=change.entry.balance_after,
            reversed_amount=str(quote.reversed_amount),
            reversed_points=quote.reversed_points,
            lots=tuple(LotTaken.of(take) for take in debit.takes),
        )
        transaction = Transaction()
        render_change(transaction, change)
        assert guard is not None  # check_reversible found it
        _render_guard(transaction, guard, member_id, quote)
        render_request(
            transaction,
            member_id,
            operation=REVERSAL,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            result=result.to_json(),
            sequence=change.sequence,
            now=now,
        )
        try:
            transaction.commit()
        except TransactionCancelled as cancelled:
            raw = cancelled.failed.get(request_part(member_id))
            if raw is not None:
                return _replayed(member_id, RequestRecordItem.from_raw_data(raw), request_hash, mismatch)
            continue  # a concurrent movement of the member, or another return of the purchase
        return result
    raise AssertionError("unreachable: attempts() raises when exhausted")


def _reversal(
    read: MemberRead,
    purchase: CreditedPurchase,
    quote: ReversalQuote,
    *,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    key: str,
) -> Debit:
    """The domain step, reading the own lot's page or more pages when it asks for them."""
    page: LotPage | None = None
    entry_id = new_id("led", now)
    while True:
        snapshot = read.snapshot()
        if snapshot is None:
            raise MemberNotFound(read.member_id)
        try:
            return reverse_purchase(
                snapshot,
                purchase,
                quote,
                rules=rules,
                actor=actor,
                now=now,
                entry_id=entry_id,
                idempotency_key=key,
                first_page=page,
            )
        except NeedLotPage as need:
            # Absent: a movement removed it since the wallet was read; the commit will say so.
            page = read_page(read.member_id, need.key, snapshot.wallet) or LotPage(need.key, {})
        except NeedMorePages:
            read = read_on(read)


def _read_guard(transaction_id: str) -> PurchaseGuardItem | None:
    bind()
    try:
        return PurchaseGuardItem.get(keys.purchase_pk(transaction_id), keys.PURCHASE, consistent_read=True)
    except PurchaseGuardItem.DoesNotExist:
        return None


def _purchase_of(guard: PurchaseGuardItem | None) -> CreditedPurchase | None:
    if guard is None:
        return None
    return CreditedPurchase(
        transaction_id=guard.transaction_id,
        member_id=guard.member_id,
        status=guard.status,
        amount=Decimal(guard.amount),
        currency=guard.currency,
        points=int(guard.points or 0),
        lot_id=guard.lot_id,
        reversed_amount=Decimal(guard.reversed_amount or 0),
        reversed_points=int(guard.reversed_points or 0),
    )


def _render_guard(
    transaction: Transaction, guard: PurchaseGuardItem, member_id: str, quote: ReversalQuote
) -> None:
    """The guard's running totals, conditioned on the totals read: of two returns of the same
    purchase read at the same time, one commits and the other reads again."""
    condition = (PurchaseGuardItem.status == CREDITED) & (PurchaseGuardItem.member_id == member_id)
    condition &= _as_read(PurchaseGuardItem.reversed_amount, guard.reversed_amount)
    condition &= _as_read(PurchaseGuardItem.reversed_points, guard.reversed_points)
    transaction.update(
        GUARD,
        PurchaseGuardItem(keys.purchase_pk(guard.transaction_id), keys.PURCHASE),
        [
            PurchaseGuardItem.reversed_amount.set(str(quote.reversed_amount)),
            PurchaseGuardItem.reversed_points.set(quote.reversed_points),
        ],
        condition,
    )


def _as_read(attribute: Attribute[Any], value: object) -> Condition:
    return attribute.does_not_exist() if value is None else attribute == value


def _replayed(
    member_id: str, record: RequestRecordItem, request_hash: str, mismatch: IdempotencyMismatch
) -> ReversalResult:
    """A return's original result (a return taken from dozens of lots is not copied in its record)."""
    return replay_request(
        member_id,
        record,
        request_hash,
        mismatch,
        from_result=lambda text: replace(ReversalResult.from_json(text), replayed=True),
        from_entry=_result_of_entry,
    )


def _result_of_entry(entry: LedgerEntryItem) -> ReversalResult:
    details = entry.details.as_dict()
    return ReversalResult(
        reversal_id=entry.entry_id,
        transaction_id=str(details["transactionId"]),
        amount=str(details["amount"]),
        currency=str(details["currency"]),
        points=int(details["pointsReversed"]),
        taken=-int(entry.points),
        owed_added=int(details["owedAdded"]),
        owed=int(details["owed"]),
        balance=int(entry.balance_after),
        reversed_amount=str(details["reversedAmount"]),
        reversed_points=int(details["reversedPoints"]),
        lots=tuple(LotTaken.of(lot) for lot in entry.lots),
        replayed=True,
    )
