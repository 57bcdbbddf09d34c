"""Lambda handler: GET /reports/liability (finance and support)."""

from aws_lambda_powertools.logging import correlation_paths

from loyalty.http.resolver import build_resolver
from loyalty.http.routes import reports
from loyalty.http.telemetry import logger, publish_metrics

app = build_resolver(reports.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@publish_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
