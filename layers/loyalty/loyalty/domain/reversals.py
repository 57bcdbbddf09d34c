"""Returns: a purchase's points taken back, in full or in proportion to a partial amount.

Pure: the store reads the purchase guard and the member's snapshot, these functions decide.

- Only a purchase credited to this member can be reversed (`PurchaseNotFound` otherwise: never
  reported, another member's, or only claimed by a claim still pending).
- Points reversed are cumulative, so partial returns never drift: after a return, the purchase
  has `round(points * amount returned so far / purchase amount)` points reversed in all, rounded
  by the rules' rounding mode; this return takes the difference with what was reversed before.
  The amount returned never exceeds the purchase's amount, so the points reversed never exceed
  what it earned (`ReversalExceedsPurchase`, `PurchaseAlreadyReversed`).
- The points come from the purchase's own lot first, then the soonest-expiring lots; what the
  member has already spent becomes points owed, settled first by its next credits of any kind
  (`loyalty.domain.movements.settle_owed`). The balance never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, localcontext

from loyalty.domain.earning import round_points
from loyalty.domain.errors import (
    CurrencyMismatch,
    PurchaseAlreadyReversed,
    PurchaseNotFound,
    ReversalExceedsPurchase,
)
from loyalty.domain.ledger import Actor, EntryType
from loyalty.domain.movements import Debit, debit_points
from loyalty.domain.rules import ProgramRules
from loyalty.domain.wallet import LotPage, Snapshot

CREDITED = "credited"


@dataclass(frozen=True)
class CreditedPurchase:
    """A purchase as its guard records it: who it was credited to, what it cost and earned, the
    lot its points went to, and what earlier returns already reversed."""

    transaction_id: str
    member_id: str
    status: str
    amount: Decimal
    currency: str
    points: int
    lot_id: str | None
    reversed_amount: Decimal = Decimal(0)
    reversed_points: int = 0


@dataclass(frozen=True)
class ReversalQuote:
    """What one return reverses (`amount`, `points`) and the purchase's totals after it."""

    amount: Decimal
    points: int
    reversed_amount: Decimal
    reversed_points: int


def check_reversible(
    purchase: CreditedPurchase | None, transaction_id: str, member_id: str
) -> CreditedPurchase:
    """The purchase, if it was credited to `member_id`; `PurchaseNotFound` otherwise (a purchase
    credited to another member is not named to this caller)."""
    if purchase is None or purchase.member_id != member_id or purchase.status != CREDITED:
        raise PurchaseNotFound(transaction_id)
    return purchase


def quote_reversal(
    purchase: CreditedPurchase,
    amount: Decimal | None,
    *,
    rounding: str,
    currency: str | None = None,
) -> ReversalQuote:
    """The points a return takes back: everything not yet reversed when `amount` is None, else
    in proportion to `amount`, computed on the cumulative amount returned (no drift).

    `currency`, when given, must be the purchase's (CurrencyMismatch). Nothing left to return:
    PurchaseAlreadyReversed; more than what is left: ReversalExceedsPurchase.
    """
    if currency is not None and currency != purchase.currency:
        raise CurrencyMismatch(currency, purchase.currency)
    left = purchase.amount - purchase.reversed_amount
    if left <= 0:
        raise PurchaseAlreadyReversed(purchase.transaction_id)
    if amount is None:
        amount = left
    elif amount > left:
        raise ReversalExceedsPurchase(purchase.transaction_id, str(amount), str(left))
    total_amount = purchase.reversed_amount + amount
    if total_amount == purchase.amount:
        total_points = purchase.points  # the whole purchase: exactly what it earned, whatever the rounding
    else:
        with localcontext() as context:
            context.prec = 60
            total_points = round_points(purchase.points * total_amount / purchase.amount, rounding)
    # Rounding is monotonic and the total stays within [0, points]: never negative, never beyond.
    total_points = min(max(total_points, purchase.reversed_points), purchase.points)
    return ReversalQuote(
        amount=amount,
        points=total_points - purchase.reversed_points,
        reversed_amount=total_amount,
        reversed_points=total_points,
    )


def reverse_purchase(
    snapshot: Snapshot,
    purchase: CreditedPurchase,
    quote: ReversalQuote,
    *,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    entry_id: str,
    idempotency_key: str,
    first_page: LotPage | None = None,
) -> Debit:
    """The return's change: `quote.points` from the purchase's own lot first (when still live),
    then the soonest-expiring lots; what they cannot cover is owed. One ledger entry of type
    `reversal` whose `points` is what the lots gave (the ledger still sums to the balance); its
    details keep the purchase, the amount, the points reversed and the points owed added.

    A return is not the member's activity: it does not extend points under the inactivity policy.
    Raises NeedLotPage (read the own lot's page) and NeedMorePages (read on), as `debit_points`.
    """
    debit = debit_points(
        snapshot,
        quote.points,
        entry_type=EntryType.REVERSAL,
        reason="purchase returned"
        if quote.reversed_amount == purchase.amount
        else "purchase partly returned",
        rules=rules,
        actor=actor,
        now=now,
        entry_id=entry_id,
        first_lot_id=purchase.lot_id,
        first_page=first_page,
        shortfall_to_owed=True,
        activity=False,
    )
    details = {
        "transactionId": purchase.transaction_id,
        "amount": str(quote.amount),
        "currency": purchase.currency,
        "pointsReversed": quote.points,
        "owedAdded": debit.owed_added,
        "owed": debit.change.after.owed,
        "reversedAmount": str(quote.reversed_amount),
        "reversedPoints": quote.reversed_points,
        "idempotencyKey": idempotency_key,
    }
    entry = replace(debit.change.entry, details=details)
    return replace(debit, change=replace(debit.change, entry=entry))
