"""The pure pieces of the scheduled runs (issue #8): the SQS message, the schedule's as-of instant,
the reminder run's horizon, and the queue's retry of the entries SQS refuses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loyalty.domain.expiry import end_of_day
from loyalty.domain.reminders import reminder_horizon
from loyalty.domain.rules import ProgramRules, default_rules, parse_rules
from loyalty.runs.fanout import RunMessage
from loyalty.runs.handlers import as_of_of
from loyalty.runs.jobs import RunKind, horizon
from loyalty.runs.queue import MAX_BATCH, QueueUnavailable, SqsQueue

PARIS = ZoneInfo("Europe/Paris")
AS_OF = datetime(2028, 1, 10, 23, 0, tzinfo=UTC)
RULES = default_rules()


# ---- the message


def test_a_message_reads_back_as_it_was_written() -> None:
    message = RunMessage("run_1", RunKind.REMINDERS, AS_OF, ("m-1", "m-2"))

    body = message.to_json()

    assert RunMessage.from_json(body) == message
    assert json.loads(body) == {
        "v": 1,
        "run": "run_1",
        "kind": "reminders",
        "asOf": "2028-01-10T23:00:00.000Z",
        "members": ["m-1", "m-2"],
    }
    assert " " not in body  # compact: 100 ids a message stay far under SQS's 256 KB


def test_an_as_of_instant_in_another_zone_reads_back_as_the_same_instant_in_utc() -> None:
    body = RunMessage("run_1", RunKind.EXPIRY, AS_OF.astimezone(PARIS), ("m-1",)).to_json()

    as_of = RunMessage.from_json(body).as_of

    assert as_of == AS_OF and as_of.tzinfo == UTC


def body_with(**changes: Any) -> str:
    document: dict[str, Any] = {
        "v": 1,
        "run": "run_1",
        "kind": "expiry",
        "asOf": "2028-01-10T23:00:00.000Z",
        "members": ["m-1"],
    }
    document.update(changes)
    return json.dumps({name: value for name, value in document.items() if value is not ...})


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "",
        "[]",
        "null",
        "42",
        body_with(v=2),
        body_with(v=...),
        body_with(run=...),
        body_with(kind="points"),
        body_with(kind=...),
        body_with(asOf="yesterday"),
        body_with(asOf=...),
        body_with(asOf=20280110),
        body_with(asOf="2028-01-10T23:00:00"),
        body_with(members="m-1"),
        body_with(members=["m-1", ""]),
        body_with(members=["m-1", 7]),
        body_with(members=None),
        body_with(members=...),
    ],
    ids=[
        "not-json",
        "empty",
        "a-list",
        "null",
        "a-number",
        "unknown-version",
        "no-version",
        "no-run",
        "unknown-kind",
        "no-kind",
        "garbage-as-of",
        "no-as-of",
        "numeric-as-of",
        "naive-as-of",
        "members-a-string",
        "an-empty-member-id",
        "a-numeric-member-id",
        "members-null",
        "no-members",
    ],
)
def test_a_body_that_is_not_a_run_message_is_refused_with_a_value_error(body: str) -> None:
    with pytest.raises(ValueError):
        RunMessage.from_json(body)


# ---- the schedule event's time


def test_the_as_of_instant_is_the_schedule_events_time() -> None:
    event = {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2028-01-10T23:00:00Z"}

    assert as_of_of(event) == AS_OF


def test_a_time_with_an_offset_is_read_as_the_same_instant_in_utc() -> None:
    as_of = as_of_of({"time": "2028-01-11T00:00:00+01:00"})

    assert as_of == AS_OF and as_of.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"time": ""},
        {"time": None},
        {"time": 1736550000},
        {"detail": {"time": "2028-01-10T23:00:00Z"}},
        None,
        [],
    ],
    ids=["no-time", "empty", "null", "a-number", "nested", "no-event", "a-list"],
)
def test_an_event_without_a_time_is_refused_with_how_to_invoke(event: Any) -> None:
    with pytest.raises(ValueError, match=r'invoke with \{"time"'):
        as_of_of(event)


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        as_of_of({"time": "2028-01-10T23:00:00"})


@pytest.mark.parametrize("text", ["yesterday", "2028-13-01T00:00:00Z", "10/01/2028 23:00"])
def test_a_time_that_is_not_an_instant_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        as_of_of({"time": text})


# ---- which members a run visits


def test_the_expiry_run_visits_the_members_due_at_its_instant() -> None:
    assert horizon(RunKind.EXPIRY, AS_OF, RULES) == AS_OF


def test_the_reminder_horizon_is_the_end_of_the_local_day_thirty_days_after_the_run() -> None:
    # A run at 06:00 in Paris on 21 December 2027 can mention points usable to the end of 20 January
    as_of = datetime(2027, 12, 21, 6, tzinfo=PARIS)

    found = reminder_horizon(as_of, RULES)

    assert found == datetime(2028, 1, 21, tzinfo=PARIS) == end_of_day(date(2028, 1, 20), PARIS)
    assert horizon(RunKind.REMINDERS, as_of, RULES) == found


def test_the_reminder_horizon_counts_from_the_local_date_not_the_utc_one() -> None:
    # 23:30 UTC on 21 December is already 22 December in Paris
    as_of = datetime(2027, 12, 21, 23, 30, tzinfo=UTC)

    assert reminder_horizon(as_of, RULES) == datetime(2028, 1, 22, tzinfo=PARIS)


def test_across_the_change_to_summer_time_the_horizon_stays_a_local_midnight() -> None:
    # 28 March 2027 is 23 hours long in Paris: the horizons of runs on 25 and 26 February fall on
    # the local midnights that open 28 and 29 March, 23 hours apart
    before = reminder_horizon(datetime(2027, 2, 25, 6, tzinfo=PARIS), RULES)
    after = reminder_horizon(datetime(2027, 2, 26, 6, tzinfo=PARIS), RULES)

    assert before == datetime(2027, 3, 27, 23, tzinfo=UTC)
    assert after == datetime(2027, 3, 28, 22, tzinfo=UTC)
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=23)


def test_across_the_change_to_winter_time_the_horizon_stays_a_local_midnight() -> None:
    horizon_ = reminder_horizon(datetime(2027, 9, 30, 6, tzinfo=PARIS), RULES)

    assert horizon_ == datetime(2027, 10, 31, tzinfo=PARIS) == datetime(2027, 10, 30, 22, tzinfo=UTC)
    next_day = reminder_horizon(datetime(2027, 10, 1, 6, tzinfo=PARIS), RULES)
    assert next_day.astimezone(UTC) - horizon_.astimezone(UTC) == timedelta(hours=25)


def rules_with_windows(*days: int) -> ProgramRules:
    document = RULES.model_dump(by_alias=True, mode="json")
    document["reminders"] = {**document["reminders"], "daysBefore": list(days)}
    return parse_rules(document)


def test_the_horizon_follows_the_largest_window() -> None:
    as_of = datetime(2027, 12, 21, 6, tzinfo=PARIS)

    assert reminder_horizon(as_of, rules_with_windows(3, 14)) == datetime(2028, 1, 5, tzinfo=PARIS)


def test_without_reminder_windows_the_horizon_is_the_run_itself() -> None:
    assert reminder_horizon(AS_OF, rules_with_windows()) == AS_OF


def test_a_naive_as_of_instant_has_no_horizon() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        reminder_horizon(datetime(2027, 12, 21, 6), RULES)


# ---- the queue


class StubSqs:
    """SendMessageBatch answering from a script: each call, the ids (of that call's entries) to fail."""

    def __init__(self, *failing: Sequence[str]) -> None:
        self.script = list(failing)
        self.calls: list[list[dict[str, str]]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        assert QueueUrl == "https://sqs.eu-west-1.amazonaws.com/123456789012/expiry"
        self.calls.append(Entries)
        failing = set(self.script.pop(0)) if self.script else set()
        return {
            "Successful": [
                {"Id": e["Id"], "MessageId": f"msg-{e['Id']}"} for e in Entries if e["Id"] not in failing
            ],
            "Failed": [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
                for e in Entries
                if e["Id"] in failing
            ],
        }


def queue_of(client: StubSqs, pauses: list[float], attempts: int = 5) -> SqsQueue:
    return SqsQueue(
        "https://sqs.eu-west-1.amazonaws.com/123456789012/expiry",
        client=client,
        attempts=attempts,
        sleep=pauses.append,
    )


def test_the_entries_sqs_refused_are_sent_again_alone_after_a_pause() -> None:
    client, pauses = StubSqs(["1", "3"], ["3"]), []
    bodies = [f"body-{n}" for n in range(5)]

    queue_of(client, pauses).send(bodies)

    assert [[entry["Id"] for entry in call] for call in client.calls] == [
        ["0", "1", "2", "3", "4"],
        ["1", "3"],
        ["3"],
    ]
    assert [entry["MessageBody"] for entry in client.calls[1]] == ["body-1", "body-3"]
    assert len(pauses) == 2 and all(0 <= pause <= 5.0 for pause in pauses)


def test_entries_refused_at_every_attempt_raise_queue_unavailable() -> None:
    client, pauses = StubSqs(*[["2"]] * 10), []

    with pytest.raises(QueueUnavailable, match="1 message"):
        queue_of(client, pauses, attempts=3).send(["a", "b", "c"])

    assert [[entry["Id"] for entry in call] for call in client.calls] == [["0", "1", "2"], ["2"], ["2"]]
    assert len(pauses) == 2  # no pause after the last attempt


def test_a_batch_accepted_at_once_is_one_call_without_a_pause() -> None:
    client, pauses = StubSqs(), []

    queue_of(client, pauses).send(["a"] * MAX_BATCH)

    assert len(client.calls) == 1 and len(client.calls[0]) == MAX_BATCH and pauses == []


def test_more_than_ten_bodies_are_refused_before_any_call() -> None:
    client = StubSqs()

    with pytest.raises(ValueError, match="at most 10"):
        queue_of(client, []).send(["a"] * (MAX_BATCH + 1))

    assert client.calls == []


def test_nothing_to_send_makes_no_call() -> None:
    client = StubSqs()

    queue_of(client, []).send([])

    assert client.calls == []


def test_the_pauses_grow_with_the_attempts() -> None:
    # Full jitter under a cap doubling from 0.2 s: the n-th pause is at most 0.1 * 2**n seconds
    client, pauses = StubSqs(*[["0"]] * 10), []

    with pytest.raises(QueueUnavailable):
        queue_of(client, pauses, attempts=5).send(["a"])

    assert len(pauses) == 4
    assert all(pause <= min(5.0, 0.1 * 2**n) for n, pause in enumerate(pauses, start=1))


def test_a_run_message_fits_an_sqs_message_with_a_hundred_ids() -> None:
    members = tuple(f"m-{n:032x}" for n in range(100))
    body = RunMessage("run_01M88P5B62797B845HRYKNDVHJ", RunKind.EXPIRY, AS_OF, members).to_json()

    # ~35 bytes an id: ~4 KB, far under SQS's 256 KB
    assert len(body.encode()) < 5 * 1024
