"""The monthly liability export: the report as of the start of the month, written to the stack's
reports bucket as JSON and CSV (template.yaml, `LiabilityExportFunction`).

The schedule fires early in a month (by default on the 2nd, once the night's expiry run has
recorded the last day's expiries); the report is as of the local midnight that starts the month
of the schedule's `time`. Invoked by hand with `{"time": "<instant>"}`, it exports that month
again (the objects are overwritten: the figures of a past instant only change if records came
late, such as a run that finished after the export).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from loyalty.reports.liability import document, expiry_month_csv, issue_month_csv, liability_report

if TYPE_CHECKING:
    from loyalty.domain.rules import ProgramRules

PREFIX = "liability"


class Sink(Protocol):
    """Where the export's files go: the reports bucket in AWS, a folder in the local mode."""

    def write(self, key: str, body: bytes, content_type: str) -> None: ...


@dataclass(frozen=True)
class S3Sink:
    bucket: str
    client: Any

    def write(self, key: str, body: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, ServerSideEncryption="AES256"
        )


def month_start(moment: datetime, tz: tzinfo) -> datetime:
    """The local midnight that starts the month of `moment` in the program's zone."""
    local = moment.astimezone(tz)
    return datetime(local.year, local.month, 1, tzinfo=tz)


def folder(as_of: datetime, tz: tzinfo) -> str:
    """`liability/2026-12-01`: the local date the report is as of (its midnight)."""
    return f"{PREFIX}/{as_of.astimezone(tz):%Y-%m-%d}"


def export_month(scheduled: datetime, *, rules: ProgramRules, sink: Sink) -> dict[str, Any]:
    """Write the report as of the start of `scheduled`'s month: `report.json`,
    `by-issue-month.csv` and `by-expiry-month.csv`. What was written, for the logs."""
    as_of = month_start(scheduled, rules.tz)
    body = document(liability_report(as_of, rules))
    base = folder(as_of, rules.tz)
    files = {
        f"{base}/report.json": (json.dumps(body, indent=2).encode(), "application/json"),
        f"{base}/by-issue-month.csv": (issue_month_csv(body).encode(), "text/csv; charset=utf-8"),
        f"{base}/by-expiry-month.csv": (expiry_month_csv(body).encode(), "text/csv; charset=utf-8"),
    }
    for key, (content, content_type) in files.items():
        sink.write(key, content, content_type)
    return {"asOf": body["asOf"], "outstanding": body["outstanding"], "keys": sorted(files)}


def bucket_sink(client_factory: Callable[[], Any]) -> S3Sink:
    """The stack's reports bucket (`REPORTS_BUCKET`), through a client the caller makes."""
    bucket = os.environ.get("REPORTS_BUCKET", "")
    if not bucket:
        raise RuntimeError(
            "REPORTS_BUCKET is not set: it names the bucket the export writes to (template.yaml)"
        )
    return S3Sink(bucket, client_factory())
