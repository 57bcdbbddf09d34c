"""Configuration, read once per process (at first use, not at import) into a typed object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loyalty.domain.rules import ProgramRules

# Set by Lambda in every execution environment, and reserved: a function's configuration can
# neither set nor remove them (Lambda refuses a template that names one). Any one of them, even
# empty, means "in Lambda", where the development identity is refused (docs/security.md).
LAMBDA_VARIABLES = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
)


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
            running_in_lambda=any(name in os.environ for name in LAMBDA_VARIABLES),
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


@cache
def program_rules() -> ProgramRules:
    """The rules document in force (`RULES_SOURCE`), loaded once per process, for the routes and the
    runs alike (a bad document fails the cold start)."""
    from loyalty.domain.rules import load_rules  # the rules schema is built only where rules are used

    return load_rules(settings().rules_source)
