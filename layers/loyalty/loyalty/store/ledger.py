"""The ledger: an append-only journal per member, read newest first with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from loyalty.domain.errors import InvalidRequest, MemberNotFound
from loyalty.store import keys
from loyalty.store.models import LedgerEntryItem, ProfileItem, TableItem, bind
from loyalty.timefmt import format_instant


@dataclass(frozen=True)
class LedgerPage:
    entries: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(member_id: str, sequence: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"m": member_id, "s": sequence}).encode()).decode().rstrip("=")


def decode_cursor(member_id: str, cursor: str) -> int:
    """The sequence a cursor points after. A cursor this API did not issue for this member is refused."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        owner, sequence = decoded["m"], decoded["s"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("cursor", "is not a cursor this API issued", location="query") from None
    if owner != member_id or not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise InvalidRequest("cursor", "is not a cursor this API issued for this member", location="query")
    return sequence


def ledger_page(member_id: str, *, limit: int, cursor: str | None) -> LedgerPage:
    """Up to `limit` movements, newest first, and the cursor of the next page (None at the end).

    The first page's range ends at the profile, which sorts right after the ledger: an unknown
    member is a 404 in the same call. A later page that finds nothing reads the profile, so a
    cursor forged for an unknown member is a 404 too. One item more than asked tells whether
    another page follows.
    """
    bind()
    before = decode_cursor(member_id, cursor) if cursor else None
    upper = keys.ledger_sk(before - 1) if before is not None else keys.PROFILE
    wanted = limit + 1 if before is not None else limit + 2  # the first page also reads the profile
    results = TableItem.query(
        keys.member_pk(member_id),
        TableItem.sk.between(keys.LEDGER_PREFIX, upper),
        scan_index_forward=False,
        limit=wanted,
        page_size=wanted,
    )
    items = list(results)
    if before is None:
        if not items or not isinstance(items[0], ProfileItem):
            raise MemberNotFound(member_id)
        items = items[1:]
    elif not items and not _enrolled(member_id):
        raise MemberNotFound(member_id)
    entries = [item for item in items if isinstance(item, LedgerEntryItem)]
    page, more = entries[:limit], len(entries) > limit
    return LedgerPage(
        entries=[entry_view(item) for item in page],
        next_cursor=encode_cursor(member_id, int(page[-1].sequence)) if more else None,
    )


def _enrolled(member_id: str) -> bool:
    try:
        ProfileItem.get(keys.member_pk(member_id), keys.profile_sk(), attributes_to_get=["pk"])
    except ProfileItem.DoesNotExist:
        return False
    return True


def entry_view(item: LedgerEntryItem) -> dict[str, Any]:
    return {
        "entryId": item.entry_id,
        "sequence": int(item.sequence),
        "type": item.type,
        "points": int(item.points),
        "balanceAfter": int(item.balance_after),
        "occurredAt": format_instant(item.occurred_at),
        "recordedAt": format_instant(item.recorded_at),
        "actor": {"kind": item.actor.kind, "id": item.actor.id},
        "reason": item.reason,
        "lots": [
            {
                "lotId": lot.lot_id,
                "points": int(lot.points),
                "expiresAt": format_instant(lot.expires_at) if lot.expires_at else None,
                "issueMonth": lot.issue_month,
                "expiryMonth": lot.expiry_month,
            }
            for lot in item.lots
        ],
        "rulesVersion": item.rules_version,
        "details": item.details.as_dict() if item.details else {},
    }
