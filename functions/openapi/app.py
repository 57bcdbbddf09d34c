"""Lambda handler: GET /openapi.json (the OpenAPI document generated from the code) and GET /swagger."""

from aws_lambda_powertools.logging import correlation_paths

from loyalty.http.openapi import build_api
from loyalty.http.telemetry import logger

app = build_api()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
