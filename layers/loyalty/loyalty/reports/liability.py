"""The liability report as the API answers it and as the monthly export writes it (JSON, CSV).

One shape for both: `document()` is the route's body and the export's `report.json`; the two CSV
tables are its `byIssueMonth` and `byExpiryMonth` lists, a row each.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loyalty.domain.liability import LiabilityReport, PointValue, build_report, minute_end, report_instant
from loyalty.store.liability import figures_as_of
from loyalty.timefmt import format_instant

if TYPE_CHECKING:
    from loyalty.domain.rules import ProgramRules

ISSUE_COLUMNS = (
    "month",
    "issued",
    "received",
    "redeemed",
    "transferred",
    "reversed",
    "expired",
    "adjusted",
    "outstanding",
    "breakageRate",
)
EXPIRY_COLUMNS = ("month", "points")


def liability_report(as_of: datetime, rules: ProgramRules) -> LiabilityReport:
    """The report as of `as_of`, to the minute, from the period figures (O(months) reads)."""
    instant = report_instant(as_of)
    return build_report(instant, figures_as_of(instant), _point_value(rules))


def current_liability_report(now: datetime, rules: ProgramRules) -> LiabilityReport:
    """The report as of `now`: every figure recorded so far, through the end of the current minute
    (nothing took effect after now), shown as of `now`."""
    return build_report(now, figures_as_of(minute_end(now)), _point_value(rules))


def _point_value(rules: ProgramRules) -> PointValue | None:
    reporting = rules.reporting
    return PointValue(reporting.point_value, reporting.currency) if reporting is not None else None


def document(report: LiabilityReport) -> dict[str, Any]:
    """The report as JSON (camelCase, points as integers, money as decimal strings)."""
    body: dict[str, Any] = {
        "asOf": format_instant(report.as_of),
        "outstanding": report.outstanding,
        "byExpiryMonth": [{"month": month, "points": points} for month, points in report.by_expiry_month],
        "expiresOnInactivity": report.on_inactivity,
        "neverExpires": report.never_expiring,
        "owed": report.owed,
        "byIssueMonth": [
            {
                "month": month.month,
                "issued": month.issued,
                "received": month.received,
                "redeemed": month.redeemed,
                "transferred": month.transferred,
                "reversed": month.reversed,
                "expired": month.expired,
                "adjusted": month.adjusted,
                "outstanding": month.outstanding,
                "breakageRate": month.breakage_rate,
            }
            for month in report.by_issue_month
        ],
        "value": None,
    }
    if report.point_value is not None and report.outstanding_value is not None:
        body["value"] = {
            "currency": report.point_value.currency,
            "perPoint": str(report.point_value.amount),
            "outstanding": str(report.outstanding_value),
        }
    return body


def issue_month_csv(body: dict[str, Any]) -> str:
    return _csv(ISSUE_COLUMNS, body["byIssueMonth"])


def expiry_month_csv(body: dict[str, Any]) -> str:
    return _csv(EXPIRY_COLUMNS, body["byExpiryMonth"])


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: "" if row.get(column) is None else row[column] for column in columns})
    return out.getvalue()
