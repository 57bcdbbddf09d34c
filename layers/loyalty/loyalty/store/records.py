"""Idempotency: request fingerprints, stored responses, and the replay-or-conflict decision."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.domain.errors import DomainError
from loyalty.timefmt import format_instant


@dataclass(frozen=True)
class Actor:
    """Who made a movement, as the ledger records it: member, partner, agent or schedule."""

    kind: str
    id: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}


@dataclass(frozen=True)
class Outcome:
    """The response of a mutating request, as first given and as replayed for a retry."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def fingerprint(request: dict[str, Any]) -> str:
    """A stable hash of everything that makes two requests "the same request"."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_attributes(request_hash: str, outcome: Outcome, now: datetime) -> dict[str, Any]:
    return {
        "requestHash": request_hash,
        "statusCode": outcome.status_code,
        "response": json.dumps(outcome.body, separators=(",", ":")),
        "createdAt": format_instant(now),
    }


def replay(record: dict[str, Any], request_hash: str, mismatch: DomainError) -> Outcome:
    """The original response when the stored request is this one; `mismatch` otherwise."""
    if record.get("requestHash") != request_hash:
        raise mismatch
    return Outcome(status_code=int(record["statusCode"]), body=json.loads(record["response"]), replayed=True)


def is_live(record: dict[str, Any] | None, now: datetime) -> bool:
    """A record past its `ttl` is garbage that TTL has not collected yet: it no longer counts."""
    return record is not None and ("ttl" not in record or int(record["ttl"]) > now.timestamp())
