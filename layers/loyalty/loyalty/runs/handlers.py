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
    text = event.get("time") if isinstance(event, dict) else None
    if not isinstance(text, str) or not text:
        raise ValueError('the schedule event has no `time`: invoke with {"time": "<ISO 8601 instant>"}')
    moment = datetime.fromisoformat(text)  # ValueError names the text
    if moment.tzinfo is None:
        raise ValueError(f"the schedule event's time {text!r} has no time zone")
    return moment.astimezone(UTC)


def start(kind: RunKind, event: Any, context: Any = None) -> dict[str, Any]:
    """The scheduled function of `kind`, fed two events:

    - the schedule's (`{"time": …}`): create the run and enqueue one task per shard on the run's
      shard queue (`EXPIRY_SHARD_QUEUE_URL`, `REMINDER_SHARD_QUEUE_URL`); the run's summary;
    - an SQS batch of that queue's shard tasks: page each shard onto the workers' queue
      (`EXPIRY_QUEUE_URL`, `REMINDER_QUEUE_URL`); a partial-failure answer."""
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
