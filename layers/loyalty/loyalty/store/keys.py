"""Every DynamoDB key of the table, and every key range the store reads, built in this one place.

A member's partition holds, in sort-key order (docs/design.md, "One table"):

    IDEMPOTENCY#<operation>#<key>      request records (read by key, never by range)
    LEDGER#<sequence, 12 digits>       ledger entries          ┐ LEDGER_RANGE (newest first)
    PROFILE                            the profile             ┘ ┐
    WALLET                             balance, version, page directory │ WALLET_RANGE
    WALLET#LAST                        the last mutating request │      │ PROFILE_RANGE
    WALLET#LOTS#<bucket>/<issue month> lot pages, in spend order ┘      ┘

and, before them all, `CLAIMS`: the count of the member's pending claims, then
`EMAIL#REMINDERS`: the member's reminder state (keys reminded, last reminder, an address that
bounced), both read by key and by no range.
Program-wide items have partitions of their own: `PURCHASE#<transactionId>` (the purchase
guard), `CLAIM#<claimId>` (a claim), whose sparse index ByStatus lists claims by status, and
`RUN#<runId>` (an expiry or reminder run's progress and figures), and `LIABILITY`: the liability
figures summed per period (`<level>#<label>`) and the stream batches already applied
(`APPLIED#<eventID>`).

`tests/unit/test_keys.py` checks this order, so a new item type cannot fall inside a range
that would then read it as something else.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

PK = "pk"
SK = "sk"

IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"
LEDGER_PREFIX = "LEDGER#"
PROFILE = "PROFILE"
WALLET = "WALLET"
LAST_REQUEST = "WALLET#LAST"
LOT_PAGE_PREFIX = "WALLET#LOTS#"
PURCHASE = "PURCHASE"
CLAIM = "CLAIM"
RUN = "RUN"
# Sorts before IDEMPOTENCY#: outside every range the store reads (tests/unit/test_keys.py).
OPEN_CLAIMS = "CLAIMS"
# Sorts between CLAIMS and IDEMPOTENCY#: outside every range the store reads (REMINDERS alone would
# sort between PROFILE and WALLET, inside PROFILE_RANGE).
REMINDER_STATE = "EMAIL#REMINDERS"
# Sorts after every character the keys above use: the inclusive upper end of a prefix's range.
END = "~"


class KeyRange(NamedTuple):
    """An inclusive sort-key range of one member's partition (`BETWEEN first AND last`)."""

    first: str
    last: str


LEDGER_RANGE = KeyRange(LEDGER_PREFIX, LEDGER_PREFIX + END)
# Profile, wallet, last request and lot pages are adjacent: one Query reads them together.
PROFILE_RANGE = KeyRange(PROFILE, LOT_PAGE_PREFIX + END)
WALLET_RANGE = KeyRange(WALLET, LOT_PAGE_PREFIX + END)
# The ledger read also takes the profile (it sorts right after), so an unknown member is one call.
LEDGER_AND_PROFILE_RANGE = KeyRange(LEDGER_PREFIX, PROFILE)


def wallet_and_due_pages_range(through_month: str) -> KeyRange:
    """The wallet, the last request and the dated lot pages whose expiry bucket is `through_month`
    (`YYYY-MM`) or earlier: what the expiry run reads of a member. `ACTIVITY` and `NEVER` pages
    sort after every dated bucket, so they fall outside."""
    return KeyRange(WALLET, f"{LOT_PAGE_PREFIX}{through_month}/{END}")


def bucket_pages_range(bucket: str) -> KeyRange:
    """Every lot page of one expiry bucket (`ACTIVITY`, `NEVER` or `YYYY-MM`), any month of issue."""
    return KeyRange(f"{LOT_PAGE_PREFIX}{bucket}/", f"{LOT_PAGE_PREFIX}{bucket}/{END}")


def member_pk(member_id: str) -> str:
    return f"MEMBER#{member_id}"


def profile_sk() -> str:
    return PROFILE


def wallet_sk() -> str:
    return WALLET


def last_request_sk() -> str:
    return LAST_REQUEST


def lot_page_sk(page_key: str) -> str:
    return f"{LOT_PAGE_PREFIX}{page_key}"


def page_key_of(sort_key: str) -> str:
    return sort_key.removeprefix(LOT_PAGE_PREFIX)


def request_id(operation: str, idempotency_key: str) -> str:
    return f"{operation}#{idempotency_key}"


def request_sk(operation: str, idempotency_key: str) -> str:
    return f"{IDEMPOTENCY_PREFIX}{request_id(operation, idempotency_key)}"


def ledger_sk(sequence: int) -> str:
    """Ledger entries sort by their sequence: the wallet version the movement wrote, so the
    member's ledger is gap-free and in commit order (ids made from clocks could tie)."""
    return f"{LEDGER_PREFIX}{sequence:012d}"


def purchase_pk(transaction_id: str) -> str:
    return f"PURCHASE#{transaction_id}"


# ---- claims


def open_claims_sk() -> str:
    """The member's count of pending claims (`MEMBER#<id>`, `CLAIMS`)."""
    return OPEN_CLAIMS


# ---- reminders


def reminder_state_sk() -> str:
    """The member's reminder state (`MEMBER#<id>`, `EMAIL#REMINDERS`), read by key only."""
    return REMINDER_STATE


def claim_pk(claim_id: str) -> str:
    return f"CLAIM#{claim_id}"


def claim_sk() -> str:
    return CLAIM


def claim_id_of(pk: str) -> str:
    return pk.removeprefix("CLAIM#")


def claims_status_pk(status: str) -> str:
    """The ByStatus partition of the claims in `status` (`CLAIMS#pending`, …)."""
    return f"CLAIMS#{status}"


def claims_status_sk(created_at: str, claim_id: str) -> str:
    """Oldest first: the claim's creation instant (fixed width, sorts like time), then its id."""
    return f"{created_at}#{claim_id}"


# ---- scheduled runs


def run_pk(run_id: str) -> str:
    """An expiry or reminder run's record (`RUN#<runId>`, `RUN`): progress and figures."""
    return f"RUN#{run_id}"


def run_sk() -> str:
    return RUN


def run_message_sk(marker: str) -> str:
    """A run's message counted done or shard counted paged (`RUN#<runId>`, `MSG#<marker>`): once."""
    return f"MSG#{marker}"


def run_index_pk(kind: str) -> str:
    """The runs of one kind by as-of instant (`RUNS#<kind>`, `<asOf>#<runId>`): one small item per
    run, written with its record, so the day's check finds the run without knowing its random id.
    One run a day per kind: never a hot partition."""
    return f"RUNS#{kind}"


def run_index_sk(as_of: str, run_id: str) -> str:
    """By as-of instant (fixed width, sorts like time), then run id (sorts by start time)."""
    return f"{as_of}#{run_id}"


def run_index_range(since: str, until: str) -> KeyRange:
    """The runs whose as-of instant is in [`since`, `until`], both formatted as `format_instant` does."""
    return KeyRange(since, f"{until}#{END}")


# ---- the sparse index ByNextExpiry


def expiry_shard(member_id: str, shards: int) -> str:
    """The ByNextExpiry partition of a member: a stable hash spreads members over `shards`."""
    digest = hashlib.blake2b(member_id.encode(), digest_size=4).digest()
    return expiry_shard_key(int.from_bytes(digest) % shards)


def expiry_shard_key(shard: int) -> str:
    return f"EXPIRY#{shard:03d}"


def next_expiry_sk(next_expiry_at: str, member_id: str) -> str:
    return f"{next_expiry_at}#{member_id}"


def due_upper_bound(as_of: str) -> str:
    """The exclusive upper end of the rows due at `as_of` (`gsi1sk < bound`): every member whose
    next expiry is at or before `as_of`, including exactly `as_of` (`"<as_of>#<member>"` sorts
    after `as_of` itself, so `<= as_of` would miss it; `$` sorts right after `#`)."""
    return f"{as_of}$"


# ---- liability figures (docs/design.md, "Liability and breakage")

LIABILITY = "LIABILITY"


def liability_pk() -> str:
    """The one partition of the liability figures: a few items a stream batch, O(months) a report."""
    return LIABILITY


def liability_period_sk(level: str, label: str) -> str:
    """The figures of one period: `M#2026-11`, `D#2026-11-30`, `H#2026-11-30T23`, `N#2026-11-30T23:59`."""
    return f"{level}#{label}"


def liability_applied_sk(event_id: str) -> str:
    """A run of stream records applied, named by its first record's `eventID`."""
    return f"APPLIED#{event_id}"
