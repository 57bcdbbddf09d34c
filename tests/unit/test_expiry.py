"""Expiry policies: the last usable local day of a credit, the instant it ends, and its lot page."""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.expiry import (
    add_months,
    bucket_for,
    end_of_day,
    expires_at,
    expiry_date,
    follows_activity,
    last_day,
)
from loyalty.domain.rules import (
    AnniversaryExpiry,
    ExpiryPolicy,
    FixedDateExpiry,
    InactivityExpiry,
    NoExpiry,
    ProgramRules,
    RollingExpiry,
    default_rules,
    parse_rules,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
IRRELEVANT = date(2000, 1, 1)


def rolling(months: int, end_of_month: bool = False) -> RollingExpiry:
    return RollingExpiry(policy="rolling", months=months, end_of_month=end_of_month)


def fixed(month: int, day: int, years_after: int) -> FixedDateExpiry:
    return FixedDateExpiry(policy="fixedDate", month=month, day=day, years_after=years_after)


def anniversary(years: int) -> AnniversaryExpiry:
    return AnniversaryExpiry(policy="anniversary", years=years)


def inactivity(months: int) -> InactivityExpiry:
    return InactivityExpiry(policy="inactivity", months=months)


def rules_with(expiry: dict[str, Any], timezone: str = "Europe/Paris") -> ProgramRules:
    document = copy.deepcopy(default_rules().model_dump(by_alias=True, mode="json"))
    document |= {"expiry": expiry, "timezone": timezone}
    return parse_rules(document)


def earned(policy: ExpiryPolicy, on: date) -> date | None:
    return expiry_date(policy, earned_on=on, enrolled_on=IRRELEVANT, last_activity_on=IRRELEVANT)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- rolling ------------------------------------------------------------------------------------


def test_rolling_points_are_valid_until_the_same_day_n_months_later() -> None:
    assert earned(rolling(24), date(2026, 3, 15)) == date(2028, 3, 15)


@pytest.mark.parametrize(
    ("earned_on", "months", "expected"),
    [
        (date(2025, 8, 31), 6, date(2026, 2, 28)),
        (date(2023, 8, 31), 6, date(2024, 2, 29)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
    ],
)
def test_rolling_clamps_a_missing_day_to_the_end_of_the_target_month(
    earned_on: date, months: int, expected: date
) -> None:
    assert earned(rolling(months), earned_on) == expected


def test_rolling_crosses_year_ends() -> None:
    assert earned(rolling(13), date(2026, 12, 5)) == date(2028, 1, 5)


@pytest.mark.parametrize(
    ("earned_on", "months", "expected"),
    [
        (date(2026, 3, 15), 24, date(2028, 3, 31)),
        (date(2023, 8, 31), 6, date(2024, 2, 29)),
        (date(2025, 8, 1), 6, date(2026, 2, 28)),
        (date(2026, 1, 31), 11, date(2026, 12, 31)),
    ],
)
def test_rolling_to_end_of_month_keeps_points_until_the_last_day_of_that_month(
    earned_on: date, months: int, expected: date
) -> None:
    assert earned(rolling(months, end_of_month=True), earned_on) == expected


# --- fixed date ---------------------------------------------------------------------------------


@pytest.mark.parametrize("earned_on", [date(2026, 1, 1), date(2026, 3, 15), date(2026, 12, 31)])
def test_fixed_date_points_are_valid_until_31_december_of_the_year_after_earning(earned_on: date) -> None:
    assert earned(fixed(12, 31, 1), earned_on) == date(2027, 12, 31)


def test_fixed_date_in_the_year_of_earning_applies_while_it_is_still_ahead() -> None:
    assert earned(fixed(6, 30, 0), date(2026, 3, 1)) == date(2026, 6, 30)


def test_fixed_date_in_the_year_of_earning_applies_on_that_very_day() -> None:
    assert earned(fixed(6, 30, 0), date(2026, 6, 30)) == date(2026, 6, 30)


def test_fixed_date_already_past_in_the_year_of_earning_rolls_over_to_the_next_year() -> None:
    assert earned(fixed(6, 30, 0), date(2026, 7, 1)) == date(2027, 6, 30)


def test_fixed_date_years_after_counts_from_the_year_of_earning_even_if_the_day_has_passed() -> None:
    assert earned(fixed(6, 30, 1), date(2026, 7, 1)) == date(2027, 6, 30)


def test_fixed_date_28_february_is_the_same_in_leap_years() -> None:
    assert earned(fixed(2, 28, 2), date(2026, 5, 1)) == date(2028, 2, 28)


# --- membership anniversary ---------------------------------------------------------------------


def on_anniversary(years: int, *, enrolled_on: date, earned_on: date) -> date | None:
    return expiry_date(
        anniversary(years), earned_on=earned_on, enrolled_on=enrolled_on, last_activity_on=IRRELEVANT
    )


def test_anniversary_points_expire_the_day_before_the_next_anniversary() -> None:
    assert on_anniversary(1, enrolled_on=date(2025, 4, 10), earned_on=date(2026, 1, 5)) == date(2026, 4, 9)


def test_anniversary_points_earned_on_the_anniversary_belong_to_the_new_membership_year() -> None:
    assert on_anniversary(1, enrolled_on=date(2025, 4, 10), earned_on=date(2026, 4, 10)) == date(2027, 4, 9)


def test_anniversary_points_earned_on_the_last_day_of_a_membership_year_expire_that_day() -> None:
    assert on_anniversary(1, enrolled_on=date(2025, 4, 10), earned_on=date(2026, 4, 9)) == date(2026, 4, 9)


def test_anniversary_points_of_the_enrolment_day_last_n_full_membership_years() -> None:
    assert on_anniversary(2, enrolled_on=date(2025, 4, 10), earned_on=date(2025, 4, 10)) == date(2027, 4, 9)


def test_anniversary_points_of_one_membership_year_share_one_expiry_date() -> None:
    enrolled = date(2024, 9, 1)
    first, last = date(2025, 9, 1), date(2026, 8, 31)

    assert on_anniversary(3, enrolled_on=enrolled, earned_on=first) == date(2028, 8, 31)
    assert on_anniversary(3, enrolled_on=enrolled, earned_on=last) == date(2028, 8, 31)


@pytest.mark.parametrize(
    ("earned_on", "expected"),
    [
        (date(2024, 3, 1), date(2025, 2, 27)),  # year starting 29 Feb 2024 ends with 27 Feb 2025
        (date(2025, 2, 27), date(2025, 2, 27)),
        (date(2025, 2, 28), date(2026, 2, 27)),  # the anniversary falls on 28 Feb in 2025
        (date(2027, 3, 1), date(2028, 2, 28)),  # the next anniversary is 29 Feb 2028 again
        (date(2028, 2, 28), date(2028, 2, 28)),
        (date(2028, 2, 29), date(2029, 2, 27)),
    ],
)
def test_anniversary_of_a_29_february_enrolment_falls_on_28_february_in_other_years(
    earned_on: date, expected: date
) -> None:
    assert on_anniversary(1, enrolled_on=date(2024, 2, 29), earned_on=earned_on) == expected


# --- inactivity and none ------------------------------------------------------------------------


def test_inactivity_points_expire_n_months_after_the_last_activity() -> None:
    day = expiry_date(
        inactivity(18), earned_on=date(2020, 1, 1), enrolled_on=IRRELEVANT, last_activity_on=date(2026, 2, 10)
    )

    assert day == date(2027, 8, 10)


def test_inactivity_clamps_a_missing_day_to_the_end_of_the_month() -> None:
    day = expiry_date(
        inactivity(3), earned_on=date(2026, 1, 1), enrolled_on=IRRELEVANT, last_activity_on=date(2026, 1, 31)
    )

    assert day == date(2026, 4, 30)


def test_points_under_the_none_policy_never_expire() -> None:
    assert earned(NoExpiry(policy="none"), date(2026, 1, 1)) is None


# --- expires_at: the instant the expiry date ends -----------------------------------------------


def expires_for(rules: ProgramRules, earned_at: datetime) -> datetime | None:
    return expires_at(rules, earned_at=earned_at, enrolled_at=earned_at, last_activity_at=earned_at)


def test_points_expire_at_local_midnight_after_their_expiry_date_expressed_in_utc() -> None:
    moment = expires_for(default_rules(), utc(2026, 1, 15, 10, 0))

    # Expiry date 15 January 2028; Paris is UTC+1 in winter, so the day ends at 23:00 UTC.
    assert moment == utc(2028, 1, 15, 23, 0)
    assert moment is not None and moment.tzinfo is UTC


def test_a_purchase_at_2330_paris_on_the_31st_counts_as_a_purchase_of_the_31st() -> None:
    rules = rules_with({"policy": "rolling", "months": 6})

    # 21:30 UTC on 31 August is 23:30 in Paris (UTC+2): 31 August + 6 months = 28 February.
    assert expires_for(rules, utc(2025, 8, 31, 21, 30)) == utc(2026, 2, 28, 23, 0)


def test_a_purchase_at_0030_paris_on_the_1st_counts_as_a_purchase_of_the_1st_even_if_utc_says_the_31st() -> (
    None
):
    rules = rules_with({"policy": "rolling", "months": 6})

    # 22:30 UTC on 31 August is 00:30 on 1 September in Paris: 1 September + 6 months = 1 March.
    assert expires_for(rules, utc(2025, 8, 31, 22, 30)) == utc(2026, 3, 1, 23, 0)


def test_a_day_ending_after_the_spring_change_to_summer_time_ends_at_2200_utc() -> None:
    # Sunday 29 March 2026: Paris moves to UTC+2 at 02:00, so that 23-hour day ends at 22:00 UTC.
    assert end_of_day(date(2026, 3, 29), PARIS) == utc(2026, 3, 29, 22, 0)


def test_the_day_before_the_spring_change_still_ends_at_2300_utc() -> None:
    assert end_of_day(date(2026, 3, 28), PARIS) == utc(2026, 3, 28, 23, 0)


def test_the_day_before_the_autumn_change_ends_at_2200_utc() -> None:
    assert end_of_day(date(2026, 10, 24), PARIS) == utc(2026, 10, 24, 22, 0)


def test_a_day_ending_after_the_autumn_change_to_winter_time_ends_at_2300_utc() -> None:
    # Sunday 25 October 2026: Paris goes back to UTC+1 at 03:00, a 25-hour day ending at 23:00 UTC.
    assert end_of_day(date(2026, 10, 25), PARIS) == utc(2026, 10, 25, 23, 0)


def test_expires_at_lands_on_the_dst_correct_midnight_when_the_expiry_date_is_a_change_day() -> None:
    rules = rules_with({"policy": "rolling", "months": 12})

    # Earned on 29 March 2025 (winter time), expires after 29 March 2026 (the spring change day).
    assert expires_for(rules, utc(2025, 3, 29, 12, 0)) == utc(2026, 3, 29, 22, 0)


@pytest.mark.parametrize("earned_at", [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)])
def test_both_passes_of_the_repeated_autumn_hour_are_the_same_local_day(earned_at: datetime) -> None:
    rules = rules_with({"policy": "rolling", "months": 1})

    # 02:30 in Paris happens twice on 25 October 2026 (UTC+2 then UTC+1): both are the 25th.
    assert expires_for(rules, earned_at) == end_of_day(date(2026, 11, 25), PARIS)


def test_expires_at_uses_the_program_timezone_of_the_rules() -> None:
    rules = rules_with({"policy": "rolling", "months": 1}, timezone="America/New_York")

    # 02:00 UTC on 1 May is 22:00 on 30 April in New York (UTC-4): 30 April + 1 month = 30 May.
    assert expires_for(rules, utc(2026, 5, 1, 2, 0)) == utc(2026, 5, 31, 4, 0)


def test_the_anniversary_is_taken_from_the_local_enrolment_date() -> None:
    rules = rules_with({"policy": "anniversary", "years": 1})

    # 23:30 UTC on 28 February 2024 is 00:30 on 29 February in Paris: a 29 February enrolment.
    moment = expires_at(
        rules,
        earned_at=utc(2025, 3, 10, 12, 0),
        enrolled_at=utc(2024, 2, 28, 23, 30),
        last_activity_at=utc(2025, 3, 10, 12, 0),
    )

    assert moment == end_of_day(date(2026, 2, 27), PARIS)


def test_the_inactivity_expiry_is_taken_from_the_last_activity() -> None:
    rules = rules_with({"policy": "inactivity", "months": 12})

    moment = expires_at(
        rules,
        earned_at=utc(2025, 1, 10, 12, 0),
        enrolled_at=utc(2024, 1, 1, 12, 0),
        last_activity_at=utc(2026, 6, 1, 12, 0),
    )

    assert moment == end_of_day(date(2027, 6, 1), PARIS)


def test_expires_at_is_none_when_points_never_expire() -> None:
    assert expires_for(rules_with({"policy": "none"}), utc(2026, 1, 1, 12, 0)) is None


@pytest.mark.parametrize("naive", ["earned_at", "enrolled_at", "last_activity_at"])
def test_a_naive_datetime_is_refused(naive: str) -> None:
    moments = {name: utc(2026, 1, 1, 12, 0) for name in ("earned_at", "enrolled_at", "last_activity_at")}
    moments[naive] = datetime(2026, 1, 1, 12, 0)

    with pytest.raises(ValueError, match=naive):
        expires_at(default_rules(), **moments)


# --- lot pages (buckets) ------------------------------------------------------------------------


def test_a_lot_that_never_expires_lives_in_the_never_page() -> None:
    assert bucket_for(rules_with({"policy": "none"}), None) == "NEVER"


def test_a_lot_whose_expiry_follows_activity_lives_in_the_activity_page() -> None:
    assert (
        bucket_for(rules_with({"policy": "inactivity", "months": 12}), utc(2027, 1, 1, 23, 0)) == "ACTIVITY"
    )


def test_a_lot_lives_in_the_page_of_its_expiry_month_in_the_program_timezone() -> None:
    assert bucket_for(default_rules(), end_of_day(date(2028, 1, 15), PARIS)) == "2028-01"


def test_a_lot_expiring_at_the_end_of_a_month_lives_in_that_month_not_the_next() -> None:
    # Expiry date 30 April: the lot expires at midnight starting 1 May in Paris.
    assert bucket_for(default_rules(), utc(2026, 4, 30, 22, 0)) == "2026-04"


def test_a_lot_expiring_at_a_west_of_utc_month_end_lives_in_that_month_though_utc_says_the_next() -> None:
    rules = rules_with({"policy": "rolling", "months": 1}, timezone="America/New_York")

    # 30 April ends at 04:00 UTC on 1 May in New York.
    assert bucket_for(rules, utc(2026, 5, 1, 4, 0)) == "2026-04"


def test_a_bucket_needs_an_aware_expiry() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        bucket_for(default_rules(), datetime(2026, 5, 1))


@pytest.mark.parametrize(
    ("expiry", "follows"),
    [
        ({"policy": "inactivity", "months": 12}, True),
        ({"policy": "rolling", "months": 12}, False),
        ({"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1}, False),
        ({"policy": "anniversary", "years": 1}, False),
        ({"policy": "none"}, False),
    ],
)
def test_only_the_inactivity_policy_follows_activity(expiry: dict[str, Any], follows: bool) -> None:
    assert follows_activity(rules_with(expiry)) is follows


# --- properties ---------------------------------------------------------------------------------

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
zones = st.sampled_from([PARIS, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("America/Santiago"), UTC])
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@given(day=days, months=st.integers(0, 84))
def test_adding_months_keeps_the_day_unless_the_month_is_shorter(day: date, months: int) -> None:
    later = add_months(day, months)

    assert (later.year * 12 + later.month) - (day.year * 12 + day.month) == months
    assert later.day == day.day or (later.day < day.day and (later + timedelta(days=1)).day == 1)


@given(day=days, months=st.integers(1, 84), end_of_month=st.booleans())
def test_rolling_points_stay_valid_between_one_and_85_months(
    day: date, months: int, end_of_month: bool
) -> None:
    expiry = earned(rolling(months, end_of_month), day)

    assert expiry is not None
    assert day < expiry <= add_months(day, 85)
    assert not end_of_month or (expiry + timedelta(days=1)).day == 1


@given(day=days, month=st.integers(1, 12), day_of_month=st.integers(1, 28), years_after=st.integers(0, 6))
def test_fixed_date_points_expire_on_that_calendar_day_within_the_horizon(
    day: date, month: int, day_of_month: int, years_after: int
) -> None:
    expiry = earned(fixed(month, day_of_month, years_after), day)

    assert expiry is not None
    assert (expiry.month, expiry.day) == (month, day_of_month)
    assert day <= expiry <= add_months(day, 84)


@given(enrolled=days, earned_on=days, years=st.integers(1, 7))
def test_anniversary_points_expire_the_day_before_an_anniversary_within_the_horizon(
    enrolled: date, earned_on: date, years: int
) -> None:
    expiry = on_anniversary(years, enrolled_on=enrolled, earned_on=earned_on)

    assert expiry is not None
    following = expiry + timedelta(days=1)
    last_of_month = calendar.monthrange(following.year, enrolled.month)[1]
    assert following == date(following.year, enrolled.month, min(enrolled.day, last_of_month))
    assert earned_on <= expiry <= add_months(earned_on, 12 * years)


@given(day=days, tz=zones)
def test_a_day_ends_at_the_next_local_midnight_and_maps_back_to_that_day(day: date, tz: ZoneInfo) -> None:
    end = end_of_day(day, tz)

    assert end.tzinfo is UTC
    assert last_day(end, tz) == day
    assert end > datetime(day.year, day.month, day.day, 12, tzinfo=tz)


@given(day=days)
def test_a_paris_day_ends_at_local_midnight(day: date) -> None:
    local = end_of_day(day, PARIS).astimezone(PARIS)

    assert (local.date(), local.hour, local.minute) == (day + timedelta(days=1), 0, 0)


@given(earned_at=instants, months=st.integers(1, 84))
def test_the_bucket_is_the_month_of_the_local_expiry_date(earned_at: datetime, months: int) -> None:
    rules = rules_with({"policy": "rolling", "months": months})
    moment = expires_for(rules, earned_at)

    assert moment is not None
    expected = earned(rolling(months), earned_at.astimezone(PARIS).date())
    assert expected is not None
    assert bucket_for(rules, moment) == f"{expected.year:04d}-{expected.month:02d}"
