"""One `TransactWriteItems`, and the translation of its cancellation into something callers act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loyalty.domain.errors import TooManyLots
from loyalty.settings import settings
from loyalty.store.client import dynamodb
from loyalty.store.codec import Item

MAX_TRANSACTION_ITEMS = 100


@dataclass(frozen=True)
class Write:
    """One item of a transaction: `action` is Put, Update, Delete or ConditionCheck; `name` says its role."""

    name: str
    action: str
    request: dict[str, Any]
    return_item_on_failure: bool = False


@dataclass
class TransactionCancelled(Exception):
    """Some condition failed or another transaction got in the way; nothing was written.

    `failed` maps the name of every write whose condition failed to the item as it is
    (when that write asked for it), so a caller can tell "already done" from "moved under me".
    """

    failed: dict[str, Item | None] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"transaction cancelled (conditions failed: {sorted(self.failed) or 'none'})"


def transact_write(writes: list[Write]) -> None:
    """Write all of `writes` atomically, in this order (kept: cancellation reasons are positional)."""
    if len(writes) > MAX_TRANSACTION_ITEMS:
        raise TooManyLots(
            f"this movement would touch {len(writes)} items, more than one transaction can hold",
            items=len(writes),
        )
    table = settings().table_name
    items = []
    for write in writes:
        body = {"TableName": table, **write.request}
        if write.return_item_on_failure:
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        items.append({write.action: body})
    client = dynamodb()
    try:
        client.transact_write_items(TransactItems=items)
    except client.exceptions.TransactionCanceledException as cancelled:
        reasons = cancelled.response.get("CancellationReasons", [])
        raise TransactionCancelled(
            {
                writes[index].name: reason.get("Item")
                for index, reason in enumerate(reasons)
                if reason.get("Code") == "ConditionalCheckFailed"
            }
        ) from cancelled
    except client.exceptions.TransactionConflictException as conflict:
        raise TransactionCancelled() from conflict
