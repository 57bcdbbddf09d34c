"""Every item type of the table, declared once as a pynamodb model (docs/design.md, "One table").

All models share one base, `TableItem`, whose `itemType` discriminator lets one Query return
several item types (a member's profile, wallet, last request and lot pages) as the right
classes. The table name and the connection are bound at first use (`bind`), never at import:
the settings say which table, and botocore's own `AWS_ENDPOINT_URL_DYNAMODB` says where.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import cache
from typing import Any

from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.constants import STRING
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from loyalty.settings import settings
from loyalty.store.sizes import watch as watch_item_sizes
from loyalty.timefmt import format_instant, parse_instant


class InstantAttribute(Attribute[datetime]):
    """An instant stored as the API writes it (`2028-11-23T23:00:00.000Z`): sorts like time."""

    attr_type = STRING

    def serialize(self, value: datetime) -> str:
        return format_instant(value)

    def deserialize(self, value: str) -> datetime:
        return parse_instant(value)


class TableItem(Model):
    """The single table. `kind` names the item type; subclasses register their value."""

    class Meta:
        table_name = "unbound"  # `bind()` sets the real name at first use
        max_retry_attempts = 2
        connect_timeout_seconds = 2
        read_timeout_seconds = 5
        # The runs' start pages 16 shards at once through this one client.
        max_pool_connections = 20

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute(attr_name="itemType")


@cache
def bind() -> Any:
    """Point every model at the configured table, once, and return the shared botocore client.

    All models share `TableItem`'s connection (one client per process: one cold-start cost)."""
    TableItem.Meta.table_name = settings().table_name
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        setattr(TableItem.Meta, "region", region)  # noqa: B010 - Meta declares no region
    client = TableItem._get_connection().connection.client
    watch_item_sizes(client)  # items near the 400 KB limit: logged and counted (store/sizes.py)
    return client


# ---- a member's partition


class ActorAttribute(MapAttribute[str, str]):
    kind = UnicodeAttribute()
    id = UnicodeAttribute()


class ProfileItem(TableItem, discriminator="profile"):
    member_id = UnicodeAttribute(attr_name="memberId")
    email = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    locale = UnicodeAttribute()
    email_opt_in = BooleanAttribute(attr_name="emailOptIn")
    enrolled_at = InstantAttribute(attr_name="enrolledAt")
    updated_at = InstantAttribute(attr_name="updatedAt")
    enrolled_by = ActorAttribute(attr_name="enrolledBy")
    # The last opt-out from email and how it was made (`one-click`: the unsubscribe link, with no
    # login); kept when the member opts in again, as the record of that earlier choice.
    opted_out_at = InstantAttribute(attr_name="optedOutAt", null=True)
    opt_out_source = UnicodeAttribute(attr_name="optOutSource", null=True)


class ByNextExpiry(GlobalSecondaryIndex["WalletItem"]):
    """Sparse: one row per member whose points can expire, sharded (docs/design.md, "Indexes")."""

    class Meta:
        index_name = "ByNextExpiry"
        # The keys and `itemType`, which pynamodb filters a subclass's queries on.
        projection = IncludeProjection(["itemType"])

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class WalletItem(TableItem, discriminator="wallet"):
    """Balance, version and page directory; under 1 KB (written by every movement)."""

    member_id = UnicodeAttribute(attr_name="memberId")
    available = NumberAttribute()
    version = NumberAttribute()
    enrolled_at = InstantAttribute(attr_name="enrolledAt")
    last_activity_at = InstantAttribute(attr_name="lastActivityAt")
    # page key -> "<points>@<day of the soonest expiry>" (store/wallet.py, directory_entry)
    pages: MapAttribute[str, Any] = MapAttribute(default=dict)
    next_expiry_at = InstantAttribute(attr_name="nextExpiryAt", null=True)
    activity_expires_at = InstantAttribute(attr_name="activityExpiresAt", null=True)
    last_lot_id = UnicodeAttribute(attr_name="lastLot", null=True)
    owed = NumberAttribute(default=0)
    # The member's transfers of the last 24 hours, "<epoch seconds>:<points>" (store/wallet.py):
    # the rules' maximum per rolling day. Written by transfers only, pruned as they write.
    transfers_sent = ListAttribute(of=UnicodeAttribute, attr_name="transfersSent", null=True)
    # Set by member closure (SPEC §10, not built yet): a closed member sends and receives nothing.
    closed_at = InstantAttribute(attr_name="closedAt", null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_next_expiry = ByNextExpiry()


class LotPageItem(TableItem, discriminator="lots"):
    """The lots of one (expiry bucket, month of issue), compact: lot id -> {o, r, e, x, v}
    (original, remaining, earnedAt and expiresAt in epoch seconds, rules version)."""

    member_id = UnicodeAttribute(attr_name="memberId")
    lots: MapAttribute[str, Any] = MapAttribute(default=dict)


class RequestRecordItem(TableItem, discriminator="request"):
    """A mutating request's fingerprint and result, for replays (invariant 7). Written twice by
    the same transaction: under its own key (`IDEMPOTENCY#…`, conditioned on being new) and as
    the member's last request (`WALLET#LAST`), which the movement's first read already sees."""

    member_id = UnicodeAttribute(attr_name="memberId")
    request_id = UnicodeAttribute(attr_name="requestId")
    request_hash = UnicodeAttribute(attr_name="requestHash")
    # The result as JSON; absent when large (a redemption of hundreds of lots): the ledger entry
    # of `sequence` holds it, so the record, read by every movement as the last request, stays small.
    result = UnicodeAttribute(null=True)
    sequence = NumberAttribute(null=True)
    created_at = InstantAttribute(attr_name="createdAt")
    ttl = NumberAttribute()


class LotMovementAttribute(MapAttribute[str, Any]):
    lot_id = UnicodeAttribute(attr_name="lotId")
    points = NumberAttribute()
    expires_at = InstantAttribute(attr_name="expiresAt", null=True)
    issue_month = UnicodeAttribute(attr_name="issueMonth")
    expiry_month = UnicodeAttribute(attr_name="expiryMonth", null=True)


class LedgerEntryItem(TableItem, discriminator="ledger"):
    member_id = UnicodeAttribute(attr_name="memberId")
    sequence = NumberAttribute()
    entry_id = UnicodeAttribute(attr_name="entryId")
    type = UnicodeAttribute()
    points = NumberAttribute()
    balance_after = NumberAttribute(attr_name="balanceAfter")
    occurred_at = InstantAttribute(attr_name="occurredAt")
    recorded_at = InstantAttribute(attr_name="recordedAt")
    actor = ActorAttribute()
    reason = UnicodeAttribute()
    lots = ListAttribute(of=LotMovementAttribute, default=list)
    rules_version = UnicodeAttribute(attr_name="rulesVersion", null=True)
    details: MapAttribute[str, Any] = MapAttribute(default=dict)


class ReminderSendingAttribute(MapAttribute[str, Any]):
    """A reminder recorded and not yet confirmed sent: set by the conditional write before the
    send, removed once SES accepted it. Found still there later, the send's outcome is unknown (the
    process died between the two): the reminder is not sent again (docs/design.md, "Sending a
    reminder")."""

    id = UnicodeAttribute()
    at = InstantAttribute()
    rows = NumberAttribute()


class ReminderStateItem(TableItem, discriminator="reminders"):
    """A member's reminder state (`EMAIL#REMINDERS`): the `(expiry date, window)` keys already
    reminded (`"YYYYMMDD:<days>"`, dates before today pruned at each write), when the last reminder
    was recorded, the one being sent, and the address that bounced or was refused (no reminder goes
    to that address again; a new address in the profile is tried). `version` serialises the writes:
    each is conditioned on the version read (invariant 6)."""

    member_id = UnicodeAttribute(attr_name="memberId")
    version = NumberAttribute()
    reminded = ListAttribute(of=UnicodeAttribute, default=list)
    last_reminded_at = InstantAttribute(attr_name="lastRemindedAt", null=True)
    sending = ReminderSendingAttribute(null=True)
    last_sent_at = InstantAttribute(attr_name="lastSentAt", null=True)
    last_message_id = UnicodeAttribute(attr_name="lastMessageId", null=True)
    last_failure = UnicodeAttribute(attr_name="lastFailure", null=True)
    undeliverable_address = UnicodeAttribute(attr_name="undeliverableAddress", null=True)
    undeliverable_at = InstantAttribute(attr_name="undeliverableAt", null=True)
    undeliverable_reason = UnicodeAttribute(attr_name="undeliverableReason", null=True)


# ---- program-wide items


class PurchaseGuardItem(TableItem, discriminator="purchase"):
    """One per purchase `transactionId` (invariant 2): credited at most once, by earn or claim.

    `status` is `credited`, or `claimed` while a member's claim for a purchase not yet reported
    waits (`claimId`): a later earn of the purchase credits it and closes that claim as
    `matched` in its own transaction. Keeps what the claims and reversal work need."""

    member_id = UnicodeAttribute(attr_name="memberId")
    transaction_id = UnicodeAttribute(attr_name="transactionId")
    status = UnicodeAttribute(default="credited")
    credited_by = UnicodeAttribute(attr_name="creditedBy", null=True)  # earn or claim; none while claimed
    entry_id = UnicodeAttribute(attr_name="entryId", null=True)
    sequence = NumberAttribute(null=True)
    lot_id = UnicodeAttribute(attr_name="lotId", null=True)
    points = NumberAttribute(null=True)
    amount = UnicodeAttribute()
    currency = UnicodeAttribute()
    occurred_at = InstantAttribute(attr_name="occurredAt")
    claim_id = UnicodeAttribute(attr_name="claimId", null=True)
    request_hash = UnicodeAttribute(attr_name="requestHash", null=True)
    result = UnicodeAttribute(null=True)
    created_at = InstantAttribute(attr_name="createdAt")
    # Returns: the amount returned so far (a decimal string, as `amount`) and the points they
    # reversed in all; absent until the first return. A return is conditioned on the values read.
    reversed_amount = UnicodeAttribute(attr_name="reversedAmount", null=True)
    reversed_points = NumberAttribute(attr_name="reversedPoints", null=True)


class ByStatus(GlobalSecondaryIndex["ClaimItem"]):
    """Sparse: claims by status, oldest first (the support agents' queue)."""

    class Meta:
        index_name = "ByStatus"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class ClaimEventAttribute(MapAttribute[str, Any]):
    """One line of a claim's history: who, did what, when, why (and the points, when credited)."""

    at = InstantAttribute()
    actor = ActorAttribute()
    action = UnicodeAttribute()
    status = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    points = NumberAttribute(null=True)


class ClaimCreditAttribute(MapAttribute[str, Any]):
    """What crediting the claim's purchase did (approved: the claim lot; matched: the earn)."""

    points = NumberAttribute()
    entry_id = UnicodeAttribute(attr_name="entryId")
    lot_id = UnicodeAttribute(attr_name="lotId", null=True)
    expires_at = InstantAttribute(attr_name="expiresAt", null=True)
    balance = NumberAttribute()


class ClaimEmailAttribute(MapAttribute[str, Any]):
    """Whether the member was emailed the outcome: `sent` (SES's `messageId`), `skipped` (no
    address) or `failed` (`error`: the email module's code; `retryable` when a later send may work)."""

    status = UnicodeAttribute()
    kind = UnicodeAttribute()
    at = InstantAttribute()
    message_id = UnicodeAttribute(attr_name="messageId", null=True)
    error = UnicodeAttribute(null=True)
    retryable = BooleanAttribute(null=True)


class ClaimItem(TableItem, discriminator="claim"):
    """A claim for missing points (docs/design.md, "Claims"): one item, its history inside (a
    claim has a handful of events: filed, decided or matched). `gsi2pk`/`gsi2sk` place it in
    ByStatus under its current status, oldest first."""

    member_id = UnicodeAttribute(attr_name="memberId")
    transaction_id = UnicodeAttribute(attr_name="transactionId")
    status = UnicodeAttribute()
    created_at = InstantAttribute(attr_name="createdAt")
    occurred_at = InstantAttribute(attr_name="occurredAt")
    amount = UnicodeAttribute()
    currency = UnicodeAttribute()
    store = UnicodeAttribute(null=True)
    receipt_ref = UnicodeAttribute(attr_name="receiptRef", null=True)
    filed_by = ActorAttribute(attr_name="filedBy")
    reason_code = UnicodeAttribute(attr_name="reasonCode", null=True)
    reason = UnicodeAttribute(null=True)
    decided_at = InstantAttribute(attr_name="decidedAt", null=True)
    decided_by = ActorAttribute(attr_name="decidedBy", null=True)
    credit = ClaimCreditAttribute(null=True)
    email = ClaimEmailAttribute(null=True)
    history = ListAttribute(of=ClaimEventAttribute, default=list)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    by_status = ByStatus()


class OpenClaimsItem(TableItem, discriminator="claims"):
    """A member's count of pending claims (`MEMBER#<id>`, `CLAIMS`), kept by the transactions that
    open and close claims; the limit `claims.maxOpenClaims` is a condition on it."""

    member_id = UnicodeAttribute(attr_name="memberId")
    open = NumberAttribute(default=0)


class RunItem(TableItem, discriminator="run"):
    """One expiry or reminder run (`RUN#<runId>`, `RUN`; docs/design.md, "Scheduled runs"): what
    it is, how far its fan-out went, and the figures its workers added, one UpdateItem per message
    (`store/runs.py`). `counts` maps a figure's name (`lotsExpired`, `emailsSent`, …) to a number.
    Kept 90 days (`ttl`)."""

    run_id = UnicodeAttribute(attr_name="runId")
    run_kind = UnicodeAttribute(attr_name="runKind")
    as_of = InstantAttribute(attr_name="asOf")
    started_at = InstantAttribute(attr_name="startedAt")
    shards = NumberAttribute()
    shards_queued = NumberAttribute(attr_name="shardsQueued", default=0)
    members_queued = NumberAttribute(attr_name="membersQueued", default=0)
    messages_queued = NumberAttribute(attr_name="messagesQueued", default=0)
    members_done = NumberAttribute(attr_name="membersDone", default=0)
    member_failures = NumberAttribute(attr_name="memberFailures", default=0)
    counts: MapAttribute[str, Any] = MapAttribute(default=dict)
    ttl = NumberAttribute()


class RunMessageItem(TableItem, discriminator="runMessage"):
    """A message of a run counted done (`RUN#<runId>`, `MSG#<messageId>`): written with the
    record's update in one transaction, so a redelivered message is never counted twice."""

    ttl = NumberAttribute()


class RunIndexItem(TableItem, discriminator="runIndex"):
    """A run listed under its kind by as-of instant (`RUNS#<kind>`, `<asOf>#<runId>`): written with
    the run's record, so the check of a day's run finds it by kind and time. Kept as the record."""

    run_id = UnicodeAttribute(attr_name="runId")
    as_of = InstantAttribute(attr_name="asOf")
    ttl = NumberAttribute()


class LiabilityPeriodItem(TableItem, discriminator="liability"):
    """The liability figures of one period (`LIABILITY`, `<level>#<label>`): one number attribute
    per figure (`issued#2026-11`, `out#2028-11`, `owed`, …; loyalty.domain.liability), added to by
    the stream aggregator. The figures are named by data, so they are not declared here: the store
    writes them as ADD actions and reads them raw (store/liability.py)."""


class LiabilityAppliedItem(TableItem, discriminator="liabilityApplied"):
    """A run of stream records applied (`LIABILITY`, `APPLIED#<eventID of the first>`): `records`
    of the batch from that one on. Written in the transaction that adds their figures, so a batch
    delivered again adds nothing. Kept two days (`ttl`), past the stream's 24 hours."""

    records = NumberAttribute()
    ttl = NumberAttribute()
