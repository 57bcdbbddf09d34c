"""Starting a run: page every shard of ByNextExpiry, enqueue the members in batches
(docs/design.md, "Scheduled runs").

The scheduled function calls `start_run` with the schedule event's time as the as-of instant.
Shards are paged in parallel threads; each member id found goes into a message of up to
`MEMBERS_PER_MESSAGE` ids, sent 10 messages per SendMessageBatch. The run's record counts what
each shard enqueued, then is marked fanned out.

Nothing here changes a member: a second start (a retried schedule, a replay, two at once)
enqueues the same members again, and the workers find them done (expiry: nothing due any more;
reminders: the keys recorded). A start that dies halfway is simply started again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from loyalty.clock import utcnow
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


@dataclass(frozen=True)
class RunMessage:
    """One SQS message: members of one run to process."""

    run_id: str
    kind: RunKind
    as_of: datetime
    members: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": MESSAGE_VERSION,
                "run": self.run_id,
                "kind": str(self.kind),
                "asOf": format_instant(self.as_of),
                "members": list(self.members),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, body: str) -> RunMessage:
        """Read a message body; `ValueError` says what is wrong with one that is not ours."""
        try:
            document = json.loads(body)
            if document.get("v") != MESSAGE_VERSION:
                raise ValueError(f"unknown message version {document.get('v')!r}")
            members = document["members"]
            if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
                raise ValueError("members must be a list of member ids")
            return cls(
                run_id=str(document["run"]),
                kind=RunKind(document["kind"]),
                as_of=_instant(document["asOf"]),
                members=tuple(members),
            )
        except (KeyError, TypeError, AttributeError) as problem:
            raise ValueError(f"not a run message: {problem!r}") from None


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
    clock: Callable[[], datetime] = utcnow,
) -> RunStarted:
    """Create the run's record, enqueue every member due by the run's horizon, shard by shard,
    and mark the record fanned out. Raises (`QueueUnavailable`, a DynamoDB error) when a shard
    cannot be paged or enqueued: the schedule's retry starts a new run, which is harmless."""
    bind()  # one client, created before the threads share it
    run_id = new_id("run", now)
    runs.create_run(run_id, str(kind), as_of, shards=shards, now=now)
    bound = horizon(kind, as_of, rules)

    def page(shard: int) -> tuple[int, int]:
        members = messages = 0
        batch: list[str] = []
        for chunk in _chunks(members_due(bound, shard), members_per_message):
            batch.append(RunMessage(run_id, kind, as_of, chunk).to_json())
            members += len(chunk)
            if len(batch) == MAX_BATCH:
                queue.send(batch)
                messages += len(batch)
                batch = []
        if batch:
            queue.send(batch)
            messages += len(batch)
        runs.add_queued(run_id, members=members, messages=messages)
        return members, messages

    with ThreadPoolExecutor(max_workers=max(1, min(threads, shards))) as pool:
        paged = list(pool.map(page, range(shards)))
    runs.mark_fanned_out(run_id, clock())
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
