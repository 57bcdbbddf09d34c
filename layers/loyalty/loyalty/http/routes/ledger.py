"""GET /members/{memberId}/ledger: every movement, newest first, paginated by an opaque cursor."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.http.identity import Role
from loyalty.http.models import LedgerResponse, MemberIdPath
from loyalty.http.resolver import current_caller, errors, success
from loyalty.store.ledger import ledger_page

router = APIGatewayHttpRouter()


@router.get(
    "/members/<memberId>/ledger",
    summary="Movements, newest first",
    responses={**success(200, "a page of movements", LedgerResponse), **errors(400, 401, 403, 404, 422)},
    tags=["points"],
)
def get_ledger(
    member_id: MemberIdPath,
    limit: Annotated[int, Query(ge=1, le=100, description="entries per page")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`nextCursor` of the previous page")
    ] = None,
) -> LedgerResponse:
    current_caller(router).require(member_id, Role.SUPPORT)
    page = ledger_page(member_id, limit=limit, cursor=cursor)
    return LedgerResponse.model_validate(
        {"memberId": member_id, "entries": page.entries, "nextCursor": page.next_cursor}
    )
