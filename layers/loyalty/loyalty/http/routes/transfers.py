"""POST /members/{memberId}/transfers: a member gives points to another member.

The request and response models live here, with the one route that uses them.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BeforeValidator, Field, StrictInt

from loyalty.clock import utcnow
from loyalty.http.headers import IdempotencyKey
from loyalty.http.identifiers import IDENTIFIER
from loyalty.http.identity import Rights, route_rights
from loyalty.http.models import Body, LotMovement, MemberIdPath, Points, _integral
from loyalty.http.resolver import current_caller, errors, movement_response, success
from loyalty.http.telemetry import count_movement
from loyalty.settings import program_rules
from loyalty.store import transfers

router = APIGatewayHttpRouter()
# The member itself, and nobody else: not a partner, not support (SPEC §5).
RIGHTS = route_rights("POST /members/{memberId}/transfers", Rights(()))

REFUSALS = """Refusals change nothing; each has its own `error.code`:

| status | code | when |
|---|---|---|
| 422 | `transfer_to_self` | `toMemberId` is the sender |
| 422 | `transfer_below_minimum` | `points` below the rules' `transfers.minPoints` (given as `minPoints`) |
| 422 | `transfer_above_maximum` | `points` above `transfers.maxPoints` (given as `maxPoints`) |
| 422 | `recipient_not_found` | `toMemberId` is not an enrolled member |
| 422 | `recipient_closed` | `toMemberId` has closed its account |
| 404 | `member_not_found` | the sender is not enrolled |
| 409 | `transfers_disabled` | the rules turn transfers off (`transfers.enabled`) |
| 409 | `member_closed` | the sender has closed its account |
| 409 | `transfer_daily_limit_reached` | over `transfers.maxPointsPerDay` in 24 hours: `remaining` is \
what is left, `availableAt` when this request would fit |
| 409 | `insufficient_points` | fewer live points than `points` |
| 409 | `movement_too_large` | more lot pages than one transaction holds: transfer fewer points |
| 409 | `idempotency_mismatch` | the `Idempotency-Key` was used with another request |
"""


class TransferRequest(Body):
    to_member_id: Annotated[str, Field(pattern=IDENTIFIER, description="the member who receives the points")]
    points: Annotated[StrictInt, Field(ge=1, le=100_000_000), BeforeValidator(_integral)]


class TransferResponse(Body):
    transfer_id: str = Field(description="also in both members' ledger entries, as `details.transferId`")
    points: Points
    balance: Points = Field(description="the sender's available balance after the transfer")
    lots: list[LotMovement] = Field(
        description="the sender's lots taken, soonest expiry first: the receiver gets lots of the same "
        "expiry dates (a transfer never extends validity)"
    )


@router.post(
    "/members/<memberId>/transfers",
    summary="Transfer points to another member (the member itself)",
    description="The sender's soonest-expiring points go to the receiver, keeping their expiry dates; "
    "points the receiver owes after a return are settled first.\n\n" + REFUSALS,
    responses={
        **success(201, "points transferred", TransferResponse),
        **errors(400, 401, 403, 404, 409, 415, 422),
    },
    tags=["points"],
)
def post_transfer(
    member_id: MemberIdPath, body: TransferRequest, idempotency_key: IdempotencyKey
) -> Response[Any]:
    caller = current_caller(router)
    RIGHTS.check(caller, member_id)
    result = transfers.transfer(
        member_id,
        body.to_member_id,
        body.points,
        idempotency_key=idempotency_key,
        actor=caller.acting_as(member_id),
        rules=program_rules(),
        now=utcnow(),
    )
    count_movement("PointsTransferred", result.points, replayed=result.replayed)
    body_out = TransferResponse(
        transfer_id=result.transfer_id,
        points=result.points,
        balance=result.balance,
        lots=[
            LotMovement(lot_id=lot.lot_id, points=lot.points, expires_at=lot.expires_at)
            for lot in result.lots
        ],
    )
    return movement_response(201, body_out.model_dump(mode="json", by_alias=True), replayed=result.replayed)
