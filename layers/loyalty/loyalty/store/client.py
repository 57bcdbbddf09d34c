"""The DynamoDB client: created once per process, endpoint from the standard AWS_ENDPOINT_URL_* variables."""

from __future__ import annotations

from functools import cache
from typing import Any

from loyalty.settings import settings
from loyalty.store.codec import from_item


@cache
def dynamodb() -> Any:
    # botocore alone (not boto3) keeps the cold start short; it honours AWS_ENDPOINT_URL_DYNAMODB.
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    return session.create_client("dynamodb", config=config)


def query_all(**request: Any) -> list[dict[str, Any]]:
    """Every item a Query matches on the table, following pages (decoded to plain values)."""
    items: list[dict[str, Any]] = []
    while True:
        response = dynamodb().query(TableName=settings().table_name, **request)
        items.extend(from_item(item) for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
