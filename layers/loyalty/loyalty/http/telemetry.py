"""Logger and metrics shared by the handlers and routes (Powertools; settings from the environment)."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit, single_metric

# A refused or read-only request publishes no business metric: that is normal, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

# Libraries whose DEBUG lines carry request parameters and bodies (botocore's and pynamodb's
# DynamoDB calls with the items, Powertools' route arguments with the parsed body): emails and
# names. Held at INFO whatever a deployer chooses (`LogLevel`, `POWERTOOLS_DEBUG`, Lambda's
# application log level on the root logger): no setting puts personal data in the logs
# (docs/security.md). An operator who needs them on a test stack lowers them in code, knowingly.
QUIET_LIBRARIES = ("botocore", "boto3", "urllib3", "pynamodb", "aws_lambda_powertools")
for _library in QUIET_LIBRARIES:
    logging.getLogger(_library).setLevel(logging.INFO)

logger = Logger()
metrics = Metrics()


def count_movement(points_metric: str, points: int, *, replayed: bool) -> None:
    """Business metrics: the points a request moved, or one `ReplayedRequests` (a replay moves nothing).

    Called after the movement committed: a metrics failure is logged, never turned into an error."""
    try:
        if replayed:
            metrics.add_metric(name="ReplayedRequests", unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name=points_metric, unit=MetricUnit.Count, value=points)
    except Exception:
        logger.exception("could not record a business metric")


def count_refusal(code: str) -> None:
    """A metric per limit a movement ran into (e.g. `MovementTooLarge`), for the operators' alarms."""
    try:
        metrics.add_metric(name=code, unit=MetricUnit.Count, value=1)
    except Exception:
        logger.exception("could not record a refusal metric")


def count_event(name: str, value: int = 1) -> None:
    """A business event (`ClaimsFiled`, `ClaimsApproved`, `ClaimEmailsFailed`, …), counted after
    the commit: a metrics failure is logged, never turned into an error."""
    try:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    except Exception:
        logger.exception("could not record a business metric")


def gauge(name: str, value: float, *, dimension: tuple[str, str]) -> None:
    """A metric with a dimension of its own (`RunsIncomplete` by `kind`, …), in a metric blob of
    its own (the request's metrics share none of its dimensions); a failure is logged, not raised."""
    try:
        with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
            metric.add_dimension(name=dimension[0], value=dimension[1])
    except Exception:
        logger.exception("could not record a metric")


_cold = [True]  # this process has not served an invocation yet


def count_cold_start(context: Any) -> None:
    """One `ColdStart` of the function (dimension `function_name`), on the process's first
    invocation only, in a metric blob of its own (as Powertools' `capture_cold_start_metric`)."""
    if not _cold[0]:
        return
    _cold[0] = False
    try:
        function = str(getattr(context, "function_name", "unknown"))
        with single_metric(name="ColdStart", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="function_name", value=function)
    except Exception:
        logger.exception("could not record the cold start")


def publish_metrics(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Publish the request's metrics after the handler, like Powertools' `log_metrics`, except that
    a failure to publish (a missing namespace, a bad dimension) is logged, never raised: by then
    the movement is committed and its response must reach the caller. The process's first
    invocation also counts a `ColdStart`."""

    @functools.wraps(handler)
    def handle(event: Any, context: Any) -> Any:
        count_cold_start(context)
        try:
            return handler(event, context)
        finally:
            try:
                metrics.flush_metrics()
            except Exception:
                logger.exception("could not publish the request's metrics")

    return handle
