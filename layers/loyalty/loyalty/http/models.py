"""Request and response bodies (JSON, camelCase). Powertools validates requests against them."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    field_validator,
)
from pydantic.alias_generators import to_camel

from loyalty.http.identifiers import IDENTIFIER
from loyalty.timefmt import format_instant

MemberIdPath = Annotated[str, Path(alias="memberId", pattern=IDENTIFIER, description="the member's id")]
Instant = Annotated[datetime, PlainSerializer(format_instant, return_type=str)]
Points = Annotated[int, Field(ge=0)]


class Body(BaseModel):
    # defer_build: a function builds the validators of the models it uses, not of the whole API.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True
    )


class Problem(Body):
    field: str = Field(examples=["amount"])
    in_: Literal["body", "path", "query", "header"] | None = Field(default=None, alias="in")
    reason: str = Field(examples=["must be greater than zero"])


class ErrorDetail(Body):
    """`code` is stable and machine-readable; some errors add details (e.g. `available`, `requested`)."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(examples=["insufficient_points"])
    message: str
    fields: list[Problem] | None = Field(default=None, description="the fields at fault (validation errors)")


class ErrorResponse(Body):
    error: ErrorDetail


# ---- members


# Characters a profile field may not hold: controls (CR/LF would reach email headers, NUL and
# the like break the systems downstream) and the bidirectional controls that make text display
# other than it reads. Joiners (ZWJ, ZWNJ) stay: emoji sequences and several scripts need them.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _plain_text(value: object) -> object:
    """Member-entered text, normalised to NFC, without control or bidirectional characters."""
    if not isinstance(value, str):
        return value
    for character in value:
        if unicodedata.category(character) == "Cc" or character in _BIDI_CONTROLS:
            raise ValueError(f"must not contain control or bidirectional characters (U+{ord(character):04X})")
    return unicodedata.normalize("NFC", value)


PlainText = BeforeValidator(_plain_text)

# The same rule, for the document: no character of the class (controls are Unicode's `Cc`).
PLAIN_TEXT_SCHEMA = {
    "not": {
        "pattern": "[\\u0000-\\u001f\\u007f-\\u009f"
        + "".join(f"\\u{ord(character):04x}" for character in sorted(_BIDI_CONTROLS))
        + "]"
    }
}


class ProfileRequest(Body):
    """A profile: text fields are NFC-normalised and refuse control and bidirectional characters."""

    # The constraints before `PlainText`: it still runs first (a before-validator), and the
    # document keeps the pattern (pydantic leaves it out of the schema when they come after).
    email: Annotated[
        str,
        Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", json_schema_extra=PLAIN_TEXT_SCHEMA),
        PlainText,
    ]
    name: (
        Annotated[str, Field(min_length=1, max_length=200, json_schema_extra=PLAIN_TEXT_SCHEMA), PlainText]
        | None
    ) = None
    locale: Literal["fr", "en"] = "en"
    email_opt_in: StrictBool = False


OWED = (
    "points owed after returns of purchases whose points were already spent: shown apart from "
    "`available` (never below zero), settled first by the next credits of any kind"
)


class BalanceSummary(Body):
    available: Points
    owed: Points = Field(default=0, description=OWED)


class MemberResponse(Body):
    member_id: str
    email: str
    name: str | None
    locale: str
    email_opt_in: bool
    enrolled_at: str
    updated_at: str
    balance: BalanceSummary


# ---- balance and lots


class ExpiringPoints(Body):
    date: str = Field(description="last local day (program timezone) on which these points can be used")
    expires_at: Instant
    points: Points


class ExpiringMonth(Body):
    month: str = Field(description="`YYYY-MM`: the month (program timezone) the points expire in")
    points: Points


class BalanceResponse(Body):
    member_id: str
    available: Points
    owed: Points = Field(default=0, description=OWED)
    expiring: list[ExpiringPoints] = Field(
        description="points per expiry date, soonest first, for the soonest expiry months (at least "
        "the first: a balance read costs the same whatever the member holds); `expiringByMonth` has all"
    )
    expiring_by_month: list[ExpiringMonth] = Field(description="points per expiry month, soonest first")
    as_of: Instant


class LotSource(Body):
    kind: Literal["earn", "claim", "transfer", "adjustment"]


class LotView(Body):
    """The points one kind of credit brought on one local day that expire together; the
    credits themselves are the ledger's entries (their `lots` name this `lotId`)."""

    lot_id: str
    original: Points
    remaining: Points
    earned_at: Instant = Field(description="the first credit of the lot")
    expires_at: Instant | None
    issue_month: str
    source: LotSource
    rules_version: str


class LotsResponse(Body):
    member_id: str
    lots: list[LotView]
    as_of: Instant


# ---- ledger


class LotMovement(Body):
    lot_id: str
    points: int
    expires_at: str | None


class LedgerLotMovement(LotMovement):
    issue_month: str = Field(description="`YYYY-MM` the lot's points were issued (program timezone)")
    expiry_month: str | None = Field(description="`YYYY-MM` the lot expires; null: never")


class LedgerActor(Body):
    kind: Literal["member", "partner", "agent", "schedule"]
    id: str


class LedgerEntry(Body):
    entry_id: str
    sequence: int = Field(description="1, 2, 3… per member, in the order the movements were committed")
    type: str
    points: int
    balance_after: int
    occurred_at: str
    recorded_at: str
    actor: LedgerActor
    reason: str | None = None
    lots: list[LedgerLotMovement]
    rules_version: str | None = None
    details: dict[str, object] | None = None


class LedgerResponse(Body):
    member_id: str
    entries: list[LedgerEntry]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null at the end")


# ---- earn


# RFC 3339 `date-time` (SPEC §5: instants are RFC 3339 with an offset), ASCII digits only: no
# epoch numbers, week dates or other forms a general ISO 8601 parser would also take.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_RFC3339 = re.compile(RFC3339_PATTERN)


def _iso_text(value: object) -> object:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-11-20T17:42:10+01:00")
    return value


def _positive(amount: str) -> str:
    if Decimal(amount) <= 0:
        raise ValueError("must be greater than zero")
    return amount


# Money: ASCII digits only (a regex `\d` would also take Arabic-Indic or full-width digits as
# money), greater than zero; the schema documents that all-zero amounts are refused.
Money = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,12}(\.[0-9]{1,4})?$",
        examples=["42.50"],
        description="greater than zero",
        json_schema_extra={"not": {"pattern": "^[0.]+$"}},
    ),
    AfterValidator(_positive),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]


class EarnRequest(Body):
    transaction_id: Annotated[
        str, Field(pattern=IDENTIFIER, description="the purchase's id, unique program-wide")
    ]
    amount: Money
    currency: Currency
    occurred_at: Annotated[AwareDatetime, BeforeValidator(_iso_text)]
    channel: Literal["store", "online"]
    category: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class EarnResponse(Body):
    entry_id: str
    transaction_id: str
    points: Points
    lot_id: str | None
    expires_at: str | None
    balance: Points
    rules_version: str
    owed_settled: Points = Field(
        default=0, description="of `points`, what paid back points owed after a return (not in the lot)"
    )


# ---- returns (earn reversal)


class ReversalRequest(Body):
    """A return. No `amount` (or no body at all): everything not yet returned; else a partial
    return of that amount, in the purchase's currency (`currency`, when given, must be it)."""

    amount: Annotated[
        Money | None,
        Field(description="the amount returned, greater than zero; absent: everything not yet returned"),
    ] = None
    currency: Currency | None = None


class ReversalResponse(Body):
    reversal_id: str = Field(description="the ledger entry of the return")
    transaction_id: str
    amount: str = Field(description="the amount this return gave back")
    currency: str
    points: Points = Field(description="points this return reversed: `taken` + `owedAdded`")
    taken: Points = Field(description="points taken from the member's lots (own lot first)")
    owed_added: Points = Field(description="points the lots could not cover (already spent): now owed")
    owed: Points = Field(description="points the member owes in all, after this return")
    balance: Points
    reversed_amount: str = Field(description="the purchase's amount returned so far, this return included")
    reversed_points: Points = Field(description="the purchase's points reversed so far, this return included")
    lots: list[LotMovement]


# ---- redeem


def _integral(value: object) -> object:
    """A JSON number without a fraction (`500.0`) is the integer it writes, as JSON Schema's
    `integer` says; `1.5`, `true` and `"10"` stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class RedeemRequest(Body):
    points: Annotated[StrictInt, Field(ge=1, le=100_000_000), BeforeValidator(_integral)]
    reward_id: Annotated[
        None,
        Field(description="a reward of the catalog instead of points: there is no catalog yet, so none"),
    ] = None

    @field_validator("reward_id", mode="before")
    @classmethod
    def no_catalog_yet(cls, reward_id: object) -> None:
        if reward_id is not None:
            raise ValueError("the reward catalog is not available yet: redeem a number of points")
        return None


class RedeemResponse(Body):
    redemption_id: str
    points: Points
    balance: Points
    lots: list[LotMovement]


# ---- reports


class ExpiryMonthPoints(Body):
    month: str = Field(
        examples=["2028-11"], description="the month points expire in (`YYYY-MM`, program timezone)"
    )
    points: int


class IssueMonthFigures(Body):
    """What became of the points issued in one month (`YYYY-MM`, program timezone), as of the
    report's instant. `issued` counts every credit into a lot of that month (earns, claims,
    transfers in, adjustments), `received` the part of it transfers brought; `outstanding` is
    `issued` less every debit."""

    month: str = Field(examples=["2026-11"])
    issued: int
    received: int
    redeemed: int
    transferred: int
    reversed: int
    expired: int
    adjusted: int
    outstanding: int
    breakage_rate: float | None = Field(
        description="expired ÷ issued, 4 decimals; null when nothing was issued"
    )


class LiabilityValue(Body):
    currency: str = Field(examples=["EUR"])
    per_point: str = Field(examples=["0.01"], description="the rules' `reporting.pointValue`")
    outstanding: str = Field(
        examples=["1234.56"], description="outstanding points times perPoint, to the cent"
    )


class LiabilityResponse(Body):
    as_of: str = Field(description="the instant the figures are exact for: the requested one, to the minute")
    outstanding: int = Field(description="points in members' lots, not yet used or expired")
    by_expiry_month: list[ExpiryMonthPoints] = Field(
        description="outstanding points by the month their lot expires (dated lots)"
    )
    expires_on_inactivity: int = Field(
        description="outstanding points that expire after the member's inactivity (no date of their own)"
    )
    never_expires: int = Field(description="outstanding points that never expire")
    owed: int = Field(description="points members owe after returns of purchases whose points were spent")
    by_issue_month: list[IssueMonthFigures]
    value: LiabilityValue | None = Field(description="the outstanding points' value, when the rules give one")
