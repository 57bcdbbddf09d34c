"""A `ColdStart` metric per function, on a process's first invocation only (issue #9, observability)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.lambda_runtime import LambdaContext
from loyalty.http import telemetry


def emf_blobs(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_the_first_invocation_of_a_process_counts_one_cold_start_with_the_function_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LoyaltyTest")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setattr(telemetry, "_cold", [True])
    handler = telemetry.publish_metrics(lambda event, context: {"ok": True})

    assert handler({}, LambdaContext("EarnFunction")) == {"ok": True}
    assert handler({}, LambdaContext("EarnFunction")) == {"ok": True}

    cold = [blob for blob in emf_blobs(capsys.readouterr().out) if "ColdStart" in blob]
    assert len(cold) == 1
    (blob,) = cold
    assert blob["ColdStart"] == [1.0] and blob["function_name"] == "EarnFunction"
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "LoyaltyTest" and directive["Dimensions"] == [
        ["function_name", "service"]
    ]


def test_a_failure_to_record_the_cold_start_never_fails_the_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(telemetry, "_cold", [True])

    def broken(**_: Any) -> Any:
        raise RuntimeError("no namespace")

    monkeypatch.setattr(telemetry, "single_metric", broken)
    handler = telemetry.publish_metrics(lambda event, context: "answered")

    assert handler({}, LambdaContext("BalanceFunction")) == "answered"
