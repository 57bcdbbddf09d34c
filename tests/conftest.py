"""Shared test settings: every test runs with fake AWS credentials and never reaches AWS."""

from __future__ import annotations

import os

# Set before any client is created: tests must never pick up a developer's real credentials.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-west-1",
    POWERTOOLS_SERVICE_NAME="loyalty",
    POWERTOOLS_METRICS_NAMESPACE="Loyalty",
    POWERTOOLS_LOG_LEVEL="WARNING",
)
os.environ.pop("AWS_PROFILE", None)
