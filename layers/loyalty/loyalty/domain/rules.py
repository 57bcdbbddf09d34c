"""The program rules: a versioned document (data, not code) that says how points are earned and expire.

The shipped default is `default_rules.json`; a deployment replaces it with `load_rules(source)`.
JSON uses camelCase, Python snake_case. Every model is frozen and refuses unknown fields, so a
typo in a deployed document is an error at cold start rather than a silently ignored setting.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from loyalty.domain.rules_source import RulesError, default_rules_text, read_rules_text

__all__ = [
    "MAX_HORIZON_MONTHS",
    "AnniversaryExpiry",
    "Campaign",
    "ClaimRules",
    "CurrencyRate",
    "EarningRules",
    "ExpiryPolicy",
    "FixedDateExpiry",
    "InactivityExpiry",
    "NoExpiry",
    "ProgramRules",
    "ReminderRules",
    "RollingExpiry",
    "RulesError",
    "TransferRules",
    "default_rules",
    "load_rules",
    "parse_rules",
]

MAX_HORIZON_MONTHS = 84
"""No policy may keep points valid for more than 84 months: a redemption must fit one DynamoDB
transaction, one lot page per expiry month (docs/design.md, "Why lot pages")."""

_HORIZON_NOTE = (
    f"the product caps every expiry horizon at {MAX_HORIZON_MONTHS} months so that a redemption "
    'fits one transaction: see docs/design.md, "Why lot pages"'
)
_IDENTIFIER = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CURRENCY = re.compile(r"[A-Z]{3}")


# --- field types --------------------------------------------------------------------------------


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise PydanticCustomError("identifier", "must be 1 to 64 characters among A-Z a-z 0-9 . _ -")
    return value


def _currency_code(value: str) -> str:
    if not _CURRENCY.fullmatch(value):
        raise PydanticCustomError("currency_code", "must be an ISO 4217 code: three upper-case letters")
    return value


def _category(value: str) -> str:
    if not value or value != value.strip() or len(value) > 64:
        raise PydanticCustomError(
            "category", "must be 1 to 64 characters, without leading or trailing spaces"
        )
    return value


def _non_empty_filter(values: tuple[str, ...]) -> tuple[str, ...]:
    # Checked after the items: a length constraint would also report the list left by a bad item.
    if not values:
        raise PydanticCustomError(
            "empty_filter", "must not be empty: leave the field out to match everything"
        )
    return values


def _horizon_capped(limit: int, unit: str) -> AfterValidator:
    def check(value: int) -> int:
        if value > limit:
            raise PydanticCustomError("horizon", f"must be at most {limit} {unit} ({_HORIZON_NOTE})")
        return value

    return AfterValidator(check)


Identifier = Annotated[str, Strict(), AfterValidator(_identifier)]
CurrencyCode = Annotated[str, Strict(), AfterValidator(_currency_code)]
Category = Annotated[str, Strict(), AfterValidator(_category)]
PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]
Channel = Literal["store", "online"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


# --- earning ------------------------------------------------------------------------------------


class CurrencyRate(_Model):
    """Points earned per unit of one currency (before multipliers)."""

    points_per_unit: PositiveDecimal


class Campaign(_Model):
    """A dated bonus: active on local dates `starts_on`..`ends_on` (inclusive, program timezone),
    for the listed channels and categories only when those lists are given."""

    id: Identifier
    name: Annotated[str, Strict(), Field(min_length=1, max_length=200)] | None = None
    starts_on: date
    ends_on: date
    multiplier: Annotated[Decimal, Field(ge=1, allow_inf_nan=False)] = Decimal(1)
    bonus_points: Annotated[StrictInt, Field(ge=0)] = 0
    channels: Annotated[tuple[Literal["store", "online"], ...], AfterValidator(_non_empty_filter)] | None = (
        None
    )
    categories: Annotated[tuple[Category, ...], AfterValidator(_non_empty_filter)] | None = None

    @field_validator("ends_on")
    @classmethod
    def _not_before_start(cls, ends_on: date, info: ValidationInfo) -> date:
        starts_on = info.data.get("starts_on")
        if starts_on is not None and ends_on < starts_on:
            raise PydanticCustomError("date_order", "must be on or after startsOn")
        return ends_on


class EarningRules(_Model):
    """Rate per currency, rounding of the final product, category multipliers and campaigns."""

    currencies: Annotated[dict[CurrencyCode, CurrencyRate], Field(min_length=1)]
    rounding: Literal["floor", "nearest", "ceil"]
    category_multipliers: dict[Category, PositiveDecimal] = Field(default_factory=dict)
    campaigns: tuple[Campaign, ...] = ()

    @field_validator("campaigns")
    @classmethod
    def _unique_ids(cls, campaigns: tuple[Campaign, ...]) -> tuple[Campaign, ...]:
        seen: set[str] = set()
        for campaign in campaigns:
            if campaign.id in seen:
                raise PydanticCustomError(
                    "duplicate_id", "campaign ids must be unique: {id} appears twice", {"id": campaign.id}
                )
            seen.add(campaign.id)
        return campaigns


# --- expiry policies ----------------------------------------------------------------------------


class RollingExpiry(_Model):
    """Points are valid until the same day N months after the purchase (clamped to the month's
    last day), or to the end of that month with `end_of_month`."""

    policy: Literal["rolling"]
    months: Annotated[StrictInt, Field(ge=1), _horizon_capped(MAX_HORIZON_MONTHS, "months")]
    end_of_month: StrictBool = False


class FixedDateExpiry(_Model):
    """Points are valid until a calendar date (`month`/`day`) of the year of earning plus
    `years_after` (e.g. 31 December of the year after earning)."""

    policy: Literal["fixedDate"]
    month: Annotated[StrictInt, Field(ge=1, le=12)]
    day: Annotated[StrictInt, Field(ge=1, le=31)]
    years_after: Annotated[StrictInt, Field(ge=0), _horizon_capped(MAX_HORIZON_MONTHS // 12 - 1, "years")]

    @field_validator("day")
    @classmethod
    def _exists_every_year(cls, day: int, info: ValidationInfo) -> int:
        month = info.data.get("month")
        if month is not None:
            last = calendar.monthrange(2001, month)[1]  # 2001: not a leap year, so 29 Feb is refused
            if day > last:
                raise PydanticCustomError(
                    "day_of_month",
                    "must be a day that exists every year: month {month} has at most {last} days",
                    {"month": month, "last": last},
                )
        return day


class AnniversaryExpiry(_Model):
    """Points of a membership year are valid until the day before the enrolment anniversary
    `years` years after the start of that membership year."""

    policy: Literal["anniversary"]
    years: Annotated[StrictInt, Field(ge=1), _horizon_capped(MAX_HORIZON_MONTHS // 12, "years")]


class InactivityExpiry(_Model):
    """All points are valid until N months after the member's last activity; activity extends them."""

    policy: Literal["inactivity"]
    months: Annotated[StrictInt, Field(ge=1), _horizon_capped(MAX_HORIZON_MONTHS, "months")]


class NoExpiry(_Model):
    """Points never expire."""

    policy: Literal["none"]


ExpiryPolicy: TypeAlias = RollingExpiry | FixedDateExpiry | AnniversaryExpiry | InactivityExpiry | NoExpiry


# --- the other sections -------------------------------------------------------------------------


class ReminderRules(_Model):
    """Reminder windows: days before an expiry date on which members are emailed (largest first),
    and the spacing: at least `min_days_between` local days between two reminders to one member,
    shortened to the narrowest window when the email carries dates new to that last-chance window
    (docs/design.md, "Reminders"). `min_days_between` has a default, so a document written before
    it still loads."""

    days_before: Annotated[tuple[Annotated[StrictInt, Field(ge=1, le=365)], ...], Field(max_length=5)]
    min_days_between: Annotated[StrictInt, Field(ge=1, le=365)] = 7

    @field_validator("days_before")
    @classmethod
    def _distinct_descending(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(days)) != len(days):
            raise PydanticCustomError("duplicate_day", "must not list the same day twice")
        return tuple(sorted(days, reverse=True))


class ClaimRules(_Model):
    """Claims for missing points (local days in the program timezone): a purchase may be claimed
    from `min_age_days` days after it happened (before that the partner may still report it) up
    to `window_days` days after it; a member has at most `max_open_claims` claims pending at once.
    The two newer fields have defaults, so a document written before them still loads."""

    min_age_days: Annotated[StrictInt, Field(ge=0, le=365)] = 2
    window_days: Annotated[StrictInt, Field(ge=1, le=3650)]
    max_open_claims: Annotated[StrictInt, Field(ge=1, le=1000)] = 5

    @field_validator("window_days")
    @classmethod
    def _window_after_minimum_age(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min_age_days")
        if minimum is not None and value < minimum:
            raise PydanticCustomError(
                "claim_window", "must be at least minAgeDays ({minimum})", {"minimum": minimum}
            )
        return value


class TransferRules(_Model):
    """Transfers between members: `enabled` turns them on or off; each moves at least `min_points`
    and at most `max_points` (absent: no cap but the daily one); a member sends at most
    `max_points_per_day` in any rolling 24 hours (a window, not a calendar day: no midnight rush)."""

    enabled: StrictBool = True
    min_points: Annotated[StrictInt, Field(ge=1)]
    max_points: Annotated[StrictInt, Field(ge=1)] | None = None
    max_points_per_day: StrictInt

    @field_validator("max_points")
    @classmethod
    def _maximum_at_least_minimum(cls, value: int | None, info: ValidationInfo) -> int | None:
        minimum = info.data.get("min_points")
        if value is not None and minimum is not None and value < minimum:
            raise PydanticCustomError(
                "transfer_limits", "must be at least minPoints ({minimum})", {"minimum": minimum}
            )
        return value

    @field_validator("max_points_per_day")
    @classmethod
    def _at_least_minimum(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min_points")
        if minimum is not None and value < minimum:
            raise PydanticCustomError(
                "transfer_limits", "must be at least minPoints ({minimum})", {"minimum": minimum}
            )
        maximum = info.data.get("max_points")
        if maximum is not None and value < maximum:
            raise PydanticCustomError(
                "transfer_limits", "must be at least maxPoints ({maximum})", {"maximum": maximum}
            )
        return value


class ReportingRules(_Model):
    """What finance values a point at, for the liability report (`GET /reports/liability`):
    `point_value` units of `currency` per point. Optional: without it the report gives points only."""

    point_value: PositiveDecimal
    currency: CurrencyCode


class ProgramRules(_Model):
    """One version of the program rules. `tz` is the program timezone: campaign dates and expiry
    dates are local dates in it."""

    version: Identifier
    timezone: Annotated[str, Strict()]
    earning: EarningRules
    expiry: Annotated[ExpiryPolicy, Field(discriminator="policy")]
    reminders: ReminderRules
    claims: ClaimRules
    transfers: TransferRules
    reporting: ReportingRules | None = None

    _tz: ZoneInfo = PrivateAttr()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            if value == "localtime":  # the host's zone, not a named one: it would differ between machines
                raise ValueError(value)
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise PydanticCustomError(
                "timezone", "must be an IANA time zone such as Europe/Paris, not '{value}'", {"value": value}
            ) from None
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._tz = ZoneInfo(self.timezone)

    @property
    def tz(self) -> ZoneInfo:
        """The program timezone."""
        return self._tz


# --- parsing and loading ------------------------------------------------------------------------

_POLICY_TAGS = frozenset({"rolling", "fixedDate", "anniversary", "inactivity", "none"})

_MESSAGES: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "tuple_type": "must be an array",
    "decimal_type": "must be a decimal number (a JSON number or string)",
    "decimal_parsing": "must be a decimal number (a JSON number or string)",
    "finite_number": "must be a finite number",
    "date_type": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "literal_error": "must be one of {expected}",
    "union_tag_invalid": "policy must be one of {expected_tags}, not {tag!r}",
    "union_tag_not_found": "policy is required (one of 'rolling', 'fixedDate', 'anniversary', "
    "'inactivity', 'none')",
}


def _path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item == "[key]":
            parts.append(" (key)")
        elif i == 1 and loc[0] == "expiry" and item in _POLICY_TAGS:
            continue  # the discriminated union's tag, not a field of the document
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(document)"


def _reason(error: Mapping[str, Any]) -> str:
    template = _MESSAGES.get(error["type"])
    if template is None:
        return str(error["msg"])
    return template.format(**error.get("ctx", {}))


def parse_rules(document: Mapping[str, Any] | str | bytes) -> ProgramRules:
    """Validate a program rules document (a mapping, or its JSON text).

    Raises `RulesError` listing every problem, one line each, as `json.path: reason`.
    JSON numbers are read as decimals, so `"pointsPerUnit": 1.1` is exactly 1.1.
    """
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RulesError([("(document)", f"is not valid JSON ({exc})")]) from None
    try:
        return ProgramRules.model_validate(document)
    except ValidationError as exc:
        raise RulesError([(_path(e["loc"]), _reason(e)) for e in exc.errors()]) from None


@functools.cache
def default_rules() -> ProgramRules:
    """The rules shipped with the code (`default_rules.json`): used when a deployment sets none."""
    return parse_rules(default_rules_text())


def load_rules(source: str) -> ProgramRules:
    """Load and validate the rules a deployment names (see `read_rules_text` for the sources).

    An unknown source, an unreadable one or an invalid document raises `RulesError`.
    """
    if source in ("", "default"):
        return default_rules()
    return parse_rules(read_rules_text(source))
