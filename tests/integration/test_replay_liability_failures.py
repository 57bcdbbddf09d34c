"""scripts/replay_liability_failures.py on DynamoDB Local's stream and moto's SQS: a range the event
source gave up on is read back from the stream and added once, whether or not the aggregator had
begun it; a range no longer in the stream, or failing again, stays in the queue and is reported."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools.streams import StreamPoller
from loyalty.reports.handlers import aggregate
from loyalty.store.liability import figures_as_of
from tests.integration.conftest import ROOT, Api
from tests.integration.test_liability import history, records_of


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay", ROOT / "scripts" / "replay_liability_failures.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["replay"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


replay_script = load_script()


@pytest.fixture
def stream(own_table: Any, dynamodb_local: str) -> StreamPoller:
    arn = boto3.client("dynamodb", endpoint_url=dynamodb_local).describe_table(TableName=own_table.name)
    client = boto3.client("dynamodbstreams", endpoint_url=dynamodb_local)
    return StreamPoller(client, arn["Table"]["LatestStreamArn"], aggregate)


def outstanding() -> int:
    moment = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return sum(points for name, points in figures_as_of(moment).items() if name.startswith("out#"))


def gave_up_on(stream: StreamPoller, first: str, last: str, shard: str | None = None) -> str:
    """The event source's on-failure record of a range (its shape: Lambda's docs)."""
    shard_id = (
        shard
        or stream.client.describe_stream(StreamArn=stream.stream_arn)["StreamDescription"]["Shards"][0][
            "ShardId"
        ]
    )
    info = {"shardId": shard_id, "startSequenceNumber": first, "endSequenceNumber": last, "batchSize": 3}
    info["streamArn"] = stream.stream_arn
    return json.dumps({"requestContext": {"condition": "RetryAttemptsExhausted"}, "DDBStreamBatchInfo": info})


def test_a_range_given_up_on_is_added_once_and_its_message_deleted(api: Api, stream: StreamPoller) -> None:
    history(api, members=3)
    ledger = [r for r in records_of(stream) if replay_script.is_new_ledger_entry(r)]
    # Given the aggregator added the first entries and began the rest (a run written, then it kept failing)
    assert aggregate({"Records": ledger[:3]}) == {"batchItemFailures": []}
    assert aggregate({"Records": ledger[3:5]}) == {"batchItemFailures": []}
    first, last = ledger[3]["dynamodb"]["SequenceNumber"], ledger[-1]["dynamodb"]["SequenceNumber"]
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-1")
        url = sqs.create_queue(QueueName="liability-dlq")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=gave_up_on(stream, first, last))
        out = io.StringIO()
        # When the operator replays (a dry run first changes nothing)
        assert (
            replay_script.replay(
                sqs, url, stream.client, aggregate, region="eu-west-1", dry_run=True, out=out
            )
            == 0
        )
        before = outstanding()
        assert before < 3 * (42 - 5)
        left = replay_script.replay(sqs, url, stream.client, aggregate, region="eu-west-1", out=out)
        # Then every entry counts once, and the queue is empty
        assert left == 0, out.getvalue()
        assert (
            "PASS  shard" in out.getvalue() and f"{len(ledger) - 3} ledger entries replayed" in out.getvalue()
        )
        assert outstanding() == 3 * (42 - 5)
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages") is None
        assert replay_script.replay(sqs, url, stream.client, aggregate, region="eu-west-1", out=out) == 0
        assert outstanding() == 3 * (42 - 5)


def test_a_range_gone_from_the_stream_or_failing_again_stays_in_the_queue(
    api: Api, stream: StreamPoller
) -> None:
    history(api, members=1)
    ledger = [r for r in records_of(stream) if replay_script.is_new_ledger_entry(r)]
    first, last = ledger[0]["dynamodb"]["SequenceNumber"], ledger[-1]["dynamodb"]["SequenceNumber"]
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-1")
        url = sqs.create_queue(QueueName="liability-dlq")["QueueUrl"]
        sqs.send_message(
            QueueUrl=url,
            MessageBody=gave_up_on(stream, first, last, shard="shardId-00000001700000000000-deadbeef"),
        )
        sqs.send_message(QueueUrl=url, MessageBody="not json")
        out = io.StringIO()
        assert replay_script.replay(sqs, url, stream.client, aggregate, region="eu-west-1", out=out) == 2
        assert "no longer in the stream" in out.getvalue() and "not an on-failure record" in out.getvalue()
        sqs.purge_queue(QueueUrl=url)
        sqs.send_message(QueueUrl=url, MessageBody=gave_up_on(stream, first, last))

        def still_failing(event: dict[str, Any]) -> dict[str, Any]:
            return {
                "batchItemFailures": [{"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}]
            }

        assert replay_script.replay(sqs, url, stream.client, still_failing, region="eu-west-1", out=out) == 1
        assert "failed again" in out.getvalue()
        assert len(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)["Messages"]) == 1
    assert outstanding() == 0


class LambdaClient:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.events: list[Any] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.events.append((FunctionName, json.loads(Payload)))
        return self.answer


def test_the_deployed_aggregator_is_invoked_with_the_records_and_a_crash_counts_as_a_failure() -> None:
    ok = LambdaClient({"Payload": io.BytesIO(b'{"batchItemFailures": []}')})
    assert replay_script.lambda_invoke(ok, "agg")({"Records": [1]}) == {"batchItemFailures": []}
    assert ok.events == [("agg", {"Records": [1]})]
    crashed = LambdaClient({"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "boom"}')})
    assert replay_script.lambda_invoke(crashed, "agg")({"Records": []})["batchItemFailures"]
