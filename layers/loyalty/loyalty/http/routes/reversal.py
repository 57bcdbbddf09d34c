"""POST /members/{memberId}/earn/{transactionId}/reversal: a purchase returned, its points taken back."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.clock import utcnow
from loyalty.http.identifiers import IDENTIFIER
from loyalty.http.identity import Rights, Role, route_rights
from loyalty.http.models import LotMovement, MemberIdPath, ReversalRequest, ReversalResponse
from loyalty.http.resolver import current_caller, errors, movement_response, success
from loyalty.http.telemetry import count_movement
from loyalty.settings import program_rules
from loyalty.store import reversals

router = APIGatewayHttpRouter()
RIGHTS = route_rights(
    "POST /members/{memberId}/earn/{transactionId}/reversal", Rights((Role.PARTNER,), self_allowed=False)
)
TransactionIdPath = Annotated[
    str, Path(alias="transactionId", pattern=IDENTIFIER, description="the purchase's id, as it was earned")
]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="idempotency-key",
        pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description="a key of the caller's choosing: a retry with the same key and body returns the "
        "original response; the same key with another body is a 409",
    ),
]

# No body at all, like `{}`: the whole purchase, or what is left of it.
EVERYTHING_LEFT = ReversalRequest()


@router.post(
    "/members/<memberId>/earn/<transactionId>/reversal",
    summary="Reverse a purchase's points on a return, in full or in part (partners)",
    description="The purchase must have been credited to this member (else 404 `purchase_not_found`). "
    "No body, `{}` or no `amount`: everything not yet returned; an `amount`: its share of the points, "
    "computed on the amount returned so far and rounded as the rules say. Points come from the "
    "purchase's own lot first, then the soonest-expiring lots; what the member already spent becomes "
    "points owed (`owedAdded`), settled by its next credits. More than is left: 409 "
    "`reversal_exceeds_purchase` or `purchase_already_reversed`.",
    responses={
        **success(201, "points reversed", ReversalResponse),
        **errors(400, 401, 403, 404, 409, 415, 422),
    },
    tags=["points"],
)
def post_reversal(
    member_id: MemberIdPath,
    transaction_id: TransactionIdPath,
    idempotency_key: IdempotencyKey,
    body: Annotated[ReversalRequest, Body()] = EVERYTHING_LEFT,
) -> Response[Any]:
    caller = current_caller(router)
    RIGHTS.check(caller, member_id)
    result = reversals.reverse(
        member_id,
        transaction_id,
        amount=Decimal(body.amount) if body.amount is not None else None,
        currency=body.currency,
        idempotency_key=idempotency_key,
        actor=caller.actor,
        rules=program_rules(),
        now=utcnow(),
    )
    count_movement("PointsReversed", result.points, replayed=result.replayed)
    body_out = ReversalResponse(
        reversal_id=result.reversal_id,
        transaction_id=result.transaction_id,
        amount=result.amount,
        currency=result.currency,
        points=result.points,
        taken=result.taken,
        owed_added=result.owed_added,
        owed=result.owed,
        balance=result.balance,
        reversed_amount=result.reversed_amount,
        reversed_points=result.reversed_points,
        lots=[
            LotMovement(lot_id=lot.lot_id, points=lot.points, expires_at=lot.expires_at)
            for lot in result.lots
        ],
    )
    return movement_response(201, body_out.model_dump(mode="json", by_alias=True), replayed=result.replayed)
