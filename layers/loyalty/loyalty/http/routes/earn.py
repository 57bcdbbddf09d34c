"""POST /members/{memberId}/earn: a partner reports a purchase; it becomes a lot of points."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.clock import utcnow
from loyalty.domain.claims import ClaimStatus
from loyalty.domain.earning import Purchase
from loyalty.http.identity import Rights, Role, route_rights
from loyalty.http.models import EarnRequest, EarnResponse, MemberIdPath
from loyalty.http.resolver import current_caller, errors, movement_response, success
from loyalty.http.telemetry import count_event, count_movement
from loyalty.settings import program_rules
from loyalty.store import points

router = APIGatewayHttpRouter()
RIGHTS = route_rights("POST /members/{memberId}/earn", Rights((Role.PARTNER,), self_allowed=False))


@router.post(
    "/members/<memberId>/earn",
    summary="Credit a purchase (partners)",
    description="Idempotent on `transactionId`: the same request again returns the original response "
    "(header `Idempotent-Replayed: true`); another request with the same `transactionId` is a 409.",
    responses={
        **success(201, "points credited", EarnResponse),
        **errors(400, 401, 403, 404, 409, 415, 422),
    },
    tags=["points"],
)
def post_earn(member_id: MemberIdPath, body: EarnRequest) -> Response[Any]:
    caller = current_caller(router)
    RIGHTS.check(caller, member_id)
    purchase = Purchase(
        amount=Decimal(body.amount),
        currency=body.currency,
        occurred_at=body.occurred_at,
        channel=body.channel,
        category=body.category,
    )
    rules, now = program_rules(), utcnow()
    result = points.earn(member_id, body.transaction_id, purchase, actor=caller.actor, rules=rules, now=now)
    count_movement("PointsEarned", result.points, replayed=result.replayed)
    if result.closed_claim is not None:
        # The earn closed a pending claim of this purchase: its member is emailed, after the commit.
        from loyalty.http.claim_emails import email_outcome  # only on this rare path (cold start)

        matched = result.closed_claim.status == ClaimStatus.MATCHED
        count_event("ClaimsMatched" if matched else "ClaimsRejected")
        email_outcome(result.closed_claim, tz=rules.tz, now=now)
    body_out = EarnResponse(
        entry_id=result.entry_id,
        transaction_id=result.transaction_id,
        points=result.points,
        lot_id=result.lot_id,
        expires_at=result.expires_at,
        balance=result.balance,
        rules_version=result.rules_version,
        owed_settled=result.owed_settled,
    )
    return movement_response(201, body_out.model_dump(mode="json", by_alias=True), replayed=result.replayed)
