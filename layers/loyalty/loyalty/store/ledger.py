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


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": sort_key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The sort key a cursor points after; a cursor this API did not issue is a 400-class error."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        sort_key = decoded["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("cursor", "is not a cursor this API issued") from None
    if not isinstance(sort_key, str) or not sort_key.startswith(keys.LEDGER_PREFIX):
        raise InvalidRequest("cursor", "is not a cursor this API issued")
    return sort_key


def ledger_page(member_id: str, *, limit: int, cursor: str | None) -> LedgerPage:
    """Up to `limit` movements, newest first, and the cursor of the next page (None at the end).

    The first page's Query also reads the profile (it sorts right after the ledger), so an
    unknown member is a 404 without a second call.
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
        "Limit": limit if cursor else limit + 1,
    }
    if cursor:
        request["ExclusiveStartKey"] = {
            keys.PK: encode(keys.member_pk(member_id)),
            keys.SK: encode(decode_cursor(cursor)),
        }
    response = dynamodb().query(**request)
    items = [from_item(item) for item in response.get("Items", [])]
    if not cursor:
        if not items or items[0][keys.SK] != keys.PROFILE:
            raise MemberNotFound(member_id)
        items = items[1:]
    entries = [{name: item.get(name) for name in ENTRY_FIELDS} for item in items]
    last = response.get("LastEvaluatedKey")
    return LedgerPage(entries=entries, next_cursor=encode_cursor(last[keys.SK]["S"]) if last else None)
