"""The one renderer: members' changes (from `loyalty.domain.movements`) plus the idempotency
record become the parts of one `TransactWriteItems`; and the one retry loop.

Part names carry the member (`wallet:<memberId>`, `page:<memberId>:<page key>`, …), so two
members' changes (a transfer) or many (an expiry batch) fit one transaction. Every write is an
update of named attributes or a put of an item the movement owns: nothing another writer added
to the wallet or a page is erased (docs/design.md, "Writers").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from loyalty.domain.errors import ConcurrentUpdate, DomainError
from loyalty.domain.ledger import LedgerEntry
from loyalty.domain.movements import Drop, MemberChange, NewLot, PageChange, Spend, TopUp
from loyalty.domain.wallet import WalletState
from loyalty.settings import settings
from loyalty.store import keys
from loyalty.store.models import (
    ActorAttribute,
    LedgerEntryItem,
    LotMovementAttribute,
    LotPageItem,
    RequestRecordItem,
    TableItem,
    WalletItem,
    bind,
)
from loyalty.store.records import is_live
from loyalty.store.transact import Transaction
from loyalty.store.wallet import directory_entry, lot_to_map, transfer_sent_entry

# A result longer than this is not copied into the request records: the ledger entry of the same
# movement holds it (a redemption of 700 lots would make a 60 KB record, read by every movement).
MAX_INLINE_RESULT = 1_000


def attempts() -> Iterator[int]:
    """Attempt numbers, sleeping a jittered, growing pause before each retry; a member's
    movements are serialised by its wallet version, so a lost race reads again and retries."""
    for attempt in range(settings().max_attempts):
        if attempt:
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
        yield attempt
    raise ConcurrentUpdate("too many concurrent changes to this member's points; retry with the same key")


T = TypeVar("T")


# ---- part names


def wallet_part(member_id: str) -> str:
    return f"wallet:{member_id}"


def page_part(member_id: str, page_key: str) -> str:
    return f"page:{member_id}:{page_key}"


def request_part(member_id: str) -> str:
    return f"request:{member_id}"


# ---- rendering


def render_change(transaction: Transaction, change: MemberChange) -> None:
    """The wallet (conditioned on the version read), the pages touched and the ledger entry."""
    member_id = change.member_id
    pk = keys.member_pk(member_id)
    transaction.update(
        wallet_part(member_id),
        WalletItem(pk, keys.wallet_sk()),
        wallet_actions(change.before, change.after),
        WalletItem.version == change.before.version,
    )
    for page in change.pages:
        _render_page(transaction, member_id, page)
    transaction.put(
        f"ledger:{member_id}",
        ledger_item(member_id, change.sequence, change.entry),
        TableItem.pk.does_not_exist(),
    )


def wallet_actions(before: WalletState, after: WalletState) -> list[Action]:
    """Updates of the attributes that changed: what the wallet holds besides stays as it is."""
    actions: list[Action] = [
        WalletItem.available.set(after.available),
        WalletItem.version.set(after.version),
    ]
    if after.owed != before.owed:
        actions.append(WalletItem.owed.set(after.owed))
    if after.last_activity_at != before.last_activity_at:
        actions.append(WalletItem.last_activity_at.set(after.last_activity_at))
    for key in sorted(set(before.pages) | set(after.pages)):
        if key not in after.pages:
            actions.append(WalletItem.pages[key].remove())
            continue
        entry = directory_entry(after.pages[key], after.first_days.get(key))
        if entry != directory_entry(before.pages.get(key, 0), before.first_days.get(key)):
            actions.append(WalletItem.pages[key].set(entry))
    actions += _optional(
        WalletItem.activity_expires_at, before.activity_expires_at, after.activity_expires_at
    )
    actions += _optional(WalletItem.last_lot_id, before.last_lot_id, after.last_lot_id)
    if after.transfers_sent != before.transfers_sent:
        sent = [transfer_sent_entry(transfer) for transfer in after.transfers_sent]
        actions.append(_set_or_remove(WalletItem.transfers_sent, sent or None))
    if after.next_expiry_at != before.next_expiry_at:
        if after.next_expiry_at is None:
            actions += [
                WalletItem.next_expiry_at.remove(),
                WalletItem.gsi1pk.remove(),
                WalletItem.gsi1sk.remove(),
            ]
        else:
            stamp = WalletItem.next_expiry_at.serialize(after.next_expiry_at)
            actions += [
                WalletItem.next_expiry_at.set(after.next_expiry_at),
                WalletItem.gsi1pk.set(keys.expiry_shard(after.member_id, settings().expiry_shards)),
                WalletItem.gsi1sk.set(keys.next_expiry_sk(stamp, after.member_id)),
            ]
    return actions


def _optional(attribute: Any, before: Any, after: Any) -> list[Action]:
    return [] if after == before else [_set_or_remove(attribute, after)]


def _set_or_remove(attribute: Any, value: Any) -> Action:
    """An attribute set to `value`, or removed when there is none (DynamoDB stores no null here)."""
    action: Action = attribute.remove() if value is None else attribute.set(value)
    return action


def _render_page(transaction: Transaction, member_id: str, page: PageChange) -> None:
    name = page_part(member_id, page.key)
    item = LotPageItem(keys.member_pk(member_id), keys.lot_page_sk(page.key))
    if not page.exists:
        item.member_id = member_id
        item.lots = {
            write.lot.lot_id: lot_to_map(write.lot) for write in page.writes if isinstance(write, NewLot)
        }
        transaction.put(name, item, TableItem.pk.does_not_exist())
        return
    if page.emptied:
        transaction.delete(name, item)
        return
    actions: list[Action] = []
    condition: Condition = TableItem.pk.exists()
    for write in page.writes:
        match write:
            case NewLot(lot=lot):
                actions.append(LotPageItem.lots[lot.lot_id].set(lot_to_map(lot)))
                condition &= LotPageItem.lots[lot.lot_id].does_not_exist()
            case TopUp(lot_id=lot_id, points=points):
                path = LotPageItem.lots[lot_id]
                actions += [path["o"].set(path["o"] + points), path["r"].set(path["r"] + points)]
                condition &= path.exists()
            case Spend(lot=lot):
                # The whole lot, not `lots.<id>.r`: a path into a lot removed meanwhile would be
                # refused before the wallet's condition could say "read again".
                actions.append(LotPageItem.lots[lot.lot_id].set(lot_to_map(lot)))
            case Drop(lot_id=lot_id):
                actions.append(LotPageItem.lots[lot_id].remove())
    transaction.update(name, item, actions, condition)


def ledger_item(member_id: str, sequence: int, entry: LedgerEntry) -> LedgerEntryItem:
    return LedgerEntryItem(
        keys.member_pk(member_id),
        keys.ledger_sk(sequence),
        member_id=member_id,
        sequence=sequence,
        entry_id=entry.entry_id,
        type=str(entry.type),
        points=entry.points,
        balance_after=entry.balance_after,
        occurred_at=entry.occurred_at,
        recorded_at=entry.recorded_at,
        actor=ActorAttribute(kind=entry.actor.kind, id=entry.actor.id),
        reason=entry.reason,
        lots=[
            LotMovementAttribute(
                lot_id=lot.lot_id,
                points=lot.points,
                expires_at=lot.expires_at,
                issue_month=lot.issue_month,
                expiry_month=lot.expiry_month,
            )
            for lot in entry.lots
        ],
        rules_version=entry.rules_version,
        details={name: value for name, value in entry.details.items() if value is not None},
    )


def read_request(
    member_id: str, operation: str, idempotency_key: str, now: datetime
) -> RequestRecordItem | None:
    """A request's own record, strongly consistent, if it is live: read only when a refusal is about
    to be answered, so that a retry of an older request gets its original response instead."""
    bind()
    try:
        record = RequestRecordItem.get(
            keys.member_pk(member_id), keys.request_sk(operation, idempotency_key), consistent_read=True
        )
    except RequestRecordItem.DoesNotExist:
        return None
    return record if is_live(record.ttl, now) else None


def replay_request(
    member_id: str,
    record: RequestRecordItem,
    request_hash: str,
    mismatch: DomainError,
    *,
    from_result: Callable[[str], T],
    from_entry: Callable[[LedgerEntryItem], T],
) -> T:
    """The original result of the request `record` stands for: from the record, or, when it was
    too large to copy there (MAX_INLINE_RESULT), from the movement's ledger entry (one more read);
    `mismatch` when the record is of another request with the same key."""
    if record.request_hash != request_hash:
        raise mismatch
    if record.result is not None:
        return from_result(record.result)
    entry = LedgerEntryItem.get(
        keys.member_pk(member_id), keys.ledger_sk(int(record.sequence)), consistent_read=True
    )
    return from_entry(entry)


def render_request(
    transaction: Transaction,
    member_id: str,
    *,
    operation: str,
    idempotency_key: str,
    request_hash: str,
    result: str,
    sequence: int,
    now: datetime,
) -> None:
    """The request record under its own key (new, or past its ttl: else the stored one comes
    back with the cancellation) and as the member's last request (seen by the next first read)."""
    expires = int(now.timestamp()) + settings().idempotency_ttl_seconds
    pk = keys.member_pk(member_id)
    fields: dict[str, Any] = {
        "member_id": member_id,
        "request_id": keys.request_id(operation, idempotency_key),
        "request_hash": request_hash,
        "result": result if len(result) <= MAX_INLINE_RESULT else None,
        "sequence": sequence,
        "created_at": now,
        "ttl": expires,
    }
    transaction.put(
        request_part(member_id),
        RequestRecordItem(pk, keys.request_sk(operation, idempotency_key), **fields),
        TableItem.pk.does_not_exist() | (RequestRecordItem.ttl < int(now.timestamp())),
        return_old=True,
    )
    # An update of named attributes, like every shared item: nothing another writer added is lost.
    transaction.update(
        f"last-request:{member_id}",
        RequestRecordItem(pk, keys.last_request_sk()),
        [
            RequestRecordItem.kind.set(RequestRecordItem),
            *(_set_or_remove(getattr(RequestRecordItem, name), value) for name, value in fields.items()),
        ],
    )
