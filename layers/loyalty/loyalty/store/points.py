"""The points transaction: every movement is one read and one `TransactWriteItems`.

All movements of a member are serialised through the wallet's `version` (optimistic
locking); a lost race re-reads and tries again a bounded number of times. See
docs/design.md for the items, the conditions and what each operation costs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.domain.earning import EarnQuote, Purchase, quote_points
from loyalty.domain.errors import (
    AlreadyCredited,
    ConcurrentUpdate,
    IdempotencyMismatch,
    InvalidRequest,
    MemberNotFound,
)
from loyalty.domain.expiry import bucket_for, expires_at, follows_activity
from loyalty.domain.lots import Lot, Take, allocate, available
from loyalty.domain.rules import ProgramRules
from loyalty.ids import new_id
from loyalty.settings import settings
from loyalty.store import keys
from loyalty.store.client import dynamodb
from loyalty.store.codec import encode, from_item, to_item
from loyalty.store.records import Actor, Outcome, fingerprint, is_live, record_attributes, replay
from loyalty.store.transact import TransactionCancelled, Write, transact_write
from loyalty.store.wallet import (
    ACTIVITY_BUCKET,
    LotPage,
    Wallet,
    WalletSnapshot,
    lot_attributes,
    page_item,
    read_wallet,
    read_wallet_for_request,
    wallet_from_item,
    wallet_item,
    with_pages,
)
from loyalty.timefmt import format_instant

# A purchase reported a little ahead of our clock is clock skew, not a purchase from the future.
CLOCK_SKEW = timedelta(minutes=5)
REDEEM = "redeem"


def attempts() -> Iterator[int]:
    """Attempt numbers, sleeping a jittered, growing pause before each retry."""
    for attempt in range(settings().max_attempts):
        if attempt:
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
        yield attempt
    raise ConcurrentUpdate("too many concurrent changes to this member's points; retry with the same key")


# ---- earn


def earn(
    member_id: str,
    transaction_id: str,
    purchase: Purchase,
    *,
    actor: Actor,
    rules: ProgramRules,
    now: datetime,
) -> Outcome:
    """Credit a purchase: a new lot, the balance, a ledger entry and the purchase guard, at once.

    A `transactionId` is credited at most once (invariant 2): the guard item is put with
    `attribute_not_exists` in the same transaction and keeps the original response, so a
    retry gets that response again and a different request with the same id gets a 409.
    """
    if purchase.occurred_at > now + CLOCK_SKEW:
        raise InvalidRequest("occurredAt", "is in the future")
    request_hash = fingerprint(
        {
            "operation": "earn",
            "memberId": member_id,
            "transactionId": transaction_id,
            "amount": str(Decimal(purchase.amount).normalize()),
            "currency": purchase.currency,
            "occurredAt": format_instant(purchase.occurred_at),
            "channel": purchase.channel,
            "category": purchase.category,
            "actor": actor.as_dict(),
        }
    )
    already = AlreadyCredited(transaction_id)
    quote = quote_points(rules, purchase)
    for _ in attempts():
        wallet, guard = _read_for_earn(member_id, transaction_id)
        if guard is not None:
            return replay(guard, request_hash, already)
        if wallet is None:
            raise MemberNotFound(member_id)
        activity_at = max(wallet.last_activity_at, purchase.occurred_at)
        lot_expiry = expires_at(
            rules,
            earned_at=purchase.occurred_at,
            enrolled_at=wallet.enrolled_at,
            last_activity_at=activity_at,
        )
        if lot_expiry is not None and lot_expiry <= now:
            raise InvalidRequest(
                "occurredAt", "the purchase is too old: its points would already have expired"
            )
        lot = _new_lot(quote, purchase, transaction_id, lot_expiry, now)
        page_writes, new_wallet = _credit_pages(wallet, lot, rules, lot_expiry)
        new_wallet = replace(
            new_wallet, available=wallet.available + quote.points, last_activity_at=activity_at
        )
        balance_after = wallet.available + quote.points
        if wallet.next_expiry_at is not None and wallet.next_expiry_at <= format_instant(now):
            # Some lots are due but the expiry run has not reached them yet: they no longer count.
            balance_after = _live_balance(member_id, now) + quote.points
        entry_id = new_id("led", now)
        outcome = Outcome(
            status_code=201,
            body={
                "entryId": entry_id,
                "transactionId": transaction_id,
                "points": quote.points,
                "lotId": lot.lot_id if lot else None,
                "expiresAt": format_instant(lot_expiry) if lot and lot_expiry else None,
                "balance": balance_after,
                "rulesVersion": quote.rules_version,
            },
        )
        ledger_entry = _earn_entry(entry_id, transaction_id, purchase, quote, lot, balance_after, actor, now)
        guard = {
            **keys.purchase_key(transaction_id),
            "memberId": member_id,
            "transactionId": transaction_id,
            "entryId": entry_id,
            "lotId": lot.lot_id if lot else None,
            "points": quote.points,
            "creditedBy": "earn",
            **record_attributes(request_hash, outcome, now),
        }
        writes = [
            _wallet_write(new_wallet, wallet.version),
            *page_writes,
            _ledger_write(member_id, wallet.version, ledger_entry),
            Write(
                "guard",
                "Put",
                {"Item": to_item(guard), "ConditionExpression": "attribute_not_exists(pk)"},
                return_item_on_failure=True,
            ),
        ]
        try:
            transact_write(writes)
        except TransactionCancelled as cancelled:
            if "guard" in cancelled.failed:
                stored = cancelled.failed["guard"]
                if stored is not None:
                    return replay(from_item(stored), request_hash, already)
            continue  # someone moved first (or the guard appeared): read again
        return outcome
    raise AssertionError("unreachable: attempts() raises when exhausted")


def _read_for_earn(member_id: str, transaction_id: str) -> tuple[Wallet | None, dict[str, Any] | None]:
    table = settings().table_name
    wanted = [keys.wallet_key(member_id), keys.purchase_key(transaction_id)]
    request = {table: {"Keys": [to_item(key) for key in wanted], "ConsistentRead": True}}
    found: list[dict[str, Any]] = []
    while request:
        response = dynamodb().batch_get_item(RequestItems=request)
        found.extend(from_item(item) for item in response.get("Responses", {}).get(table, []))
        request = response.get("UnprocessedKeys") or {}
    wallet = next((item for item in found if item[keys.SK] == keys.WALLET), None)
    guard = next((item for item in found if item[keys.PK].startswith("PURCHASE#")), None)
    return (wallet_from_item(wallet) if wallet else None), guard


def _new_lot(
    quote: EarnQuote, purchase: Purchase, transaction_id: str, expiry: datetime | None, now: datetime
) -> Lot | None:
    """The lot a purchase creates; none when it earns no point."""
    if quote.points <= 0:
        return None
    return Lot(
        lot_id=new_id("lot", now),
        original=quote.points,
        remaining=quote.points,
        earned_at=purchase.occurred_at,
        expires_at=expiry,
        source_kind="earn",
        source_ref=transaction_id,
        rules_version=quote.rules_version,
    )


def _earn_entry(
    entry_id: str,
    transaction_id: str,
    purchase: Purchase,
    quote: EarnQuote,
    lot: Lot | None,
    balance_after: int,
    actor: Actor,
    now: datetime,
) -> dict[str, Any]:
    """The ledger entry of a credited purchase: how its points were computed, and the lot."""
    return {
        "entryId": entry_id,
        "type": "earn",
        "points": quote.points,
        "balanceAfter": balance_after,
        "occurredAt": format_instant(purchase.occurred_at),
        "recordedAt": format_instant(now),
        "actor": actor.as_dict(),
        "reason": "purchase",
        "rulesVersion": quote.rules_version,
        "lots": [_take_dict(Take(lot.lot_id, lot.original, lot.expires_at))] if lot else [],
        "details": {
            "transactionId": transaction_id,
            "amount": str(purchase.amount),
            "currency": purchase.currency,
            "channel": purchase.channel,
            "category": purchase.category,
            "multiplier": str(quote.multiplier),
            "bonusPoints": quote.bonus_points,
            "campaigns": list(quote.campaigns),
        },
    }


def _credit_pages(
    wallet: Wallet, lot: Lot | None, rules: ProgramRules, lot_expiry: datetime | None
) -> tuple[list[Write], Wallet]:
    """Writes that add `lot` to its page without reading the page (the wallet directory says if it exists).

    Under the inactivity policy the purchase is activity: the ACTIVITY page's expiry moves too.
    """
    member_id = wallet.member_id
    directory = dict(wallet.page_due)
    writes: list[Write] = []
    activity_expiry = lot_expiry if follows_activity(rules) else None
    if lot is None:
        if activity_expiry is not None and ACTIVITY_BUCKET in directory:
            writes.append(_update_page(member_id, ACTIVITY_BUCKET, None, activity_expiry))
            directory[ACTIVITY_BUCKET] = format_instant(activity_expiry)
        return writes, replace(wallet, page_due=directory)
    bucket = bucket_for(rules, lot_expiry)
    due = format_instant(lot_expiry) if lot_expiry else None
    if bucket in directory:
        page_expiry = activity_expiry if bucket == ACTIVITY_BUCKET else None
        writes.append(_update_page(member_id, bucket, lot, page_expiry))
        current = directory[bucket]
        if bucket == ACTIVITY_BUCKET or (due is not None and (current is None or due < current)):
            directory[bucket] = due
    else:
        page = LotPage(bucket=bucket, version=1, lots={lot.lot_id: lot}, expires_at=activity_expiry)
        writes.append(
            Write(
                f"page:{bucket}",
                "Put",
                {"Item": page_item(member_id, page), "ConditionExpression": "attribute_not_exists(pk)"},
            )
        )
        directory[bucket] = due
    return writes, replace(wallet, page_due=directory)


def _update_page(member_id: str, bucket: str, lot: Lot | None, page_expiry: datetime | None) -> Write:
    """Add `lot` to an existing page and/or move the ACTIVITY page's expiry, without reading the page."""
    assignments: list[str] = []
    request: dict[str, Any] = {
        "Key": to_item(keys.lot_page_key(member_id, bucket)),
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeValues": {":one": encode(1)},
    }
    if lot is not None:
        assignments.append("lots.#lot = :lot")
        request["ExpressionAttributeNames"] = {"#lot": lot.lot_id}
        attributes = lot_attributes(lot, page_level_expiry=bucket == ACTIVITY_BUCKET)
        request["ExpressionAttributeValues"][":lot"] = encode(attributes)
    if page_expiry is not None:
        assignments.append("expiresAt = :expires")
        request["ExpressionAttributeValues"][":expires"] = encode(format_instant(page_expiry))
    request["UpdateExpression"] = f"SET {', '.join(assignments)} ADD version :one"
    return Write(f"page:{bucket}", "Update", request)


def _live_balance(member_id: str, now: datetime) -> int:
    return available(read_wallet(member_id, consistent=True).lots(), now)


# ---- redeem


def redeem(
    member_id: str,
    points: int,
    *,
    idempotency_key: str,
    actor: Actor,
    rules: ProgramRules,
    now: datetime,
) -> Outcome:
    """Spend `points`, soonest-expiring lots first (invariant 4), never more than the live balance.

    One strongly consistent Query reads the wallet, every lot page and this request's
    record; one transaction then writes the wallet (conditioned on its version), every
    page it touches (each conditioned on its version), the ledger entry and the record.
    """
    request_hash = fingerprint(
        {"operation": REDEEM, "memberId": member_id, "points": points, "actor": actor.as_dict()}
    )
    mismatch = IdempotencyMismatch(
        f"Idempotency-Key {idempotency_key!r} was already used with a different request",
        idempotencyKey=idempotency_key,
    )
    for _ in attempts():
        snapshot = read_wallet_for_request(member_id, REDEEM, idempotency_key)
        if is_live(snapshot.request_record, now):
            assert snapshot.request_record is not None
            return replay(snapshot.request_record, request_hash, mismatch)
        if snapshot.wallet is None:
            raise MemberNotFound(member_id)
        takes = allocate(snapshot.lots(), points, now)
        touched = _debit_pages(snapshot, takes)
        if follows_activity(rules) and ACTIVITY_BUCKET in snapshot.pages:
            page = touched.get(ACTIVITY_BUCKET, snapshot.pages[ACTIVITY_BUCKET])
            touched[ACTIVITY_BUCKET] = _moved_activity_page(page, rules, snapshot.wallet, now)
        wallet = snapshot.wallet
        new_wallet = with_pages(
            wallet,
            touched,
            available=wallet.available - points,
            last_activity_at=max(wallet.last_activity_at, now),
        )
        pages_after = [page for page in {**snapshot.pages, **touched}.values() if page is not None]
        balance = available([lot for page in pages_after for lot in page.lots.values()], now)
        entry_id = new_id("led", now)
        body = {
            "redemptionId": entry_id,
            "points": points,
            "balance": balance,
            "lots": [_take_dict(take) for take in takes],
        }
        outcome = Outcome(status_code=201, body=body)
        ledger_entry = {
            "entryId": entry_id,
            "type": "redeem",
            "points": -points,
            "balanceAfter": balance,
            "occurredAt": format_instant(now),
            "recordedAt": format_instant(now),
            "actor": actor.as_dict(),
            "reason": "redemption",
            "lots": body["lots"],
            "details": {"idempotencyKey": idempotency_key},
        }
        record = {
            **keys.request_key(member_id, REDEEM, idempotency_key),
            "requestId": keys.request_id(REDEEM, idempotency_key),
            "entryId": entry_id,
            "ttl": int(now.timestamp()) + settings().idempotency_ttl_seconds,
            **record_attributes(request_hash, outcome, now),
        }
        writes = [
            _wallet_write(new_wallet, wallet.version),
            *(
                _page_write(member_id, bucket, snapshot.pages[bucket], page)
                for bucket, page in touched.items()
            ),
            _ledger_write(member_id, wallet.version, ledger_entry),
            Write(
                "record",
                "Put",
                {
                    "Item": to_item(record),
                    "ConditionExpression": "attribute_not_exists(pk) OR #ttl < :now",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {":now": encode(int(now.timestamp()))},
                },
            ),
        ]
        try:
            transact_write(writes)
        except TransactionCancelled:
            continue  # a concurrent movement, or the same request racing us: the next read tells
        return outcome
    raise AssertionError("unreachable: attempts() raises when exhausted")


def _debit_pages(snapshot: WalletSnapshot, takes: list[Take]) -> dict[str, LotPage | None]:
    """The pages after taking `takes` from their lots; used-up lots leave, empty pages become None."""
    bucket_of_lot = {lot_id: page.bucket for page in snapshot.pages.values() for lot_id in page.lots}
    touched: dict[str, LotPage | None] = {}
    for take in takes:
        bucket = bucket_of_lot[take.lot_id]
        page = touched.get(bucket) or snapshot.pages[bucket]
        lot = page.lots[take.lot_id]
        lots = dict(page.lots)
        if lot.remaining == take.points:
            del lots[take.lot_id]
        else:
            lots[take.lot_id] = replace(lot, remaining=lot.remaining - take.points)
        touched[bucket] = replace(page, lots=lots)
    return {bucket: (page if page and page.lots else None) for bucket, page in touched.items()}


def _moved_activity_page(
    page: LotPage | None, rules: ProgramRules, wallet: Wallet, now: datetime
) -> LotPage | None:
    """Activity extends every lot whose expiry follows activity (policy `inactivity`)."""
    if page is None:
        return None
    expiry = expires_at(rules, earned_at=now, enrolled_at=wallet.enrolled_at, last_activity_at=now)
    lots = {lot_id: replace(lot, expires_at=expiry) for lot_id, lot in page.lots.items()}
    return replace(page, lots=lots, expires_at=expiry)


# ---- shared writes


def _wallet_write(wallet: Wallet, read_version: int) -> Write:
    return Write(
        "wallet",
        "Put",
        {
            "Item": wallet_item(replace(wallet, version=read_version + 1)),
            "ConditionExpression": "version = :read",
            "ExpressionAttributeValues": {":read": encode(read_version)},
        },
    )


def _page_write(member_id: str, bucket: str, before: LotPage, after: LotPage | None) -> Write:
    condition = {
        "ConditionExpression": "version = :read",
        "ExpressionAttributeValues": {":read": encode(before.version)},
    }
    if after is None:
        return Write(
            f"page:{bucket}", "Delete", {"Key": to_item(keys.lot_page_key(member_id, bucket)), **condition}
        )
    return Write(
        f"page:{bucket}",
        "Put",
        {"Item": page_item(member_id, replace(after, version=before.version + 1)), **condition},
    )


def _ledger_write(member_id: str, wallet_version: int, entry: dict[str, Any]) -> Write:
    """The movement's ledger entry; its sequence is the wallet version the same transaction writes."""
    sequence = wallet_version + 1
    item = {**keys.ledger_key(member_id, sequence), "memberId": member_id, "sequence": sequence, **entry}
    return Write("ledger", "Put", {"Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"})


def _take_dict(take: Take) -> dict[str, Any]:
    return {
        "lotId": take.lot_id,
        "points": take.points,
        "expiresAt": format_instant(take.expires_at) if take.expires_at else None,
    }
