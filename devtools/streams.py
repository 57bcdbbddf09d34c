"""A DynamoDB stream delivered to a function as Lambda's event source mapping does, for the local
mode and the tests (DynamoDB Local has streams; nothing polls them for us).

Per shard, in order, batches of up to `batch_size` records in Lambda's event shape; an answer
naming a failed record (`batchItemFailures`, `ReportBatchItemFailures`) makes the batch come
again from that record, and a function that raises gets the same batch again. Where each shard
got to can be kept in a file, so a restarted local mode goes on where it stopped rather than
delivering the whole stream again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from devtools.background import BackgroundThreads

log = logging.getLogger("devtools.streams")

Deliver = Callable[[dict[str, Any]], Any]


def lambda_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A record of `GetRecords` in the shape Lambda gives it to a function: its creation time in
    epoch seconds, the stream's ARN and region added."""
    body = dict(record)
    stream = dict(body.get("dynamodb") or {})
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = created.timestamp()
    body["dynamodb"] = stream
    body.setdefault("awsRegion", region)
    body["eventSourceARN"] = stream_arn
    return body


class StreamPoller:
    def __init__(
        self,
        client: Any,
        stream_arn: str,
        deliver: Deliver,
        *,
        batch_size: int = 100,
        region: str = "eu-west-1",
        checkpoints: Path | None = None,
    ) -> None:
        """`client`: a boto3 `dynamodbstreams` client; `deliver`: the function, given the event."""
        self.client = client
        self.stream_arn = stream_arn
        self.deliver = deliver
        self.batch_size = batch_size
        self.region = region
        self.checkpoints = checkpoints
        self.after: dict[str, str] = self._load()  # shard id -> last sequence number delivered

    def poll(self) -> int:
        """Deliver every record the stream holds past the checkpoints; how many were delivered.
        A batch the function fails on stops its shard for this call (it comes again next time)."""
        delivered = 0
        before = dict(self.after)
        for shard in self._shards():
            delivered += self._poll_shard(shard)
        if self.after != before:  # the file is written when a shard moved on, not every second
            self._save()
        return delivered

    def drain(self, most: int = 100) -> int:
        """Poll until nothing is left (at most `most` times); how many records were delivered."""
        total = 0
        for _ in range(most):
            delivered = self.poll()
            total += delivered
            if not delivered:
                return total
        raise RuntimeError(f"the stream still had records after {most} polls")

    def _shards(self) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self.client.describe_stream(**request)["StreamDescription"]
            yield from description.get("Shards", [])
            last = description.get("LastEvaluatedShardId")
            if not last:
                return
            request["ExclusiveStartShardId"] = last

    def _iterator(self, shard_id: str, at: str | None = None) -> str | None:
        request: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        if at is not None:
            request.update(ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=at)
        elif shard_id in self.after:
            request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self.after[shard_id])
        else:
            request.update(ShardIteratorType="TRIM_HORIZON")
        try:
            iterator = self.client.get_shard_iterator(**request).get("ShardIterator")
        except self.client.exceptions.ClientError as error:
            if request["ShardIteratorType"] != "AFTER_SEQUENCE_NUMBER":
                raise
            # The checkpoint's record is gone (the stream trimmed it): what is left, from the oldest.
            log.warning(
                "shard %s: checkpoint not found (%s); reading from the oldest record", shard_id, error
            )
            del self.after[shard_id]
            return self._iterator(shard_id)
        return str(iterator) if iterator else None

    def _poll_shard(self, shard: Mapping[str, Any]) -> int:
        shard_id = str(shard["ShardId"])
        iterator = self._iterator(shard_id)
        delivered = 0
        while iterator:
            page = self.client.get_records(ShardIterator=iterator, Limit=self.batch_size)
            records = page.get("Records", [])
            if not records:
                return delivered
            event = {"Records": [self._record(record) for record in records]}
            try:
                answer = self.deliver(event)
            except Exception:
                log.exception("the stream's function failed on a batch of %d records", len(records))
                return delivered
            failed = [
                str(item.get("itemIdentifier"))
                for item in (answer or {}).get("batchItemFailures") or []
                if isinstance(answer, dict)
            ]
            if failed:
                done = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) < int(failed[0])]
                if done:
                    self.after[shard_id] = str(done[-1]["dynamodb"]["SequenceNumber"])
                return delivered + len(done)
            self.after[shard_id] = str(records[-1]["dynamodb"]["SequenceNumber"])
            delivered += len(records)
            iterator = page.get("NextShardIterator")
        return delivered

    def _record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return lambda_record(record, self.stream_arn, self.region)

    def _load(self) -> dict[str, str]:
        if self.checkpoints is None or not self.checkpoints.is_file():
            return {}
        try:
            saved = json.loads(self.checkpoints.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning(
                "unreadable stream checkpoints in %s: starting from the oldest record", self.checkpoints
            )
            return {}
        shards = saved.get(self.stream_arn) if isinstance(saved, dict) else None
        return {str(k): str(v) for k, v in shards.items()} if isinstance(shards, dict) else {}

    def _save(self) -> None:
        if self.checkpoints is None:
            return
        saved: dict[str, Any] = {}
        if self.checkpoints.is_file():
            try:
                saved = json.loads(self.checkpoints.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                saved = {}
        saved[self.stream_arn] = self.after
        self.checkpoints.parent.mkdir(parents=True, exist_ok=True)
        self.checkpoints.write_text(json.dumps(saved, indent=1), encoding="utf-8")


class StreamDeliveries(BackgroundThreads):
    """Every `DynamoDB` event of the template's functions: one poller each, polled every second in
    a thread of its own, delivering to the function through `invoke(function, code_uri, handler,
    event)` (the local mode's instances)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        invoke: Callable[[str, str, str, dict[str, Any]], Any],
        *,
        dynamodb: Any,
        streams: Any,
        table_names: Mapping[str, str],
        region: str,
        checkpoints: Path | None = None,
    ) -> None:
        from devtools.template import function_code, serverless_functions

        super().__init__()
        for function, properties in serverless_functions(template).items():
            for name, event in (properties.get("Events") or {}).items():
                if not isinstance(event, dict) or event.get("Type") != "DynamoDB":
                    continue
                table = _table_of((event.get("Properties") or {}).get("Stream"))
                if table not in table_names:
                    log.warning("%s event %s: stream of %s is not emulated", function, name, table)
                    continue
                arn = dynamodb.describe_table(TableName=table_names[table])["Table"].get("LatestStreamArn")
                if not arn:
                    log.warning("%s event %s: table %s has no stream", function, name, table)
                    continue
                code_uri, handler = function_code(template, function)

                def deliver(
                    event: dict[str, Any], f: str = function, c: str = code_uri, h: str = handler
                ) -> Any:
                    return invoke(f, c, h, event)

                size = min(int((event.get("Properties") or {}).get("BatchSize", 100)), 1000)
                poller = StreamPoller(
                    streams, arn, deliver, batch_size=size, region=region, checkpoints=checkpoints
                )
                self.add(f"stream-{function}-{name}", self._poll, poller)

    def _poll(self, poller: StreamPoller) -> None:
        while not self.stopping.wait(1.0):
            try:
                poller.poll()
            except Exception:
                log.exception("polling the stream %s failed", poller.stream_arn)


def _table_of(stream: Any) -> str | None:
    """The table whose stream a `Stream: !GetAtt <Table>.StreamArn` names."""
    attribute = stream.get("Fn::GetAtt") if isinstance(stream, dict) else None
    if isinstance(attribute, list) and len(attribute) == 2 and attribute[1] == "StreamArn":
        return str(attribute[0])
    if isinstance(attribute, str) and attribute.endswith(".StreamArn"):
        return attribute.removesuffix(".StreamArn")
    return None
