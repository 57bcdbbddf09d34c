"""A cancelled transaction names the parts that failed, whatever order pynamodb sent them in."""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError

from loyalty.domain.errors import MovementTooLarge, Unavailable
from loyalty.store.models import LedgerEntryItem, PurchaseGuardItem, TableItem, WalletItem
from loyalty.store.transact import Transaction, TransactionCancelled, translate


def a_movement() -> Transaction:
    """Parts added in the order a movement adds them: wallet update, page delete, ledger put, guard put."""
    transaction = Transaction()
    transaction.update("wallet:m-1", WalletItem("MEMBER#m-1", "WALLET"), [WalletItem.available.set(1)])
    transaction.delete("page:m-1:2028-11/2026-11", TableItem("MEMBER#m-1", "WALLET#LOTS#2028-11/2026-11"))
    transaction.put("ledger:m-1", LedgerEntryItem("MEMBER#m-1", "LEDGER#000000000001"))
    transaction.put("guard", PurchaseGuardItem("PURCHASE#t-1", "PURCHASE"), return_old=True)
    transaction.check("claim", TableItem, "CLAIM#c-1", "CLAIM", TableItem.pk.exists())
    return transaction


def cancelled(code: str, reasons: list[CancellationReason | None], message: str = "") -> TransactWriteError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}}
    return TransactWriteError(
        "Failed to write transaction items",
        VerboseClientError(response, "TransactWriteItems", cancellation_reasons=reasons),
    )


def test_parts_are_sent_checks_then_deletes_then_puts_then_updates() -> None:
    # Given a movement's parts added wallet first
    # When the transaction orders them as pynamodb sends them
    names = [part.name for part in a_movement().sent_order()]

    # Then the order is pynamodb's, stable within a kind
    assert names == ["claim", "page:m-1:2028-11/2026-11", "ledger:m-1", "guard", "wallet:m-1"]


def test_a_failed_condition_is_reported_under_the_name_of_its_part_with_the_stored_item() -> None:
    # Given a transaction whose fourth item sent (the guard) failed its condition
    stored = {"pk": {"S": "PURCHASE#t-1"}, "sk": {"S": "PURCHASE"}}
    reasons: list[CancellationReason | None] = [
        None,
        None,
        None,
        CancellationReason(code="ConditionalCheckFailed", raw_item=stored),
        None,
    ]

    # When the failure is translated
    error = translate(cancelled("TransactionCanceledException", reasons), a_movement().sent_order())

    # Then it names the guard, not the wallet that was added at the same position
    assert isinstance(error, TransactionCancelled)
    assert error.failed == {"guard": stored}


def test_a_failed_wallet_version_is_named_wallet() -> None:
    reasons: list[CancellationReason | None] = [None, None, None, None]
    reasons.append(CancellationReason(code="ConditionalCheckFailed"))
    error = translate(cancelled("TransactionCanceledException", reasons), a_movement().sent_order())
    assert isinstance(error, TransactionCancelled)
    assert error.failed == {"wallet:m-1": None}


def test_a_conflict_with_another_transaction_means_read_again_with_nothing_failed() -> None:
    reasons: list[CancellationReason | None] = [None, CancellationReason(code="TransactionConflict")]
    error = translate(cancelled("TransactionCanceledException", reasons), a_movement().sent_order())
    assert isinstance(error, TransactionCancelled)
    assert error.failed == {}
    assert not error.stale_path


def test_an_item_over_the_size_limit_is_a_movement_too_large_never_a_retry() -> None:
    # Given DynamoDB refused the ledger entry for its size
    reason = CancellationReason(
        code="ValidationError", message="Item size has exceeded the maximum allowed size"
    )
    error = translate(
        cancelled("TransactionCanceledException", [None, None, reason, None, None]), a_movement().sent_order()
    )

    # Then the movement is refused with its own error, naming the part
    assert isinstance(error, MovementTooLarge)
    assert error.details == {"part": "ledger:m-1"}


def test_a_request_over_the_transaction_size_is_a_movement_too_large() -> None:
    message = "Transaction request size has exceeded the maximum allowed size of 4 MB"
    error = translate(cancelled("ValidationException", [], message), a_movement().sent_order())
    assert isinstance(error, MovementTooLarge)


def test_a_path_into_a_lot_removed_meanwhile_is_stale_data_to_read_again() -> None:
    message = "The document path provided in the update expression is invalid for update"
    error = translate(cancelled("ValidationException", [], message), a_movement().sent_order())
    assert isinstance(error, TransactionCancelled)
    assert error.stale_path


def test_throttling_left_after_the_sdk_retries_is_unavailable() -> None:
    reasons: list[CancellationReason | None] = [CancellationReason(code="ThrottlingError")]
    error = translate(cancelled("TransactionCanceledException", reasons), a_movement().sent_order())
    assert isinstance(error, Unavailable)


def test_more_parts_than_one_transaction_holds_are_refused_before_anything_is_sent() -> None:
    # Given 101 parts
    transaction = Transaction()
    for number in range(101):
        transaction.put(f"ledger:{number}", LedgerEntryItem("MEMBER#m-1", f"LEDGER#{number:012d}"))

    # Then commit refuses them without calling DynamoDB
    with pytest.raises(MovementTooLarge):
        transaction.commit()


def test_two_parts_cannot_share_a_name() -> None:
    transaction = Transaction()
    transaction.put("ledger:m-1", LedgerEntryItem("MEMBER#m-1", "LEDGER#000000000001"))
    with pytest.raises(ValueError, match="named"):
        transaction.put("ledger:m-1", LedgerEntryItem("MEMBER#m-1", "LEDGER#000000000002"))
