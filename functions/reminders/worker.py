"""Lambda handler: the reminder run's worker (SQS batches of members; partial batch failures)."""

from loyalty.http.telemetry import logger, publish_metrics
from loyalty.runs.handlers import work
from loyalty.runs.jobs import RunKind


@logger.inject_lambda_context(log_event=False)
@publish_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return work(RunKind.REMINDERS, event, context)
