"""Items approaching DynamoDB's 400 KB item limit: measured as the store writes and reads them.

What can grow (docs/design.md, "Bounds: no cliff"): a ledger entry of a movement touching many lots (a
redemption or an expiry of thousands), a receiver's lot page, the wallet's page directory, a
claim's history, a run's figures. Past 400 KB DynamoDB refuses the write (the movement answers
`MovementTooLarge`, store/transact.py); `NEAR_LIMIT` (300 KB) is the warning before that day.

The check sits on the store's one DynamoDB client (`watch`, called by `models.bind`), so no write
path can miss it:

- every item written whole (PutItem, a transaction's Put, BatchWriteItem) is measured from the
  request as sent;
- every item read (GetItem, Query, BatchGetItem, TransactGetItems) is measured from the response:
  the items a movement updates in place (its wallet, its lot pages, a claim) are read before each
  update, so one growing by updates shows up there, a write before it could fail.

An item at or past `NEAR_LIMIT` is logged (a warning: item type, key, bytes; keys hold
pseudonymous member ids, never an email or a name) and counted in the `ItemsNearSizeLimit` metric.

Cost: the JSON text of a request or response is never smaller than the DynamoDB size of an item
in it (every name and value is written out, with its type tag and quotes; numbers take a byte per
digit, not per two), so a body under `NEAR_LIMIT` holds no item near it: one `len()` a call. Only a
body past 300 KB (rare) is sized item by item.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

ITEM_LIMIT = 400 * 1024
NEAR_LIMIT = 300 * 1024
METRIC = "ItemsNearSizeLimit"

# Where each operation's items are, in its request (writes) or its response (reads).
WRITES = ("PutItem", "TransactWriteItems", "BatchWriteItem")
READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")


# ---- DynamoDB's item size ("Item sizes and formats", Amazon DynamoDB Developer Guide)
#
# The sum of the attribute names' and values' lengths: a String its UTF-8 bytes, a Number one byte
# per two significant digits plus one, a Binary its raw bytes, a Boolean or Null one byte, a List or
# Map 3 bytes plus one per element plus its elements (a map's keys sized as names). Sets: the sum
# of their elements (AWS documents no overhead). The bench (bench/billing.py) bills by these
# sizes: one implementation for both.


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes DynamoDB counts for an item in its low-level form (`{"name": {"S": "Léa"}}`)."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def value_size(attribute: Mapping[str, Any]) -> int:
    """Bytes of one attribute value, without its name. Binary values may be raw bytes (a parsed
    response) or base64 text (a request body)."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return len(value.encode())
    if kind == "N":
        return number_size(value)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_size(element) + 1 for name, element in value.items())
    if kind == "L":
        return 3 + sum(value_size(element) + 1 for element in value)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        return _binary_size(value)
    if kind == "SS":
        return sum(len(element.encode()) for element in value)
    if kind == "NS":
        return sum(number_size(element) for element in value)
    if kind == "BS":
        return sum(_binary_size(element) for element in value)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def number_size(text: str) -> int:
    """One byte per two significant digits (leading and trailing zeros trimmed), plus one."""
    digits = text.lstrip("+-")
    if "e" in digits or "E" in digits:
        digits = "".join(map(str, Decimal(digits).as_tuple().digits))
    significant = digits.replace(".", "").strip("0")
    return (len(significant) + 1) // 2 + 1


def _binary_size(value: bytes | str) -> int:
    if isinstance(value, str):  # base64 text: 3 bytes per 4 characters, less the padding
        return len(value) * 3 // 4 - value.count("=")
    return len(value)


# ---- the watch on the client


def watch(client: Any) -> None:
    """Measure the items `client` (a botocore DynamoDB client) writes and reads, from now on."""
    events = client.meta.events
    for operation in WRITES:
        events.register(f"before-call.dynamodb.{operation}", _on_write, unique_id=f"loyalty-size-{operation}")
    for operation in READS:
        events.register(f"after-call.dynamodb.{operation}", _on_read, unique_id=f"loyalty-size-{operation}")


def _on_write(params: Mapping[str, Any], model: Any, **_: Any) -> None:
    body = params.get("body") or b""
    if len(body) < NEAR_LIMIT:
        return
    request = json.loads(body)
    for item in written_items(model.name, request):
        _check(item, model.name)


def _on_read(http_response: Any, parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
    if len(getattr(http_response, "content", None) or b"") < NEAR_LIMIT:
        return
    for item in read_items(model.name, parsed):
        _check(item, model.name)


def written_items(operation: str, request: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The whole items a write request puts (an update's item is measured when read)."""
    if operation == "PutItem":
        yield request["Item"]
    elif operation == "TransactWriteItems":
        for part in request.get("TransactItems", []):
            if "Put" in part:
                yield part["Put"]["Item"]
    elif operation == "BatchWriteItem":
        for requests in request.get("RequestItems", {}).values():
            for one in requests:
                if "PutRequest" in one:
                    yield one["PutRequest"]["Item"]


def read_items(operation: str, response: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The items a read response holds."""
    if operation == "GetItem":
        if response.get("Item"):
            yield response["Item"]
    elif operation in ("Query", "Scan"):
        yield from response.get("Items", [])
    elif operation == "BatchGetItem":
        for items in response.get("Responses", {}).values():
            yield from items
    elif operation == "TransactGetItems":
        for one in response.get("Responses", []):
            if one.get("Item"):
                yield one["Item"]


def _check(item: Mapping[str, Any], operation: str) -> None:
    size = item_size(item)
    if size >= NEAR_LIMIT:
        report_near_limit(item, size, operation)


# Items already logged by this process: a big item read on every call of a hot member is counted
# each time (the metric) but logged once, not once a request. Bounded: a process logs at most this many.
_LOGGED: set[tuple[str | None, str | None]] = set()
MOST_LOGGED = 10_000


def report_near_limit(item: Mapping[str, Any], size: int, operation: str) -> None:
    """One count of `ItemsNearSizeLimit` (a failure to count is logged, never raised:
    telemetry.count_event), and, the first time this process sees the item, a warning with its type
    and key (no attribute value but the keys')."""
    from loyalty.http.telemetry import count_event, logger

    key = (_text(item, "pk"), _text(item, "sk"))
    if key in _LOGGED or len(_LOGGED) >= MOST_LOGGED:
        count_event(METRIC)
        return
    _LOGGED.add(key)
    logger.warning(
        "an item is approaching DynamoDB's 400 KB item limit",
        extra={
            "itemType": _text(item, "itemType"),
            "pk": _text(item, "pk"),
            "sk": _text(item, "sk"),
            "bytes": size,
            "limitBytes": ITEM_LIMIT,
            "operation": operation,
        },
    )
    count_event(METRIC)


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value.get("S")) if isinstance(value, Mapping) and "S" in value else None
