"""Claims for missing points: a member (or an agent for it) files one, support works the queue and
decides, once; the member is emailed the outcome (docs/design.md, "Claims").

- `POST /members/{memberId}/claims` (the member, support): `201` with the claim, pending or
  rejected at once with a reason; a second claim of the member for the same purchase answers
  `200` with the first as it stands, `Idempotent-Replayed: true`.
- `GET /claims?status=pending` (support): the queue, oldest first, paginated.
- `GET /claims/{claimId}` (support, the claim's member): the claim and its history; to any other
  caller that may hold claims (a member, finance) `404`, as for a claim that does not exist.
- `POST /claims/{claimId}/decision` (support): `200` with the claim decided; the same decision
  sent again by the same agent answers the stored one (`Idempotent-Replayed: true`); any other
  decision on a decided claim is `409 claim_already_decided`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.clock import utcnow
from loyalty.domain.claims import ClaimedPurchase, ClaimStatus, Decision, claim_quote
from loyalty.domain.errors import ClaimNotFound, InvalidRequest
from loyalty.domain.ledger import Actor
from loyalty.http.claim_emails import email_outcome
from loyalty.http.claim_models import (
    ClaimIdPath,
    ClaimRequest,
    ClaimResponse,
    ClaimsPageResponse,
    ClaimStatusName,
    DecisionRequest,
)
from loyalty.http.identity import Forbidden, Rights, Role, route_rights
from loyalty.http.models import MemberIdPath
from loyalty.http.resolver import current_caller, errors, movement_response, success
from loyalty.http.telemetry import count_event
from loyalty.settings import program_rules
from loyalty.store import claims
from loyalty.store.claims import Claim
from loyalty.timefmt import format_instant

router = APIGatewayHttpRouter()
FILE_RIGHTS = route_rights("POST /members/{memberId}/claims", Rights((Role.SUPPORT,)))
DECIDE_RIGHTS = route_rights("POST /claims/{claimId}/decision", Rights((Role.SUPPORT,), self_allowed=False))
QUEUE_RIGHTS = Rights((Role.SUPPORT,), self_allowed=False)

_CLAIM_ERRORS = {
    404: "unknown member (filing), or no such claim: a claim of another member is answered the same",
    409: "conflict: the claim is already decided (with its `status`), the member has too many pending "
    "claims, or another member's claim waits on this purchase",
}


def claim_errors(*statuses: int) -> dict[int, Any]:
    """`errors(...)`, with the 404 and 409 described as the claims routes return them."""
    documented = errors(*statuses)
    for status, description in _CLAIM_ERRORS.items():
        if status in documented:
            documented[status] = {**documented[status], "description": description}
    return documented


@router.post(
    "/members/<memberId>/claims",
    summary="Claim missing points (the member, or support on its behalf)",
    description="Decided at once where the rules allow: `rejected` with a `reasonCode` and a `reason` "
    "when the purchase was already credited or is outside the claim window (2 to 180 days old by "
    "default); otherwise `pending` for support. A second claim of the member for the same purchase "
    "answers `200` with the first as it stands (`Idempotent-Replayed: true`); a claim rejected as "
    "too recent is examined again once the purchase is old enough.",
    responses={
        **success(201, "claim filed: pending, or rejected at once", ClaimResponse),
        **success(200, "this member already claimed this purchase: the claim as it stands", ClaimResponse),
        **claim_errors(400, 401, 403, 404, 409, 415, 422),
    },
    tags=["claims"],
)
def post_claim(member_id: MemberIdPath, body: ClaimRequest) -> Response[Any]:
    caller = current_caller(router)
    FILE_RIGHTS.check(caller, member_id)
    purchase = ClaimedPurchase(
        transaction_id=body.transaction_id,
        occurred_at=body.occurred_at,
        amount=Decimal(body.amount),
        currency=body.currency,
        store=body.store,
        receipt_ref=body.receipt_ref,
    )
    filed = claims.file_claim(
        member_id, purchase, actor=caller.acting_as(member_id), rules=program_rules(), now=utcnow()
    )
    if filed.created:
        count_event("ClaimsOpened" if filed.claim.status == ClaimStatus.PENDING else "ClaimsRejectedAtOnce")
    else:
        count_event("ReplayedRequests")
    status = 201 if filed.created else 200
    return movement_response(status, claim_body(filed.claim), replayed=not filed.created)


@router.get(
    "/claims",
    summary="The claims queue (support): oldest first",
    description="Claims in one status, oldest first, from the ByStatus index: `pending` (the default) "
    "is the queue; `approved`, `rejected` and `matched` list the decided ones.",
    responses={
        **success(200, "a page of claims", ClaimsPageResponse),
        **claim_errors(400, 401, 403, 422),
    },
    tags=["claims"],
)
def get_claims(
    status: Annotated[ClaimStatusName, Query(description="the claims in this status")] = "pending",
    limit: Annotated[int, Query(ge=1, le=100, description="claims per page")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`nextCursor` of the previous page")
    ] = None,
) -> ClaimsPageResponse:
    QUEUE_RIGHTS.check(current_caller(router), None)
    page = claims.claims_page(ClaimStatus(status), limit=limit, cursor=cursor)
    return ClaimsPageResponse.model_validate(
        {
            "status": status,
            "claims": [summary_body(claim) for claim in page.claims],
            "nextCursor": page.next_cursor,
        }
    )


@router.get(
    "/claims/<claimId>",
    summary="One claim and its history (support, or the claim's member)",
    responses={
        **success(200, "the claim, its decision and its history", ClaimResponse),
        **claim_errors(400, 401, 403, 404, 422),
    },
    tags=["claims"],
)
def get_claim(claim_id: ClaimIdPath) -> ClaimResponse:
    caller = current_caller(router)
    if not caller.roles & {Role.SUPPORT, Role.MEMBER}:
        raise Forbidden("only support and members read claims")
    claim = claims.get_claim(claim_id)
    if Role.SUPPORT not in caller.roles and not caller.is_self(claim.member_id):
        raise ClaimNotFound(claim_id)  # another member's claim: its existence is not told
    return ClaimResponse.model_validate(claim_body(claim))


@router.post(
    "/claims/<claimId>/decision",
    summary="Decide a pending claim (support), once",
    description="`approve` credits the purchase's points (by default what the rules give its amount "
    "and date; `points` sets them) in a lot issued today, valid at least 30 days; `reject` closes the "
    "claim with its `reason` and frees the purchase for a later earn. The member is emailed the "
    "outcome. The same decision sent again by the same agent answers the stored one "
    "(`Idempotent-Replayed: true`); any other decision on a decided claim is `409 claim_already_decided`.",
    responses={
        **success(200, "the claim, decided", ClaimResponse),
        **claim_errors(400, 401, 403, 404, 409, 415, 422),
    },
    tags=["claims"],
)
def post_decision(claim_id: ClaimIdPath, body: DecisionRequest) -> Response[Any]:
    caller = current_caller(router)
    DECIDE_RIGHTS.check(caller, None)
    rules, now = program_rules(), utcnow()
    decided = claims.decide(
        claim_id,
        Decision(body.decision),
        reason=body.reason,
        points=body.points,
        actor=caller.actor,
        rules=rules,
        now=now,
    )
    claim = decided.claim
    if decided.replayed:
        count_event("ReplayedRequests")
    else:
        count_event("ClaimsApproved" if claim.status == ClaimStatus.APPROVED else "ClaimsRejected")
        if claim.credit is not None:
            count_event("ClaimPointsCredited", claim.credit.points)
        # After the commit: the email's fate is recorded on the claim, never an error here.
        record = email_outcome(claim.outcome(), tz=rules.tz, now=now, profile=decided.profile)
        claim = replace(claim, email=record)
    return movement_response(200, claim_body(claim), replayed=decided.replayed)


# ---- claim -> JSON


def summary_body(claim: Claim) -> dict[str, Any]:
    return {
        "claimId": claim.claim_id,
        "memberId": claim.member_id,
        "transactionId": claim.transaction_id,
        "status": claim.status.value,
        "reasonCode": claim.reason_code.value if claim.reason_code else None,
        "reason": claim.reason,
        "occurredAt": format_instant(claim.occurred_at),
        "amount": claim.amount,
        "currency": claim.currency,
        "store": claim.store,
        "receiptRef": claim.receipt_ref,
        "createdAt": format_instant(claim.created_at),
        "filedBy": _actor(claim.filed_by),
        "decidedAt": _instant(claim.decided_at),
        "decidedBy": _actor(claim.decided_by) if claim.decided_by else None,
    }


def suggested_points(claim: Claim) -> int | None:
    """What approving the pending claim without `points` would credit: the same quote the decision
    makes (the rules in force, the purchase's amount and date), so support sees it before deciding."""
    if claim.status != ClaimStatus.PENDING:
        return None
    try:
        return claim_quote(program_rules(), claim.purchase).points
    except InvalidRequest:
        return None  # the rules changed since filing: support sets the points


def claim_body(claim: Claim) -> dict[str, Any]:
    credit, email = claim.credit, claim.email
    return {
        **summary_body(claim),
        "suggestedPoints": suggested_points(claim),
        "credit": {
            "points": credit.points,
            "entryId": credit.entry_id,
            "lotId": credit.lot_id,
            "expiresAt": _instant(credit.expires_at),
            "balance": credit.balance,
        }
        if credit
        else None,
        "email": {
            "status": email.status,
            "kind": email.kind,
            "at": _instant(email.at),
            "messageId": email.message_id,
            "error": email.error,
            "retryable": email.retryable,
        }
        if email
        else None,
        "history": [
            {
                "at": _instant(event.at),
                "actor": {"kind": event.actor.kind, "id": event.actor.id},
                "action": event.action,
                "status": event.status.value,
                "reason": event.reason,
                "points": event.points,
            }
            for event in claim.history
        ],
    }


def _actor(actor: Actor) -> dict[str, str]:
    return {"kind": actor.kind, "id": actor.id}


def _instant(moment: datetime | None) -> str | None:
    return format_instant(moment) if moment is not None else None
