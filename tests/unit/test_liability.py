"""Liability and breakage, the pure part: what a ledger entry adds, and how periods sum to a report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.ledger import EntryType
from loyalty.domain.liability import (
    Figure,
    IssueMonth,
    LabelRange,
    Level,
    LotPoints,
    Movement,
    PointValue,
    build_report,
    by_period,
    figures_of,
    period_labels,
    period_start,
    periods_through,
    report_instant,
    totals,
)

T = datetime(2026, 11, 24, 10, 30, 15, tzinfo=UTC)
# Lot ids: expiry date (or never/activity), day of issue, kind.
DATED = "20281124-20261124-e"  # expires in bucket 2028-11, issued 2026-11
OLDER = "20270115-20250115-e"  # expires 2027-01, issued 2025-01
ACTIVITY = "activity-20261124-e"
NEVER = "never-20261124-c"
EXPIRES = datetime(2027, 1, 15, 23, 0, tzinfo=UTC)  # midnight in Paris ending 15 January 2027


def movement(kind: EntryType, *lots: LotPoints, points: int = 0, **owed: int) -> Movement:
    return Movement(kind, points, recorded_at=T, occurred_at=T - timedelta(days=3), lots=lots, **owed)


def named(figures: list[Figure]) -> dict[str, int]:
    return {figure.name: figure.points for figure in figures}


# ---- what each kind of entry adds


def test_an_earn_issues_points_in_its_month_and_holds_them_in_its_expiry_month() -> None:
    figures = figures_of(movement(EntryType.EARN, LotPoints(DATED, 120, None), points=120))
    assert named(figures) == {"out#2028-11": 120, "issued#2026-11": 120}
    assert {figure.at for figure in figures} == {T}  # when recorded, not when the purchase occurred


def test_a_claim_credit_and_an_adjustment_credit_are_issued_points_too() -> None:
    assert named(figures_of(movement(EntryType.CLAIM_CREDIT, LotPoints(NEVER, 40, None), points=40))) == {
        "out#NEVER": 40,
        "issued#2026-11": 40,
    }
    assert named(figures_of(movement(EntryType.ADJUSTMENT, LotPoints(DATED, 5, None), points=5))) == {
        "out#2028-11": 5,
        "issued#2026-11": 5,
    }


def test_a_transfer_in_is_issued_in_the_transfer_month_and_counted_as_received() -> None:
    figures = named(figures_of(movement(EntryType.TRANSFER_IN, LotPoints(DATED, 300, None), points=300)))
    assert figures == {"out#2028-11": 300, "issued#2026-11": 300, "received#2026-11": 300}


def test_each_debit_takes_from_the_lots_it_names_under_its_own_figure() -> None:
    lots = (LotPoints(DATED, 100, None), LotPoints(OLDER, 50, None))
    for kind, figure in [
        (EntryType.REDEEM, "redeemed"),
        (EntryType.TRANSFER_OUT, "transferred"),
        (EntryType.REVERSAL, "reversed"),
    ]:
        assert named(figures_of(movement(kind, *lots, points=-150))) == {
            "out#2028-11": -100,
            f"{figure}#2026-11": 100,
            "out#2027-01": -50,
            f"{figure}#2025-01": 50,
        }, kind


def test_an_adjustment_debit_is_adjusted_points() -> None:
    assert named(figures_of(movement(EntryType.ADJUSTMENT, LotPoints(DATED, 30, None), points=-30))) == {
        "out#2028-11": -30,
        "adjusted#2026-11": 30,
    }


def test_a_dated_lot_expires_at_its_own_instant_not_when_the_run_recorded_it() -> None:
    run = Movement(
        EntryType.EXPIRY,
        -70,
        recorded_at=EXPIRES + timedelta(hours=3),
        occurred_at=EXPIRES + timedelta(minutes=5),
        lots=(LotPoints(OLDER, 50, EXPIRES), LotPoints(ACTIVITY, 20, EXPIRES - timedelta(days=90))),
    )
    figures = figures_of(run)
    assert named(figures) == {
        "out#2027-01": -50,
        "expired#2025-01": 50,
        "out#ACTIVITY": -20,
        "expired#2026-11": 20,
    }
    at = {figure.name: figure.at for figure in figures}
    assert at["expired#2025-01"] == EXPIRES
    assert at["expired#2026-11"] == run.occurred_at  # an undated lot: when the run found it due


def test_points_owed_are_added_by_returns_and_settled_by_credits_outside_the_lots() -> None:
    assert named(figures_of(movement(EntryType.REVERSAL, LotPoints(DATED, 10, None), owed_added=25))) == {
        "out#2028-11": -10,
        "reversed#2026-11": 10,
        "owed": 25,
    }
    assert named(figures_of(movement(EntryType.EARN, owed_settled=25))) == {"owed": -25}


def test_an_entry_that_moves_no_lot_and_no_owed_points_adds_nothing() -> None:
    assert figures_of(movement(EntryType.REDEEM, LotPoints(DATED, 0, None))) == []


# ---- periods


def test_an_instant_on_a_minute_boundary_belongs_to_the_minute_that_ends_there() -> None:
    boundary = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert period_start(boundary) == datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    assert period_labels(period_start(boundary))[Level.MONTH] == "2026-11"
    assert period_start(boundary + timedelta(microseconds=1)) == boundary


def test_a_report_is_exact_to_the_minute() -> None:
    assert report_instant(T) == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def test_the_periods_through_an_instant_are_whole_months_days_hours_then_minutes() -> None:
    assert periods_through(datetime(2026, 11, 24, 10, 30, tzinfo=UTC)) == (
        LabelRange(Level.MONTH, "", "2026-11", include_last=False),
        LabelRange(Level.DAY, "2026-11-", "2026-11-24", include_last=False),
        LabelRange(Level.HOUR, "2026-11-24T", "2026-11-24T10", include_last=False),
        LabelRange(Level.MINUTE, "2026-11-24T10:", "2026-11-24T10:29", include_last=True),
    )


def counted(at: datetime, as_of: datetime) -> bool:
    """Whether the period sums as of `as_of` include a change at `at` (as the store reads them)."""
    labels = period_labels(period_start(at))
    for label_range in periods_through(as_of):
        label = labels[label_range.level]
        last_ok = label < label_range.last or (label_range.include_last and label == label_range.last)
        if label > label_range.first and last_ok:
            return True
    return False


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


@given(instants, instants)
def test_a_change_counts_as_of_an_instant_exactly_when_it_took_effect_at_or_before_it(
    at: datetime, moment: datetime
) -> None:
    as_of = report_instant(moment)
    assert counted(at, as_of) == (at <= as_of)


@given(instants, st.integers(0, 3), st.sampled_from([0, 1, 59, 60, 61, 1440, 44640]))
def test_a_change_near_the_edges_of_months_days_and_hours_counts_exactly_once(
    moment: datetime, seconds: int, minutes: int
) -> None:
    as_of = report_instant(moment)
    for at in (as_of - timedelta(minutes=minutes, seconds=seconds), as_of + timedelta(minutes=minutes)):
        assert counted(at, as_of) == (at <= as_of)


def test_period_sums_add_each_change_at_every_level_and_drop_what_cancels() -> None:
    figures = [
        Figure(T, "issued#2026-11", 10),
        Figure(T + timedelta(minutes=1), "issued#2026-11", 5),
        Figure(T + timedelta(minutes=1), "out#2028-11", 5),
        Figure(T + timedelta(minutes=1), "out#2028-11", -5),
    ]
    periods = by_period(figures)
    assert periods[(Level.MONTH, "2026-11")] == {"issued#2026-11": 15}
    assert periods[(Level.MINUTE, "2026-11-24T10:30")] == {"issued#2026-11": 10}
    assert periods[(Level.MINUTE, "2026-11-24T10:31")] == {"issued#2026-11": 5}
    assert totals([{"a": 1, "b": 2}, {"a": 3}]) == {"a": 4, "b": 2}


# ---- the report


def test_the_report_sums_the_buckets_lists_months_in_order_and_computes_breakage() -> None:
    report = build_report(
        T,
        {
            "out#2028-11": 700,
            "out#2027-01": 50,
            "out#2026-10": 0,
            "out#ACTIVITY": 20,
            "out#NEVER": 30,
            "issued#2026-11": 1000,
            "redeemed#2026-11": 200,
            "expired#2026-11": 100,
            "issued#2025-01": 50,
            "owed": 12,
        },
        PointValue(Decimal("0.01"), "EUR"),
    )
    assert report.outstanding == 800
    assert report.by_expiry_month == (("2027-01", 50), ("2028-11", 700))
    assert (report.on_inactivity, report.never_expiring, report.owed) == (20, 30, 12)
    assert [month.month for month in report.by_issue_month] == ["2025-01", "2026-11"]
    november = report.by_issue_month[1]
    assert november.outstanding == 700
    assert november.breakage_rate == 0.1
    assert report.outstanding_value == Decimal("8.00")


def test_breakage_is_undefined_for_a_month_that_issued_nothing() -> None:
    month = IssueMonth(
        "2026-11", issued=0, received=0, redeemed=0, transferred=0, reversed=0, expired=0, adjusted=5
    )
    assert month.breakage_rate is None
    assert month.outstanding == -5


def test_the_report_of_nothing_is_all_zero_without_a_value() -> None:
    report = build_report(T, {})
    assert (report.outstanding, report.by_expiry_month, report.by_issue_month) == (0, (), ())
    assert report.outstanding_value is None
