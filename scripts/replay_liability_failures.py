"""Give the liability aggregator again the ledger records its event source gave up on.

    python scripts/replay_liability_failures.py --stack-name loyalty-points-prod [--dry-run]

When the aggregator keeps failing on a range of the table's stream (20 attempts), Lambda sends a
record of it to `LiabilityDeadLetterQueue` (`LiabilityDeadLetterAlarm`): the shard and the first
and last sequence numbers, not the records. The records stay in the stream 24 hours. Once the
cause is fixed, this script reads each range back from the stream, keeps what the event source's
filter keeps (inserts of ledger entries), invokes the deployed aggregator with them as Lambda
would, and deletes the queue's message when the aggregator answers that every record was added.
A range the aggregator had begun stays correct: its figures are added once (docs/design.md,
"Applied once"). A range no longer in the stream is reported and left in the queue: its figures
are missing (the ledger itself is complete).

Run it with credentials that may read the stack, the queue and the stream, and invoke the function.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ParamValidationError

from devtools.streams import lambda_record

QUEUE = "LiabilityDeadLetterQueue"
FUNCTION = "LiabilityAggregatorFunction"
Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Range:
    """A range of one shard of the stream the event source gave up on."""

    stream_arn: str
    shard_id: str
    first: str
    last: str

    @classmethod
    def from_message(cls, body: str) -> Range:
        """From the event source's on-failure record (`DDBStreamBatchInfo`)."""
        info = json.loads(body)["DDBStreamBatchInfo"]
        return cls(
            stream_arn=str(info["streamArn"]),
            shard_id=str(info["shardId"]),
            first=str(info["startSequenceNumber"]),
            last=str(info["endSequenceNumber"]),
        )


class RangeGone(Exception):
    """The stream no longer holds the range (older than 24 hours, or its shard is gone)."""


def is_new_ledger_entry(record: Mapping[str, Any]) -> bool:
    """The event source's filter (template.yaml): inserts of items of type `ledger`."""
    image = (record.get("dynamodb") or {}).get("NewImage") or {}
    return record.get("eventName") == "INSERT" and image.get("itemType", {}).get("S") == "ledger"


def read_range(streams: Any, failed: Range, region: str) -> list[dict[str, Any]]:
    """The range's records the aggregator reads, in order, in Lambda's shape."""
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=failed.stream_arn,
            ShardId=failed.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=failed.first,
        ).get("ShardIterator")
    except (streams.exceptions.ClientError, ParamValidationError) as error:
        raise RangeGone(str(error)) from None
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        batch = page.get("Records", [])
        for record in batch:
            if int(record["dynamodb"]["SequenceNumber"]) > int(failed.last):
                return records
            if is_new_ledger_entry(record):
                records.append(lambda_record(record, failed.stream_arn, region))
        if not batch:
            return records
        iterator = page.get("NextShardIterator")
    return records


def replay(
    sqs: Any,
    queue_url: str,
    streams: Any,
    invoke: Invoke,
    *,
    region: str,
    dry_run: bool = False,
    out: Any = None,
) -> int:
    """Replay every message of the queue; how many ranges could not be replayed."""
    out = out or sys.stdout
    left = 0
    seen: set[str] = set()
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        fresh = [message for message in messages if message["MessageId"] not in seen]
        for message in messages:
            if message["MessageId"] in seen:  # received again: back in the queue, untouched
                _release(sqs, queue_url, message)
        if not fresh:
            return left
        for message in fresh:
            seen.add(message["MessageId"])
            done = _replay_one(sqs, queue_url, streams, invoke, message, region, dry_run, out)
            left += 0 if done else 1
            if dry_run or not done:  # back in the queue at once, for the next try
                _release(sqs, queue_url, message)


def _release(sqs: Any, queue_url: str, message: Mapping[str, Any]) -> None:
    sqs.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )


def _replay_one(
    sqs: Any,
    queue_url: str,
    streams: Any,
    invoke: Invoke,
    message: Mapping[str, Any],
    region: str,
    dry_run: bool,
    out: Any,
) -> bool:
    try:
        failed = Range.from_message(message["Body"])
    except (ValueError, KeyError, TypeError) as problem:
        print(
            f"FAIL  message {message['MessageId']}: not an on-failure record of the stream ({problem})",
            file=out,
        )
        return False
    label = f"shard {failed.shard_id} {failed.first}..{failed.last}"
    try:
        records = read_range(streams, failed, region)
    except RangeGone as gone:
        print(f"FAIL  {label}: no longer in the stream ({gone}); its figures are missing", file=out)
        return False
    if dry_run:
        print(f"DRY   {label}: {len(records)} ledger entries would be replayed", file=out)
        return True
    answer = invoke({"Records": records}) if records else {"batchItemFailures": []}
    if answer.get("batchItemFailures"):
        print(
            f"FAIL  {label}: the aggregator failed again ({json.dumps(answer)}); the message stays", file=out
        )
        return False
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    print(f"PASS  {label}: {len(records)} ledger entries replayed", file=out)
    return True


def lambda_invoke(client: Any, function_name: str) -> Invoke:
    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        answer = client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
        payload = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            return {"batchItemFailures": [{"itemIdentifier": "function error"}], "error": payload}
        return dict(payload or {})

    return invoke


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--region")
    parser.add_argument("--dry-run", action="store_true", help="say what would be replayed; change nothing")
    arguments = parser.parse_args(argv)
    session = boto3.Session(region_name=arguments.region)
    cloudformation = session.client("cloudformation")

    def physical(logical_id: str) -> str:
        detail = cloudformation.describe_stack_resource(
            StackName=arguments.stack_name, LogicalResourceId=logical_id
        )
        return str(detail["StackResourceDetail"]["PhysicalResourceId"])

    left = replay(
        session.client("sqs"),
        physical(QUEUE),
        session.client("dynamodbstreams"),
        lambda_invoke(session.client("lambda"), physical(FUNCTION)),
        region=session.region_name,
        dry_run=arguments.dry_run,
    )
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
