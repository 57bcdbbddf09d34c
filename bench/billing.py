"""What DynamoDB bills for a call, by AWS's documented rules: item sizes and capacity units.

Pure: items in, numbers out, no I/O. Items are in DynamoDB's low-level attribute-value form
(`{"name": {"S": "Léa"}}`), with Binary values as raw bytes, as botocore parses them.

Sources (AWS documentation, Amazon DynamoDB Developer Guide):

* "DynamoDB item sizes and formats" (CapacityUnitCalculations): the size of an item.
* "DynamoDB read and write operations" (read-write-operations), formerly "Managing Throughput
  Settings on Provisioned Tables": capacity units per operation.
* "Amazon DynamoDB Transactions: How it works", section "Capacity management for transactions".
* "Global secondary indexes", section "Provisioned throughput considerations for global
  secondary indexes" (GSI.html#GSI.ThroughputConsiderations.Writes): index write units.

One request unit is billed per 1 KB written and per 4 KB read; KB means 1,024 bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loyalty.store import sizes

Item = Mapping[str, Mapping[str, Any]]

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096

# ---- item size
#
# One sizing for the store and the bench: loyalty/store/sizes.py ("Item sizes and formats": a
# String its UTF-8 bytes, a Number a byte per two significant digits plus one, a Binary its raw
# bytes, a List or Map 3 bytes plus one per element, sets the sum of their elements), which the
# store's watch on items near 400 KB uses on every call.


def item_size(item: Item | None) -> int:
    """Bytes of an item: every attribute's name plus its value. No item is 0 bytes."""
    if not item:
        return 0
    return sizes.item_size(item)


def _units(size: int, unit_bytes: int) -> int:
    """Whole units of `unit_bytes` covering `size`; at least one ("a read of an item that
    does not exist still consumes" the minimum unit; a write of 1 byte costs 1 KB's unit)."""
    return max(1, math.ceil(size / unit_bytes))


# ---- reads
#
# "DynamoDB read and write operations", capacity unit consumption for read operations:
# * strongly consistent: 1 unit per 4 KB; eventually consistent: half of that; transactional:
#   two units per 4 KB.
# * GetItem / BatchGetItem: "DynamoDB processes each item in the batch as an individual GetItem
#   request, so DynamoDB first rounds up the size of each item to the next 4 KB boundary".
# * Query: "all items returned are treated as a single read operation, where DynamoDB computes
#   the total size of all items and then rounds up to the next 4 KB boundary". A filter is
#   applied after the read ("Filter expressions for the Query operation": a Query "consumes the
#   same amount of read capacity, regardless of whether a filter expression is present"), and
#   requesting a subset of attributes "has no impact on the item size calculations".
# * "If you perform a read operation on an item that does not exist, DynamoDB still consumes
#   provisioned read throughput": 1 unit strongly consistent, 0.5 eventually consistent. We
#   apply the same minimum to a Query that reads nothing (by extension: AWS does not say).


def _consistency_factor(consistent: bool) -> float:
    return 1.0 if consistent else 0.5


def get_read_units(sizes: Iterable[int | None], *, consistent: bool) -> float:
    """GetItem and BatchGetItem: each item (None or 0: not found) rounded up to 4 KB on its own."""
    units = sum(_units(size or 0, READ_UNIT_BYTES) for size in sizes)
    return units * _consistency_factor(consistent)


def query_read_units(sizes: Iterable[int], *, consistent: bool) -> float:
    """One Query call (one page): the sum of the sizes of every item read, rounded up to 4 KB once."""
    return _units(sum(sizes), READ_UNIT_BYTES) * _consistency_factor(consistent)


def transact_get_read_units(sizes: Iterable[int | None]) -> float:
    """TransactGetItems: two units per 4 KB of each item (a missing item still costs two)."""
    return float(sum(2 * _units(size or 0, READ_UNIT_BYTES) for size in sizes))


# ---- writes
#
# "DynamoDB read and write operations", capacity unit consumption for write operations:
# * PutItem: "if an item with the same primary key exists in the table, the operation replaces
#   the item ... the item size that matters is the larger of the two".
# * UpdateItem: "DynamoDB considers the size of the item as it appears before and after the
#   update. The provisioned throughput consumed reflects the larger of these item sizes", even
#   when only some attributes change.
# * DeleteItem: "based on the size of the deleted item".
# * BatchWriteItem: each put or delete as an individual PutItem or DeleteItem.
# * Sizes are rounded up to the next 1 KB; a write costs at least one unit.
# "Amazon DynamoDB Transactions: How it works", capacity management for transactions:
# "DynamoDB performs two underlying reads or writes of every item in the transaction: one to
# prepare the transaction and one to commit the transaction" -- so every Put, Update and
# Delete of a TransactWriteItems costs twice its standalone units.
#
# ConditionCheck: the same page counts "every item in the transaction" twice and says no more.
# A ConditionCheck sits in a write transaction, so we bill it as 2 write units per 1 KB of the
# checked item (at least 2). That it is billed as writes, 2 units for an item under 1 KB, is
# what third parties measured on AWS (paritysuite/dynamodb-conformance, pull request 67); that
# it grows with the checked item's size beyond 1 KB is our reading, not confirmed by AWS.

WRITE_ACTIONS = ("Put", "Update", "Delete", "ConditionCheck")


def write_units(action: str, before: int, after: int, *, transactional: bool = False) -> int:
    """Write units of one item written by `action` ("Put", "Update", "Delete", "ConditionCheck"),
    from the item's size before and after the call (0: absent)."""
    if action in ("Put", "Update"):
        units = _units(max(before, after), WRITE_UNIT_BYTES)
    elif action == "Delete":
        units = _units(before, WRITE_UNIT_BYTES)
    elif action == "ConditionCheck":
        if not transactional:
            raise ValueError("a ConditionCheck exists only inside TransactWriteItems")
        units = _units(before, WRITE_UNIT_BYTES)
    else:
        raise ValueError(f"unknown write action {action!r}")
    return 2 * units if transactional else units


# ---- global secondary indexes
#
# "Global secondary indexes", provisioned throughput considerations, write capacity units: an
# index write is billed on top of the table's, per 1 KB of the index entry:
# * an item that enters the index (its index keys become defined): one write;
# * an update that changes an index key value: two writes (delete the old entry, put the new);
# * an item that leaves the index: one write, to delete the old entry;
# * an item in the index before and after, with the same index keys, whose projected
#   attributes change: one write; nothing projected changes: no write;
# * an item in the index neither before nor after: no index write.
# The index entry holds the table keys, the index keys and the projected attributes. Index
# updates are asynchronous; the transactions page does not say they are doubled, and we do not
# double them.


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index as DescribeTable reports it."""

    name: str
    keys: tuple[str, ...]
    table_keys: tuple[str, ...]
    projection: str  # "ALL", "KEYS_ONLY" or "INCLUDE"
    included: tuple[str, ...] = ()

    def entry(self, item: Item | None) -> dict[str, Any] | None:
        """The index entry of `item`, or None when the item is not in this (sparse) index."""
        if not item or any(key not in item for key in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        kept = {*self.keys, *self.table_keys, *(self.included if self.projection == "INCLUDE" else ())}
        return {name: value for name, value in item.items() if name in kept}


def index_write_units(before: Item | None, after: Item | None, index: IndexSpec) -> int:
    """Write units an index consumes when one table item goes from `before` to `after`."""
    old, new = index.entry(before), index.entry(after)
    if old is None and new is None:
        return 0
    if old is None:
        return _units(item_size(new), WRITE_UNIT_BYTES)
    if new is None:
        return _units(item_size(old), WRITE_UNIT_BYTES)
    if any(old[key] != new[key] for key in index.keys):
        return _units(item_size(old), WRITE_UNIT_BYTES) + _units(item_size(new), WRITE_UNIT_BYTES)
    if old != new:
        return _units(max(item_size(old), item_size(new)), WRITE_UNIT_BYTES)
    return 0


def indexes_write_units(before: Item | None, after: Item | None, indexes: Sequence[IndexSpec]) -> int:
    return sum(index_write_units(before, after, index) for index in indexes)
