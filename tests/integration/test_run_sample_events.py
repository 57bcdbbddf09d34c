"""The runs' sample events under events/ (also for `sam local invoke -e`) drive the real handlers:
the schedules' `{"time": …}` start each run onto its queue, and the SQS batches the workers get
expire and remind the two sample members (issue #8)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest

from devtools.lambda_runtime import LambdaContext, load_handler
from loyalty.domain.earning import Purchase
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import default_rules
from loyalty.store import members, points
from loyalty.store.wallet import read_wallet
from tests.integration.conftest import ROOT, emails_under_moto

PARTNER = Actor("partner", "pos-samples")


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "events" / name).read_text(encoding="utf-8")))


def invoke(code_uri: str, handler: str, event: dict[str, Any]) -> Any:
    return load_handler(code_uri, handler, root=ROOT)(event, LambdaContext(handler))


@pytest.fixture
def aws(own_table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """SQS and SES under moto (DynamoDB stays DynamoDB Local), one queue per run."""
    with emails_under_moto(monkeypatch):
        sqs = boto3.client("sqs")
        queues = {
            name: sqs.create_queue(QueueName=f"samples-{name}")["QueueUrl"]
            for name in ("expiry", "reminders", "expiry-shards", "reminders-shards")
        }
        monkeypatch.setenv("EXPIRY_QUEUE_URL", queues["expiry"])
        monkeypatch.setenv("REMINDER_QUEUE_URL", queues["reminders"])
        monkeypatch.setenv("EXPIRY_SHARD_QUEUE_URL", queues["expiry-shards"])
        monkeypatch.setenv("REMINDER_SHARD_QUEUE_URL", queues["reminders-shards"])
        yield queues


@pytest.fixture
def sample_members(aws: dict[str, str]) -> None:
    """Alice (opted in) bought on 20 June 2025: 120 points expiring 20 June 2027. Bob (opted out)
    bought on 10 January 2026: 80 points expiring 10 January 2028 (the rules' 24 months)."""
    for member_id, opt_in, bought, amount in (
        ("sample-run-alice", True, datetime(2025, 6, 20, 9, tzinfo=UTC), "120"),
        ("sample-run-bob", False, datetime(2026, 1, 10, 9, tzinfo=UTC), "80"),
    ):
        profile = {"email": f"{member_id}@example.com", "name": None, "locale": "en", "emailOptIn": opt_in}
        members.enrol_or_update(member_id, profile, actor=PARTNER, now=bought)
        purchase = Purchase(amount=Decimal(amount), currency="EUR", occurred_at=bought, channel="store")
        points.earn(member_id, f"{member_id}-tx", purchase, actor=PARTNER, rules=default_rules(), now=bought)


def page_every_shard(function: str, shard_queue_url: str) -> int:
    """Feed the scheduled function its shard tasks, one an invocation, as its SQS event would."""
    sqs = boto3.client("sqs")
    paged = 0
    while messages := sqs.receive_message(QueueUrl=shard_queue_url, MaxNumberOfMessages=1).get("Messages"):
        record = {
            "messageId": messages[0]["MessageId"],
            "body": messages[0]["Body"],
            "eventSource": "aws:sqs",
        }
        record.update(receiptHandle=messages[0]["ReceiptHandle"], attributes={}, messageAttributes={})
        assert invoke(function, "app.lambda_handler", {"Records": [record]}) == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=shard_queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        paged += 1
    return paged


def queued(queue_url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def sent_emails() -> list[Any]:
    """What SES (moto) accepted, in every region."""
    from moto.ses.models import ses_backends

    return [
        m for regions in ses_backends.values() for backend in regions.values() for m in backend.sent_messages
    ]


def balance(member_id: str) -> int:
    snapshot = read_wallet(member_id, consistent=True)
    assert snapshot is not None
    return snapshot.wallet.available


def test_the_reminder_samples_list_alice_alone_and_email_her_once(
    aws: dict[str, str], sample_members: None
) -> None:
    started = invoke("functions/reminders", "app.lambda_handler", sample("reminders/schedule.json"))

    assert (started["kind"], started["asOf"], started["shards"]) == (
        "reminders",
        "2027-06-05T08:00:00.000Z",
        64,
    )
    assert page_every_shard("functions/reminders", aws["reminders-shards"]) == 64
    # 5 June 2027, 10:00 in Paris: Alice's 20 June is within 30 days, Bob's January 2028 is not.
    [message] = queued(aws["reminders"])
    assert message["members"] == ["sample-run-alice"]

    answer = invoke("functions/reminders", "worker.lambda_handler", sample("reminders/worker-batch.json"))

    assert answer == {"batchItemFailures": []}
    assert [sorted(set(m.destinations)) for m in sent_emails()] == [["sample-run-alice@example.com"]]

    again = invoke("functions/reminders", "worker.lambda_handler", sample("reminders/worker-batch.json"))

    assert again == {"batchItemFailures": []}
    assert len(sent_emails()) == 1  # never twice for the same dates and window


def test_the_expiry_samples_list_both_members_and_expire_everything_once(
    aws: dict[str, str], sample_members: None
) -> None:
    started = invoke("functions/expiry", "app.lambda_handler", sample("expiry/schedule.json"))

    assert (started["kind"], started["asOf"], started["shards"]) == ("expiry", "2028-11-30T23:05:00.000Z", 64)
    assert page_every_shard("functions/expiry", aws["expiry-shards"]) == 64
    assert sorted(m for message in queued(aws["expiry"]) for m in message["members"]) == [
        "sample-run-alice",
        "sample-run-bob",
    ]
    assert (balance("sample-run-alice"), balance("sample-run-bob")) == (120, 80)

    for _ in range(2):  # a redelivered batch changes nothing
        answer = invoke("functions/expiry", "worker.lambda_handler", sample("expiry/worker-batch.json"))

        assert answer == {"batchItemFailures": []}
        assert (balance("sample-run-alice"), balance("sample-run-bob")) == (0, 0)


@pytest.mark.parametrize("kind", ["expiry", "reminders"])
def test_the_shard_task_samples_page_their_shard_even_without_a_run_record(
    aws: dict[str, str], sample_members: None, kind: str
) -> None:
    """`sam local invoke -e events/<run>/shard-task.json`: shard 0 of a run the table does not know
    is paged onto the workers' queue all the same; only the counting is skipped."""
    answer = invoke(f"functions/{kind}", "app.lambda_handler", sample(f"{kind}/shard-task.json"))

    assert answer == {"batchItemFailures": []}
    assert all(message["run"] == "run_SAMPLE" for message in queued(aws[kind]))


@pytest.mark.parametrize("kind", ["expiry", "reminders"])
def test_the_check_samples_find_no_run_then_the_days_run_stuck_until_its_workers_count_it(
    aws: dict[str, str], sample_members: None, kind: str
) -> None:
    """`sam local invoke -e events/<run>/check.json`: hours after the schedule sample's instant."""
    # Given no run yet: the day's run is missing
    missing = invoke(f"functions/{kind}", "app.lambda_handler", sample(f"{kind}/check.json"))
    assert (missing["check"], missing["verdict"], missing["RunsIncomplete"]) == (kind, "missing", 1)

    # When the schedule sample starts the run and its shards are paged, but no worker counted it
    started = invoke(f"functions/{kind}", "app.lambda_handler", sample(f"{kind}/schedule.json"))
    page_every_shard(f"functions/{kind}", aws[f"{kind}-shards"])
    stuck = invoke(f"functions/{kind}", "app.lambda_handler", sample(f"{kind}/check.json"))

    # Then the check finds that run, fanned out with its members not done
    assert (stuck["verdict"], stuck["RunsIncomplete"]) == ("incomplete", 1)
    assert stuck["run"]["runId"] == started["runId"] and stuck["run"]["shardsQueued"] == 64
    assert stuck["run"]["membersDone"] < stuck["run"]["membersQueued"]
