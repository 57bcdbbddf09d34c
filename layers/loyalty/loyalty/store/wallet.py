"""A member's wallet: the balance item and its lot pages, as read from and written to the table.

Lot pages group the live lots of one expiry bucket (docs/design.md, "Why lot pages"); the
wallet item keeps a directory of the pages with the earliest expiry in each, which feeds
the sparse `ByNextExpiry` index.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty.domain.lots import Lot
from loyalty.store import keys
from loyalty.store.client import query_all
from loyalty.store.codec import Item, encode, to_item
from loyalty.timefmt import format_instant, parse_instant

ACTIVITY_BUCKET = "ACTIVITY"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LotPage:
    """The live lots of one bucket. `version` 0 means the page is not in the table yet.

    On an ACTIVITY page the expiry belongs to the page (it moves with the member's
    activity), so its lots carry no date of their own.
    """

    bucket: str
    version: int
    lots: dict[str, Lot]
    expires_at: datetime | None = None

    @property
    def earliest_expiry(self) -> datetime | None:
        dates = [lot.expires_at for lot in self.lots.values() if lot.expires_at is not None]
        return min(dates, default=None)


@dataclass(frozen=True)
class Wallet:
    member_id: str
    available: int
    version: int
    enrolled_at: datetime
    last_activity_at: datetime
    page_due: dict[str, str | None] = field(default_factory=dict)

    @property
    def next_expiry_at(self) -> str | None:
        return min((due for due in self.page_due.values() if due), default=None)


@dataclass(frozen=True)
class WalletSnapshot:
    """Everything one Query of the wallet range returns."""

    wallet: Wallet | None
    pages: dict[str, LotPage]
    request_record: dict[str, Any] | None = None

    def lots(self) -> list[Lot]:
        return [lot for page in self.pages.values() for lot in page.lots.values()]


# ---- items -> objects


def wallet_from_item(item: dict[str, Any]) -> Wallet:
    return Wallet(
        member_id=item["memberId"],
        available=item["available"],
        version=item["version"],
        enrolled_at=parse_instant(item["enrolledAt"]),
        last_activity_at=parse_instant(item["lastActivityAt"]),
        page_due=dict(item.get("pages", {})),
    )


def page_from_item(item: dict[str, Any]) -> LotPage:
    page_expiry = parse_instant(item["expiresAt"]) if item.get("expiresAt") else None
    lots = {
        lot_id: lot_from_attributes(lot_id, stored, page_expiry)
        for lot_id, stored in item.get("lots", {}).items()
    }
    return LotPage(bucket=item["bucket"], version=int(item["version"]), lots=lots, expires_at=page_expiry)


def lot_from_attributes(lot_id: str, stored: dict[str, Any], page_expiry: datetime | None) -> Lot:
    return Lot(
        lot_id=lot_id,
        original=int(stored["o"]),
        remaining=int(stored["r"]),
        earned_at=EPOCH + timedelta(milliseconds=int(stored["e"])),
        expires_at=EPOCH + timedelta(seconds=int(stored["x"])) if "x" in stored else page_expiry,
        source_kind=stored["k"],
        source_ref=stored["s"],
        rules_version=stored["v"],
    )


# ---- objects -> items


def lot_attributes(lot: Lot, *, page_level_expiry: bool) -> dict[str, Any]:
    """A lot inside its page, compact: a page is rewritten whole by every movement that touches
    it and billed per KB, so short names and epoch numbers halve its cost (docs/design.md).

    `o` original, `r` remaining, `e` earnedAt (epoch ms), `x` expiresAt (epoch s; absent when the
    lot never expires or follows the page's expiry), `k` source kind, `s` source ref, `v` rules version.
    """
    attributes: dict[str, Any] = {
        "o": lot.original,
        "r": lot.remaining,
        "e": (lot.earned_at - EPOCH) // timedelta(milliseconds=1),
        "k": lot.source_kind,
        "s": lot.source_ref,
        "v": lot.rules_version,
    }
    if lot.expires_at is not None and not page_level_expiry:
        attributes["x"] = (lot.expires_at - EPOCH) // timedelta(seconds=1)
    return attributes


def page_item(member_id: str, page: LotPage) -> Item:
    on_activity = page.bucket == ACTIVITY_BUCKET
    values: dict[str, Any] = {
        **keys.lot_page_key(member_id, page.bucket),
        "memberId": member_id,
        "bucket": page.bucket,
        "version": page.version,
        "lots": {
            lot_id: lot_attributes(lot, page_level_expiry=on_activity) for lot_id, lot in page.lots.items()
        },
    }
    if on_activity and page.expires_at is not None:
        values["expiresAt"] = format_instant(page.expires_at)
    return to_item(values)


def wallet_item(wallet: Wallet) -> Item:
    values: dict[str, Any] = {
        **keys.wallet_key(wallet.member_id),
        "memberId": wallet.member_id,
        "available": wallet.available,
        "version": wallet.version,
        "enrolledAt": format_instant(wallet.enrolled_at),
        "lastActivityAt": format_instant(wallet.last_activity_at),
        "pages": wallet.page_due,
    }
    next_expiry = wallet.next_expiry_at
    if next_expiry is not None:
        values["nextExpiryAt"] = next_expiry
        values.update(keys.next_expiry_index_keys(wallet.member_id, next_expiry))
    return to_item(values)


def page_due(page: LotPage) -> str | None:
    """The directory entry of a page: its earliest expiry, or None when nothing in it expires."""
    earliest = page.expires_at if page.bucket == ACTIVITY_BUCKET else page.earliest_expiry
    return format_instant(earliest) if earliest is not None else None


def with_pages(wallet: Wallet, pages: dict[str, LotPage | None], **changes: Any) -> Wallet:
    """The wallet after some pages changed (None: the page is gone), with its directory in step."""
    directory = dict(wallet.page_due)
    for bucket, page in pages.items():
        if page is None or not page.lots:
            directory.pop(bucket, None)
        else:
            directory[bucket] = page_due(page)
    return replace(wallet, page_due=directory, **changes)


# ---- reads


def snapshot_from_items(items: list[dict[str, Any]]) -> WalletSnapshot:
    wallet = None
    pages: dict[str, LotPage] = {}
    record = None
    for item in items:
        sort_key = item[keys.SK]
        if sort_key == keys.WALLET:
            wallet = wallet_from_item(item)
        elif sort_key.startswith(keys.LOT_PAGE_PREFIX):
            page = page_from_item(item)
            pages[page.bucket] = page
        elif sort_key.startswith(keys.REQUEST_PREFIX):
            record = item
    return WalletSnapshot(wallet=wallet, pages=pages, request_record=record)


def read_member_range(member_id: str, first: str, *, consistent: bool) -> list[dict[str, Any]]:
    """The member's items from sort key `first` through its last lot page, in one Query."""
    return query_all(
        KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
        ExpressionAttributeValues={
            ":pk": encode(keys.member_pk(member_id)),
            ":first": encode(first),
            ":last": encode(keys.LOT_PAGE_PREFIX + "~"),
        },
        ConsistentRead=consistent,
    )


def read_wallet(member_id: str, *, consistent: bool) -> WalletSnapshot:
    """The wallet and all its lot pages, in one Query (request records sort after the range)."""
    return snapshot_from_items(read_member_range(member_id, keys.WALLET, consistent=consistent))


def read_wallet_for_request(member_id: str, operation: str, idempotency_key: str) -> WalletSnapshot:
    """Wallet, lot pages and this request's record (if any), strongly consistent, in one Query."""
    items = query_all(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :wallet)",
        FilterExpression="attribute_not_exists(requestId) OR requestId = :rid",
        ExpressionAttributeValues={
            ":pk": encode(keys.member_pk(member_id)),
            ":wallet": encode(keys.WALLET),
            ":rid": encode(keys.request_id(operation, idempotency_key)),
        },
        ConsistentRead=True,
    )
    return snapshot_from_items(items)
