"""Expiry reminders: windows in local dates, one email covering every pending date, never twice per
(date, window), and the spacing that keeps a daily shopper from an email a day (issue #8)."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from loyalty.domain.expiry import end_of_day
from loyalty.domain.lots import Lot, expiring_summary
from loyalty.domain.reminders import (
    ReminderKey,
    ReminderPlan,
    ReminderRow,
    SimulationFigures,
    plan_reminder,
    simulate_shopper,
)
from loyalty.domain.rules import ProgramRules, default_rules, parse_rules

RULES = default_rules()
TZ = RULES.tz


def rules_with(**reminders: Any) -> ProgramRules:
    document = default_rules().model_dump(by_alias=True, mode="json")
    document["reminders"] = document["reminders"] | reminders
    return parse_rules(document)


def fixed_date_rules() -> ProgramRules:
    document = default_rules().model_dump(by_alias=True, mode="json")
    document["expiry"] = {"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1}
    return parse_rules(document)


def local(day: date, hour: int = 6, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=TZ)


def plan(
    as_of: datetime,
    expiring: Mapping[date, int],
    *,
    reminded: set[tuple[date, int]] | None = None,
    last: datetime | None = None,
    rules: ProgramRules = RULES,
) -> ReminderPlan | None:
    return plan_reminder(
        as_of,
        rules,
        expiring=[(end_of_day(day, rules.tz), points) for day, points in expiring.items()],
        reminded=reminded or set(),
        last_reminded_at=last,
    )


TODAY = date(2028, 6, 1)


# ---- nothing to say


def test_a_member_without_points_expiring_within_30_days_gets_nothing() -> None:
    assert plan(local(TODAY), {}) is None
    assert plan(local(TODAY), {TODAY + timedelta(days=31): 100}) is None


def test_a_program_without_reminder_windows_sends_nothing() -> None:
    assert plan(local(TODAY), {TODAY + timedelta(days=3): 100}, rules=rules_with(daysBefore=[])) is None


def test_zero_points_on_a_date_are_not_reminded() -> None:
    assert plan(local(TODAY), {TODAY + timedelta(days=3): 0}) is None


# ---- the windows, in local dates


def test_a_date_exactly_30_days_ahead_is_in_the_30_day_window() -> None:
    day = TODAY + timedelta(days=30)

    result = plan(local(TODAY), {day: 120})

    assert result is not None
    assert result.rows == (ReminderRow(day, 120, 30),)
    assert result.keys == (ReminderKey(day, 30),)
    assert (result.window, result.last_chance, result.points) == (30, False, 120)


def test_a_date_exactly_7_days_ahead_is_a_last_chance_and_counts_for_both_windows() -> None:
    day = TODAY + timedelta(days=7)

    result = plan(local(TODAY), {day: 50})

    assert result is not None
    assert result.rows == (ReminderRow(day, 50, 7),)
    assert result.keys == (ReminderKey(day, 30), ReminderKey(day, 7))
    assert result.last_chance


def test_a_date_8_days_ahead_already_reminded_at_30_days_waits_for_the_last_chance() -> None:
    day = TODAY + timedelta(days=8)

    assert plan(local(TODAY), {day: 50}, reminded={(day, 30)}) is None
    later = plan(local(TODAY + timedelta(days=1)), {day: 50}, reminded={(day, 30)})
    assert later is not None and later.keys == (ReminderKey(day, 7),)


def test_the_window_opens_at_local_midnight_not_at_utc_midnight() -> None:
    day = TODAY + timedelta(days=30)

    assert plan(datetime(2028, 5, 31, 21, 59, 59, tzinfo=UTC), {day: 10}) is None  # 23:59:59 in Paris
    result = plan(datetime(2028, 5, 31, 22, 0, tzinfo=UTC), {day: 10})  # 00:00 on 1 June in Paris
    assert result is not None and result.rows == (ReminderRow(day, 10, 30),)


def test_the_30_day_window_opens_at_local_midnight_on_the_day_summer_time_starts() -> None:
    # Paris moves to summer time on 28 March 2027; 30 days before 27 April 2027 is 28 March.
    day = date(2027, 4, 27)

    assert plan(datetime(2027, 3, 27, 22, 59, 59, tzinfo=UTC), {day: 10}) is None  # 23:59:59 CET
    result = plan(datetime(2027, 3, 27, 23, 0, tzinfo=UTC), {day: 10})  # 00:00 CET on the 28th
    assert result is not None and result.keys == (ReminderKey(day, 30),)


def test_the_last_chance_window_opens_at_local_midnight_on_the_day_winter_time_starts() -> None:
    # Paris moves back to winter time on 31 October 2027; 7 days before 7 November is 31 October.
    day = date(2027, 11, 7)
    reminded = {(day, 30)}

    assert plan(datetime(2027, 10, 30, 21, 59, 59, tzinfo=UTC), {day: 10}, reminded=reminded) is None
    result = plan(datetime(2027, 10, 30, 22, 0, tzinfo=UTC), {day: 10}, reminded=reminded)  # 00:00 CEST
    assert result is not None and result.keys == (ReminderKey(day, 7),)


def test_points_are_reminded_until_the_last_second_of_their_last_day_and_never_after() -> None:
    day = TODAY
    reminded = {(day, 30)}

    result = plan(local(day, 23, 59, 59), {day: 10}, reminded=reminded)
    assert result is not None and result.rows == (ReminderRow(day, 10, 7),)
    assert plan(end_of_day(day, TZ), {day: 10}, reminded=reminded) is None  # expired at local midnight


# ---- one email covers every pending date


def test_several_dates_in_one_window_make_one_email_with_the_points_of_each_date_soonest_first() -> None:
    dates = {TODAY + timedelta(days=25): 30, TODAY + timedelta(days=12): 10, TODAY + timedelta(days=18): 20}

    result = plan(local(TODAY), dates)

    assert result is not None
    assert [(row.expires_on, row.points) for row in result.rows] == sorted(dates.items())
    assert result.points == 60
    assert {key.window for key in result.keys} == {30}


def test_instants_on_the_same_local_date_are_summed_into_one_row() -> None:
    day = TODAY + timedelta(days=10)
    expiring = [(end_of_day(day, TZ), 10), (end_of_day(day, TZ) - timedelta(hours=1), 5)]

    result = plan_reminder(local(TODAY), RULES, expiring=expiring, reminded=set(), last_reminded_at=None)

    assert result is not None and result.rows == (ReminderRow(day, 15, 30),)


def test_dates_in_both_windows_go_in_one_email_marked_as_a_last_chance() -> None:
    soon, later = TODAY + timedelta(days=5), TODAY + timedelta(days=20)

    result = plan(local(TODAY), {soon: 10, later: 20})

    assert result is not None
    assert result.rows == (ReminderRow(soon, 10, 7), ReminderRow(later, 20, 30))
    assert set(result.keys) == {ReminderKey(soon, 30), ReminderKey(soon, 7), ReminderKey(later, 30)}
    assert (result.window, result.last_chance) == (7, True)


def test_dates_already_reminded_in_their_window_are_left_out_of_the_next_email() -> None:
    old, new = TODAY + timedelta(days=20), TODAY + timedelta(days=29)

    result = plan(local(TODAY), {old: 10, new: 20}, reminded={(old, 30)})

    assert result is not None and result.rows == (ReminderRow(new, 20, 30),)
    assert result.keys == (ReminderKey(new, 30),)


def test_a_date_reminded_in_the_last_chance_window_is_never_reminded_again() -> None:
    day = TODAY + timedelta(days=3)

    assert plan(local(TODAY), {day: 10}, reminded={(day, 30), (day, 7)}) is None


def test_expiring_summary_of_lots_is_accepted_as_it_is() -> None:
    day = TODAY + timedelta(days=9)
    earned = local(TODAY - timedelta(days=700))
    lots = [
        Lot("a", 40, 25, earned, end_of_day(day, TZ), "earn", RULES.version),
        Lot("b", 10, 10, earned, None, "earn", RULES.version),
    ]

    summary = expiring_summary(lots, local(TODAY), TZ)
    result = plan_reminder(
        local(TODAY), RULES, expiring=[(at, p) for _, at, p in summary], reminded=set(), last_reminded_at=None
    )

    assert result is not None and result.rows == (ReminderRow(day, 25, 30),)


def test_a_narrower_window_added_later_reminds_a_date_once_more_in_that_window_only() -> None:
    day = TODAY + timedelta(days=12)
    rules = rules_with(daysBefore=[30, 14, 7])

    result = plan(local(TODAY), {day: 10}, reminded={(day, 30)}, rules=rules)

    assert result is not None and result.keys == (ReminderKey(day, 14),)


# ---- spacing


def test_a_member_reminded_6_local_days_ago_waits_for_a_30_day_date() -> None:
    last = local(TODAY - timedelta(days=6), 6)

    assert plan(local(TODAY), {TODAY + timedelta(days=25): 10}, last=last) is None


def test_spacing_counts_local_days_so_a_late_evening_email_does_not_push_the_next_one_a_day() -> None:
    last = local(TODAY - timedelta(days=7), 23, 30)  # 6 days 6.5 hours before the run

    result = plan(local(TODAY), {TODAY + timedelta(days=25): 10}, last=last)

    assert result is not None and not result.overrides_spacing


def test_with_a_14_day_spacing_a_last_chance_date_goes_out_after_7_days() -> None:
    rules = rules_with(minDaysBetween=14)
    day = TODAY + timedelta(days=6)

    assert (
        plan(
            local(TODAY), {day: 10}, reminded={(day, 30)}, last=local(TODAY - timedelta(days=6)), rules=rules
        )
        is None
    )
    result = plan(
        local(TODAY), {day: 10}, reminded={(day, 30)}, last=local(TODAY - timedelta(days=7)), rules=rules
    )
    assert result is not None and result.overrides_spacing and result.last_chance


def test_with_a_14_day_spacing_a_30_day_date_waits_the_full_14_days() -> None:
    rules = rules_with(minDaysBetween=14)
    day = TODAY + timedelta(days=20)

    assert plan(local(TODAY), {day: 10}, last=local(TODAY - timedelta(days=13)), rules=rules) is None
    result = plan(local(TODAY), {day: 10}, last=local(TODAY - timedelta(days=14)), rules=rules)
    assert result is not None and not result.overrides_spacing


def test_an_override_email_carries_the_pending_30_day_dates_too() -> None:
    rules = rules_with(minDaysBetween=14)
    soon, later = TODAY + timedelta(days=4), TODAY + timedelta(days=28)

    result = plan(
        local(TODAY),
        {soon: 1, later: 2},
        reminded={(soon, 30)},
        last=local(TODAY - timedelta(days=7)),
        rules=rules,
    )

    assert result is not None
    assert result.keys == (ReminderKey(soon, 7), ReminderKey(later, 30))


def test_a_run_replayed_before_the_last_email_sends_nothing() -> None:
    assert plan(local(TODAY), {TODAY + timedelta(days=5): 10}, last=local(TODAY + timedelta(days=1))) is None


def test_the_same_inputs_plan_the_same_email_and_once_recorded_nothing() -> None:
    expiring = {TODAY + timedelta(days=5): 10, TODAY + timedelta(days=26): 3}
    first = plan(local(TODAY), expiring)
    assert first is not None and plan(local(TODAY), expiring) == first

    again = plan(local(TODAY, 9), expiring, reminded=set(first.keys), last=local(TODAY))

    assert again is None


# ---- refused inputs


def test_a_naive_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="as_of must be a timezone-aware"):
        plan(datetime(2028, 6, 1, 6), {})


def test_a_naive_last_reminder_time_is_refused() -> None:
    with pytest.raises(ValueError, match="last_reminded_at must be a timezone-aware"):
        plan(local(TODAY), {TODAY + timedelta(days=3): 1}, last=datetime(2028, 5, 1))


def test_negative_points_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        plan(local(TODAY), {TODAY + timedelta(days=3): -1})


# ---- simulations: a quarter of daily runs


def assert_never_twice_per_window(figures: SimulationFigures) -> None:
    keys = Counter(key for email in figures.sent for key in email.plan.keys)
    mentions = Counter((row.expires_on, row.window) for email in figures.sent for row in email.plan.rows)
    assert max(keys.values(), default=1) == 1
    assert max(mentions.values(), default=1) == 1


def gaps(figures: SimulationFigures) -> list[int]:
    days = [email.sent_on for email in figures.sent]
    return [(b - a).days for a, b in itertools.pairwise(days)]


def test_a_daily_shopper_gets_one_email_a_week_each_date_reminded_at_30_and_at_7_days() -> None:
    # Q1 2029: points of Q1 2027 expire one date a day; Paris changes to summer time on 25 March.
    figures = simulate_shopper(RULES, shop_every_days=1, start=date(2029, 1, 1), days=91)

    assert figures.emails <= math.ceil(91 / 7) == figures.bound
    assert figures.emails == 13 and figures.overrides == 0
    assert min(gaps(figures)) >= 7
    assert figures.expiry_dates == 91
    assert figures.reminded_before_expiry == figures.reminded_last_chance == 91
    assert figures.least_days_left == 1
    assert_never_twice_per_window(figures)


def test_a_daily_shopper_with_a_14_day_spacing_still_gets_every_last_chance() -> None:
    figures = simulate_shopper(rules_with(minDaysBetween=14), shop_every_days=1, start=date(2029, 1, 1))

    assert figures.emails <= math.ceil(91 / 14) + figures.overrides
    assert all(e.plan.last_chance for e in figures.sent if e.plan.overrides_spacing)
    assert min(gaps(figures)) >= 7
    assert figures.reminded_last_chance == figures.expiry_dates == 91
    assert figures.least_days_left is not None and figures.least_days_left >= 1
    assert_never_twice_per_window(figures)


def test_a_program_with_one_30_day_window_and_14_day_spacing_emails_a_daily_shopper_7_times() -> None:
    figures = simulate_shopper(
        rules_with(daysBefore=[30], minDaysBetween=14), shop_every_days=1, start=date(2029, 1, 1)
    )

    assert figures.emails == 7 and figures.overrides == 0
    assert figures.reminded_before_expiry == figures.expiry_dates == 91
    assert figures.least_days_left is not None and figures.least_days_left >= 17
    assert_never_twice_per_window(figures)


def test_a_monthly_shopper_gets_two_reminders_per_expiry_date() -> None:
    figures = simulate_shopper(RULES, shop_every_days=30, start=date(2029, 1, 1))

    assert figures.expiry_dates == 3
    assert figures.reminded_last_chance == 3
    assert figures.emails <= 2 * figures.expiry_dates + 1  # + the 30-day email of next quarter's date
    assert all(len(email.plan.rows) == 1 for email in figures.sent)
    assert figures.least_days_left == 7
    assert_never_twice_per_window(figures)


def test_a_weekly_shopper_gets_one_email_a_week() -> None:
    figures = simulate_shopper(RULES, shop_every_days=7, start=date(2029, 1, 1))

    assert figures.emails == 13
    assert figures.reminded_last_chance == figures.expiry_dates == 13
    assert_never_twice_per_window(figures)


def test_a_fixed_date_program_reminds_on_1_and_24_december_only() -> None:
    figures = simulate_shopper(fixed_date_rules(), shop_every_days=1, start=date(2028, 10, 1), days=92)

    assert [email.sent_on for email in figures.sent] == [date(2028, 12, 1), date(2028, 12, 24)]
    assert [email.plan.window for email in figures.sent] == [30, 7]
    assert (
        figures.sent[0].plan.rows[0].points == figures.sent[1].plan.rows[0].points == 10 * 365
    )  # every day of 2027
    assert figures.expiry_dates == figures.reminded_last_chance == 1
    assert_never_twice_per_window(figures)


def test_a_daily_shopper_under_the_inactivity_policy_never_gets_a_reminder() -> None:
    document = default_rules().model_dump(by_alias=True, mode="json")
    document["expiry"] = {"policy": "inactivity", "months": 12}
    figures = simulate_shopper(parse_rules(document), shop_every_days=1, start=date(2029, 1, 1), days=30)

    assert (figures.emails, figures.expiry_dates) == (0, 0)


def test_the_simulation_is_deterministic() -> None:
    first = simulate_shopper(RULES, shop_every_days=3, start=date(2029, 4, 1), days=30)

    assert simulate_shopper(RULES, shop_every_days=3, start=date(2029, 4, 1), days=30) == first
