"""The ledger's records: who moved points, what kind of movement, and the lots it touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EntryType(StrEnum):
    """Every kind of movement (SPEC §3). Points are signed: credits positive, debits negative."""

    EARN = "earn"
    REDEEM = "redeem"
    TRANSFER_OUT = "transfer-out"
    TRANSFER_IN = "transfer-in"
    CLAIM_CREDIT = "claim-credit"
    REVERSAL = "reversal"
    EXPIRY = "expiry"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True)
class Actor:
    """Who made a movement, as the ledger records it: member, partner, agent or schedule."""

    kind: str
    id: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}


@dataclass(frozen=True)
class LotMovement:
    """Points a movement put into or took from one lot. `issue_month` and `expiry_month`
    (`YYYY-MM`, program timezone; expiry None when the lot never expires) let liability and
    breakage be reported by month of issue and of expiry without reading the lots again."""

    lot_id: str
    points: int
    expires_at: datetime | None
    issue_month: str
    expiry_month: str | None


@dataclass(frozen=True)
class LedgerEntry:
    """One movement of a member's points. Its `sequence` is given when it is written: the wallet
    version the same transaction writes (docs/design.md, "The points transaction")."""

    entry_id: str
    type: EntryType
    points: int
    balance_after: int
    occurred_at: datetime
    recorded_at: datetime
    actor: Actor
    reason: str
    lots: tuple[LotMovement, ...] = ()
    rules_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
