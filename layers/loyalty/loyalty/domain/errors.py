"""Typed domain errors. `loyalty.http.errors` maps each one to an HTTP status, in one place."""

from __future__ import annotations

from datetime import datetime

from loyalty.timefmt import format_instant


class DomainError(Exception):
    """A business rule refused the request. `code` is the stable, machine-readable error code."""

    code = "domain_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(DomainError):
    """The request is well-formed but a business rule rejects a field's value (HTTP 422)."""

    code = "invalid_request"

    def __init__(self, field: str, reason: str, location: str | None = None) -> None:
        problem = (
            {"field": field, "reason": reason}
            if location is None
            else {"field": field, "in": location, "reason": reason}
        )
        super().__init__(f"{field}: {reason}", fields=[problem])
        self.field = field
        self.reason = reason


class UnknownCurrency(InvalidRequest):
    code = "unknown_currency"

    def __init__(self, currency: str) -> None:
        super().__init__("currency", f"the program does not earn points in {currency!r}")


class NotFound(DomainError):
    code = "not_found"


class MemberNotFound(NotFound):
    code = "member_not_found"

    def __init__(self, member_id: str) -> None:
        super().__init__(f"member {member_id!r} is not enrolled", memberId=member_id)


class Conflict(DomainError):
    """The request cannot be applied to the current state (HTTP 409)."""

    code = "conflict"


class InsufficientPoints(Conflict):
    code = "insufficient_points"

    def __init__(self, available: int, requested: int) -> None:
        super().__init__(
            f"{requested} points requested but only {available} available",
            available=available,
            requested=requested,
        )


class IdempotencyMismatch(Conflict):
    """The same idempotency key (or transactionId) was used before with a different request."""

    code = "idempotency_mismatch"

    @classmethod
    def of_key(cls, idempotency_key: str) -> IdempotencyMismatch:
        """The refusal of an `Idempotency-Key` reused with another body."""
        return cls(
            f"Idempotency-Key {idempotency_key!r} was already used with a different request",
            idempotencyKey=idempotency_key,
        )


class AlreadyCredited(Conflict):
    """A purchase's transactionId was already credited, by another request (invariant 2)."""

    code = "transaction_already_credited"

    def __init__(self, transaction_id: str) -> None:
        super().__init__(
            f"purchase {transaction_id!r} was already credited by another request",
            transactionId=transaction_id,
        )


# ---- returns (earn reversal)


class PurchaseNotFound(NotFound):
    """No purchase of this `transactionId` was credited to this member: never reported, credited
    to another member, or only claimed (a pending claim has credited nothing yet)."""

    code = "purchase_not_found"

    def __init__(self, transaction_id: str) -> None:
        super().__init__(
            f"no purchase {transaction_id!r} was credited to this member", transactionId=transaction_id
        )


class CurrencyMismatch(InvalidRequest):
    code = "currency_mismatch"

    def __init__(self, currency: str, purchase_currency: str) -> None:
        super().__init__("currency", f"the purchase was paid in {purchase_currency}, not {currency}")


class PurchaseAlreadyReversed(Conflict):
    """Every unit of the purchase's amount was already returned: nothing is left to reverse."""

    code = "purchase_already_reversed"

    def __init__(self, transaction_id: str) -> None:
        super().__init__(
            f"purchase {transaction_id!r} was already reversed in full", transactionId=transaction_id
        )


class ReversalExceedsPurchase(Conflict):
    """A partial return larger than what is left of the purchase's amount."""

    code = "reversal_exceeds_purchase"

    def __init__(self, transaction_id: str, requested: str, reversible: str) -> None:
        super().__init__(
            f"{requested} cannot be returned on purchase {transaction_id!r}: only {reversible} is left",
            transactionId=transaction_id,
            requested=requested,
            reversible=reversible,
        )


class ConcurrentUpdate(Conflict):
    """Optimistic concurrency lost too many times in a row; the caller may retry (same key)."""

    code = "concurrent_update"


class MovementTooLarge(Conflict):
    """A movement would exceed one DynamoDB transaction (100 items, 4 MB) or an item's 400 KB.

    Never retried and never a 500: the caller learns what it can do instead (e.g. redeem in
    smaller parts), and a `MovementTooLarge` metric tells the operators (docs/design.md)."""

    code = "movement_too_large"


class Unavailable(DomainError):
    """DynamoDB keeps throttling after the SDK's retries: the caller should retry shortly (503)."""

    code = "service_unavailable"


# ---- transfers (member → member): each refusal has its own code, and changes nothing


class TransfersDisabled(Conflict):
    """The program rules turn transfers off (`transfers.enabled`): a state of the program, not a
    fault of the request (409)."""

    code = "transfers_disabled"

    def __init__(self) -> None:
        super().__init__("the program does not allow transfers between members at the moment")


class TransferToSelf(InvalidRequest):
    code = "transfer_to_self"

    def __init__(self) -> None:
        super().__init__("toMemberId", "is the sender itself: points go to another member", location="body")


class TransferBelowMinimum(InvalidRequest):
    code = "transfer_below_minimum"

    def __init__(self, minimum: int) -> None:
        super().__init__("points", f"must be at least {minimum} (the program's minimum transfer)", "body")
        self.details["minPoints"] = minimum


class TransferAboveMaximum(InvalidRequest):
    code = "transfer_above_maximum"

    def __init__(self, maximum: int) -> None:
        super().__init__("points", f"must be at most {maximum} (the program's maximum transfer)", "body")
        self.details["maxPoints"] = maximum


class RecipientNotFound(InvalidRequest):
    """`toMemberId` names no enrolled member: the request names the wrong member (422, not the
    404 of the path's member, which is the sender)."""

    code = "recipient_not_found"

    def __init__(self) -> None:
        super().__init__("toMemberId", "is not an enrolled member", location="body")


class RecipientClosed(InvalidRequest):
    """`toMemberId` names a member whose account is closed (its wallet's `closedAt`): it can
    receive nothing."""

    code = "recipient_closed"

    def __init__(self) -> None:
        super().__init__("toMemberId", "is a closed account: it cannot receive points", location="body")


class MemberClosed(Conflict):
    """The member's own account is closed: it moves no more points."""

    code = "member_closed"

    def __init__(self, member_id: str) -> None:
        super().__init__(f"member {member_id!r} has closed its account", memberId=member_id)


class TransferDailyLimitReached(Conflict):
    """The member would send more than `maxPointsPerDay` within 24 hours (a rolling window).
    Says what is left now and, when the request could fit later, from which instant."""

    code = "transfer_daily_limit_reached"

    def __init__(self, *, limit: int, sent: int, requested: int, fits_at: datetime | None) -> None:
        remaining = max(limit - sent, 0)
        super().__init__(
            f"{requested} points cannot be sent now: at most {limit} may be sent in 24 hours, "
            f"{sent} were sent in the last 24 hours, so {remaining} are left",
            maxPointsPerDay=limit,
            sentInLast24Hours=sent,
            remaining=remaining,
            requested=requested,
            **({"availableAt": format_instant(fits_at)} if fits_at is not None else {}),
        )


# ---- claims for missing points


class ClaimNotFound(NotFound):
    """No such claim, or (for a member) a claim of another member: its existence is not told."""

    code = "claim_not_found"

    def __init__(self, claim_id: str) -> None:
        super().__init__(f"claim {claim_id!r} was not found", claimId=claim_id)


class ClaimAlreadyDecided(Conflict):
    """A claim is decided exactly once: a second decision changes nothing and says the status."""

    code = "claim_already_decided"

    def __init__(self, claim_id: str, status: str) -> None:
        # `claimStatus`, not `status`: the error body's fields sit beside `code` and `message`.
        super().__init__(f"claim {claim_id!r} is already {status}", claimId=claim_id, claimStatus=status)


class TooManyOpenClaims(Conflict):
    """The member already has the most pending claims the rules allow (`claims.maxOpenClaims`)."""

    code = "too_many_open_claims"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this member already has {limit} pending claims, the most the program allows: "
            "wait for one to be decided",
            maxOpenClaims=limit,
        )


class PurchaseClaimedByAnother(Conflict):
    """Another member's claim for this `transactionId` is pending: the purchase is one (invariant 2)."""

    code = "purchase_claimed_by_another_member"

    def __init__(self, transaction_id: str) -> None:
        super().__init__(
            f"purchase {transaction_id!r} is claimed by another member", transactionId=transaction_id
        )
