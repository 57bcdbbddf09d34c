"""Configuration, read once per process (at first use, not at import) into a typed object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    table_name: str
    rules_source: str
    running_in_lambda: bool
    # Partitions of the ByNextExpiry index (template parameter ExpiryShards; docs/design.md).
    expiry_shards: int = 64
    idempotency_ttl_seconds: int = 7 * 24 * 3600
    max_attempts: int = 6

    @classmethod
    def from_environment(cls) -> Settings:
        table_name = os.environ.get("TABLE_NAME", "")
        if not table_name:
            raise RuntimeError("TABLE_NAME is not set: it names the DynamoDB table (template.yaml sets it)")
        return cls(
            table_name=table_name,
            rules_source=os.environ.get("RULES_SOURCE", "default"),
            running_in_lambda="AWS_LAMBDA_FUNCTION_NAME" in os.environ,
            expiry_shards=_positive_int("EXPIRY_SHARDS", 64),
        )


def _positive_int(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise RuntimeError(f"{name} must be a positive integer, got {text!r}")
    return int(text)


@cache
def settings() -> Settings:
    return Settings.from_environment()
