"""Lambda handler: the monthly liability export (EventBridge Scheduler; `time` picks the month)."""

from loyalty.http.telemetry import logger, publish_metrics
from loyalty.reports.handlers import export


@logger.inject_lambda_context(log_event=False)
@publish_metrics
def lambda_handler(event: dict, context: object) -> dict:
    written = export(event, context)
    logger.info("liability report exported", extra=written)
    return written
