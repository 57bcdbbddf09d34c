"""Starting a run: page every shard of ByNextExpiry, enqueue the members in batches
(docs/design.md, "Scheduled runs").

In AWS, in two steps: the scheduled function (`begin_run`, the schedule event's time as the
as-of) creates the run's record and enqueues one `ShardTask` per shard on the run's shard queue;
the same function, fed by that queue one task at a time, pages its shard (`page_shard`): each
member id found goes into a message of up to `MEMBERS_PER_MESSAGE` ids, sent 10 messages per
SendMessageBatch to the workers' queue, and the run's record counts what the shard enqueued.
Shards are paged in parallel invocations, each well within Lambda's 15 minutes however many
members share a date. `start_run` does both steps in one process (tests, the bench).

Nothing here changes a member: a second start (a retried schedule, a replay, two at once) or a
shard paged twice enqueues the same members again, and the workers find them done (expiry:
nothing due any more; reminders: the keys recorded).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from loyalty.domain.rules import ProgramRules
from loyalty.ids import new_id
from loyalty.runs.jobs import RunKind, horizon
from loyalty.runs.queue import MAX_BATCH, MessageQueue
from loyalty.store import runs
from loyalty.store.due import members_due
from loyalty.store.models import bind
from loyalty.timefmt import format_instant, parse_instant

# ~35 bytes an id: a message of 100 ids is ~4 KB, far under SQS's 256 KB, and ~100 members of
# work (a few seconds) for the worker that takes it.
MEMBERS_PER_MESSAGE = 100
# Shards paged at once: each is one Query at a time, I/O bound.
PAGING_THREADS = 16
MESSAGE_VERSION = 1
T = TypeVar("T")


@dataclass(frozen=True)
class RunMessage:
    """One SQS message: members of one run to process."""

    run_id: str
    kind: RunKind
    as_of: datetime
    members: tuple[str, ...]

    @property
    def key(self) -> str:
        """The message by its content: the same members of the same run give the same key, so a
        message delivered twice, or enqueued twice by a shard paged twice, is counted done once."""
        digest = hashlib.blake2b("\0".join(self.members).encode(), digest_size=16).hexdigest()
        return f"members-{digest}"

    def to_json(self) -> str:
        return _envelope(self.run_id, self.kind, self.as_of, members=list(self.members))

    @classmethod
    def from_json(cls, body: str) -> RunMessage:
        """Read a message body; `ValueError` says what is wrong with one that is not ours."""

        def members_of(document: dict[str, Any]) -> tuple[str, ...]:
            members = document["members"]
            if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
                raise ValueError("members must be a list of member ids")
            return tuple(members)

        run_id, kind, as_of, members = _open(body, "a run message", members_of)
        return cls(run_id, kind, as_of, members)


@dataclass(frozen=True)
class ShardTask:
    """One SQS message of a run's shard queue: page shard `shard` of ByNextExpiry for the run."""

    run_id: str
    kind: RunKind
    as_of: datetime
    shard: int

    def to_json(self) -> str:
        return _envelope(self.run_id, self.kind, self.as_of, shard=self.shard)

    @classmethod
    def from_json(cls, body: str) -> ShardTask:
        """Read a shard task; `ValueError` says what is wrong with one that is not ours."""

        def shard_of(document: dict[str, Any]) -> int:
            shard = document["shard"]
            if not isinstance(shard, int) or isinstance(shard, bool) or shard < 0:
                raise ValueError(f"shard must be a whole number, not {shard!r}")
            return shard

        run_id, kind, as_of, shard = _open(body, "a shard task", shard_of)
        return cls(run_id, kind, as_of, shard)


def _envelope(run_id: str, kind: RunKind, as_of: datetime, **content: object) -> str:
    """A message body: the run it belongs to, then its `content`."""
    document = {"v": MESSAGE_VERSION, "run": run_id, "kind": str(kind), "asOf": format_instant(as_of)}
    return json.dumps(document | content, separators=(",", ":"))


def _open(body: str, what: str, content: Callable[[dict[str, Any]], T]) -> tuple[str, RunKind, datetime, T]:
    """Read a body `_envelope` wrote: its run, and its content by `content`; `ValueError` names
    what is wrong (not JSON, another version, a field missing or of the wrong type)."""
    try:
        document = json.loads(body)
        if document.get("v") != MESSAGE_VERSION:
            raise ValueError(f"unknown message version {document.get('v')!r}")
        return (
            str(document["run"]),
            RunKind(document["kind"]),
            _instant(document["asOf"]),
            content(document),
        )
    except (KeyError, TypeError, AttributeError) as problem:
        raise ValueError(f"not {what}: {problem!r}") from None


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    kind: RunKind
    as_of: datetime
    members: int
    messages: int
    shards: int

    def summary(self) -> dict[str, object]:
        return {
            "runId": self.run_id,
            "kind": str(self.kind),
            "asOf": format_instant(self.as_of),
            "membersQueued": self.members,
            "messagesQueued": self.messages,
            "shards": self.shards,
        }


def begin_run(
    kind: RunKind, as_of: datetime, *, shard_queue: MessageQueue, shards: int, now: datetime
) -> RunStarted:
    """What the scheduled function does: create the run's record and enqueue one `ShardTask` per
    shard; the shard tasks' consumer pages each (`page_shard`), in parallel and each in a Lambda
    invocation of its own, so a run is never bounded by one invocation's 15 minutes. The summary
    counts no member yet: the record does, as shards are paged."""
    run_id = new_id("run", now)
    runs.create_run(run_id, str(kind), as_of, shards=shards, now=now)
    tasks = [ShardTask(run_id, kind, as_of, shard).to_json() for shard in range(shards)]
    for first in range(0, len(tasks), MAX_BATCH):
        shard_queue.send(tasks[first : first + MAX_BATCH])
    return RunStarted(run_id=run_id, kind=kind, as_of=as_of, members=0, messages=0, shards=shards)


def page_shard(
    task: ShardTask,
    *,
    rules: ProgramRules,
    queue: MessageQueue,
    now: datetime,
    members_per_message: int = MEMBERS_PER_MESSAGE,
) -> tuple[int, int]:
    """Enqueue the members of one shard due by the run's horizon, `members_per_message` ids a
    message, 10 messages a `SendMessageBatch`; then count them in the run's record, once per shard
    (a task delivered again enqueues its members again, harmlessly, and counts nothing more).
    Returns (members, messages) enqueued."""
    bound = horizon(task.kind, task.as_of, rules)
    members = messages = 0
    batch: list[str] = []
    for chunk in _chunks(members_due(bound, task.shard), members_per_message):
        batch.append(RunMessage(task.run_id, task.kind, task.as_of, chunk).to_json())
        members += len(chunk)
        if len(batch) == MAX_BATCH:
            queue.send(batch)
            messages += len(batch)
            batch = []
    if batch:
        queue.send(batch)
        messages += len(batch)
    runs.add_queued(task.run_id, task.shard, members=members, messages=messages, now=now)
    return members, messages


def start_run(
    kind: RunKind,
    as_of: datetime,
    *,
    rules: ProgramRules,
    queue: MessageQueue,
    shards: int,
    now: datetime,
    members_per_message: int = MEMBERS_PER_MESSAGE,
    threads: int = PAGING_THREADS,
) -> RunStarted:
    """The whole fan-out in one process (tests, the bench, the model): create the record and page
    every shard in `threads` threads. Raises (`QueueUnavailable`, a DynamoDB error) when a shard
    cannot be paged or enqueued; starting again is harmless. In AWS the same steps are split:
    `begin_run` in the scheduled function, `page_shard` per shard task."""
    bind()  # one client, created before the threads share it
    run_id = new_id("run", now)
    runs.create_run(run_id, str(kind), as_of, shards=shards, now=now)

    def page(shard: int) -> tuple[int, int]:
        task = ShardTask(run_id, kind, as_of, shard)
        return page_shard(task, rules=rules, queue=queue, now=now, members_per_message=members_per_message)

    with ThreadPoolExecutor(max_workers=max(1, min(threads, shards))) as pool:
        paged = list(pool.map(page, range(shards)))
    return RunStarted(
        run_id=run_id,
        kind=kind,
        as_of=as_of,
        members=sum(members for members, _ in paged),
        messages=sum(messages for _, messages in paged),
        shards=shards,
    )


def _instant(text: object) -> datetime:
    """An instant as `format_instant` writes it; naive text (which `parse_instant` would read in the
    machine's zone) is not one."""
    if not isinstance(text, str):
        raise ValueError(f"asOf must be an ISO 8601 instant, not {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"asOf {text!r} has no time zone")
    return parse_instant(text)


def _chunks(members: Iterator[str], size: int) -> Iterator[tuple[str, ...]]:
    while chunk := tuple(islice(members, size)):
        yield chunk
