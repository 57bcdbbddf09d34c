"""Logger and metrics shared by the handlers and routes (Powertools; settings from the environment)."""

from __future__ import annotations

import warnings

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from loyalty.store.records import Outcome

# A refused or read-only request publishes no business metric: that is normal, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
metrics = Metrics()


def count_outcome(points_metric: str, outcome: Outcome) -> None:
    """Business metrics: the points a request moved, or one `ReplayedRequests` (a replay moves nothing)."""
    if outcome.replayed:
        metrics.add_metric(name="ReplayedRequests", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name=points_metric, unit=MetricUnit.Count, value=outcome.body["points"])
