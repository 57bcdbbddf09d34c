"""A DynamoDB Local table for the benchmarks, built from template.yaml like the tests' one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from devtools.dynamodb_local import DynamoDBLocal, ensure_table
from devtools.template import load_template

ROOT = Path(__file__).resolve().parents[1]
TABLE = "loyalty-bench"
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "TABLE_NAME": TABLE,
    "RULES_SOURCE": "default",
    "POWERTOOLS_SERVICE_NAME": "loyalty",
    "POWERTOOLS_METRICS_NAMESPACE": "Loyalty",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


@contextmanager
def local_table() -> Iterator[str]:
    os.environ.update(ENVIRONMENT)
    with DynamoDBLocal() as engine:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = engine.endpoint
        client = boto3.client("dynamodb", endpoint_url=engine.endpoint)
        ensure_table(client, TABLE, load_template(ROOT / "template.yaml"))
        yield engine.endpoint
