"""The local event source of table streams (`devtools.streams`), on DynamoDB Local: it delivers
each record once in order, keeps where it got to in a file across restarts, and delivers a batch
again from the record a function names as failed, or whole when the function raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools.streams import StreamPoller


@pytest.fixture
def stream(own_table: Any, dynamodb_local: str) -> tuple[Any, str]:
    arn = boto3.client("dynamodb", endpoint_url=dynamodb_local).describe_table(TableName=own_table.name)
    return boto3.client("dynamodbstreams", endpoint_url=dynamodb_local), arn["Table"]["LatestStreamArn"]


def put(table: Any, *names: str) -> None:
    for name in names:
        table.put_item(Item={"pk": name, "sk": "x"})


def keys_of(events: list[dict[str, Any]]) -> list[str]:
    return [record["dynamodb"]["Keys"]["pk"]["S"] for event in events for record in event["Records"]]


def test_each_record_is_delivered_once_in_order_and_a_restart_goes_on_from_the_file(
    own_table: Any, stream: tuple[Any, str], tmp_path: Path
) -> None:
    client, arn = stream
    put(own_table, "a", "b", "c")
    seen: list[dict[str, Any]] = []
    checkpoints = tmp_path / "streams.json"
    first = StreamPoller(client, arn, seen.append, batch_size=2, checkpoints=checkpoints)
    assert first.drain() == 3
    assert keys_of(seen) == ["a", "b", "c"] and [len(event["Records"]) for event in seen] == [2, 1]
    assert all(r["eventSourceARN"] == arn for event in seen for r in event["Records"])
    # A new poller (the local mode restarted) with the same file delivers only what is new
    put(own_table, "d")
    again: list[dict[str, Any]] = []
    restarted = StreamPoller(client, arn, again.append, checkpoints=checkpoints)
    assert restarted.drain() == 1
    assert keys_of(again) == ["d"]
    # Polls that deliver nothing leave the file as it is
    written = checkpoints.stat().st_mtime_ns
    checkpoints.touch()
    touched = checkpoints.stat().st_mtime_ns
    assert restarted.poll() == 0 and checkpoints.stat().st_mtime_ns == touched >= written


def test_a_failed_record_and_the_ones_after_it_come_again_and_a_raising_function_gets_the_batch_again(
    own_table: Any, stream: tuple[Any, str]
) -> None:
    client, arn = stream
    put(own_table, "a", "b", "c")
    calls: list[list[str]] = []

    def fails_on_b_once(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(keys_of([event]))
        if len(calls) == 1:
            failed = event["Records"][1]["dynamodb"]["SequenceNumber"]
            return {"batchItemFailures": [{"itemIdentifier": failed}]}
        if len(calls) == 2:
            raise RuntimeError("the function crashed")
        return {"batchItemFailures": []}

    poller = StreamPoller(client, arn, fails_on_b_once)
    assert poller.poll() == 1  # a; b failed
    assert poller.poll() == 0  # b, c: the function raised
    assert poller.poll() == 2  # b, c again
    assert calls == [["a", "b", "c"], ["b", "c"], ["b", "c"]]
