"""Every DynamoDB key of the table, built in this one place (see docs/design.md)."""

from __future__ import annotations

import hashlib

PK = "pk"
SK = "sk"
EXPIRY_SHARDS = 16

PROFILE = "PROFILE"
WALLET = "WALLET"
LOT_PAGE_PREFIX = "WALLET#LOTS#"
REQUEST_PREFIX = "WALLET#REQUEST#"
LEDGER_PREFIX = "LEDGER#"


def member_pk(member_id: str) -> str:
    return f"MEMBER#{member_id}"


def profile_key(member_id: str) -> dict[str, str]:
    return {PK: member_pk(member_id), SK: PROFILE}


def wallet_key(member_id: str) -> dict[str, str]:
    return {PK: member_pk(member_id), SK: WALLET}


def lot_page_key(member_id: str, bucket: str) -> dict[str, str]:
    return {PK: member_pk(member_id), SK: f"{LOT_PAGE_PREFIX}{bucket}"}


def request_id(operation: str, idempotency_key: str) -> str:
    return f"{operation}#{idempotency_key}"


def request_key(member_id: str, operation: str, idempotency_key: str) -> dict[str, str]:
    return {PK: member_pk(member_id), SK: f"{REQUEST_PREFIX}{request_id(operation, idempotency_key)}"}


def ledger_key(member_id: str, sequence: int) -> dict[str, str]:
    """Ledger entries sort by their sequence: the wallet version the movement wrote, so the
    member's ledger is gap-free and in commit order (ids made from clocks could tie)."""
    return {PK: member_pk(member_id), SK: f"{LEDGER_PREFIX}{sequence:012d}"}


def purchase_key(transaction_id: str) -> dict[str, str]:
    return {PK: f"PURCHASE#{transaction_id}", SK: "PURCHASE"}


def expiry_shard(member_id: str) -> str:
    """The ByNextExpiry partition of a member: a stable hash spreads members over the shards."""
    digest = hashlib.blake2b(member_id.encode(), digest_size=2).digest()
    return f"EXPIRY#{int.from_bytes(digest) % EXPIRY_SHARDS:02d}"


def next_expiry_index_keys(member_id: str, next_expiry_at: str) -> dict[str, str]:
    return {"gsi1pk": expiry_shard(member_id), "gsi1sk": f"{next_expiry_at}#{member_id}"}
