"""Logger and metrics shared by the handlers and routes (Powertools; settings from the environment)."""

from __future__ import annotations

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

logger = Logger()
metrics = Metrics()


def count_points(name: str, points: int) -> None:
    """A business metric: points moved by a successful request (replays are not counted twice)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=points)
