"""The run's workers: SQS batches of `RunMessage`s, processed with Powertools batch processing
and partial batch failures (docs/design.md, "Scheduled runs").

Each message's members are processed one after the other; a member that raises does not stop
the others. The figures of the members that succeeded are added to the run's record; then, if
any member failed (or must be retried later: SES throttled), the message is reported failed and
SQS delivers it again after its visibility timeout. The members already done find nothing left
to do (expiry: nothing due; reminders: the keys recorded). After `maxReceiveCount` deliveries
the message moves to the dead-letter queue, whose alarm calls an operator.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from loyalty.clock import utcnow
from loyalty.domain.rules import ProgramRules
from loyalty.runs.fanout import RunMessage, ShardTask, page_shard
from loyalty.runs.jobs import RetryLater, RunKind, process_member
from loyalty.runs.queue import MessageQueue
from loyalty.store import runs
from loyalty.store.runs import Progress

log = logging.getLogger(__name__)

# A member takes ~25 ms, a slow one (a large page, SES backing off) a few seconds: no member is
# started with less than this left before the function's timeout.
STOP_MARGIN_MS = 15_000


class MembersFailed(Exception):
    """Some members of a message failed or were deferred: the message is retried (the others are done)."""

    def __init__(self, run_id: str, failed: int, total: int) -> None:
        super().__init__(f"run {run_id}: {failed} of {total} members failed, message to be retried")


def process_message(
    message: RunMessage,
    *,
    rules: ProgramRules,
    clock: Callable[[], datetime] = utcnow,
    totals: Counter[str] | None = None,
    time_left_ms: Callable[[], int] | None = None,
) -> Counter[str]:
    """Process every member of `message`; add the figures to the run's record (and to `totals`);
    raise `MembersFailed` when one failed.

    `time_left_ms` (the Lambda context's remaining time): no member is started with less than
    `STOP_MARGIN_MS` left, so the function's timeout never cuts a member in the middle (for a
    reminder, between its record and its send: a lost email). The members not started are
    counted `deferred` (not failures) and the message is retried. The message is counted done once
    by its content (`RunMessage.key`), however often it is delivered or enqueued."""
    counts: Counter[str] = Counter()
    failed = deferred = 0
    for index, member_id in enumerate(message.members):
        if time_left_ms is not None and time_left_ms() < STOP_MARGIN_MS:
            deferred = len(message.members) - index
            counts["deferred"] += deferred
            log.warning(
                "run %s: %d members left for the message's retry (time is short)", message.run_id, deferred
            )
            break
        try:
            counts.update(process_member(message.kind, member_id, message.as_of, rules=rules, now=clock()))
        except RetryLater as later:
            failed += 1
            counts["retryLater"] += 1
            log.warning("run %s: a member to retry later (%s)", message.run_id, later.reason)
        except Exception:
            failed += 1
            log.exception("run %s: a member failed", message.run_id)
    progress = runs.add_progress(
        message.run_id,
        done=0 if failed or deferred else len(message.members),
        failures=failed,
        counts=counts,
        message_key=message.key,
        now=clock(),
    )
    if progress is Progress.NO_RUN:
        log.warning("run %s has no record: its figures are not counted", message.run_id)
    elif progress is Progress.ALREADY_COUNTED:
        log.info("run %s: these members were counted done before (a redelivery)", message.run_id)
    if totals is not None:
        totals.update(counts)
    if failed or deferred:
        raise MembersFailed(message.run_id, failed + deferred, len(message.members))
    return counts


def handle_batch(
    event: dict[str, Any],
    context: Any,
    *,
    kind: RunKind,
    rules: ProgramRules,
    totals: Counter[str] | None = None,
) -> dict[str, Any]:
    """An SQS event of `kind` run messages: `{"batchItemFailures": [...]}` names the messages to
    retry. A message that is not one (unreadable, or of the other run: this function lacks its
    rights) fails every time, and so reaches the dead-letter queue."""
    time_left = getattr(context, "get_remaining_time_in_millis", None)

    def work(message: RunMessage) -> None:
        process_message(message, rules=rules, totals=totals, time_left_ms=time_left)

    return _each_record(event, context, kind=kind, read=RunMessage.from_json, work=work)


def handle_shard_batch(
    event: dict[str, Any],
    context: Any,
    *,
    kind: RunKind,
    rules: ProgramRules,
    queue: MessageQueue,
    clock: Callable[[], datetime] = utcnow,
) -> dict[str, Any]:
    """An SQS event of `kind` shard tasks (one at a time in the template): page each shard onto
    the workers' `queue`. A task that fails (DynamoDB, SQS) comes back and pages its shard again:
    its members are enqueued twice, harmlessly, and counted once."""

    def work(task: ShardTask) -> None:
        members, messages = page_shard(task, rules=rules, queue=queue, now=clock())
        log.info(
            "run %s: shard %d paged, %d members in %d messages", task.run_id, task.shard, members, messages
        )

    return _each_record(event, context, kind=kind, read=ShardTask.from_json, work=work)


class _OfARun(Protocol):
    @property
    def kind(self) -> RunKind: ...


M = TypeVar("M", bound=_OfARun)


def _each_record(
    event: dict[str, Any],
    context: Any,
    *,
    kind: RunKind,
    read: Callable[[str], M],
    work: Callable[[M], None],
) -> dict[str, Any]:
    """Powertools' batch processing of an SQS event: each record read (`read`), checked to be of
    this function's run kind, then `work`ed; the records that raised are the `batchItemFailures`.
    A batch whose every record failed (a deferral, SES throttled for all) is still a partial-failure
    answer, not an error of the function: what keeps failing shows in the dead-letter queue's alarm."""

    def record_handler(record: SQSRecord) -> None:
        try:
            item = read(record.body)
        except ValueError as problem:
            log.error(
                "message %s is unreadable (%s): left to the dead-letter queue", record.message_id, problem
            )
            raise
        if item.kind is not kind:
            log.error(
                "message %s is for a %s run, not %s: left to the dead-letter queue",
                record.message_id,
                item.kind,
                kind,
            )
            raise ValueError(f"a {item.kind} message on a {kind} queue")
        work(item)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
