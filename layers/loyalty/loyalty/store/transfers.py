"""Transfers between members: read the sender, run the sender's half of the pure step, read the
receiver's wallet and the pages its lots go to, run the receiver's half (`loyalty.domain.transfers`),
render both members' changes and the sender's request record into one transaction, retry on a
race (docs/design.md, "Transfers").

DynamoDB calls: a strongly consistent Query of the sender (wallet, last request, first pages),
a strongly consistent BatchGetItem of the receiver's wallet and of its pages the transfer's lots
go to (so a second transfer-in today tops up its lot without a failed attempt), and the
transaction: 3. A replay of the sender's last request is answered from the first. More only when
needed: the sender's pages read on for a transfer of more lots than the first pages hold, the
receiver's pages when its lots are due but not yet expired, the request record (and the
receiver's wallet) when a refusal is about to be answered.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Self

from loyalty.domain.errors import (
    Conflict,
    IdempotencyMismatch,
    InvalidRequest,
    MemberNotFound,
    MovementTooLarge,
)
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import ProgramRules
from loyalty.domain.transfers import (
    Sending,
    Transfer,
    TransferIds,
    check_recipient,
    check_request,
    receive_points,
    send_points,
)
from loyalty.domain.wallet import LotPage, NeedMorePages, WalletState
from loyalty.ids import new_id
from loyalty.store import keys
from loyalty.store.models import LotPageItem, RequestRecordItem, TableItem, WalletItem, bind
from loyalty.store.movement import (
    attempts,
    read_request,
    render_change,
    render_request,
    replay_request,
    request_part,
)
from loyalty.store.records import LotTaken, fingerprint
from loyalty.store.transact import MAX_TRANSACTION_ITEMS, Transaction, TransactionCancelled
from loyalty.store.wallet import MemberRead, page_from_item, read_live, read_member, read_on, wallet_state

TRANSFER = "transfer"


@dataclass(frozen=True)
class TransferResult:
    """The sender's view of a transfer: its id, the points sent, the sender's balance after and
    the sender's lots taken. Nothing about the receiver, whose balance is its own business."""

    transfer_id: str
    points: int
    balance: int
    lots: tuple[LotTaken, ...] = field(default_factory=tuple)
    replayed: bool = False

    def to_json(self) -> str:
        stored = {name: value for name, value in asdict(self).items() if name != "replayed"}
        return json.dumps(stored, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Self:
        stored = json.loads(text)
        lots = tuple(LotTaken(**lot) for lot in stored.pop("lots"))
        return cls(**stored, lots=lots, replayed=True)


def transfer(
    from_member_id: str,
    to_member_id: str,
    points: int,
    *,
    idempotency_key: str,
    actor: Actor,
    rules: ProgramRules,
    now: datetime,
) -> TransferResult:
    """Move `points` from one member to another in one transaction (invariant 3): the sender's
    soonest-expiring lots, the receiver's lots of the same expiry dates, both wallets (each
    conditioned on its version), both ledger entries (linked by the transfer id) and the sender's
    request record. A retry with the same key gets the original response; a refusal changes
    nothing (see `loyalty.domain.transfers.transfer_points` for the rules and their order).
    """
    request_hash = fingerprint(
        {
            "operation": TRANSFER,
            "memberId": from_member_id,
            "toMemberId": to_member_id,
            "points": points,
            "actor": actor.as_dict(),
        }
    )
    mismatch = IdempotencyMismatch.of_key(idempotency_key)
    for _ in attempts():
        read = read_member(from_member_id, consistent=True)
        last = read.last_request_for(TRANSFER, idempotency_key, now)
        if last is not None:
            return _replayed(from_member_id, last, request_hash, mismatch)
        if read.wallet is None:
            raise MemberNotFound(from_member_id)
        ids = TransferIds(new_id("trf", now), new_id("led", now), new_id("led", now))
        try:
            move = _prepare(read, to_member_id, points, rules, actor, now, ids, idempotency_key)
            result = TransferResult(
                transfer_id=move.transfer_id,
                points=points,
                balance=move.sent.entry.balance_after,
                lots=tuple(LotTaken.of(take) for take in move.taken),
            )
            transaction = _render(move, result, idempotency_key, request_hash, now)
        except (InvalidRequest, Conflict):
            # A retry of an older request is answered by its record, not by today's state or rules.
            stored = read_request(from_member_id, TRANSFER, idempotency_key, now)
            if stored is None:
                raise
            return _replayed(from_member_id, stored, request_hash, mismatch)
        try:
            transaction.commit()
        except TransactionCancelled as cancelled:
            raw = cancelled.failed.get(request_part(from_member_id))
            if raw is not None:
                return _replayed(from_member_id, RequestRecordItem.from_raw_data(raw), request_hash, mismatch)
            continue  # a concurrent movement of either member: the next reads tell
        return result
    raise AssertionError("unreachable: attempts() raises when exhausted")


def _prepare(
    read: MemberRead,
    to_member_id: str,
    points: int,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    ids: TransferIds,
    idempotency_key: str,
) -> Transfer:
    """Both halves of the step, in the order `transfer_points` refuses: the request, then the
    receiver, then the sender's state (whose refusal reads the receiver's wallet first, so that a
    request naming a wrong receiver is told so whatever the sender holds)."""
    check_request(rules.transfers, read.member_id, to_member_id, points)
    try:
        sending = _send(read, to_member_id, points, rules, actor, now, ids, idempotency_key)
    except Conflict:
        check_recipient(receiver_wallet(to_member_id))
        raise
    receiver, pages = _read_receiver(to_member_id, sending.receiver_page_keys(rules, now))
    due = 0
    if receiver is not None and receiver.next_expiry_at is not None and receiver.next_expiry_at <= now:
        due = read_live(to_member_id, now, consistent=True).due  # lots past expiry, not yet expired
    return receive_points(sending, receiver, rules=rules, actor=actor, now=now, ids=ids, due=due, pages=pages)


def _send(
    read: MemberRead,
    to_member_id: str,
    points: int,
    rules: ProgramRules,
    actor: Actor,
    now: datetime,
    ids: TransferIds,
    idempotency_key: str,
) -> Sending:
    """The sender's half, reading on while the step needs more of the sender's pages."""
    while True:
        snapshot = read.snapshot()
        if snapshot is None:
            raise MemberNotFound(read.member_id)
        try:
            return send_points(
                snapshot,
                to_member_id,
                points,
                rules=rules,
                actor=actor,
                now=now,
                ids=ids,
                details={"idempotencyKey": idempotency_key},
            )
        except NeedMorePages:
            read = read_on(read)


def _read_receiver(
    member_id: str, page_keys: tuple[str, ...]
) -> tuple[WalletState | None, dict[str, LotPage]]:
    """The receiver's wallet and those of `page_keys` that exist, strongly consistent, in one
    BatchGetItem (at most 1 + 94 keys: more pages would not fit the transaction anyway)."""
    bind()
    pk = keys.member_pk(member_id)
    wanted = [(pk, keys.wallet_sk()), *((pk, keys.lot_page_sk(key)) for key in page_keys)]
    wallet: WalletState | None = None
    found: list[LotPageItem] = []
    for item in TableItem.batch_get(wanted, consistent_read=True):
        if isinstance(item, WalletItem):
            wallet = wallet_state(item)
        elif isinstance(item, LotPageItem):
            found.append(item)
    if wallet is None:
        return None, {}
    pages = (page_from_item(item, wallet) for item in found)
    return wallet, {page.key: page for page in pages}


def receiver_wallet(member_id: str) -> WalletState | None:
    """The receiver's wallet alone, strongly consistent (one GetItem); None when not enrolled."""
    bind()
    try:
        return wallet_state(WalletItem.get(keys.member_pk(member_id), keys.wallet_sk(), consistent_read=True))
    except WalletItem.DoesNotExist:
        return None


def _render(
    move: Transfer, result: TransferResult, idempotency_key: str, request_hash: str, now: datetime
) -> Transaction:
    """Both members' changes and the sender's request record, as one transaction's parts."""
    transaction = Transaction()
    for change in move.changes:
        render_change(transaction, change)
    render_request(
        transaction,
        move.sent.member_id,
        operation=TRANSFER,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        result=result.to_json(),
        sequence=move.sent.sequence,
        now=now,
    )
    _check_size(transaction, move)
    return transaction


def _check_size(transaction: Transaction, move: Transfer) -> None:
    """Refused before anything is sent when both members' items exceed one transaction: the sender
    transfers fewer points at a time (fewer lot pages on each side; docs/design.md, "Bounds")."""
    items = len(transaction.parts)
    if items > MAX_TRANSACTION_ITEMS:
        sender_pages, receiver_pages = len(move.sent.pages), len(move.received.pages)
        raise MovementTooLarge(
            f"this transfer would write {items} items (lots in {sender_pages} of the sender's lot pages "
            f"and {receiver_pages} of the receiver's); one transaction holds {MAX_TRANSACTION_ITEMS}: "
            "transfer fewer points at a time",
            items=items,
            senderPages=sender_pages,
            receiverPages=receiver_pages,
        )


def _replayed(
    member_id: str, record: RequestRecordItem, request_hash: str, mismatch: IdempotencyMismatch
) -> TransferResult:
    """A transfer's original result (from the sender's ledger entry when not in its record)."""
    return replay_request(
        member_id,
        record,
        request_hash,
        mismatch,
        from_result=TransferResult.from_json,
        from_entry=lambda entry: TransferResult(
            transfer_id=str(entry.details.as_dict()["transferId"]),
            points=-int(entry.points),
            balance=int(entry.balance_after),
            lots=tuple(LotTaken.of(lot) for lot in entry.lots),
            replayed=True,
        ),
    )
