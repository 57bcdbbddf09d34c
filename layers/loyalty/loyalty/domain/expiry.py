"""Expiry policies: when the points of a credit stop being usable.

A policy yields an expiry DATE: the last local day (program timezone) on which the points can be
used. A lot's `expires_at` is the instant that day ends, local midnight, expressed in UTC.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta, tzinfo

from loyalty.domain.rules import (
    AnniversaryExpiry,
    ExpiryPolicy,
    FixedDateExpiry,
    InactivityExpiry,
    NoExpiry,
    ProgramRules,
    RollingExpiry,
)
from loyalty.domain.wallet import ACTIVITY_BUCKET, NEVER_BUCKET

__all__ = [
    "ACTIVITY_BUCKET",
    "NEVER_BUCKET",
    "add_months",
    "bucket_for",
    "dated_bucket",
    "end_of_day",
    "expires_at",
    "expiry_date",
    "follows_activity",
    "last_day",
]


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _last_day_of_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` months later, clamped to that month's last day
    (31 August + 6 months = 28 or 29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, _last_day_of_month(year, month + 1)))


def _anniversary(enrolled_on: date, year: int) -> date:
    """The enrolment anniversary in `year`; a 29 February enrolment has its anniversary on
    28 February in years without one."""
    return date(year, enrolled_on.month, min(enrolled_on.day, _last_day_of_month(year, enrolled_on.month)))


def expiry_date(
    policy: ExpiryPolicy, *, earned_on: date, enrolled_on: date, last_activity_on: date
) -> date | None:
    """The last local day on which points earned on `earned_on` can be used, or None if never.

    - rolling: `earned_on` + N months (day clamped to the month's end); with `end_of_month`,
      the last day of that month.
    - fixedDate: the configured month/day of the year `earned_on.year + years_after`; if that
      day is already past when the points are earned (`years_after` 0), the next year's.
    - anniversary: the membership year holding `earned_on` starts on the last enrolment
      anniversary on or before it; its points are valid through the day before the anniversary
      `years` years after that start.
    - inactivity: `last_activity_on` + N months (clamped): activity moves every lot's expiry.
    - none: never.
    """
    match policy:
        case RollingExpiry(months=months, end_of_month=end_of_month):
            day = add_months(earned_on, months)
            if end_of_month:
                return day.replace(day=_last_day_of_month(day.year, day.month))
            return day
        case FixedDateExpiry(month=month, day=day, years_after=years_after):
            fixed = date(earned_on.year + years_after, month, day)
            return fixed if fixed >= earned_on else fixed.replace(year=fixed.year + 1)
        case AnniversaryExpiry(years=years):
            start_year = earned_on.year
            if _anniversary(enrolled_on, start_year) > earned_on:
                start_year -= 1
            return _anniversary(enrolled_on, start_year + years) - timedelta(days=1)
        case InactivityExpiry(months=months):
            return add_months(last_activity_on, months)
        case NoExpiry():
            return None
    raise TypeError(f"unknown expiry policy: {policy!r}")


def end_of_day(day: date, tz: tzinfo) -> datetime:
    """The instant a local day ends in `tz` (midnight at the start of the next day), in UTC.

    DST-correct: 31 March 2024 in Paris ends at 22:00 UTC, 27 October 2024 at 23:00 UTC."""
    following = day + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(UTC)


def last_day(expires_at: datetime, tz: tzinfo) -> date:
    """The expiry date (last usable local day) of an `expires_at` instant, the inverse of `end_of_day`."""
    _require_aware("expires_at", expires_at)
    return (expires_at - timedelta(microseconds=1)).astimezone(tz).date()


def expires_at(
    rules: ProgramRules, *, earned_at: datetime, enrolled_at: datetime, last_activity_at: datetime
) -> datetime | None:
    """When points earned at `earned_at` expire under the rules: the end (local midnight, as UTC)
    of their expiry date, computed on the local calendar dates of the program timezone, so a
    purchase at 23:30 in Paris on the 31st counts as a purchase of the 31st. None: never.
    All three datetimes must be timezone-aware (ValueError otherwise)."""
    _require_aware("earned_at", earned_at)
    _require_aware("enrolled_at", enrolled_at)
    _require_aware("last_activity_at", last_activity_at)
    tz = rules.tz
    day = expiry_date(
        rules.expiry,
        earned_on=earned_at.astimezone(tz).date(),
        enrolled_on=enrolled_at.astimezone(tz).date(),
        last_activity_on=last_activity_at.astimezone(tz).date(),
    )
    return None if day is None else end_of_day(day, tz)


def follows_activity(rules: ProgramRules) -> bool:
    """True when the policy moves every lot's expiry with the member's activity (inactivity)."""
    return isinstance(rules.expiry, InactivityExpiry)


def bucket_for(rules: ProgramRules, expires_at: datetime | None) -> str:
    """The lot page a lot lives in: "NEVER" when it never expires, "ACTIVITY" when its expiry
    follows the member's activity, otherwise "YYYY-MM", the month of its expiry date in the
    program timezone (`expires_at` is the local midnight after that date)."""
    if expires_at is None:
        return NEVER_BUCKET
    if follows_activity(rules):
        return ACTIVITY_BUCKET
    return dated_bucket(expires_at, rules.tz)


def dated_bucket(expires_at: datetime, tz: tzinfo) -> str:
    """ "YYYY-MM", the month of the expiry date of `expires_at` in `tz`: the bucket of a lot with a
    date of its own, whatever the policy (a transfer-in keeps its sender's date, even under
    inactivity, where credits otherwise go to ACTIVITY)."""
    day = last_day(expires_at, tz)
    return f"{day.year:04d}-{day.month:02d}"
