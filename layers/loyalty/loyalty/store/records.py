"""Results of movements, and idempotency: request fingerprints and the replay-or-conflict decision.

A movement returns a typed result (the routes pick the status code and the response model);
the same result is stored with the request's fingerprint, so a retry gets it back, marked
`replayed` (invariant 7).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar

from loyalty.domain.claims import ClaimOutcome
from loyalty.domain.errors import DomainError
from loyalty.domain.ledger import Actor
from loyalty.timefmt import format_instant

__all__ = [
    "Actor",
    "EarnResult",
    "LotTaken",
    "RedeemResult",
    "ReversalResult",
    "fingerprint",
    "is_live",
    "replayed",
]


class TakenFromLot(Protocol):
    @property
    def lot_id(self) -> str: ...
    @property
    def points(self) -> Any: ...
    @property
    def expires_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class LotTaken:
    lot_id: str
    points: int
    expires_at: str | None

    @classmethod
    def of(cls, movement: TakenFromLot) -> LotTaken:
        """From a step's `LotMovement` or a stored ledger entry's lot line."""
        expiry = format_instant(movement.expires_at) if movement.expires_at else None
        return cls(movement.lot_id, int(movement.points), expiry)


@dataclass(frozen=True)
class EarnResult:
    entry_id: str
    transaction_id: str
    points: int
    lot_id: str | None
    expires_at: str | None
    balance: int
    rules_version: str
    owed_settled: int = 0  # of `points`, what paid back points owed after a return (not in the lot)
    replayed: bool = False
    # The pending claim this earn closed (matched, or rejected: another member's purchase), for
    # the email sent after the commit; never stored, so a replay sends nothing again.
    closed_claim: ClaimOutcome | None = None

    def to_json(self) -> str:
        stored = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return _dump({k: v for k, v in stored.items() if k not in ("replayed", "closed_claim")})

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls(**json.loads(text), replayed=True)


@dataclass(frozen=True)
class RedeemResult:
    redemption_id: str
    points: int
    balance: int
    lots: tuple[LotTaken, ...] = field(default_factory=tuple)
    replayed: bool = False

    def to_json(self) -> str:
        return _dump(
            {
                "redemption_id": self.redemption_id,
                "points": self.points,
                "balance": self.balance,
                "lots": [asdict(lot) for lot in self.lots],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Self:
        stored = json.loads(text)
        lots = tuple(LotTaken(**lot) for lot in stored.pop("lots"))
        return cls(**stored, lots=lots, replayed=True)


@dataclass(frozen=True)
class ReversalResult:
    """A return: `points` reversed (`taken` from lots + `owed_added`), `amount` returned by this
    request; `reversed_amount`/`reversed_points` are the purchase's totals after it."""

    reversal_id: str
    transaction_id: str
    amount: str
    currency: str
    points: int
    taken: int
    owed_added: int
    owed: int
    balance: int
    reversed_amount: str
    reversed_points: int
    lots: tuple[LotTaken, ...] = field(default_factory=tuple)
    replayed: bool = False

    def to_json(self) -> str:
        return _dump({name: value for name, value in asdict(self).items() if name != "replayed"})

    @classmethod
    def from_json(cls, text: str) -> Self:
        stored = json.loads(text)
        lots = tuple(LotTaken(**lot) for lot in stored.pop("lots"))
        return cls(**stored, lots=lots, replayed=True)


def _dump(values: dict[str, Any]) -> str:
    return json.dumps(values, separators=(",", ":"))


def fingerprint(request: dict[str, Any]) -> str:
    """A stable hash of everything that makes two requests "the same request"."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


R = TypeVar("R", EarnResult, RedeemResult, ReversalResult)


def replayed(
    kind: type[R],
    stored_hash: str | None,
    stored_result: str | None,
    request_hash: str,
    mismatch: DomainError,
) -> R:
    """The original result when the stored request is this one; `mismatch` otherwise."""
    if stored_hash != request_hash or stored_result is None:
        raise mismatch
    return replace(kind.from_json(stored_result), replayed=True)


def is_live(ttl: float | None, now: datetime) -> bool:
    """A record past its `ttl` is garbage that TTL has not collected yet: it no longer counts."""
    return ttl is None or int(ttl) > now.timestamp()
