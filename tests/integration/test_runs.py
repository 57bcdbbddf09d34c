"""The scheduled runs through their handlers (issue #8): DynamoDB Local for the table, moto for SQS
and SES.

The schedule's function (`functions/<kind>/app.py`) is invoked with an EventBridge schedule event
whose `time` is the as-of instant; it fills a moto SQS queue. `EventSourceMapping.drain` then
plays Lambda's SQS event source mapping: it receives batches, invokes the worker
(`functions/<kind>/worker.py`) with the SQS event, deletes what succeeded and leaves the rest, which
comes back when its visibility timeout ends (made immediate here) until `maxReceiveCount` sends it
to the dead-letter queue. Each test has a table of its own (`own_table`): a run pages every shard of
the index and must see only this test's members.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from time import monotonic, sleep
from typing import Any

import pytest

from devtools.lambda_runtime import LambdaContext, load_handler
from devtools.local import sent_emails
from loyalty import notify
from loyalty.domain.earning import Purchase
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import ProgramRules, default_rules, parse_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.notify import notify_config
from loyalty.notify import ses as ses_module
from loyalty.notify.ses import SesSender
from loyalty.runs import fanout, handlers
from loyalty.runs import worker as run_worker
from loyalty.runs.fanout import RunMessage
from loyalty.runs.jobs import RunKind
from loyalty.runs.queue import sqs_client
from loyalty.runs.worker import STOP_MARGIN_MS
from loyalty.settings import settings
from loyalty.store import keys, members, points, runs
from loyalty.store.reminders import read_reminder_state
from loyalty.store.wallet import read_wallet
from loyalty.timefmt import format_instant
from tests.integration.conftest import EMAIL_SENDER, PARIS, ROOT, emails_under_moto, ses_throttled
from tests.integration.test_expiring import expiry_entries, ledger

PARTNER = Actor("partner", "pos-runs")
SHARDS = 4
MAX_RECEIVE_COUNT = 3
SENDER = EMAIL_SENDER
# Purchases of 10 January 2026 expire at the end of 10 January 2028 (default rules: rolling 24 months).
BOUGHT = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
FUNCTIONS = {RunKind.EXPIRY: "functions/expiry", RunKind.REMINDERS: "functions/reminders"}


# ---- the harness: schedule, queues, event source mapping


def schedule_event(at: datetime) -> dict[str, Any]:
    """What EventBridge sends the scheduled function: `time` is the as-of instant."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/loyalty-daily-run"],
        "detail": {},
    }


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of the SQS event Lambda passes the worker (as devtools/local.py builds it)."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes") or {},
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "eu-west-1",
    }


class WorkerContext(LambdaContext):
    """The Lambda context of one invocation, whose remaining time runs down from the function's
    timeout (the worker starts no member when too little is left)."""

    def __init__(self, function_name: str, timeout_ms: int = 300_000) -> None:
        super().__init__(function_name)
        self.deadline = monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - monotonic()) * 1000))


@dataclass
class Invocation:
    """One worker invocation: the message bodies by id, and what the worker answered (None when it
    raised: Lambda then returns the whole batch to the queue)."""

    bodies: dict[str, str]
    response: dict[str, Any] | None

    @property
    def failed(self) -> set[str]:
        if self.response is None:
            return set(self.bodies)
        return {item["itemIdentifier"] for item in self.response.get("batchItemFailures") or []}


@dataclass
class Queue:
    url: str
    arn: str
    dlq_url: str


@dataclass
class EventSourceMapping:
    """Lambda's SQS event source mapping of one worker, played in the test's process."""

    kind: RunKind
    queue: Queue
    invocations: list[Invocation] = field(default_factory=list)
    in_flight: list[dict[str, Any]] = field(default_factory=list)
    # moto's SQS is not made for threads: calls to it are serialised, the workers are not.
    lock: threading.Lock = field(default_factory=threading.Lock)
    timeout_ms: int = 300_000

    def context(self) -> WorkerContext:
        return WorkerContext(f"{self.kind}-worker", self.timeout_ms)

    @property
    def client(self) -> Any:
        return sqs_client()

    def worker(self) -> Callable[[dict[str, Any], Any], Any]:
        return load_handler(FUNCTIONS[self.kind], "worker.lambda_handler", root=ROOT)

    def drain(self, *, batch_size: int = 10, redeliver: bool = True, limit: int = 100) -> list[Invocation]:
        """Receive, invoke, delete what succeeded, until no message is visible. A failed message
        is made visible again at once (`redeliver`: its visibility timeout over) and so comes back
        until SQS moves it to the dead-letter queue, or else is left in flight (`in_flight`). A
        `BaseException` other than `Exception` (the process killed) propagates with the batch left
        in flight: nothing of it is deleted."""
        made: list[Invocation] = []
        for _ in range(limit):
            with self.lock:
                received = self.client.receive_message(
                    QueueUrl=self.queue.url,
                    MaxNumberOfMessages=batch_size,
                    AttributeNames=["All"],
                    WaitTimeSeconds=0,
                ).get("Messages", [])
                self.in_flight.extend(received)
            if not received:
                return made
            event = {"Records": [sqs_record(message, self.queue.arn) for message in received]}
            try:
                response = self.worker()(event, self.context())
            except Exception:  # noqa: BLE001 - any error of the function, as Lambda sees it
                response = None  # Lambda: the function failed, the whole batch goes back
            invocation = Invocation({m["MessageId"]: m["Body"] for m in received}, response)
            made.append(invocation)
            with self.lock:
                self.invocations.append(invocation)
                done = [m for m in received if m["MessageId"] not in invocation.failed]
                back = [m for m in received if m["MessageId"] in invocation.failed]
                if done:
                    self.client.delete_message_batch(
                        QueueUrl=self.queue.url,
                        Entries=[
                            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)
                        ],
                    )
                for message in received:
                    self.in_flight.remove(message)
                if redeliver:
                    self._make_visible(back)
                else:
                    self.in_flight.extend(back)
        raise AssertionError(f"the {self.kind} queue did not drain in {limit} batches")

    def release_in_flight(self) -> int:
        """The visibility timeout of what a killed worker held ends: SQS delivers it again."""
        with self.lock:
            held, self.in_flight = self.in_flight, []
            self._make_visible(held)
        return len(held)

    def _make_visible(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.client.change_message_visibility(
                QueueUrl=self.queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )

    def dead_letters(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(
                self.client.receive_message(
                    QueueUrl=self.queue.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"]
                ).get("Messages", [])
            )

    def messages_left(self) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def send_raw(self, body: str) -> None:
        with self.lock:
            self.client.send_message(QueueUrl=self.queue.url, MessageBody=body)


@dataclass
class ShardMapping(EventSourceMapping):
    """The scheduled function's own SQS event: the run's shard tasks, one an invocation."""

    def context(self) -> WorkerContext:
        return WorkerContext(f"{self.kind}-start", 900_000)

    def worker(self) -> Callable[[dict[str, Any], Any], Any]:
        return load_handler(FUNCTIONS[self.kind], "app.lambda_handler", root=ROOT)


class Runs:
    """The two scheduled functions and their workers, against this test's table and queues."""

    def __init__(self, queues: dict[RunKind, Queue], shard_queues: dict[RunKind, Queue]) -> None:
        self.mappings = {kind: EventSourceMapping(kind, queue) for kind, queue in queues.items()}
        self.shards = {kind: ShardMapping(kind, queue) for kind, queue in shard_queues.items()}

    def start(self, kind: RunKind, at: datetime) -> dict[str, Any]:
        """Invoke the schedule's function at `at`, then feed it its shard tasks until every shard is
        paged (as Lambda's event source mapping would): the run's summary, with the members and
        messages its shards enqueued (runId, membersQueued, messagesQueued, …)."""
        start = load_handler(FUNCTIONS[kind], "app.lambda_handler", root=ROOT)
        summary: dict[str, Any] = start(schedule_event(at), LambdaContext(f"{kind}-start"))
        assert summary["membersQueued"] == 0 and summary["shards"] == SHARDS  # nothing paged yet
        deadline = monotonic() + 30
        while not (record := self.record(summary)).fanned_out:  # another thread may hold a task
            assert monotonic() < deadline, "the shards were not all paged"
            self.shards[kind].drain(batch_size=1)
            sleep(0.05)
        return {**summary, "membersQueued": record.members_queued, "messagesQueued": record.messages_queued}

    def drain(self, kind: RunKind, **options: Any) -> list[Invocation]:
        return self.mappings[kind].drain(**options)

    def run(self, kind: RunKind, at: datetime) -> runs.RunRecord:
        """Start a run and drain its queue: the run's record once every message got through."""
        summary = self.start(kind, at)
        self.drain(kind)
        return self.record(summary)

    @staticmethod
    def record(summary: dict[str, Any]) -> runs.RunRecord:
        found = runs.read_run(summary["runId"])
        assert found is not None
        return found


def create_queue(client: Any, name: str) -> Queue:
    dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = client.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(url, arn, dlq_url)


def forget_process_state() -> None:
    """The caches a cold start would not have: configuration, rules, clients."""
    settings.cache_clear()
    handlers.program_rules.cache_clear()
    notify_config.cache_clear()
    ses_module.ses_client.cache_clear()
    ses_module.default_sender.cache_clear()
    sqs_client.cache_clear()


@pytest.fixture
def app(own_table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runs]:
    """Both runs on this test's table, their queues (and dead-letter queues) and SES under moto,
    messages of 2 members (several messages from a handful of members)."""
    monkeypatch.setenv("EXPIRY_SHARDS", str(SHARDS))
    monkeypatch.setattr(run_worker, "page_shard", partial(fanout.page_shard, members_per_message=2))
    forget_process_state()
    with emails_under_moto(monkeypatch):
        client = sqs_client()
        queues = {
            RunKind.EXPIRY: create_queue(client, "expiry"),
            RunKind.REMINDERS: create_queue(client, "reminders"),
        }
        shard_queues = {
            RunKind.EXPIRY: create_queue(client, "expiry-shards"),
            RunKind.REMINDERS: create_queue(client, "reminders-shards"),
        }
        monkeypatch.setenv("EXPIRY_QUEUE_URL", queues[RunKind.EXPIRY].url)
        monkeypatch.setenv("REMINDER_QUEUE_URL", queues[RunKind.REMINDERS].url)
        monkeypatch.setenv("EXPIRY_SHARD_QUEUE_URL", shard_queues[RunKind.EXPIRY].url)
        monkeypatch.setenv("REMINDER_SHARD_QUEUE_URL", shard_queues[RunKind.REMINDERS].url)
        yield Runs(queues, shard_queues)
    forget_process_state()


def use_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rules_document: dict[str, Any]) -> None:
    """The deployment's rules (`RULES_SOURCE=file:…`), as the runs' functions load them."""
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules_document), encoding="utf-8")
    monkeypatch.setenv("RULES_SOURCE", f"file:{path}")
    settings.cache_clear()
    handlers.program_rules.cache_clear()


# ---- members, their points, and what the table says afterwards


def new_member(opted_in: bool = True) -> str:
    member_id = f"m-{uuid.uuid4().hex[:12]}"
    profile = {"email": f"{member_id}@example.com", "name": "Anne", "locale": "en", "emailOptIn": opted_in}
    members.enrol_or_update(member_id, profile, actor=PARTNER, now=BOUGHT - timedelta(days=400))
    return member_id


@dataclass(frozen=True)
class Lot:
    points: int
    expires_at: datetime


def earn(member_id: str, at: datetime, amount: int, rules: ProgramRules | None = None) -> Lot:
    purchase = Purchase(amount=Decimal(amount), currency="EUR", occurred_at=at, channel="store")
    tx = f"{member_id}-{at.timestamp()}-{amount}"
    result = points.earn(member_id, tx, purchase, actor=PARTNER, rules=rules or default_rules(), now=at)
    assert result.expires_at is not None and result.points == amount
    return Lot(result.points, datetime.fromisoformat(result.expires_at))


def balance(table: Any, member_id: str) -> int:
    """Invariant 1: the wallet's balance = Σ lots = Σ ledger, the balance returned."""
    wallet = table.get_item(Key={"pk": keys.member_pk(member_id), "sk": "WALLET"}, ConsistentRead=True)[
        "Item"
    ]
    snapshot = read_wallet(member_id, consistent=True)
    assert snapshot is not None
    available = int(wallet["available"])
    assert available == sum(lot.remaining for lot in snapshot.lots())
    assert available == sum(int(entry["points"]) for entry in ledger(table, member_id))
    return available


def indexed(table: Any, member_id: str) -> bool:
    wallet = table.get_item(Key={"pk": keys.member_pk(member_id), "sk": "WALLET"}, ConsistentRead=True)[
        "Item"
    ]
    return "gsi1pk" in wallet


def queued_members(invocations: list[Invocation]) -> Counter[str]:
    """How many times each member was handed to a worker."""
    handed: Counter[str] = Counter()
    for invocation in invocations:
        for body in invocation.bodies.values():
            handed.update(RunMessage.from_json(body).members)
    return handed


def figures(record: runs.RunRecord) -> dict[str, int]:
    return {
        "membersQueued": record.members_queued,
        "membersDone": record.members_done,
        "memberFailures": record.member_failures,
        **record.counts,
    }


def assert_expired_once(table: Any, member_id: str, lots: list[Lot], left: int) -> None:
    """The member's due lots expired in exactly one `expiry` entry, and `left` points remain."""
    [entry] = expiry_entries(table, member_id)
    assert -int(entry["points"]) == sum(lot.points for lot in lots)
    assert len(entry["lots"]) == len(lots)
    assert balance(table, member_id) == left


# ---- expiry: the as-of instant is the schedule's time


def test_a_run_expires_the_lots_due_at_its_schedule_time_and_enqueues_only_due_members(
    app: Runs, own_table: Any
) -> None:
    # Given one member with a lot expiring exactly at the run's instant and one a day later,
    at_run = new_member()
    exactly = earn(at_run, BOUGHT, 100)
    day_after = earn(at_run, BOUGHT + timedelta(days=1), 40)
    as_of = exactly.expires_at
    # one whose only lot expired a week before, one whose lot expires after the run,
    earlier = new_member()
    week_before = earn(earlier, BOUGHT - timedelta(days=7), 70)
    not_due = new_member()
    later = earn(not_due, BOUGHT + timedelta(days=30), 55)
    # and one who spent everything before the run (spent to zero: out of the index)
    spent = new_member()
    earn(spent, BOUGHT - timedelta(days=7), 25)
    points.redeem(
        spent, 25, idempotency_key="all", actor=Actor("member", spent), rules=default_rules(), now=BOUGHT
    )
    assert not indexed(own_table, spent)

    # When the schedule fires at that instant and the workers drain the queue
    summary = app.start(RunKind.EXPIRY, as_of)
    invocations = app.drain(RunKind.EXPIRY)

    # Then only the two due members were enqueued, each once, and the summary says when it ran
    assert summary["asOf"] == format_instant(as_of) and summary["membersQueued"] == 2
    assert queued_members(invocations) == Counter({at_run: 1, earlier: 1})
    # the lot due exactly at the instant and the earlier one expired, nothing else
    assert_expired_once(own_table, at_run, [exactly], left=day_after.points)
    assert_expired_once(own_table, earlier, [week_before], left=0)
    assert expiry_entries(own_table, not_due) == [] and balance(own_table, not_due) == later.points
    assert expiry_entries(own_table, spent) == [] and balance(own_table, spent) == 0
    [entry] = expiry_entries(own_table, at_run)
    assert entry["details"]["asOf"] == format_instant(as_of)
    # and the run's record has the figures
    record = app.record(summary)
    assert record.complete and record.as_of == as_of and record.kind == "expiry"
    assert figures(record) == {
        "membersQueued": 2,
        "membersDone": 2,
        "memberFailures": 0,
        "membersExpired": 2,
        "lotsExpired": 2,
        "pointsExpired": 170,
        "ledgerEntries": 2,
    }

    # When the next day's run passes: the member left with nothing left the index, not enqueued
    assert not indexed(own_table, earlier)
    next_day = app.start(RunKind.EXPIRY, as_of + timedelta(days=1))
    invocations = app.drain(RunKind.EXPIRY)

    assert next_day["membersQueued"] == 1 and queued_members(invocations) == Counter({at_run: 1})
    assert len(expiry_entries(own_table, at_run)) == 2 and balance(own_table, at_run) == 0
    assert figures(app.record(next_day))["pointsExpired"] == day_after.points
    assert balance(own_table, not_due) == later.points


def test_a_lot_expiring_a_second_after_the_run_is_left_and_its_member_not_enqueued(
    app: Runs, own_table: Any
) -> None:
    member = new_member()
    lot = earn(member, BOUGHT, 100)

    # (schedule events carry whole seconds)
    summary = app.start(RunKind.EXPIRY, lot.expires_at - timedelta(seconds=1))
    app.drain(RunKind.EXPIRY)

    assert summary["membersQueued"] == 0 and summary["messagesQueued"] == 0
    assert expiry_entries(own_table, member) == [] and balance(own_table, member) == 100
    assert app.record(summary).complete


@pytest.mark.parametrize(
    "event",
    [{"detail-type": "Scheduled Event", "source": "aws.events"}, {"time": "2028-01-10T23:00:00"}],
    ids=["no-time", "naive-time"],
)
def test_a_schedule_event_without_an_instant_starts_no_run(
    app: Runs, own_table: Any, event: dict[str, Any]
) -> None:
    member = new_member()
    earn(member, BOUGHT, 100)
    start = load_handler(FUNCTIONS[RunKind.EXPIRY], "app.lambda_handler", root=ROOT)

    with pytest.raises(ValueError):
        start(event, LambdaContext("expiry-start"))

    assert [item for item in own_table.scan()["Items"] if item["pk"].startswith("RUN#")] == []
    assert app.mappings[RunKind.EXPIRY].messages_left() == 0


# ---- exactly once: twice, at once, killed halfway


def due_members(count: int, amount: int = 10) -> tuple[dict[str, tuple[Lot, Lot]], datetime]:
    """`count` members, each with a lot due at the returned instant and a later lot (amounts differ
    by member so that a lot counted twice or missed shows in the totals)."""
    made = {}
    for n in range(count):
        member = new_member()
        due = earn(member, BOUGHT - timedelta(days=n % 3), amount + n)
        kept = earn(member, BOUGHT + timedelta(days=60), 5)
        made[member] = (due, kept)
    as_of = max(due.expires_at for due, _ in made.values()) + timedelta(hours=3)
    return made, as_of


def assert_each_expired_once(table: Any, made: dict[str, tuple[Lot, Lot]]) -> None:
    for member, (due, kept) in made.items():
        assert_expired_once(table, member, [due], left=kept.points)


def test_running_twice_at_the_same_instant_expires_nothing_more(app: Runs, own_table: Any) -> None:
    made, as_of = due_members(5)
    first = app.run(RunKind.EXPIRY, as_of)

    # When the day is run again (a replayed schedule)
    summary = app.start(RunKind.EXPIRY, as_of)
    app.drain(RunKind.EXPIRY)

    # Then nobody is due any more: nothing is enqueued, nothing expires twice
    assert figures(first)["pointsExpired"] == sum(due.points for due, _ in made.values()) == 60
    assert figures(app.record(summary)) == {"membersQueued": 0, "membersDone": 0, "memberFailures": 0}
    assert app.record(summary).complete
    assert_each_expired_once(own_table, made)


def test_a_second_start_before_the_workers_ran_finds_nothing_left_to_do(app: Runs, own_table: Any) -> None:
    # Given the schedule fired twice (a retried invocation) before any worker ran
    made, as_of = due_members(5)
    first = app.start(RunKind.EXPIRY, as_of)
    second = app.start(RunKind.EXPIRY, as_of)

    app.drain(RunKind.EXPIRY)

    # Then both runs enqueued the 5 members; between them each was expired once, found done once
    assert first["membersQueued"] == second["membersQueued"] == 5
    both = Counter(figures(app.record(first))) + Counter(figures(app.record(second)))
    assert both == Counter(
        membersQueued=10,
        membersDone=10,
        membersExpired=5,
        membersUnchanged=5,
        lotsExpired=5,
        pointsExpired=60,
        ledgerEntries=5,
    )
    assert_each_expired_once(own_table, made)


def test_two_runs_at_once_with_concurrent_workers_expire_every_lot_once(app: Runs, own_table: Any) -> None:
    # Given 12 due members, and two starts of the same day at once
    made, as_of = due_members(12)
    together = threading.Barrier(2)

    def start() -> dict[str, Any]:
        together.wait()
        return app.start(RunKind.EXPIRY, as_of)

    with ThreadPoolExecutor(2) as pool:
        summaries = list(pool.map(lambda _: start(), range(2)))

    # When two event source mappings drain the queue with three workers each, in one-message batches
    mapping = app.mappings[RunKind.EXPIRY]
    with ThreadPoolExecutor(6) as pool:
        for drained in [pool.submit(mapping.drain, batch_size=1) for _ in range(6)]:
            drained.result()
    mapping.drain()

    # Then every member was handed over twice, and every lot expired once
    assert [summary["membersQueued"] for summary in summaries] == [12, 12]
    assert queued_members(mapping.invocations) == Counter({member: 2 for member in made})
    assert mapping.messages_left() == 0
    assert_each_expired_once(own_table, made)
    both = Counter(figures(app.record(summaries[0]))) + Counter(figures(app.record(summaries[1])))
    assert (both["membersExpired"], both["membersUnchanged"]) == (12, 12)
    assert (both["lotsExpired"], both["pointsExpired"], both["ledgerEntries"]) == (12, 12 * 10 + 66, 12)
    assert (both["membersDone"], both["memberFailures"]) == (24, 0)


class Killed(BaseException):
    """The Lambda runtime killing the worker (timeout, out of memory): no `Exception`, so nothing
    of the batch is answered, deleted or counted."""


def die_after(monkeypatch: pytest.MonkeyPatch, members_done: int) -> list[str]:
    """The worker's process dies when it comes to its member number `members_done + 1`."""
    real = run_worker.process_member
    seen: list[str] = []

    def process_member(kind: RunKind, member_id: str, *args: Any, **kwargs: Any) -> Any:
        if len(seen) == members_done:
            raise Killed()
        seen.append(member_id)
        return real(kind, member_id, *args, **kwargs)

    monkeypatch.setattr(run_worker, "process_member", process_member)
    return seen


@pytest.mark.parametrize("then", ["redelivered", "run-again", "run-again-then-redelivered"])
def test_a_worker_killed_halfway_then_redelivered_or_run_again_expires_every_lot_once(
    app: Runs, own_table: Any, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    # Given 6 due members, and a worker (one message a batch) killed when it comes to the 4th
    made, as_of = due_members(6)
    summary = app.start(RunKind.EXPIRY, as_of)
    mapping = app.mappings[RunKind.EXPIRY]
    with monkeypatch.context() as patch:
        done = die_after(patch, members_done=3)
        with pytest.raises(Killed):
            app.drain(RunKind.EXPIRY, batch_size=1)
    # the killed message stays in flight; its members done before the kill are committed, uncounted
    [killed] = mapping.in_flight
    committed = [member for member in RunMessage.from_json(killed["Body"]).members if member in done]
    assert len(done) == 3
    for member in done:
        assert len(expiry_entries(own_table, member)) == 1
    assert figures(app.record(summary))["membersDone"] == 3 - len(committed)

    # When the message comes back, or the day is run again, or both
    again = None
    if then.startswith("run-again"):
        again = app.start(RunKind.EXPIRY, as_of)
        app.drain(RunKind.EXPIRY)
    if then != "run-again":
        assert mapping.release_in_flight() == 1
        app.drain(RunKind.EXPIRY)

    # Then the final state is one clean run's: each due lot expired once, each member one entry
    assert_each_expired_once(own_table, made)
    assert mapping.messages_left() == (1 if then == "run-again" else 0)
    if again is not None:
        # the second run enqueued only the members the killed worker had not expired; between
        # the two runs' records, every member expired is counted but those of the killed message
        # expired before the kill
        assert again["membersQueued"] == 3
        counted = (
            figures(app.record(summary)).get("membersExpired", 0)
            + figures(app.record(again))["membersExpired"]
        )
        assert counted == 6 - len(committed)
    if then == "redelivered":
        # The killed run's record: every member done once; the members the killed message had
        # expired before the kill are found unchanged on redelivery, so their points are missing
        # from the record's figures (the ledger has them: the record is a progress report).
        record = app.record(summary)
        assert record.complete
        lost = sum(made[member][0].points for member in committed)
        assert figures(record) == {
            "membersQueued": 6,
            "membersDone": 6,
            "memberFailures": 0,
            "membersExpired": 6 - len(committed),
            "lotsExpired": 6 - len(committed),
            "pointsExpired": 75 - lost,
            "ledgerEntries": 6 - len(committed),
            **({"membersUnchanged": len(committed)} if committed else {}),
        }


def test_a_message_redelivered_after_its_batch_was_killed_is_counted_done_once(
    app: Runs, own_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker killed in a batch of every message, after the messages before the 6th member
    # were processed and counted (a message holds 2 members at most)
    made, as_of = due_members(6)
    summary = app.start(RunKind.EXPIRY, as_of)
    with monkeypatch.context() as patch:
        die_after(patch, members_done=5)
        with pytest.raises(Killed):
            app.drain(RunKind.EXPIRY)
    assert figures(app.record(summary))["membersDone"] >= 1

    # When the batch comes back
    app.mappings[RunKind.EXPIRY].release_in_flight()
    app.drain(RunKind.EXPIRY)

    # Then every lot expired once, and every member is counted done once
    assert_each_expired_once(own_table, made)
    assert app.record(summary).members_done == 6


def test_a_shard_paged_twice_enqueues_its_members_again_but_counts_them_once(
    app: Runs, own_table: Any
) -> None:
    # Given a run whose every shard was paged
    made, as_of = due_members(4)
    summary = app.start(RunKind.EXPIRY, as_of)
    assert summary["membersQueued"] == 4

    # When each shard task is delivered again (its first invocation died after enqueuing)
    for shard in range(SHARDS):
        task = fanout.ShardTask(summary["runId"], RunKind.EXPIRY, as_of, shard)
        app.shards[RunKind.EXPIRY].send_raw(task.to_json())
    app.shards[RunKind.EXPIRY].drain(batch_size=1)
    app.drain(RunKind.EXPIRY)

    # Then the members went through the workers twice, expired once, and were counted once
    assert_each_expired_once(own_table, made)
    record = app.record(summary)
    assert (record.shards_queued, record.members_queued, record.members_done) == (SHARDS, 4, 4)
    assert record.complete


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"v": 1, "run": "r", "kind": "reminders", "asOf": "2028-01-01T00:00:00Z", "shard": 0}',
        '{"v": 1, "run": "r", "kind": "expiry", "asOf": "2028-01-01T00:00:00Z", "shard": -1}',
        '{"v": 1, "run": "r", "kind": "expiry", "asOf": "2028-01-01T00:00:00Z", "members": ["m-1"]}',
    ],
    ids=["unreadable", "other-run-kind", "negative-shard", "a-members-message"],
)
def test_a_shard_task_that_is_not_this_functions_ends_in_the_dead_letter_queue(app: Runs, body: str) -> None:
    mapping = app.shards[RunKind.EXPIRY]
    mapping.send_raw(body)

    invocations = mapping.drain(batch_size=1)

    # every delivery answered as a partial failure (never a crash), then the dead-letter queue
    assert len(invocations) == MAX_RECEIVE_COUNT
    assert all(inv.failed == set(inv.bodies) and inv.response is not None for inv in invocations)
    [dead] = mapping.dead_letters()
    assert dead["Body"] == body and app.mappings[RunKind.EXPIRY].messages_left() == 0


# ---- failures: partial batch, dead-letter queue


def fail_once(monkeypatch: pytest.MonkeyPatch, member_id: str, times: int = 1) -> list[str]:
    real = run_worker.process_member
    raised: list[str] = []

    def process_member(kind: RunKind, member: str, *args: Any, **kwargs: Any) -> Any:
        if member == member_id and len(raised) < times:
            raised.append(member)
            raise RuntimeError("DynamoDB unavailable")
        return real(kind, member, *args, **kwargs)

    monkeypatch.setattr(run_worker, "process_member", process_member)
    return raised


def test_a_member_failing_once_fails_only_its_message_and_its_redelivery_completes_the_run(
    app: Runs, own_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 6 due members (3 or more messages), one of which fails once
    made, as_of = due_members(6)
    failing = next(iter(made))
    raised = fail_once(monkeypatch, failing)

    summary = app.start(RunKind.EXPIRY, as_of)
    first, *redeliveries = app.drain(RunKind.EXPIRY)

    # Then the first batch answers exactly that member's message as failed; the others are acked
    [failed_id] = [mid for mid, body in first.bodies.items() if failing in RunMessage.from_json(body).members]
    assert first.response == {"batchItemFailures": [{"itemIdentifier": failed_id}]}
    assert len(first.bodies) == summary["messagesQueued"] >= 3
    # and only that message came back, once, and completed
    assert [set(invocation.bodies) for invocation in redeliveries] == [{failed_id}]
    assert redeliveries[0].failed == set() and raised == [failing]
    assert app.mappings[RunKind.EXPIRY].messages_left() == 0
    assert_each_expired_once(own_table, made)
    # and the record counts the failure, every member done once, and the figures exactly
    neighbours = len(RunMessage.from_json(first.bodies[failed_id]).members) - 1
    record = app.record(summary)
    assert record.complete
    assert figures(record) == {
        "membersQueued": 6,
        "membersDone": 6,
        "memberFailures": 1,
        "membersExpired": 6,
        "lotsExpired": 6,
        "pointsExpired": 75,
        "ledgerEntries": 6,
        **({"membersUnchanged": neighbours} if neighbours else {}),
    }


def test_a_member_that_always_fails_ends_in_the_dead_letter_queue_after_max_receive_count(
    app: Runs, own_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, as_of = due_members(4)
    failing = next(iter(made))
    fail_once(monkeypatch, failing, times=1000)

    summary = app.start(RunKind.EXPIRY, as_of)
    app.drain(RunKind.EXPIRY)

    mapping = app.mappings[RunKind.EXPIRY]
    [dead] = mapping.dead_letters()
    assert failing in RunMessage.from_json(dead["Body"]).members
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= MAX_RECEIVE_COUNT
    assert mapping.messages_left() == 0
    record = app.record(summary)
    in_dead = len(RunMessage.from_json(dead["Body"]).members)
    assert (record.member_failures, record.members_done) == (MAX_RECEIVE_COUNT, 4 - in_dead)
    assert not record.complete
    assert expiry_entries(own_table, failing) == []
    assert balance(own_table, failing) == sum(lot.points for lot in made[failing])


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"v": 2, "run": "r", "kind": "expiry", "asOf": "2028-01-01T00:00:00Z", "members": ["m-1"]}',
        '{"v": 1, "run": "r", "kind": "reminders", "asOf": "2028-01-01T00:00:00Z", "members": ["m-1"]}',
    ],
    ids=["unreadable", "unknown-version", "other-run-kind"],
)
def test_a_message_that_is_not_this_workers_ends_in_the_dead_letter_queue(app: Runs, body: str) -> None:
    mapping = app.mappings[RunKind.EXPIRY]
    mapping.send_raw(body)

    invocations = app.drain(RunKind.EXPIRY)

    # every delivery answered as a partial failure of its one message (not a crash of the worker)
    assert len(invocations) == MAX_RECEIVE_COUNT
    assert all(inv.failed == set(inv.bodies) and inv.response is not None for inv in invocations)
    [dead] = mapping.dead_letters()
    assert dead["Body"] == body and mapping.messages_left() == 0


def test_a_bad_message_in_a_batch_fails_alone(app: Runs, own_table: Any) -> None:
    made, as_of = due_members(2)
    summary = app.start(RunKind.EXPIRY, as_of)
    mapping = app.mappings[RunKind.EXPIRY]
    mapping.send_raw("not json")

    first, *_ = app.drain(RunKind.EXPIRY)

    [bad] = [mid for mid, body in first.bodies.items() if body == "not json"]
    assert first.response == {"batchItemFailures": [{"itemIdentifier": bad}]}
    assert_each_expired_once(own_table, made)
    assert app.record(summary).complete and len(mapping.dead_letters()) == 1


def test_a_worker_short_of_time_starts_no_member_and_its_messages_come_back(
    app: Runs, own_table: Any
) -> None:
    # Given a worker invoked with less than STOP_MARGIN_MS left before its timeout
    made, as_of = due_members(4)
    summary = app.start(RunKind.EXPIRY, as_of)
    mapping = app.mappings[RunKind.EXPIRY]
    mapping.timeout_ms = STOP_MARGIN_MS - 1_000

    first = mapping.drain(redeliver=False)

    # Then it touched no member and failed every message: they come back, nothing lost
    assert all(invocation.failed == set(invocation.bodies) for invocation in first)
    assert len(mapping.in_flight) == summary["messagesQueued"]
    assert all(expiry_entries(own_table, member) == [] for member in made)
    assert figures(app.record(summary)) == {
        "membersQueued": 4,
        "membersDone": 0,
        "memberFailures": 0,  # put off, not failed
        "deferred": 4,
    }

    # When they come back to a worker with time enough
    mapping.timeout_ms = 300_000
    mapping.release_in_flight()
    mapping.drain()

    assert_each_expired_once(own_table, made)
    record = app.record(summary)
    assert record.complete and (record.members_done, record.counts["pointsExpired"]) == (4, 46)


# ---- policy inactivity


def test_under_the_inactivity_policy_the_run_expires_every_lot_at_the_activity_expiry(
    app: Runs, own_table: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    document = {**json.loads(default_rules_text()), "version": "runs-inactivity"}
    document["expiry"] = {"policy": "inactivity", "months": 12}
    use_rules(monkeypatch, tmp_path, document)
    rules = parse_rules(document)
    # Given a member whose last activity was a month after its first purchase, and one active later
    idle = new_member()
    first = earn(idle, BOUGHT, 30, rules)
    last = earn(idle, BOUGHT + timedelta(days=31), 20, rules)
    active = new_member()
    earn(active, BOUGHT, 15, rules)
    earn(active, BOUGHT + timedelta(days=200), 5, rules)
    activity_expiry = last.expires_at

    # When a run passes a second before the activity expiry, then at it
    before = app.run(RunKind.EXPIRY, activity_expiry - timedelta(seconds=1))
    at = app.run(RunKind.EXPIRY, activity_expiry)

    # Then the first finds nobody, the second expires both lots in one entry; the active member keeps all
    assert figures(before) == {"membersQueued": 0, "membersDone": 0, "memberFailures": 0}
    assert figures(at) == {
        "membersQueued": 1,
        "membersDone": 1,
        "memberFailures": 0,
        "membersExpired": 1,
        "lotsExpired": 2,
        "pointsExpired": first.points + last.points,
        "ledgerEntries": 1,
    }
    assert_expired_once(own_table, idle, [first, last], left=0)
    assert not indexed(own_table, idle)
    assert expiry_entries(own_table, active) == [] and balance(own_table, active) == 20


# ---- reminders


class Ses:
    """The SES client the reminders use: moto's, counting calls per recipient, throttling on demand."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.throttled = False
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def send_email(self, **request: Any) -> Any:
        [to] = request["Destination"]["ToAddresses"]
        with self.lock:
            self.calls[to.split("@")[0]] += 1
        if self.throttled:
            raise ses_throttled()
        return self.client.send_email(**request)


@pytest.fixture
def ses(app: Runs) -> Iterator[Ses]:
    client = Ses(ses_module.ses_client())
    sender = SesSender(client, sleep=lambda _: None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ses_module, "default_sender", lambda: sender)
        yield client


def inbox(member_id: str) -> list[dict[str, Any]]:
    return [sent for sent in sent_emails() if any(member_id in to for to in sent["to"])]


def paris(day: date, hour: int = 6) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=PARIS)


# Purchases of 10 January 2026 are usable until the end of 10 January 2028.
EXPIRES_ON = date(2028, 1, 10)
RUN_DAY = EXPIRES_ON - timedelta(days=20)


def reminded_members() -> dict[str, str]:
    """At `RUN_DAY`: points expiring in 20 days (a daily shopper: 4 dates, and a fifth 32 days
    out), in 5 days, in 20 days but opted out, and in 40 days."""
    members_ = {
        "daily": new_member(),
        "soon": new_member(),
        "opted_out": new_member(opted_in=False),
        "far": new_member(),
    }
    for n in range(4):
        earn(members_["daily"], BOUGHT + timedelta(days=n), 10)
    earn(members_["daily"], BOUGHT + timedelta(days=12), 10)
    earn(members_["soon"], BOUGHT - timedelta(days=15), 30)
    earn(members_["opted_out"], BOUGHT, 50)
    earn(members_["far"], BOUGHT + timedelta(days=20), 60)
    return members_


def test_a_reminder_run_emails_the_members_within_a_window_once_each(app: Runs, ses: Ses) -> None:
    who = reminded_members()

    record = app.run(RunKind.REMINDERS, paris(RUN_DAY))

    # Then the two opted-in members within 30 days got one email each, one SES call each
    assert [len(inbox(who[name])) for name in ("daily", "soon", "opted_out", "far")] == [1, 1, 0, 0]
    assert ses.calls == Counter({who["daily"]: 1, who["soon"]: 1})
    # the daily shopper's email lists its 4 dates within the window (not the fifth), and the balance
    [email_] = inbox(who["daily"])
    text = " ".join(email_["text"].split())
    assert "40 points" in text and "50 points" in text
    assert read_reminder_state(who["soon"]).reminded == {
        (EXPIRES_ON - timedelta(days=15), 30),
        (EXPIRES_ON - timedelta(days=15), 7),
    }
    # the member 40 days out was not enqueued; the opted-out one was, and skipped
    assert figures(record) == {
        "membersQueued": 3,
        "membersDone": 3,
        "memberFailures": 0,
        "emailsSent": 2,
        "emailsSkipped": 1,
        "skipped.opted_out": 1,
    }


def test_a_second_reminder_run_at_the_same_instant_sends_nothing_more(app: Runs, ses: Ses) -> None:
    who = reminded_members()
    app.run(RunKind.REMINDERS, paris(RUN_DAY))

    again = app.run(RunKind.REMINDERS, paris(RUN_DAY))

    assert figures(again) == {
        "membersQueued": 3,
        "membersDone": 3,
        "memberFailures": 0,
        "emailsSkipped": 3,
        "skipped.nothing_due": 2,
        "skipped.opted_out": 1,
    }
    assert [len(inbox(who[name])) for name in ("daily", "soon")] == [1, 1]
    assert sum(ses.calls.values()) == 2


def test_two_reminder_runs_at_once_send_each_email_once(app: Runs, ses: Ses) -> None:
    who = reminded_members()
    together = threading.Barrier(2)

    def start() -> dict[str, Any]:
        together.wait()
        return app.start(RunKind.REMINDERS, paris(RUN_DAY))

    with ThreadPoolExecutor(2) as pool:
        summaries = list(pool.map(lambda _: start(), range(2)))
    mapping = app.mappings[RunKind.REMINDERS]
    with ThreadPoolExecutor(4) as pool:
        for drained in [pool.submit(mapping.drain, batch_size=1) for _ in range(4)]:
            drained.result()
    mapping.drain()

    assert queued_members(mapping.invocations) == Counter(
        {who[name]: 2 for name in ("daily", "soon", "opted_out")}
    )
    assert [len(inbox(who[name])) for name in ("daily", "soon", "opted_out")] == [1, 1, 0]
    assert ses.calls == Counter({who["daily"]: 1, who["soon"]: 1})
    both = Counter(app.record(summaries[0]).counts) + Counter(app.record(summaries[1]).counts)
    assert (both["emailsSent"], both["skipped.nothing_due"], both["skipped.opted_out"]) == (2, 2, 2)


def test_later_runs_follow_the_spacing_rule_not_a_daily_email(app: Runs, ses: Ses) -> None:
    # Given the first run's emails, and the daily shopper's fifth date entering the window 3 days later
    who = reminded_members()
    app.run(RunKind.REMINDERS, paris(RUN_DAY))

    # When the runs of the next 7 days pass
    sent_by_day = []
    for day in range(1, 8):
        record = app.run(RunKind.REMINDERS, paris(RUN_DAY + timedelta(days=day)))
        sent_by_day.append(record.counts.get("emailsSent", 0))

    # Then the new date waits for the spacing (7 days): one more email, on the 7th day, about it alone
    assert sent_by_day == [0, 0, 0, 0, 0, 0, 1]
    emails = inbox(who["daily"])
    assert len(emails) == 2 and ses.calls[who["daily"]] == 2
    last = " ".join(emails[-1]["text"].split())
    assert "22 January 2028" in last and "10 January 2028" not in last
    assert len(inbox(who["soon"])) == 1


def test_a_member_throttled_by_ses_is_retried_later_and_emailed_once(app: Runs, ses: Ses) -> None:
    # Given SES throttling every attempt during the first delivery
    who = reminded_members()
    ses.throttled = True
    summary = app.start(RunKind.REMINDERS, paris(RUN_DAY))
    mapping = app.mappings[RunKind.REMINDERS]
    first = mapping.drain(redeliver=False)  # their visibility timeout is not over yet

    # Then the throttled members' messages failed with nothing recorded, the others got through
    throttled = {who["daily"], who["soon"]}
    failed_members = {
        member
        for invocation in first
        for mid in invocation.failed
        for member in RunMessage.from_json(invocation.bodies[mid]).members
    }
    assert throttled <= failed_members
    assert inbox(who["daily"]) == [] and inbox(who["soon"]) == []
    for member in throttled:
        state = read_reminder_state(member)
        assert state.reminded == frozenset() and state.sending is None
    record = app.record(summary)
    assert (record.counts["retryLater"], record.counts.get("emailsSent", 0)) == (2, 0)
    attempts = notify_config().max_attempts
    assert ses.calls == Counter({member: attempts for member in throttled})

    # When SES accepts again and the messages come back
    ses.throttled = False
    ses.calls.clear()
    mapping.release_in_flight()
    mapping.drain()

    # Then each throttled member got exactly one email, with one SES call
    assert [len(inbox(member)) for member in throttled] == [1, 1]
    assert ses.calls == Counter({member: 1 for member in throttled})
    record = app.record(summary)
    assert record.complete and record.members_done == record.members_queued == 3
    assert (record.counts["emailsSent"], record.counts["retryLater"], record.member_failures) == (2, 2, 2)


def test_an_email_ses_refuses_is_counted_failed_and_not_tried_again(
    app: Runs, ses: Ses, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a sender address SES has not verified: it refuses every email
    who = reminded_members()
    monkeypatch.setenv("SENDER_ADDRESS", "someone@unverified.example.org")
    notify_config.cache_clear()

    record = app.run(RunKind.REMINDERS, paris(RUN_DAY))

    # Then the two emails are counted failed, their messages acked (a refusal is not retried)
    assert figures(record) == {
        "membersQueued": 3,
        "membersDone": 3,
        "memberFailures": 0,
        "emailsFailed": 2,
        "failed.MessageRejected": 2,
        "emailsSkipped": 1,
        "skipped.opted_out": 1,
    }
    assert ses.calls == Counter({who["daily"]: 1, who["soon"]: 1})
    assert app.mappings[RunKind.REMINDERS].messages_left() == 0
    assert app.mappings[RunKind.REMINDERS].dead_letters() == []
    # and the keys stay recorded: the next run does not send them again
    monkeypatch.setenv("SENDER_ADDRESS", SENDER)
    notify_config.cache_clear()
    again = app.run(RunKind.REMINDERS, paris(RUN_DAY + timedelta(days=1)))
    assert again.counts.get("emailsSent", 0) == 0 and inbox(who["daily"]) == []


class Crash(BaseException):
    """The process dies: the Lambda runtime's timeout or an out-of-memory."""


def test_a_worker_dying_between_record_and_send_loses_that_reminder_and_the_next_run_reports_it(
    app: Runs, ses: Ses, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker that dies after recording the daily shopper's reminder, before SES is called
    who = reminded_members()
    send = notify.send

    def crash_for_daily(message: notify.Email) -> str:
        if message.member_id == who["daily"]:
            raise Crash()
        return send(message)

    with monkeypatch.context() as patch:
        patch.setattr(notify, "send", crash_for_daily)
        first = app.start(RunKind.REMINDERS, paris(RUN_DAY))
        with pytest.raises(Crash):
            app.drain(RunKind.REMINDERS, batch_size=1)
    assert read_reminder_state(who["daily"]).sending is not None

    # When the next day's run passes, 20 minutes or more after the crash (the worker's clock)
    real = run_worker.process_member
    monkeypatch.setattr(
        run_worker,
        "process_member",
        lambda kind, member, as_of, *, rules, now: real(
            kind, member, as_of, rules=rules, now=now + timedelta(minutes=20)
        ),
    )
    app.mappings[RunKind.REMINDERS].release_in_flight()
    app.drain(RunKind.REMINDERS)
    record = app.run(RunKind.REMINDERS, paris(RUN_DAY + timedelta(days=1)))

    # Then it sends nothing for the recorded keys (at most once) and reports the lost reminder
    # once: the redelivery that found it closed it, the next day's run does not count it again
    assert inbox(who["daily"]) == [] and ses.calls[who["daily"]] == 0
    assert app.record(first).counts["emailsUnconfirmed"] == 1
    assert "emailsUnconfirmed" not in record.counts
    assert record.counts.get("emailsSent", 0) == 0
    assert read_reminder_state(who["daily"]).sending is None
    assert len(inbox(who["soon"])) == 1  # the others were not affected
