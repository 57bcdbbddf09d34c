"""Lambda handler: the daily expiry run's start (EventBridge Scheduler; as-of = the event's `time`)."""

from loyalty.http.telemetry import logger
from loyalty.runs.handlers import start
from loyalty.runs.jobs import RunKind


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: object) -> dict:
    summary = start(RunKind.EXPIRY, event)
    logger.info("expiry run fanned out", extra=summary)
    return summary
