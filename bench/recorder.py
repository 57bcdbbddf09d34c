"""Records what the handlers' DynamoDB client does, and prices it by AWS's rules (bench/billing.py).

Hooked on the very botocore client the store uses (`loyalty.store.client.dynamodb()`), through
its events: `provide-client-params` (ask DynamoDB Local for its own capacity figure and keep the
request), `before-call` and `after-call`. Reads are priced from the items in the response;
writes need each written item as it was before and after the call, which a separate client on
the same endpoint reads (its calls are not counted). Where a response hides what was read (a
Query's filter, a projection), the same read is done again in full on the separate client and
the call is flagged.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench import billing

READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
SINGLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
WRITES = {*SINGLE_WRITES, "BatchWriteItem", "TransactWriteItems"}
# Request fields that make a response show less than DynamoDB read (and billed).
HIDING = (
    "FilterExpression",
    "QueryFilter",
    "ScanFilter",
    "ProjectionExpression",
    "AttributesToGet",
    "Select",
)
PROJECTED = "{operation} asked for some attributes only: priced on the whole item, read again"
_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")


@dataclass
class Written:
    """One item a write call touched: the action, its table and key, and its size before/after."""

    action: str
    table: str
    key: dict[str, Any]
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass
class Measurement:
    """What one measured operation cost."""

    calls: Counter[str] = field(default_factory=Counter)
    rru: float = 0.0
    wru: int = 0
    gsi_wru: int = 0
    local_units: float = 0.0
    largest_written: int = 0
    wallet_size: int | None = None
    failed_calls: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def call_count(self) -> int:
        return sum(self.calls.values())

    @property
    def detail(self) -> str:
        return "+".join(f"{count} {operation}" for operation, count in self.calls.items())


class Recorder:
    """Prices every DynamoDB call `client` makes inside `measure()`; idle otherwise."""

    def __init__(self, client: Any, endpoint: str, *, wallet_sort_key: str = "WALLET") -> None:
        self._reader = boto3.client("dynamodb", endpoint_url=endpoint)
        self._wallet_sort_key = wallet_sort_key
        self._schemas: dict[str, tuple[tuple[str, ...], tuple[billing.IndexSpec, ...]]] = {}
        self._current: Measurement | None = None
        events = client.meta.events
        events.register("provide-client-params.dynamodb", self._keep_request)
        events.register("before-call.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    @contextmanager
    def recording(self) -> Iterator[Measurement]:
        self._current = Measurement()
        try:
            yield self._current
        finally:
            self._current = None

    def measure(self, action: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], Measurement]:
        with self.recording() as measurement:
            response = action()
        return response, measurement

    # ---- the table's keys and indexes (read once, on the separate client)

    def _schema(self, table: str) -> tuple[tuple[str, ...], tuple[billing.IndexSpec, ...]]:
        if table not in self._schemas:
            description = self._reader.describe_table(TableName=table)["Table"]
            keys = tuple(element["AttributeName"] for element in description["KeySchema"])
            indexes = tuple(
                billing.IndexSpec(
                    name=index["IndexName"],
                    keys=tuple(element["AttributeName"] for element in index["KeySchema"]),
                    table_keys=keys,
                    projection=index["Projection"]["ProjectionType"],
                    included=tuple(index["Projection"].get("NonKeyAttributes", ())),
                )
                for index in description.get("GlobalSecondaryIndexes", [])
            )
            self._schemas[table] = (keys, indexes)
        return self._schemas[table]

    def _read(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._reader.get_item(
            TableName=table, Key=key, ConsistentRead=True
        ).get("Item")
        return item

    # ---- events

    def _keep_request(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self._current is None or model.name not in READS | WRITES:
            return
        params.setdefault("ReturnConsumedCapacity", "TOTAL")
        context["bench"] = {"operation": model.name, "params": copy.deepcopy(params)}

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if self._current is None:
            return
        self._current.calls[model.name] += 1
        call = context.get("bench")
        if call is None:
            self._current.notes.append(f"{model.name}: not an item read or write, not priced")
            return
        if model.name in WRITES:
            call["written"] = [
                Written(action, table, key, before=self._read(table, key))
                for action, table, key in self._written_keys(model.name, call["params"])
            ]

    def _after(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = context.get("bench")
        measurement = self._current
        if measurement is None or call is None:
            return
        operation, params = call["operation"], call["params"]
        measurement.local_units += _local_units(parsed)
        if http_response.status_code >= 300:
            measurement.failed_calls += 1
            code = parsed.get("Error", {}).get("Code", "error")
            if code == "ConditionalCheckFailedException" and operation in SINGLE_WRITES:
                measurement.wru += self._failed_condition_units(operation, params, call["written"][0])
                measurement.notes.append(f"{operation} failed its condition: priced as AWS documents")
            else:
                # AWS documents no price for a cancelled transaction or another failure.
                measurement.notes.append(f"{operation} failed ({code}): not priced")
            return
        if operation in WRITES:
            self._price_writes(operation, call["written"], measurement)
        else:
            measurement.rru += self._price_read(operation, params, parsed, measurement)

    # ---- writes

    def _written_keys(
        self, operation: str, params: dict[str, Any]
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        if operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((action, request),) = entry.items()
                yield action, request["TableName"], self._key_of(request)
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        yield "Put", table, self._key_of({"TableName": table, **request["PutRequest"]})
                    else:
                        yield "Delete", table, request["DeleteRequest"]["Key"]
        else:
            yield operation.removesuffix("Item"), params["TableName"], self._key_of(params)

    def _key_of(self, request: dict[str, Any]) -> dict[str, Any]:
        if "Key" in request:
            return dict(request["Key"])
        keys, _ = self._schema(request["TableName"])
        return {name: request["Item"][name] for name in keys}

    def _price_writes(self, operation: str, written: list[Written], measurement: Measurement) -> None:
        transactional = operation == "TransactWriteItems"
        for item in written:
            item.after = self._read(item.table, item.key)
            before, after = billing.item_size(item.before), billing.item_size(item.after)
            measurement.wru += billing.write_units(item.action, before, after, transactional=transactional)
            if item.action == "ConditionCheck":
                continue
            _, indexes = self._schema(item.table)
            measurement.gsi_wru += billing.indexes_write_units(item.before, item.after, indexes)
            measurement.largest_written = max(measurement.largest_written, after)
            sort_key = (item.after or {}).get("sk", {}).get("S")
            if sort_key == self._wallet_sort_key:
                measurement.wallet_size = after

    @staticmethod
    def _failed_condition_units(operation: str, params: dict[str, Any], written: Written) -> int:
        """ "DynamoDB read and write operations": a conditional write whose condition fails still
        consumes write units: 1 when the item does not exist; otherwise by the item's size (the
        larger of the existing item and, for a put, the new one)."""
        if written.before is None:
            return 1
        new = billing.item_size(params.get("Item")) if operation == "PutItem" else 0
        return billing.write_units("Put", billing.item_size(written.before), new)

    # ---- reads

    def _price_read(
        self, operation: str, params: dict[str, Any], parsed: dict[str, Any], measurement: Measurement
    ) -> float:
        if operation in ("Query", "Scan"):
            items = parsed.get("Items", [])
            scanned, count = parsed.get("ScannedCount", len(items)), parsed.get("Count", len(items))
            projected = any(name in params for name in HIDING if "Filter" not in name)
            if scanned > count or projected:
                # The response under-reports what DynamoDB read and billed: read it again in full.
                shown = f"ScannedCount {scanned} > Count {count}" if scanned > count else "a projection"
                measurement.notes.append(
                    f"{operation} response hides items or attributes it read ({shown}): "
                    "priced on the same read done again without filter or projection"
                )
                items = self._read_unfiltered(operation, params)
            consistent = bool(params.get("ConsistentRead", False))
            return billing.query_read_units(map(billing.item_size, items), consistent=consistent)
        if operation == "GetItem":
            item = parsed.get("Item")
            if item is not None and any(name in params for name in HIDING):
                measurement.notes.append(PROJECTED.format(operation=operation))
                item = self._read(params["TableName"], params["Key"])
            consistent = bool(params.get("ConsistentRead", False))
            return billing.get_read_units([billing.item_size(item)], consistent=consistent)
        if operation == "BatchGetItem":
            return self._price_batch_get(params, parsed, measurement)
        if operation == "TransactGetItems":
            sizes = []
            for entry, response in zip(params["TransactItems"], parsed.get("Responses", []), strict=False):
                request, item = entry["Get"], response.get("Item")
                if item is not None and "ProjectionExpression" in request:
                    measurement.notes.append(PROJECTED.format(operation=operation))
                    item = self._read(request["TableName"], request["Key"])
                sizes.append(billing.item_size(item))
            return billing.transact_get_read_units(sizes)
        raise AssertionError(f"unpriced read {operation}")

    def _price_batch_get(
        self, params: dict[str, Any], parsed: dict[str, Any], measurement: Measurement
    ) -> float:
        units = 0.0
        for table, request in params["RequestItems"].items():
            keys, _ = self._schema(table)
            unprocessed = parsed.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            found = {_key_tuple(item, keys): item for item in parsed.get("Responses", {}).get(table, [])}
            sizes = []
            for key in request["Keys"]:
                if key in unprocessed:
                    continue  # not read in this call
                item = found.get(_key_tuple(key, keys))
                if item is not None and any(name in request for name in HIDING):
                    measurement.notes.append(PROJECTED.format(operation="BatchGetItem"))
                    item = self._read(table, key)
                sizes.append(billing.item_size(item))
            units += billing.get_read_units(sizes, consistent=bool(request.get("ConsistentRead", False)))
        return units

    def _read_unfiltered(self, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The items a Query or Scan read (and DynamoDB billed) before its filter and projection."""
        request = {name: value for name, value in params.items() if name not in HIDING}
        request.pop("ReturnConsumedCapacity", None)
        used = set(_PLACEHOLDER.findall(request.get("KeyConditionExpression", "")))
        for placeholders in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            if placeholders in request:
                kept = {name: value for name, value in request[placeholders].items() if name in used}
                if kept:
                    request[placeholders] = kept
                else:
                    del request[placeholders]
        items: list[dict[str, Any]] = getattr(self._reader, operation.lower())(**request).get("Items", [])
        return items


def _key_tuple(item: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(repr(item.get(name)) for name in keys)


def _local_units(parsed: dict[str, Any]) -> float:
    """DynamoDB Local's own report (ReturnConsumedCapacity TOTAL), summed over the tables."""
    consumed = parsed.get("ConsumedCapacity") or []
    entries = consumed if isinstance(consumed, list) else [consumed]
    return sum(float(entry.get("CapacityUnits", 0)) for entry in entries)
