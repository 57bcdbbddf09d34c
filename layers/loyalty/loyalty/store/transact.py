"""One `TransactWriteItems` of named parts, and the translation of its failure, written once.

pynamodb sends a transaction's items grouped by kind (condition checks, deletes, puts,
updates), whatever order they were added in, and DynamoDB's cancellation reasons follow the
order sent. `Transaction` keeps each part's name in that same order, so a cancelled
transaction says which named parts failed (`tests/unit/test_transact.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from loyalty.domain.errors import MovementTooLarge, Unavailable
from loyalty.store.models import TableItem, bind

MAX_TRANSACTION_ITEMS = 100
# DynamoDB's reasons that mean "another writer got there first": read again and retry.
CONFLICT_CODES = frozenset({"TransactionConflict"})
THROTTLE_CODES = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
SEND_ORDER = ("check", "delete", "put", "update")
# No answer from DynamoDB after botocore's retries: a timeout, a connection refused or closed.
# The request may or may not have been applied; only the caller's retry with its key can tell.
NO_ANSWER = (HTTPClientError, BotocoreConnectionError)


@dataclass
class TransactionCancelled(Exception):
    """Nothing was written. `failed` maps each part whose condition failed to the item as it is
    (when the part asked for it); an empty `failed` means another transaction got in the way."""

    failed: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # An update named a lot that is not (or no longer) where the read said: stale, read again.
    stale_path: bool = False

    def __str__(self) -> str:
        return f"transaction cancelled (conditions failed: {sorted(self.failed) or 'none'})"


@dataclass(frozen=True)
class Part:
    name: str
    action: str  # one of SEND_ORDER
    model: TableItem | type[TableItem]
    condition: Condition | None = None
    actions: tuple[Action, ...] = ()
    return_old: bool = False
    key: tuple[str, str] | None = None  # condition checks name their item by key


@dataclass
class Transaction:
    """Parts added by name; `commit()` writes them all or none (invariant 3)."""

    parts: list[Part] = field(default_factory=list)

    def put(
        self, name: str, item: TableItem, condition: Condition | None = None, *, return_old: bool = False
    ) -> None:
        self._add(Part(name, "put", item, condition, return_old=return_old))

    def update(
        self,
        name: str,
        item: TableItem,
        actions: list[Action],
        condition: Condition | None = None,
        *,
        return_old: bool = False,
    ) -> None:
        self._add(Part(name, "update", item, condition, tuple(actions), return_old))

    def delete(self, name: str, item: TableItem, condition: Condition | None = None) -> None:
        self._add(Part(name, "delete", item, condition))

    def check(self, name: str, model: type[TableItem], pk: str, sk: str, condition: Condition) -> None:
        self._add(Part(name, "check", model, condition, key=(pk, sk)))

    def _add(self, part: Part) -> None:
        if any(existing.name == part.name for existing in self.parts):
            raise ValueError(f"two parts of one transaction are named {part.name!r}")
        self.parts.append(part)

    def sent_order(self) -> list[Part]:
        """The parts in the order pynamodb sends them (and DynamoDB reports their reasons)."""
        return sorted(self.parts, key=lambda part: SEND_ORDER.index(part.action))

    def commit(self) -> None:
        if len(self.parts) > MAX_TRANSACTION_ITEMS:
            raise MovementTooLarge(
                f"this movement would write {len(self.parts)} items; one transaction holds "
                f"{MAX_TRANSACTION_ITEMS}",
                items=len(self.parts),
            )
        bind()
        try:
            with TransactWrite(connection=TableItem._get_connection().connection) as transaction:
                for part in self.sent_order():
                    _send(transaction, part)
        except TransactWriteError as error:
            raise translate(error, self.sent_order()) from error


def _send(transaction: TransactWrite, part: Part) -> None:
    if part.action == "check":
        assert part.key is not None and isinstance(part.model, type) and part.condition is not None
        transaction.condition_check(part.model, part.key[0], part.key[1], condition=part.condition)
        return
    assert isinstance(part.model, TableItem)
    return_values = "ALL_OLD" if part.return_old else None
    if part.action == "delete":
        transaction.delete(part.model, condition=part.condition, add_version_condition=False)
    elif part.action == "put":
        transaction.save(part.model, condition=part.condition, return_values=return_values)
    else:
        transaction.update(
            part.model,
            list(part.actions),
            condition=part.condition,
            return_values=return_values,
            add_version_condition=False,
        )


def aws_error_code(error: PynamoDBException) -> str:
    """DynamoDB's error code behind a pynamodb error, or "" when DynamoDB did not answer.

    Not pynamodb's `cause_response_code`: it raises AttributeError when the cause is a timeout
    (urllib3's timeouts carry `response = None`), which turned a timeout into a crash."""
    cause = error.cause
    return str(cause.response.get("Error", {}).get("Code", "")) if isinstance(cause, ClientError) else ""


def aws_error_message(error: PynamoDBException) -> str:
    cause = error.cause
    return str(cause.response.get("Error", {}).get("Message", "")) if isinstance(cause, ClientError) else ""


def no_answer(error: PynamoDBException) -> bool:
    """DynamoDB did not answer (after botocore's retries): the outcome is unknown."""
    return isinstance(error.cause, NO_ANSWER)


def translate(error: TransactWriteError, sent: list[Part]) -> Exception:
    """The domain's reading of a failed transaction.

    - a condition failed → `TransactionCancelled` naming those parts (with the items asked for);
    - another transaction on the same items → `TransactionCancelled` with nothing failed (retry);
    - an item or the request over DynamoDB's size limits → `MovementTooLarge`, never a retry;
    - throttling left after botocore's retries → `Unavailable` (503, retry later);
    - no answer (a timeout, a connection lost) after botocore's retries → `Unavailable` too: the
      transaction may have committed, and the caller's retry with the same key then replays it
      (the purchase guard or the request record says it was made). Not retried here: botocore
      already waited through its attempts, each up to the read timeout.
    """
    if no_answer(error):
        return Unavailable("DynamoDB did not answer: the movement may or may not have been made")
    code = aws_error_code(error)
    message = aws_error_message(error)
    reasons = error.cancellation_reasons
    if code == "TransactionCanceledException" and reasons:
        failed: dict[str, dict[str, Any] | None] = {}
        for part, reason in zip(sent, reasons, strict=False):
            if reason is None:
                continue
            if reason.code == "ConditionalCheckFailed":
                failed[part.name] = reason.raw_item
            elif reason.code == "ValidationError":
                return MovementTooLarge(
                    f"DynamoDB refused part {part.name!r}: {reason.message or 'invalid item'}", part=part.name
                )
            elif reason.code in THROTTLE_CODES:
                return Unavailable("DynamoDB is throttling this member's items")
        return TransactionCancelled(failed)
    if code in ("TransactionConflictException", "TransactionInProgressException"):
        return TransactionCancelled()
    if code == "ValidationException" and "document path" in message:
        # DynamoDB checks an update's paths before its condition: a lot removed since the read
        # (a concurrent movement) shows up here rather than as a failed condition.
        return TransactionCancelled(stale_path=True)
    if code == "ValidationException" and ("size" in message.lower() or "length" in message.lower()):
        return MovementTooLarge(f"DynamoDB refused the movement: {message}")
    if code in THROTTLE_CODES or code in ("ThrottlingException", "ProvisionedThroughputExceededException"):
        return Unavailable("DynamoDB is throttling")
    return error
