"""Lambda handler: the daily reminder run's start (EventBridge Scheduler; as-of = the event's `time`)
and the paging of its shards (SQS: one shard task at a time)."""

from loyalty.http.telemetry import logger, publish_metrics
from loyalty.runs.handlers import start
from loyalty.runs.jobs import RunKind


@logger.inject_lambda_context(log_event=False)
@publish_metrics
def lambda_handler(event: dict, context: object) -> dict:
    summary = start(RunKind.REMINDERS, event, context)
    if "runId" in summary:
        logger.info("reminder run started", extra=summary)
    return summary
