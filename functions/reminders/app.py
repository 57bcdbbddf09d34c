"""Lambda handler: the daily reminder run's start (EventBridge Scheduler; as-of = the event's `time`)."""

from loyalty.http.telemetry import logger
from loyalty.runs.handlers import start
from loyalty.runs.jobs import RunKind


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: object) -> dict:
    summary = start(RunKind.REMINDERS, event)
    logger.info("reminder run fanned out", extra=summary)
    return summary
