"""The DynamoDB client: one per process, the one pynamodb's models share (see `models.bind`)."""

from __future__ import annotations

from typing import Any

from loyalty.store.models import bind


def dynamodb() -> Any:
    """The botocore client every store call goes through; its endpoint comes from botocore's own
    configuration (`AWS_ENDPOINT_URL_DYNAMODB` included). Tests and the bench hook its events."""
    return bind()
