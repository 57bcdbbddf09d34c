"""The ledger: an append-only journal per member, read newest first with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from loyalty.domain.errors import InvalidRequest, MemberNotFound
from loyalty.settings import settings
from loyalty.store import keys
from loyalty.store.client import dynamodb
from loyalty.store.codec import encode, from_item

ENTRY_FIELDS = (
    "entryId",
    "sequence",
    "type",
    "points",
    "balanceAfter",
    "occurredAt",
    "recordedAt",
    "actor",
    "reason",
    "lots",
    "rulesVersion",
    "details",
)


@dataclass(frozen=True)
class LedgerPage:
    entries: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(member_id: str, sort_key: str) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps({"m": member_id, "after": sort_key}).encode())
        .decode()
        .rstrip("=")
    )


def decode_cursor(member_id: str, cursor: str) -> str:
    """The sort key a cursor points after. A cursor this API did not issue for this member is refused."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        owner, sort_key = decoded["m"], decoded["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("cursor", "is not a cursor this API issued", location="query") from None
    if owner != member_id or not isinstance(sort_key, str) or not sort_key.startswith(keys.LEDGER_PREFIX):
        raise InvalidRequest("cursor", "is not a cursor this API issued for this member", location="query")
    return sort_key


def ledger_page(member_id: str, *, limit: int, cursor: str | None) -> LedgerPage:
    """Up to `limit` movements, newest first, and the cursor of the next page (None at the end).

    The first page's Query also reads the profile (it sorts right after the ledger), so an
    unknown member is a 404 without a second call; a cursor is only valid for its own member.
    One item more than asked tells whether another page follows.
    """
    request: dict[str, Any] = {
        "TableName": settings().table_name,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :ledger AND :profile",
        "ExpressionAttributeValues": {
            ":pk": encode(keys.member_pk(member_id)),
            ":ledger": encode(keys.LEDGER_PREFIX),
            ":profile": encode(keys.PROFILE),
        },
        "ScanIndexForward": False,
        "Limit": limit + 1 if cursor else limit + 2,
    }
    if cursor:
        request["ExclusiveStartKey"] = {
            keys.PK: encode(keys.member_pk(member_id)),
            keys.SK: encode(decode_cursor(member_id, cursor)),
        }
    items = [from_item(item) for item in dynamodb().query(**request).get("Items", [])]
    if not cursor:
        if not items or items[0][keys.SK] != keys.PROFILE:
            raise MemberNotFound(member_id)
        items = items[1:]
    page, more = items[:limit], len(items) > limit
    entries = [{name: item.get(name) for name in ENTRY_FIELDS} for item in page]
    return LedgerPage(
        entries=entries, next_cursor=encode_cursor(member_id, page[-1][keys.SK]) if more else None
    )
