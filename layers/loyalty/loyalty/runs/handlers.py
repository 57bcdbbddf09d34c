"""Lambda entry points of the runs: the scheduled start and the SQS worker, for either kind.

The as-of instant is the schedule event's `time` (EventBridge rules send it; the template's
EventBridge Scheduler schedules put `<aws.scheduler.scheduled-time>` there), so a missed day is
replayed by invoking the function with `{"time": "<that instant>"}`, and tests run any date.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from loyalty.clock import utcnow
from loyalty.runs.check import METRIC as METRIC_INCOMPLETE
from loyalty.runs.check import check_run
from loyalty.runs.fanout import begin_run
from loyalty.runs.jobs import RunKind
from loyalty.runs.queue import SqsQueue
from loyalty.runs.worker import handle_batch, handle_shard_batch
from loyalty.settings import program_rules, settings

# The queue each run's start fills (template.yaml; one name per kind: the local mode runs every
# function under one environment).
QUEUE_URLS = {RunKind.EXPIRY: "EXPIRY_QUEUE_URL", RunKind.REMINDERS: "REMINDER_QUEUE_URL"}
SHARD_QUEUE_URLS = {RunKind.EXPIRY: "EXPIRY_SHARD_QUEUE_URL", RunKind.REMINDERS: "REMINDER_SHARD_QUEUE_URL"}

# Figures of the run's record published as business metrics (EMF) by the workers.
METRICS = {
    "pointsExpired": "PointsExpired",
    "lotsExpired": "LotsExpired",
    "membersExpired": "MembersExpired",
    "emailsSent": "RemindersSent",
    "emailsSkipped": "RemindersSkipped",
    "emailsFailed": "RemindersFailed",
    "emailsUnconfirmed": "RemindersUnconfirmed",
    "retryLater": "RunMembersRetried",
    "deferred": "RunMembersDeferred",
}


def as_of_of(event: Any) -> datetime:
    """The schedule event's `time`: an ISO 8601 instant with a zone (`ValueError` otherwise)."""
    return instant_of(event, "time")


def instant_of(event: Any, field: str) -> datetime:
    """The event's `field`: an ISO 8601 instant with a zone (`ValueError` naming what is wrong)."""
    text = event.get(field) if isinstance(event, dict) else None
    if not isinstance(text, str) or not text:
        example = f'{{"{field}": "<ISO 8601 instant>"}}'
        raise ValueError(f"the schedule event has no `{field}`: invoke with {example}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"the schedule event's {field} {text!r} is not an ISO 8601 instant") from None
    if moment.tzinfo is None:
        raise ValueError(f"the schedule event's {field} {text!r} has no time zone")
    return moment.astimezone(UTC)


def start(kind: RunKind, event: Any, context: Any = None) -> dict[str, Any]:
    """The scheduled function of `kind`, fed three events:

    - the schedule's (`{"time": …}`): create the run and enqueue one task per shard on the run's
      shard queue (`EXPIRY_SHARD_QUEUE_URL`, `REMINDER_SHARD_QUEUE_URL`); the run's summary;
    - an SQS batch of that queue's shard tasks: page each shard onto the workers' queue
      (`EXPIRY_QUEUE_URL`, `REMINDER_QUEUE_URL`); a partial-failure answer;
    - the check's schedule (`{"check": …}`, hours after the run): did the day's run complete?
      `RunsIncomplete` published (runs/check.py); the verdict."""
    if isinstance(event, dict) and "check" in event:
        return check(kind, instant_of(event, "check"))
    if isinstance(event, dict) and "Records" in event:
        queue = SqsQueue(_queue_url(QUEUE_URLS[kind]))
        return handle_shard_batch(event, context, kind=kind, rules=program_rules(), queue=queue, clock=utcnow)
    started = begin_run(
        kind,
        as_of_of(event),
        shard_queue=SqsQueue(_queue_url(SHARD_QUEUE_URLS[kind])),
        shards=settings().expiry_shards,
        now=utcnow(),
    )
    return started.summary()


def check(kind: RunKind, checked_at: datetime) -> dict[str, Any]:
    """The check of the day's run of `kind`: `RunsIncomplete` (dimension `kind`) published, 1 when
    the run did not complete or never started, else 0; its verdict logged (a warning when 1)."""
    from loyalty.http.telemetry import gauge, logger

    verdict = check_run(kind, checked_at)
    gauge(METRIC_INCOMPLETE, verdict.incomplete, dimension=("kind", str(kind)))
    summary = verdict.summary()
    if verdict.incomplete:
        logger.warning(f"the {kind} run did not complete", extra=summary)
    else:
        logger.info(f"the {kind} run completed", extra=summary)
    return summary


def _queue_url(variable: str) -> str:
    url = os.environ.get(variable, "")
    if not url:
        raise RuntimeError(f"{variable} is not set: it names an SQS queue of the run (template.yaml sets it)")
    return url


def work(kind: RunKind, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The worker of `kind`: process the SQS batch, publish the figures as metrics."""
    from loyalty.http.telemetry import count_event

    totals: Counter[str] = Counter()
    response = handle_batch(event, context, kind=kind, rules=program_rules(), totals=totals)
    for name, metric in METRICS.items():
        if totals[name]:
            count_event(metric, totals[name])
    return response
