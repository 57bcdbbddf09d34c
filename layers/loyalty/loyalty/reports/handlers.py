"""Lambda entry points of the liability figures: the stream aggregator and the monthly export."""

from __future__ import annotations

from typing import Any

from loyalty.clock import utcnow
from loyalty.reports.aggregator import handle_stream_batch
from loyalty.settings import program_rules


def aggregate(event: Any, context: Any = None) -> dict[str, Any]:
    """A batch of the table's stream records (new ledger entries): added to the period figures;
    a partial-failure answer (`ReportBatchItemFailures`)."""
    return handle_stream_batch(event if isinstance(event, dict) else {}, now=utcnow)


def export(event: Any, context: Any = None) -> dict[str, Any]:
    """The monthly schedule's event (`{"time": …}`): the report as of the start of that month, to
    the reports bucket."""
    import boto3  # only this function writes to S3

    from loyalty.reports.export import bucket_sink, export_month
    from loyalty.runs.handlers import as_of_of

    return export_month(as_of_of(event), rules=program_rules(), sink=bucket_sink(lambda: boto3.client("s3")))
