"""Claims for missing points in DynamoDB: file, read, list by status, decide, record the email;
and the part of an earn's transaction that closes a pending claim.

Every change of a claim is one `TransactWriteItems` with the purchase guard and the member's
count of pending claims, so the claim, the guard and the count never disagree, and a purchase is
credited at most once whether by earn or by an approved claim (invariant 2). See docs/design.md,
"Claims", for the items, the transactions and what each operation costs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.expressions.update import Action

from loyalty.domain.claims import (
    ClaimedPurchase,
    ClaimEvent,
    ClaimOutcome,
    ClaimStatus,
    Decision,
    GuardState,
    Rejection,
    RejectionCode,
    StoredDecision,
    check_claimable,
    claim_id_for,
    claim_quote,
    closing_by_earn,
    filing_verdict,
    may_refile,
    same_decision_again,
)
from loyalty.domain.errors import ClaimNotFound, InvalidRequest, MemberNotFound, TooManyOpenClaims
from loyalty.domain.ledger import Actor
from loyalty.domain.movements import ClaimCredit, Credit, credit_purchase
from loyalty.domain.rules import ProgramRules
from loyalty.domain.wallet import LotPage
from loyalty.ids import new_id
from loyalty.store import keys
from loyalty.store.members import Profile
from loyalty.store.models import (
    ActorAttribute,
    ClaimCreditAttribute,
    ClaimEmailAttribute,
    ClaimEventAttribute,
    ClaimItem,
    OpenClaimsItem,
    ProfileItem,
    PurchaseGuardItem,
    TableItem,
    WalletItem,
    bind,
)
from loyalty.store.movement import attempts, page_part, render_change
from loyalty.store.transact import Transaction, TransactionCancelled
from loyalty.store.wallet import read_live, read_page
from loyalty.timefmt import format_instant

CLAIMED = "claimed"  # the purchase guard's status while a claim waits on the purchase
# Who rejects a claim at once: the program's rules, not a person.
RULES_ACTOR = Actor("system", "claim-rules")
GUARD_PART = "guard"


# ---- what the store returns


@dataclass(frozen=True)
class CreditedPoints:
    """What crediting the claim's purchase did: by the approval's claim lot, or by the earn."""

    points: int
    entry_id: str
    lot_id: str | None
    expires_at: datetime | None
    balance: int


@dataclass(frozen=True)
class EmailRecord:
    status: str  # sent, skipped, failed
    kind: str
    at: datetime
    message_id: str | None = None
    error: str | None = None
    retryable: bool | None = None


@dataclass(frozen=True)
class Claim:
    claim_id: str
    member_id: str
    transaction_id: str
    status: ClaimStatus
    created_at: datetime
    occurred_at: datetime
    amount: str
    currency: str
    store: str | None
    receipt_ref: str | None
    filed_by: Actor
    reason_code: RejectionCode | None
    reason: str | None
    decided_at: datetime | None
    decided_by: Actor | None
    credit: CreditedPoints | None
    email: EmailRecord | None
    history: tuple[ClaimEvent, ...]

    @property
    def purchase(self) -> ClaimedPurchase:
        return ClaimedPurchase(
            transaction_id=self.transaction_id,
            occurred_at=self.occurred_at,
            amount=Decimal(self.amount),
            currency=self.currency,
            store=self.store,
            receipt_ref=self.receipt_ref,
        )

    def stored_decision(self) -> StoredDecision:
        return StoredDecision(
            status=self.status,
            decided_by=self.decided_by,
            reason=self.reason,
            points=self.credit.points if self.credit else None,
        )

    def outcome(self) -> ClaimOutcome:
        return ClaimOutcome(
            claim_id=self.claim_id,
            member_id=self.member_id,
            transaction_id=self.transaction_id,
            status=self.status,
            occurred_at=self.occurred_at,
            reason=self.reason,
            reason_code=self.reason_code,
            points=self.credit.points if self.credit else None,
            balance=self.credit.balance if self.credit else None,
            expires_at=self.credit.expires_at if self.credit else None,
        )


@dataclass(frozen=True)
class Filed:
    """A filing's answer: the claim, and whether this request created (or re-examined) it."""

    claim: Claim
    created: bool


@dataclass(frozen=True)
class Decided:
    """A decision's answer: the claim after it; `replayed` when the same decision was already
    stored (nothing changed); the member's profile when the decision read it (for the email)."""

    claim: Claim
    replayed: bool
    profile: Profile | None = None


@dataclass(frozen=True)
class ClaimsPage:
    claims: list[Claim]
    next_cursor: str | None


# ---- filing


def file_claim(
    member_id: str, purchase: ClaimedPurchase, *, actor: Actor, rules: ProgramRules, now: datetime
) -> Filed:
    """File the member's claim for a purchase it says was never credited.

    One BatchGetItem reads the wallet (is the member enrolled?), the purchase guard and the
    member's claim for this purchase (its id derives from both: one claim per member and
    purchase). A second claim returns the first (`created` False), unless the first was too
    recent and the purchase is now claimable: it is examined again. Rejected at once, the claim
    alone is written; pending, one transaction puts the claim and the guard (`claimed`, only
    where no guard is) and counts it among the member's pending claims (refused beyond
    `claims.maxOpenClaims`: `TooManyOpenClaims`, nothing written).
    """
    check_claimable(rules, purchase, now)
    claim_id = claim_id_for(member_id, purchase.transaction_id)
    for _ in attempts():
        enrolled, guard, existing = _read_for_filing(member_id, purchase.transaction_id, claim_id)
        if existing is not None and not may_refile(ClaimStatus(existing.status), _code(existing.reason_code)):
            return Filed(claim_of(existing), created=False)
        if not enrolled:
            raise MemberNotFound(member_id)
        rejection = filing_verdict(rules, purchase, _guard_state(guard), now)
        item = _new_claim_item(claim_id, member_id, purchase, actor, rejection, existing, now)
        transaction = Transaction()
        claim_condition = (
            TableItem.pk.does_not_exist()
            if existing is None
            else (ClaimItem.status == existing.status) & (ClaimItem.reason_code == existing.reason_code)
        )
        transaction.put(_claim_part(claim_id), item, claim_condition)
        if rejection is None:
            transaction.put(
                GUARD_PART, _claimed_guard(claim_id, member_id, purchase, now), TableItem.pk.does_not_exist()
            )
            _count_open(transaction, member_id, +1, limit=rules.claims.max_open_claims)
        try:
            transaction.commit()
        except TransactionCancelled as cancelled:
            if _claim_part(claim_id) in cancelled.failed or GUARD_PART in cancelled.failed:
                continue  # filed meanwhile, or the purchase moved: read again
            if _open_part(member_id) in cancelled.failed:
                raise TooManyOpenClaims(rules.claims.max_open_claims) from None
            continue
        return Filed(claim_of(item), created=True)
    raise AssertionError("unreachable: attempts() raises when exhausted")


def _read_for_filing(
    member_id: str, transaction_id: str, claim_id: str
) -> tuple[bool, PurchaseGuardItem | None, ClaimItem | None]:
    """Whether the member is enrolled (its wallet), the purchase guard and the member's claim for
    this purchase: one strongly consistent BatchGetItem."""
    bind()
    wanted = [
        (keys.member_pk(member_id), keys.wallet_sk()),
        (keys.purchase_pk(transaction_id), keys.PURCHASE),
        (keys.claim_pk(claim_id), keys.claim_sk()),
    ]
    enrolled, guard, claim = False, None, None
    for item in TableItem.batch_get(wanted, consistent_read=True):
        if isinstance(item, WalletItem):
            enrolled = True
        elif isinstance(item, PurchaseGuardItem):
            guard = item
        elif isinstance(item, ClaimItem):
            claim = item
    return enrolled, guard, claim


def _guard_state(guard: PurchaseGuardItem | None) -> GuardState | None:
    if guard is None:
        return None
    return GuardState(member_id=guard.member_id, status=guard.status, claim_id=guard.claim_id)


def _new_claim_item(
    claim_id: str,
    member_id: str,
    purchase: ClaimedPurchase,
    actor: Actor,
    rejection: Rejection | None,
    previous: ClaimItem | None,
    now: datetime,
) -> ClaimItem:
    """The claim as filed: pending, or rejected at once by the rules (two events). A claim filed
    again after a too-recent rejection keeps its earlier history."""
    status = ClaimStatus.PENDING if rejection is None else ClaimStatus.REJECTED
    events = [_event(ClaimEvent(now, actor, "filed" if previous is None else "refiled", ClaimStatus.PENDING))]
    if rejection is not None:
        events.append(_event(ClaimEvent(now, RULES_ACTOR, "rejected", status, rejection.reason)))
    history = list(previous.history) if previous is not None else []
    return ClaimItem(
        keys.claim_pk(claim_id),
        keys.claim_sk(),
        member_id=member_id,
        transaction_id=purchase.transaction_id,
        status=str(status),
        created_at=now,
        occurred_at=purchase.occurred_at,
        amount=str(purchase.amount),
        currency=purchase.currency,
        store=purchase.store,
        receipt_ref=purchase.receipt_ref,
        filed_by=_actor(actor),
        reason_code=str(rejection.code) if rejection else None,
        reason=rejection.reason if rejection else None,
        decided_at=now if rejection else None,
        decided_by=_actor(RULES_ACTOR) if rejection else None,
        history=history + events,
        gsi2pk=keys.claims_status_pk(status),
        gsi2sk=keys.claims_status_sk(format_instant(now), claim_id),
    )


def _claimed_guard(
    claim_id: str, member_id: str, purchase: ClaimedPurchase, now: datetime
) -> PurchaseGuardItem:
    """The purchase guard while the claim waits: no earn or other claim may credit the purchase
    without closing this claim in the same transaction."""
    return PurchaseGuardItem(
        keys.purchase_pk(purchase.transaction_id),
        keys.PURCHASE,
        member_id=member_id,
        transaction_id=purchase.transaction_id,
        status=CLAIMED,
        amount=str(purchase.amount),
        currency=purchase.currency,
        occurred_at=purchase.occurred_at,
        claim_id=claim_id,
        created_at=now,
    )


# ---- reading


def get_claim(claim_id: str) -> Claim:
    """The claim with its history (strongly consistent: a claim just filed or decided is seen)."""
    return claim_of(_claim_item(claim_id))


def _claim_item(claim_id: str) -> ClaimItem:
    bind()
    try:
        return ClaimItem.get(keys.claim_pk(claim_id), keys.claim_sk(), consistent_read=True)
    except ClaimItem.DoesNotExist:
        raise ClaimNotFound(claim_id) from None


_CURSOR_KEY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z#clm_[0-9A-Z]{26}")


def encode_claims_cursor(status: str, sort_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": status, "k": sort_key}).encode()).decode().rstrip("=")


def decode_claims_cursor(status: str, cursor: str) -> str:
    """The index sort key a cursor points after. A cursor this API did not issue for this status
    is refused (422 `cursor`), never sent to DynamoDB as it is."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        owner, sort_key = decoded["s"], decoded["k"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("cursor", "is not a cursor this API issued", location="query") from None
    if owner != status or not isinstance(sort_key, str) or not _CURSOR_KEY.fullmatch(sort_key):
        raise InvalidRequest("cursor", "is not a cursor this API issued for this status", location="query")
    return sort_key


def claims_page(status: ClaimStatus, *, limit: int, cursor: str | None) -> ClaimsPage:
    """Up to `limit` claims in `status`, oldest first, and the cursor of the next page: one Query
    of the sparse index ByStatus (never a scan), one item more than asked telling whether another
    page follows. The index is eventually consistent: a claim decided a moment ago may still be
    listed under its former status for a moment."""
    bind()
    after = decode_claims_cursor(str(status), cursor) if cursor else None
    results = ClaimItem.by_status.query(
        keys.claims_status_pk(status),
        ClaimItem.gsi2sk > after if after is not None else None,
        limit=limit + 1,
        page_size=limit + 1,
    )
    items = list(results)
    page, more = items[:limit], len(items) > limit
    return ClaimsPage(
        claims=[claim_of(item) for item in page],
        next_cursor=encode_claims_cursor(str(status), str(page[-1].gsi2sk)) if more else None,
    )


# ---- deciding


def decide(
    claim_id: str,
    decision: Decision,
    *,
    reason: str,
    points: int | None,
    actor: Actor,
    rules: ProgramRules,
    now: datetime,
) -> Decided:
    """Support's decision on a pending claim, taken exactly once.

    Approve: one transaction credits the claim lot (issued today, its expiry from the purchase
    date but at least 30 days from today; owed points settled first), turns the guard from
    `claimed` by this claim into `credited` (conditioned on exactly that), sets the claim
    `approved` (conditioned on `pending`) and counts one pending claim less. A late earn of the
    same purchase makes the same conditions fail, so only one of them credits it.
    Reject: the claim `rejected` (conditioned on `pending`), the guard deleted (a later earn then
    credits the purchase normally) and the count, in one transaction.
    A decided claim refuses every decision (`ClaimAlreadyDecided`, 409), except the same decision
    by the same agent sent again, which returns the stored one (`replayed`).
    DynamoDB calls: the claim (GetItem), for an approval the member's profile, wallet and first
    pages (one Query), then the transaction: 3 for an approval, 2 for a rejection.
    """
    if decision == Decision.REJECT and points is not None:
        raise InvalidRequest("points", "is only given with the decision approve", location="body")
    page: LotPage | None = None
    for _ in attempts():
        claim = claim_of(_claim_item(claim_id))
        if claim.status != ClaimStatus.PENDING:
            same_decision_again(
                claim_id,
                claim.stored_decision(),
                decision=decision,
                actor=actor,
                reason=reason,
                points=points,
            )
            return Decided(claim, replayed=True)
        transaction = Transaction()
        if decision == Decision.REJECT:
            decided = _render_rejection(transaction, claim, reason=reason, actor=actor, now=now)
            try:
                transaction.commit()
            except TransactionCancelled:
                continue  # decided meanwhile: read again
            return Decided(decided, replayed=False)
        live = read_live(claim.member_id, now, consistent=True, with_profile=True)
        purchase = claim.purchase
        quote = claim_quote(rules, purchase, points)
        credit = credit_purchase(
            live.snapshot.wallet,
            purchase.as_purchase(),
            quote,
            transaction_id=claim.transaction_id,
            rules=rules,
            actor=actor,
            now=now,
            entry_id=new_id("led", now),
            due=live.due,
            page=page,
            claim=ClaimCredit(claim_id, approved_at=now),
        )
        render_change(transaction, credit.change)
        credited = credited_points(quote.points, credit)
        transaction.put(
            GUARD_PART,
            _credited_guard(claim, credit.change.sequence, credited, now),
            (PurchaseGuardItem.status == CLAIMED) & (PurchaseGuardItem.claim_id == claim_id),
        )
        decided = _render_decision(
            transaction,
            claim,
            ClaimEvent(now, actor, "approved", ClaimStatus.APPROVED, reason, credited.points),
            reason_code=None,
            credit=credited,
        )
        try:
            transaction.commit()
        except TransactionCancelled as cancelled:
            if credit.lot is not None:
                key = credit.change.pages[0].key
                if cancelled.stale_path or page_part(claim.member_id, key) in cancelled.failed:
                    # The day's claim lot is (or is not) in its page, unlike what the wallet said.
                    page = read_page(claim.member_id, key, credit.change.before)
            continue  # decided meanwhile (by support or a late earn), or the points moved: read again
        profile = Profile.of(live.read.profile) if live.read.profile is not None else None
        return Decided(decided, replayed=False, profile=profile)
    raise AssertionError("unreachable: attempts() raises when exhausted")


def credited_points(points: int, credit: Credit) -> CreditedPoints:
    """What a credit of `points` (the quote: owed points it settled included) did."""
    lot = credit.lot
    return CreditedPoints(
        points=points,
        entry_id=credit.change.entry.entry_id,
        lot_id=lot.lot_id if lot is not None else None,
        expires_at=lot.expires_at if lot is not None else None,
        balance=credit.change.entry.balance_after,
    )


def _credited_guard(
    claim: Claim, sequence: int, credited: CreditedPoints, now: datetime
) -> PurchaseGuardItem:
    """The guard once an approved claim credited the purchase: what a reversal needs, and no
    request fingerprint, so a late earn of the purchase is told it was already credited."""
    return PurchaseGuardItem(
        keys.purchase_pk(claim.transaction_id),
        keys.PURCHASE,
        member_id=claim.member_id,
        transaction_id=claim.transaction_id,
        status="credited",
        credited_by="claim",
        entry_id=credited.entry_id,
        sequence=sequence,
        lot_id=credited.lot_id,
        points=credited.points,
        amount=claim.amount,
        currency=claim.currency,
        occurred_at=claim.occurred_at,
        claim_id=claim.claim_id,
        created_at=now,
    )


def _render_rejection(
    transaction: Transaction, claim: Claim, *, reason: str, actor: Actor, now: datetime
) -> Claim:
    transaction.delete(
        GUARD_PART,
        PurchaseGuardItem(keys.purchase_pk(claim.transaction_id), keys.PURCHASE),
        (PurchaseGuardItem.status == CLAIMED) & (PurchaseGuardItem.claim_id == claim.claim_id),
    )
    return _render_decision(
        transaction,
        claim,
        ClaimEvent(now, actor, "rejected", ClaimStatus.REJECTED, reason),
        reason_code=RejectionCode.SUPPORT_DECISION,
    )


def _render_decision(
    transaction: Transaction,
    claim: Claim,
    event: ClaimEvent,
    *,
    reason_code: RejectionCode | None,
    credit: CreditedPoints | None = None,
) -> Claim:
    """The claim leaves `pending` (conditioned on being it): its status, index partition, decision
    and one history event; and the member counts one pending claim less. Returns the claim after."""
    actions: list[Action] = [
        ClaimItem.status.set(str(event.status)),
        ClaimItem.gsi2pk.set(keys.claims_status_pk(event.status)),
        ClaimItem.decided_at.set(event.at),
        ClaimItem.decided_by.set(_actor(event.actor)),
        ClaimItem.history.set(ClaimItem.history.append([_event(event)])),
    ]
    actions.append(ClaimItem.reason.set(event.reason) if event.reason else ClaimItem.reason.remove())
    actions.append(
        ClaimItem.reason_code.set(str(reason_code)) if reason_code else ClaimItem.reason_code.remove()
    )
    if credit is not None:
        actions.append(ClaimItem.credit.set(_credit_attribute(credit)))
    transaction.update(
        _claim_part(claim.claim_id),
        ClaimItem(keys.claim_pk(claim.claim_id), keys.claim_sk()),
        actions,
        ClaimItem.status == str(ClaimStatus.PENDING),
    )
    _count_open(transaction, claim.member_id, -1)
    return replace(
        claim,
        status=event.status,
        reason=event.reason,
        reason_code=reason_code,
        decided_at=event.at,
        decided_by=event.actor,
        credit=credit,
        history=(*claim.history, event),
    )


# ---- an earn closes a pending claim (called by loyalty.store.points.earn)


def render_closing(
    transaction: Transaction,
    guard: PurchaseGuardItem,
    *,
    earner_id: str,
    credited: CreditedPoints,
    occurred_at: datetime,
    actor: Actor,
    now: datetime,
) -> ClaimOutcome:
    """The partner's earn of a purchase a claim waits on closes that claim in the earn's own
    transaction: `matched` when the purchase goes to the claim's member, rejected when the
    partner credits it to another member; conditioned on the claim being pending, and the
    member's count of pending claims goes down. The earn replaces the guard itself (conditioned
    on `claimed` by this claim: `claimed_by_condition`)."""
    claim_id = str(guard.claim_id)
    status, rejection = closing_by_earn(guard.member_id, earner_id)
    actions: list[Action] = [
        ClaimItem.status.set(str(status)),
        ClaimItem.gsi2pk.set(keys.claims_status_pk(status)),
        ClaimItem.decided_at.set(now),
        ClaimItem.decided_by.set(_actor(actor)),
    ]
    if rejection is None:
        event = ClaimEvent(now, actor, "matched", status, points=credited.points)
        actions.append(ClaimItem.credit.set(_credit_attribute(credited)))
    else:
        event = ClaimEvent(now, actor, "rejected", status, rejection.reason)
        actions += [ClaimItem.reason.set(rejection.reason), ClaimItem.reason_code.set(str(rejection.code))]
    actions.append(ClaimItem.history.set(ClaimItem.history.append([_event(event)])))
    transaction.update(
        _claim_part(claim_id),
        ClaimItem(keys.claim_pk(claim_id), keys.claim_sk()),
        actions,
        ClaimItem.status == str(ClaimStatus.PENDING),
    )
    _count_open(transaction, guard.member_id, -1)
    matched = rejection is None
    return ClaimOutcome(
        claim_id=claim_id,
        member_id=guard.member_id,
        transaction_id=guard.transaction_id,
        status=status,
        occurred_at=occurred_at,
        reason=event.reason,
        reason_code=rejection.code if rejection is not None else None,
        points=credited.points if matched else None,
        balance=credited.balance if matched else None,
        expires_at=credited.expires_at if matched else None,
    )


def guard_claimed(guard: PurchaseGuardItem | None) -> bool:
    """Whether the purchase guard holds a pending claim rather than a credit."""
    return guard is not None and guard.status == CLAIMED


def claimed_by_condition(guard: PurchaseGuardItem) -> Any:
    """The condition an earn replacing a `claimed` guard writes under: still claimed by that claim."""
    return (PurchaseGuardItem.status == CLAIMED) & (PurchaseGuardItem.claim_id == guard.claim_id)


# ---- the email's outcome, after the commit


def member_profile(member_id: str) -> Profile | None:
    """The member's profile (address, name, locale) for an email; None when there is none."""
    bind()
    try:
        return Profile.of(ProfileItem.get(keys.member_pk(member_id), keys.profile_sk()))
    except ProfileItem.DoesNotExist:
        return None


def record_email(claim_id: str, record: EmailRecord) -> None:
    """Write on the claim whether its member was emailed the outcome (one UpdateItem, only on an
    existing claim): the `email` attribute alone, so nothing else of the claim is touched."""
    bind()
    ClaimItem(keys.claim_pk(claim_id), keys.claim_sk()).update(
        actions=[
            ClaimItem.email.set(
                ClaimEmailAttribute(
                    status=record.status,
                    kind=record.kind,
                    at=record.at,
                    message_id=record.message_id,
                    error=record.error,
                    retryable=record.retryable,
                )
            )
        ],
        condition=TableItem.pk.exists(),
    )


# ---- items <-> domain


def claim_of(item: ClaimItem) -> Claim:
    credit = item.credit
    email = item.email
    return Claim(
        claim_id=keys.claim_id_of(item.pk),
        member_id=item.member_id,
        transaction_id=item.transaction_id,
        status=ClaimStatus(item.status),
        created_at=item.created_at,
        occurred_at=item.occurred_at,
        amount=item.amount,
        currency=item.currency,
        store=item.store,
        receipt_ref=item.receipt_ref,
        filed_by=Actor(item.filed_by.kind, item.filed_by.id),
        reason_code=_code(item.reason_code),
        reason=item.reason,
        decided_at=item.decided_at,
        decided_by=Actor(item.decided_by.kind, item.decided_by.id) if item.decided_by else None,
        credit=CreditedPoints(
            points=int(credit.points),
            entry_id=credit.entry_id,
            lot_id=credit.lot_id,
            expires_at=credit.expires_at,
            balance=int(credit.balance),
        )
        if credit is not None
        else None,
        email=EmailRecord(
            status=email.status,
            kind=email.kind,
            at=email.at,
            message_id=email.message_id,
            error=email.error,
            retryable=email.retryable,
        )
        if email is not None
        else None,
        history=tuple(
            ClaimEvent(
                at=event.at,
                actor=Actor(event.actor.kind, event.actor.id),
                action=event.action,
                status=ClaimStatus(event.status),
                reason=event.reason,
                points=int(event.points) if event.points is not None else None,
            )
            for event in item.history
        ),
    )


def _code(value: str | None) -> RejectionCode | None:
    return RejectionCode(value) if value else None


def _actor(actor: Actor) -> ActorAttribute:
    return ActorAttribute(kind=actor.kind, id=actor.id)


def _event(event: ClaimEvent) -> ClaimEventAttribute:
    return ClaimEventAttribute(
        at=event.at,
        actor=_actor(event.actor),
        action=event.action,
        status=str(event.status),
        reason=event.reason,
        points=event.points,
    )


def _credit_attribute(credit: CreditedPoints) -> ClaimCreditAttribute:
    return ClaimCreditAttribute(
        points=credit.points,
        entry_id=credit.entry_id,
        lot_id=credit.lot_id,
        expires_at=credit.expires_at,
        balance=credit.balance,
    )


def _claim_part(claim_id: str) -> str:
    return f"claim:{claim_id}"


def _open_part(member_id: str) -> str:
    return f"open-claims:{member_id}"


def _count_open(transaction: Transaction, member_id: str, step: int, *, limit: int | None = None) -> None:
    """One pending claim more (refused at `limit`) or less, on the member's count."""
    item = OpenClaimsItem(keys.member_pk(member_id), keys.open_claims_sk())
    actions: list[Action] = [
        OpenClaimsItem.kind.set(OpenClaimsItem),
        OpenClaimsItem.member_id.set(member_id),
        OpenClaimsItem.open.add(step),
    ]
    condition = None
    if limit is not None:
        condition = OpenClaimsItem.open.does_not_exist() | (OpenClaimsItem.open < limit)
    transaction.update(_open_part(member_id), item, actions, condition)
