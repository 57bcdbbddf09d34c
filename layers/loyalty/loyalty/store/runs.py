"""The record of one expiry or reminder run (docs/design.md, "Scheduled runs").

The scheduled function creates it; each shard, once paged, adds what it enqueued; each worker
message adds its figures (ADD and `if_not_exists` additions, so concurrent workers never
overwrite each other). A shard, and a message counted done, count once: a marker item is written
with the update in one transaction (`_count_once`). It is a progress report, not a guard: the
work itself is exactly-once per member (expiry) and at-most-once per reminder key, whatever the
record says. A message that fails counts its successes, and is counted done only once all its
members succeeded (`membersDone` reaches `membersQueued` when every message got through, and no
redelivery pushes it past).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from loyalty.store import keys
from loyalty.store.models import RunIndexItem, RunItem, RunMessageItem, bind
from loyalty.store.transact import Transaction, TransactionCancelled, aws_error_code
from loyalty.timefmt import format_instant

KEPT = timedelta(days=90)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    kind: str
    as_of: datetime
    started_at: datetime
    shards: int
    shards_queued: int
    members_queued: int
    messages_queued: int
    members_done: int
    member_failures: int
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def fanned_out(self) -> bool:
        """Every shard was paged and its members enqueued."""
        return self.shards_queued >= self.shards

    @property
    def complete(self) -> bool:
        """Fanned out, and every member enqueued was processed (at least once)."""
        return self.fanned_out and self.members_done >= self.members_queued


def create_run(run_id: str, kind: str, as_of: datetime, *, shards: int, now: datetime) -> None:
    """The run's record, and its entry in the kind's index (`RUNS#<kind>`, by as-of instant), in
    one transaction: a run the check can find always has a record, and the other way round."""
    ttl = int((now + KEPT).timestamp())
    record = RunItem(
        keys.run_pk(run_id),
        keys.run_sk(),
        run_id=run_id,
        run_kind=kind,
        as_of=as_of,
        started_at=now,
        shards=shards,
        ttl=ttl,
    )
    listed = RunIndexItem(
        keys.run_index_pk(kind),
        keys.run_index_sk(format_instant(as_of), run_id),
        run_id=run_id,
        as_of=as_of,
        ttl=ttl,
    )
    transaction = Transaction()
    transaction.put("record", record, RunItem.pk.does_not_exist())
    transaction.put("index", listed, RunIndexItem.pk.does_not_exist())
    transaction.commit()


class Progress(StrEnum):
    RECORDED = "recorded"
    ALREADY_COUNTED = "already_counted"  # a redelivered message, counted when it first got through
    NO_RUN = "no_run"  # gone after 90 days, or a message written by hand: the work is done all the same


def add_queued(run_id: str, shard: int, *, members: int, messages: int, now: datetime) -> Progress:
    """Shard `shard` is paged: its members and messages are on the queue. Counted once per shard:
    a marker item (`MSG#shard-<n>`) is written with the update in one transaction, conditioned on
    being new, so a shard paged again (its task redelivered) adds nothing."""
    return _count_once(
        run_id,
        f"shard-{shard}",
        [
            RunItem.shards_queued.add(1),
            RunItem.members_queued.add(members),
            RunItem.messages_queued.add(messages),
        ],
        now=now,
    )


def add_progress(
    run_id: str,
    *,
    done: int,
    failures: int,
    counts: Mapping[str, int],
    message_key: str | None = None,
    now: datetime,
) -> Progress:
    """A worker's message: `done` members counted done (all of the message, or none when one of
    them failed), `failures` members that raised, and the figures of the members that succeeded.

    A message counted done with its `message_key` (its content) is counted once: a marker item
    (`MSG#<key>`) is written with the update in one transaction, conditioned on being new, so a
    message redelivered after its batch died, or enqueued again by a shard paged twice (its
    members find nothing left to do), adds nothing. Otherwise one UpdateItem."""
    actions: list[Action] = []
    if done:
        actions.append(RunItem.members_done.add(done))
    if failures:
        actions.append(RunItem.member_failures.add(failures))
    for name, value in sorted(counts.items()):
        if value:
            figure = RunItem.counts[name]
            actions.append(figure.set((figure | 0) + value))
    if not actions:
        return Progress.RECORDED
    if done and message_key is not None:
        return _count_once(run_id, message_key, actions, now=now)
    bind()
    try:
        RunItem(keys.run_pk(run_id), keys.run_sk()).update(actions=actions, condition=RunItem.pk.exists())
    except UpdateError as error:
        if aws_error_code(error) == "ConditionalCheckFailedException":
            return Progress.NO_RUN
        raise
    return Progress.RECORDED


def _count_once(run_id: str, marker_id: str, actions: list[Action], *, now: datetime) -> Progress:
    """The record's update and a marker (`MSG#<marker_id>`, conditioned on being new) in one
    transaction: the same marker never counts twice."""
    bind()
    marker = RunMessageItem(
        keys.run_pk(run_id), keys.run_message_sk(marker_id), ttl=int((now + KEPT).timestamp())
    )
    transaction = Transaction()
    transaction.put("marker", marker, RunMessageItem.pk.does_not_exist())
    transaction.update("record", RunItem(keys.run_pk(run_id), keys.run_sk()), actions, RunItem.pk.exists())
    try:
        transaction.commit()
    except TransactionCancelled as cancelled:
        if "marker" in cancelled.failed:
            return Progress.ALREADY_COUNTED
        if "record" in cancelled.failed:
            return Progress.NO_RUN
        raise
    return Progress.RECORDED


@dataclass(frozen=True)
class ListedRun:
    """A run found in its kind's index, and its record (None when gone: past its 90 days)."""

    run_id: str
    as_of: datetime
    record: RunRecord | None


def runs_between(kind: str, since: datetime, until: datetime) -> list[ListedRun]:
    """The runs of `kind` whose as-of instant is in [`since`, `until`], oldest first, each with its
    record read strongly consistent: one Query of the kind's index (a run a day), one GetItem a run."""
    bind()
    key_range = keys.run_index_range(format_instant(since), format_instant(until))
    listed = RunIndexItem.query(
        keys.run_index_pk(kind),
        RunIndexItem.sk.between(key_range.first, key_range.last),
        consistent_read=True,
    )
    return [ListedRun(item.run_id, item.as_of, read_run(item.run_id)) for item in listed]


def read_run(run_id: str) -> RunRecord | None:
    bind()
    try:
        item = RunItem.get(keys.run_pk(run_id), keys.run_sk(), consistent_read=True)
    except RunItem.DoesNotExist:
        return None
    return RunRecord(
        run_id=item.run_id,
        kind=item.run_kind,
        as_of=item.as_of,
        started_at=item.started_at,
        shards=int(item.shards),
        shards_queued=int(item.shards_queued or 0),
        members_queued=int(item.members_queued or 0),
        messages_queued=int(item.messages_queued or 0),
        members_done=int(item.members_done or 0),
        member_failures=int(item.member_failures or 0),
        counts=_counts(item.counts),
    )


def _counts(attribute: Any) -> dict[str, int]:
    """The `counts` map as read back: a raw MapAttribute (or nothing yet)."""
    values = attribute.as_dict() if isinstance(attribute, MapAttribute) else dict(attribute or {})
    return {str(name): int(value) for name, value in values.items()}
