"""GET /members/{memberId}/balance and /lots: what a member can spend, and when it expires."""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.clock import utcnow
from loyalty.domain.errors import MemberNotFound
from loyalty.domain.lots import available, expiring_summary, is_live, spend_order
from loyalty.http.identity import Role
from loyalty.http.models import (
    BalanceResponse,
    ExpiringPoints,
    LotSource,
    LotsResponse,
    LotView,
    MemberIdPath,
)
from loyalty.http.resolver import current_caller, errors, program_timezone, success
from loyalty.store.wallet import WalletSnapshot, read_wallet

router = APIGatewayHttpRouter()


def enrolled_wallet(member_id: str) -> WalletSnapshot:
    snapshot = read_wallet(member_id, consistent=False)
    if snapshot.wallet is None:
        raise MemberNotFound(member_id)
    return snapshot


@router.get(
    "/members/<memberId>/balance",
    summary="Available points and upcoming expiries",
    responses={**success(200, "the balance", BalanceResponse), **errors(401, 403, 404, 422)},
    tags=["points"],
)
def get_balance(member_id: MemberIdPath) -> BalanceResponse:
    current_caller(router).require(member_id, Role.SUPPORT, Role.PARTNER)
    now = utcnow()
    lots = enrolled_wallet(member_id).lots()
    return BalanceResponse(
        member_id=member_id,
        available=available(lots, now),
        expiring=[
            ExpiringPoints(date=day.isoformat(), expires_at=moment, points=points)
            for day, moment, points in expiring_summary(lots, now, program_timezone())
        ],
        as_of=now,
    )


@router.get(
    "/members/<memberId>/lots",
    summary="Unexpired lots, soonest expiry first",
    responses={**success(200, "the unexpired lots", LotsResponse), **errors(401, 403, 404, 422)},
    tags=["points"],
)
def get_lots(member_id: MemberIdPath) -> LotsResponse:
    current_caller(router).require(member_id, Role.SUPPORT)
    now: datetime = utcnow()
    lots = [lot for lot in spend_order(enrolled_wallet(member_id).lots()) if is_live(lot, now)]
    return LotsResponse(
        member_id=member_id,
        lots=[
            LotView(
                lot_id=lot.lot_id,
                original=lot.original,
                remaining=lot.remaining,
                earned_at=lot.earned_at,
                expires_at=lot.expires_at,
                source=LotSource(kind=lot.source_kind, ref=lot.source_ref),
                rules_version=lot.rules_version,
            )
            for lot in lots
        ],
        as_of=now,
    )
