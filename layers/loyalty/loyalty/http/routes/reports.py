"""GET /reports/liability: points outstanding and breakage as of an instant, for finance and
support (SPEC §5). O(months) reads of the figures the stream aggregator keeps
(docs/design.md, "Liability and breakage")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.clock import utcnow
from loyalty.domain.errors import InvalidRequest
from loyalty.http.identity import Role
from loyalty.http.models import RFC3339_PATTERN, LiabilityResponse
from loyalty.http.resolver import current_caller, errors, success
from loyalty.reports.liability import current_liability_report, document, liability_report
from loyalty.settings import program_rules

router = APIGatewayHttpRouter()
# Before this, no program ran on this code: an instant earlier than it is a mistake, not a report.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


@router.get(
    "/reports/liability",
    summary="Points outstanding and breakage as of an instant",
    responses={**success(200, "the liability report", LiabilityResponse), **errors(401, 403, 422)},
    tags=["reports"],
)
def get_liability(
    as_of: Annotated[
        str | None,
        Query(
            alias="asOf",
            pattern=RFC3339_PATTERN,
            max_length=40,
            description="RFC 3339 instant with an offset, not in the future; the report is exact "
            "to the minute (seconds are dropped). Default: now, with every movement so far",
        ),
    ] = None,
) -> LiabilityResponse:
    current_caller(router).require(None, Role.FINANCE, Role.SUPPORT)
    now = utcnow()
    if as_of is None:
        report = current_liability_report(now, program_rules())
    else:
        report = liability_report(_instant(as_of, now), program_rules())
    return LiabilityResponse.model_validate(document(report))


def _instant(text: str, now: datetime) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest("asOf", "is not a valid date and time", location="query") from None
    if moment > now:
        raise InvalidRequest("asOf", "must not be in the future", location="query")
    if moment < EARLIEST:
        raise InvalidRequest("asOf", "must be in the year 2000 or later", location="query")
    return moment
