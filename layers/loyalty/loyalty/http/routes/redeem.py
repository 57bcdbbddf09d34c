"""POST /members/{memberId}/redemptions: spend points, soonest-expiring lots first."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.clock import utcnow
from loyalty.http.headers import IdempotencyKey
from loyalty.http.identity import Rights, Role, route_rights
from loyalty.http.models import LotMovement, MemberIdPath, RedeemRequest, RedeemResponse
from loyalty.http.resolver import current_caller, errors, movement_response, success
from loyalty.http.telemetry import count_movement
from loyalty.settings import program_rules
from loyalty.store import points

router = APIGatewayHttpRouter()
RIGHTS = route_rights("POST /members/{memberId}/redemptions", Rights((Role.PARTNER,)))


@router.post(
    "/members/<memberId>/redemptions",
    summary="Redeem points (the member, or a partner at the till)",
    responses={
        **success(201, "points redeemed", RedeemResponse),
        **errors(400, 401, 403, 404, 409, 415, 422),
    },
    tags=["points"],
)
def post_redemption(
    member_id: MemberIdPath, body: RedeemRequest, idempotency_key: IdempotencyKey
) -> Response[Any]:
    caller = current_caller(router)
    RIGHTS.check(caller, member_id)
    result = points.redeem(
        member_id,
        body.points,
        idempotency_key=idempotency_key,
        actor=caller.acting_as(member_id),
        rules=program_rules(),
        now=utcnow(),
    )
    count_movement("PointsRedeemed", result.points, replayed=result.replayed)
    body_out = RedeemResponse(
        redemption_id=result.redemption_id,
        points=result.points,
        balance=result.balance,
        lots=[
            LotMovement(lot_id=lot.lot_id, points=lot.points, expires_at=lot.expires_at)
            for lot in result.lots
        ],
    )
    return movement_response(201, body_out.model_dump(mode="json", by_alias=True), replayed=result.replayed)
