"""Lambda handler: the liability aggregator (the table's stream, new ledger entries only)."""

from loyalty.http.telemetry import logger, publish_metrics
from loyalty.reports.handlers import aggregate


@logger.inject_lambda_context(log_event=False)
@publish_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return aggregate(event, context)
