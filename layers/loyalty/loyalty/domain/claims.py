"""Claims for missing points, as pure rules: the claim window, the decision taken at once when
the rules allow it, the points an approval credits, and "a claim is decided exactly once".

Time is passed in; dates are local dates in the program timezone (`rules.tz`). The store
(`loyalty.store.claims`) reads the claim, the purchase guard and the wallet, asks these
functions what to do, and writes the answer in one transaction (docs/design.md, "Claims").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from loyalty.domain.earning import EarnQuote, Purchase, quote_points
from loyalty.domain.errors import (
    ClaimAlreadyDecided,
    InvalidRequest,
    PurchaseClaimedByAnother,
    UnknownCurrency,
)
from loyalty.domain.ledger import Actor
from loyalty.domain.movements import check_purchase_time
from loyalty.domain.rules import ProgramRules
from loyalty.ids import derived_id

__all__ = [
    "CLAIM_ID_PATTERN",
    "ClaimEvent",
    "ClaimOutcome",
    "ClaimStatus",
    "ClaimedPurchase",
    "Decision",
    "GuardState",
    "Rejection",
    "RejectionCode",
    "StoredDecision",
    "check_claimable",
    "claim_id_for",
    "claim_quote",
    "claimable_from",
    "closing_by_earn",
    "filing_verdict",
    "last_claimable_day",
    "may_refile",
    "purchase_age_days",
    "same_decision_again",
    "window_rejection",
]

# `clm_` and 26 Crockford base32 characters (`loyalty.ids.derived_id`).
CLAIM_ID_PATTERN = r"^clm_[0-9A-HJKMNP-TV-Z]{26}$"


class ClaimStatus(StrEnum):
    """`pending` waits for support; the three others are final."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    MATCHED = "matched"  # the partner's earn of the purchase arrived while the claim was pending


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class RejectionCode(StrEnum):
    """Why a claim was rejected: by the rules at once, by the partner's earn, or by support."""

    ALREADY_CREDITED = "already_credited"
    TOO_RECENT = "too_recent"
    TOO_OLD = "too_old"
    CREDITED_TO_ANOTHER_MEMBER = "credited_to_another_member"
    SUPPORT_DECISION = "support_decision"


@dataclass(frozen=True)
class Rejection:
    code: RejectionCode
    reason: str


@dataclass(frozen=True)
class ClaimedPurchase:
    """A purchase as the member remembers it: its reference, when, how much, and optionally the
    store and a receipt reference."""

    transaction_id: str
    occurred_at: datetime
    amount: Decimal
    currency: str
    store: str | None = None
    receipt_ref: str | None = None

    @property
    def channel(self) -> str:
        """A claim does not say the channel: a purchase that names a store is a store purchase,
        any other an online one (campaigns restricted to a channel follow this; support may set
        the points of an approval by hand)."""
        return "store" if self.store else "online"

    def as_purchase(self) -> Purchase:
        return Purchase(
            amount=self.amount, currency=self.currency, occurred_at=self.occurred_at, channel=self.channel
        )


@dataclass(frozen=True)
class GuardState:
    """What the purchase guard of the `transactionId` says: credited (by earn or by an approved
    claim) to `member_id`, or `claimed` by the pending claim `claim_id`."""

    member_id: str
    status: str
    claim_id: str | None = None


@dataclass(frozen=True)
class ClaimEvent:
    """One line of a claim's history: who (`actor`), did what (`action`), when (`at`), why."""

    at: datetime
    actor: Actor
    action: str  # filed, refiled, approved, rejected, matched
    status: ClaimStatus  # the claim's status after the event
    reason: str | None = None
    points: int | None = None


@dataclass(frozen=True)
class ClaimOutcome:
    """A claim that reached a final status after it was filed: what its member is emailed."""

    claim_id: str
    member_id: str
    transaction_id: str
    status: ClaimStatus
    occurred_at: datetime
    reason: str | None = None
    reason_code: RejectionCode | None = None
    points: int | None = None
    balance: int | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class StoredDecision:
    """What a claim already says about its decision (for the decide-once rule)."""

    status: ClaimStatus
    decided_by: Actor | None
    reason: str | None
    points: int | None


def claim_id_for(member_id: str, transaction_id: str) -> str:
    """A member has one claim per purchase: its id derives from both, so a second claim for the
    same purchase finds the first by key (another member's claim has another id)."""
    return derived_id("clm", member_id, transaction_id)


# ---- the claim window (local dates in the program timezone)


def purchase_age_days(rules: ProgramRules, occurred_at: datetime, now: datetime) -> int:
    """Whole local days between the purchase's day and today: 0 the same day, 1 the next day."""
    tz = rules.tz
    return (now.astimezone(tz).date() - occurred_at.astimezone(tz).date()).days


def claimable_from(rules: ProgramRules, occurred_at: datetime) -> date:
    """The first local day a purchase may be claimed (`minAgeDays` after its day)."""
    return occurred_at.astimezone(rules.tz).date() + timedelta(days=rules.claims.min_age_days)


def last_claimable_day(rules: ProgramRules, occurred_at: datetime) -> date:
    """The last local day a purchase may be claimed (`windowDays` after its day)."""
    return occurred_at.astimezone(rules.tz).date() + timedelta(days=rules.claims.window_days)


def window_rejection(rules: ProgramRules, occurred_at: datetime, now: datetime) -> Rejection | None:
    """None when the purchase is inside the claim window: from `minAgeDays` to `windowDays` days
    old, both included (default 2 to 180). Too recent: the partner may still report it, so the
    member is told from which day to claim again; too old: final."""
    age = purchase_age_days(rules, occurred_at, now)
    window = rules.claims
    if age < window.min_age_days:
        return Rejection(
            RejectionCode.TOO_RECENT,
            f"the purchase is too recent: purchases are credited within {window.min_age_days} days; "
            f"if the points are still missing, claim again from {claimable_from(rules, occurred_at)}",
        )
    if age > window.window_days:
        return Rejection(
            RejectionCode.TOO_OLD,
            f"the purchase is more than {window.window_days} days old: it can no longer be claimed",
        )
    return None


# ---- filing


def check_claimable(rules: ProgramRules, purchase: ClaimedPurchase, now: datetime) -> None:
    """What makes a claim invalid before anything is read (422): an amount that is not positive,
    a currency the program does not earn in, a purchase in the future."""
    if not purchase.amount.is_finite() or purchase.amount <= 0:
        raise InvalidRequest("amount", "must be greater than zero", location="body")
    if purchase.currency not in rules.earning.currencies:
        raise UnknownCurrency(purchase.currency)
    check_purchase_time(purchase.as_purchase(), now)


def filing_verdict(
    rules: ProgramRules, purchase: ClaimedPurchase, guard: GuardState | None, now: datetime
) -> Rejection | None:
    """The decision taken at once: rejected when the purchase was already credited (to anyone:
    invariant 2; whom is not told) or is outside the claim window; otherwise None (pending).
    A purchase another member's claim waits on is refused (`PurchaseClaimedByAnother`): nothing
    is stored, and the member may claim again once that claim is decided."""
    if guard is not None and guard.status == "credited":
        return Rejection(RejectionCode.ALREADY_CREDITED, "the purchase was already credited")
    if guard is not None:
        raise PurchaseClaimedByAnother(purchase.transaction_id)
    return window_rejection(rules, purchase.occurred_at, now)


def may_refile(status: ClaimStatus, code: RejectionCode | None) -> bool:
    """A second claim for the same purchase returns the first, except when the first was turned
    away as too recent: that one is examined again (same claim, its history kept)."""
    return status == ClaimStatus.REJECTED and code == RejectionCode.TOO_RECENT


# ---- deciding


def claim_quote(rules: ProgramRules, purchase: ClaimedPurchase, points: int | None = None) -> EarnQuote:
    """The points an approval credits: `points` when support sets them, else what the rules in
    force give the purchase (its amount and date: campaigns of that day apply)."""
    if points is None:
        return quote_points(rules, purchase.as_purchase())
    if points < 0:
        raise InvalidRequest("points", "must be at least 0", location="body")
    return EarnQuote(
        points=points,
        base_points=Decimal(points),
        multiplier=Decimal(1),
        bonus_points=0,
        campaigns=(),
        rules_version=rules.version,
    )


def same_decision_again(
    claim_id: str,
    stored: StoredDecision,
    *,
    decision: Decision,
    actor: Actor,
    reason: str,
    points: int | None,
) -> None:
    """A claim is decided exactly once. A decided claim refuses every decision with
    `ClaimAlreadyDecided` (409, with its status), except the very decision it holds sent again by
    the same agent (a retry after a lost response): that returns normally, and the caller answers
    with the stored decision, changing nothing."""
    expected = {Decision.APPROVE: ClaimStatus.APPROVED, Decision.REJECT: ClaimStatus.REJECTED}[decision]
    same = (
        stored.status == expected
        and stored.decided_by == actor
        and stored.reason == reason
        and (points is None or points == stored.points)
    )
    if not same:
        raise ClaimAlreadyDecided(claim_id, str(stored.status))


def closing_by_earn(claim_member_id: str, earner_id: str) -> tuple[ClaimStatus, Rejection | None]:
    """A pending claim whose purchase the partner now reports closes in the earn's transaction:
    `matched` when the purchase is credited to the claim's member; rejected when the partner
    credits it to another member (the purchase is that member's: invariant 2)."""
    if claim_member_id == earner_id:
        return ClaimStatus.MATCHED, None
    return ClaimStatus.REJECTED, Rejection(
        RejectionCode.CREDITED_TO_ANOTHER_MEMBER, "the store credited this purchase to another account"
    )
