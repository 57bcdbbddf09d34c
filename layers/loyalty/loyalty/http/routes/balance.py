"""GET /members/{memberId}/balance and /lots: what a member can spend, and when it expires.

The hottest read of the API, kept light: no request body or query to validate, so no
pydantic on its cold start. The response shapes are `BalanceResponse` and `LotsResponse` of
`loyalty.http.models` (documented by name; a contract test checks real responses against them).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.clock import utcnow
from loyalty.domain.errors import MemberNotFound
from loyalty.domain.lots import Lot, expiring_summary, is_live, spend_order
from loyalty.domain.wallet import Snapshot, expiring_by_month, expiry_month, issue_month_of_lot
from loyalty.http.identifiers import checked_member_id
from loyalty.http.identity import Role
from loyalty.http.resolver import current_caller, errors, program_timezone, success
from loyalty.store.wallet import MemberRead, read_all, read_live, read_member
from loyalty.timefmt import format_instant

router = APIGatewayHttpRouter()


def enrolled(read: MemberRead) -> Snapshot:
    snapshot = read.snapshot()
    if snapshot is None:
        raise MemberNotFound(read.member_id)
    return snapshot


@router.get(
    "/members/<memberId>/balance",
    summary="Available points and upcoming expiries",
    responses={**success(200, "the balance", "BalanceResponse"), **errors(401, 403, 404, 422)},
    tags=["points"],
)
def get_balance(memberId: str) -> dict[str, Any]:
    member_id = checked_member_id(memberId)
    current_caller(router).require(member_id, Role.SUPPORT, Role.PARTNER)
    now = utcnow()
    live = read_live(member_id, now, consistent=False)
    snapshot = live.snapshot
    lots = snapshot.known_lots()
    tz = program_timezone()
    by_month = dict(expiring_by_month(snapshot.wallet, tz))
    for lot in snapshot.lots():
        month = expiry_month(lot.expires_at, tz)
        if lot.remaining and not is_live(lot, now) and month is not None:
            by_month[month] = by_month.get(month, 0) - lot.remaining
    return {
        "memberId": member_id,
        "available": live.available,
        "owed": snapshot.wallet.owed,
        "expiring": [
            {"date": day.isoformat(), "expiresAt": format_instant(moment), "points": points}
            for day, moment, points in expiring_summary(lots, now, tz)
        ],
        "expiringByMonth": [
            {"month": month, "points": points} for month, points in sorted(by_month.items()) if points > 0
        ],
        "asOf": format_instant(now),
    }


@router.get(
    "/members/<memberId>/lots",
    summary="Unexpired lots, soonest expiry first",
    responses={**success(200, "the unexpired lots", "LotsResponse"), **errors(401, 403, 404, 422)},
    tags=["points"],
)
def get_lots(memberId: str) -> dict[str, Any]:
    member_id = checked_member_id(memberId)
    current_caller(router).require(member_id, Role.SUPPORT)
    now = utcnow()
    # Every page, in one Query up to DynamoDB's 1 MB page (a daily shopper's ~25 pages: ~40 KB).
    snapshot = enrolled(read_all(read_member(member_id, consistent=False, pages=1_000)))
    lots = [lot for lot in spend_order(snapshot.lots()) if is_live(lot, now)]
    return {"memberId": member_id, "lots": [lot_view(lot) for lot in lots], "asOf": format_instant(now)}


def lot_view(lot: Lot) -> dict[str, Any]:
    return {
        "lotId": lot.lot_id,
        "original": lot.original,
        "remaining": lot.remaining,
        "earnedAt": format_instant(lot.earned_at),
        "expiresAt": format_instant(lot.expires_at) if lot.expires_at else None,
        "issueMonth": issue_month_of_lot(lot.lot_id),
        "source": {"kind": lot.source_kind},
        "rulesVersion": lot.rules_version,
    }
