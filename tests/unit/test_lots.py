"""Lots: what is live, the order points are spent in, allocation of a debit, upcoming expiries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from loyalty.domain.errors import InsufficientPoints
from loyalty.domain.lots import Lot, Take, allocate, available, expiring_summary, is_live, spend_order

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)


def lot(
    lot_id: str,
    remaining: int,
    expires_at: datetime | None,
    *,
    original: int | None = None,
    earned_at: datetime = datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
) -> Lot:
    return Lot(
        lot_id=lot_id,
        original=remaining if original is None else original,
        remaining=remaining,
        earned_at=earned_at,
        expires_at=expires_at,
        source_kind="earn",
        rules_version="2026-11-default",
    )


def in_days(days: int) -> datetime:
    return NOW + timedelta(days=days)


# --- live lots ----------------------------------------------------------------------------------


def test_a_lot_with_points_left_before_its_expiry_is_live() -> None:
    assert is_live(lot("a", 10, in_days(1)), NOW)


def test_a_lot_that_never_expires_is_live() -> None:
    assert is_live(lot("a", 10, None), NOW)


def test_a_lot_is_expired_from_the_very_instant_of_its_expiry() -> None:
    assert not is_live(lot("a", 10, NOW), NOW)


def test_a_lot_is_live_until_one_microsecond_before_its_expiry() -> None:
    assert is_live(lot("a", 10, NOW), NOW - timedelta(microseconds=1))


def test_a_fully_used_lot_is_not_live() -> None:
    assert not is_live(lot("a", 0, in_days(1), original=10), NOW)


def test_the_available_balance_counts_only_live_lots() -> None:
    lots = [lot("a", 10, in_days(1)), lot("b", 20, None), lot("c", 40, in_days(-1)), lot("d", 80, NOW)]

    assert available(lots, NOW) == 30


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_live(lot("a", 10, None), datetime(2026, 6, 15, 10, 0))


# --- a lot's own consistency --------------------------------------------------------------------


@pytest.mark.parametrize(("original", "remaining"), [(10, 11), (10, -1)])
def test_a_lot_cannot_hold_more_than_its_original_points_or_fewer_than_none(
    original: int, remaining: int
) -> None:
    with pytest.raises(ValueError, match="remaining"):
        lot("a", remaining, None, original=original)


def test_a_lot_needs_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="expires_at"):
        lot("a", 1, datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="earned_at"):
        lot("a", 1, None, earned_at=datetime(2026, 1, 1))


# --- spend order --------------------------------------------------------------------------------


def test_lots_are_spent_soonest_expiry_first_and_never_expiring_last() -> None:
    lots = [lot("never", 1, None), lot("late", 1, in_days(300)), lot("soon", 1, in_days(3))]

    assert [x.lot_id for x in spend_order(lots)] == ["soon", "late", "never"]


def test_lots_expiring_together_are_spent_oldest_earned_first() -> None:
    older = lot("z-older", 1, in_days(30), earned_at=datetime(2025, 1, 1, tzinfo=UTC))
    newer = lot("a-newer", 1, in_days(30), earned_at=datetime(2025, 2, 1, tzinfo=UTC))

    assert [x.lot_id for x in spend_order([newer, older])] == ["z-older", "a-newer"]


def test_lots_earned_and_expiring_together_are_spent_in_lot_id_order() -> None:
    assert [x.lot_id for x in spend_order([lot("b", 1, None), lot("a", 1, None)])] == ["a", "b"]


def test_expiries_in_different_offsets_are_ordered_by_instant() -> None:
    paris_later = lot("paris", 1, datetime(2026, 7, 1, 1, 0, tzinfo=PARIS))  # 23:00 UTC on 30 June
    utc_sooner = lot("utc", 1, datetime(2026, 6, 30, 22, 0, tzinfo=UTC))

    assert [x.lot_id for x in spend_order([paris_later, utc_sooner])] == ["utc", "paris"]


# --- allocation ---------------------------------------------------------------------------------


def test_a_debit_takes_from_the_lot_expiring_soonest_first() -> None:
    lots = [lot("late", 100, in_days(200)), lot("soon", 30, in_days(10))]

    assert allocate(lots, 50, NOW) == [Take("soon", 30, in_days(10)), Take("late", 20, in_days(200))]


def test_a_debit_smaller_than_the_soonest_lot_takes_from_that_lot_only() -> None:
    lots = [lot("late", 100, in_days(200)), lot("soon", 30, in_days(10))]

    assert allocate(lots, 5, NOW) == [Take("soon", 5, in_days(10))]


def test_a_debit_of_the_whole_balance_empties_every_live_lot() -> None:
    lots = [lot("a", 30, in_days(10)), lot("b", 70, None)]

    assert allocate(lots, 100, NOW) == [Take("a", 30, in_days(10)), Take("b", 70, None)]


def test_never_expiring_points_are_taken_last() -> None:
    lots = [lot("never", 500, None), lot("dated", 10, in_days(700))]

    assert [t.lot_id for t in allocate(lots, 15, NOW)] == ["dated", "never"]


def test_expired_and_used_lots_are_skipped() -> None:
    lots = [
        lot("expired", 100, in_days(-1)),
        lot("expiring-now", 100, NOW),
        lot("used", 0, in_days(1), original=50),
        lot("live", 100, in_days(5)),
    ]

    assert allocate(lots, 60, NOW) == [Take("live", 60, in_days(5))]


def test_a_debit_larger_than_the_live_balance_is_refused_with_both_amounts() -> None:
    lots = [lot("a", 30, in_days(10)), lot("expired", 500, in_days(-10))]

    with pytest.raises(InsufficientPoints) as caught:
        allocate(lots, 31, NOW)

    assert caught.value.details == {"available": 30, "requested": 31}


def test_a_debit_from_no_lots_is_refused_as_insufficient() -> None:
    with pytest.raises(InsufficientPoints):
        allocate([], 1, NOW)


@pytest.mark.parametrize("points", [0, -5, True, 2.5])
def test_a_debit_must_be_a_positive_whole_number_of_points(points: int) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        allocate([lot("a", 10, None)], points, NOW)


def test_lots_sharing_an_id_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        allocate([lot("a", 10, None), lot("a", 5, in_days(1))], 3, NOW)


def test_a_take_carries_the_expiry_of_its_lot() -> None:
    (take,) = allocate([lot("a", 10, in_days(42))], 4, NOW)

    assert take.expires_at == in_days(42)


# --- upcoming expiries --------------------------------------------------------------------------


def test_the_summary_gives_points_per_expiry_soonest_first_with_the_local_expiry_date() -> None:
    end_of_30_june = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # midnight starting 1 July in Paris
    end_of_31_dec = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # midnight starting 1 January in Paris
    lots = [lot("a", 10, end_of_31_dec), lot("b", 20, end_of_30_june), lot("c", 5, end_of_31_dec)]

    assert expiring_summary(lots, NOW, PARIS) == [
        (date(2026, 6, 30), end_of_30_june, 20),
        (date(2026, 12, 31), end_of_31_dec, 15),
    ]


def test_the_summary_leaves_out_never_expiring_expired_and_used_lots() -> None:
    lots = [
        lot("never", 10, None),
        lot("expired", 10, NOW),
        lot("used", 0, in_days(3), original=10),
        lot("live", 7, in_days(3)),
    ]

    assert expiring_summary(lots, NOW, PARIS) == [
        ((in_days(3) - timedelta(microseconds=1)).date(), in_days(3), 7)
    ]


def test_the_summary_merges_one_instant_written_in_different_offsets_and_reports_it_in_utc() -> None:
    instant = datetime(2026, 9, 30, 22, 0, tzinfo=UTC)
    lots = [lot("a", 1, instant), lot("b", 2, instant.astimezone(PARIS))]

    ((day, expires_at, points),) = expiring_summary(lots, NOW, PARIS)

    assert (day, expires_at, points) == (date(2026, 9, 30), instant, 3)
    assert expires_at.tzinfo is UTC


def test_the_summary_of_no_lots_is_empty() -> None:
    assert expiring_summary([], NOW, PARIS) == []


# --- properties ---------------------------------------------------------------------------------


@st.composite
def wallets(draw: st.DrawFn) -> list[Lot]:
    count = draw(st.integers(0, 12))
    result = []
    for index in range(count):
        original = draw(st.integers(1, 500))
        expires = draw(st.one_of(st.none(), st.integers(-30, 30).map(in_days)))
        result.append(
            lot(
                f"lot{index:02d}",
                draw(st.integers(0, original)),
                expires,
                original=original,
                earned_at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 1000))),
            )
        )
    return result


def spend(lots: list[Lot], takes: list[Take]) -> list[Lot]:
    taken = {take.lot_id: take.points for take in takes}
    return [replace(x, remaining=x.remaining - taken.get(x.lot_id, 0)) for x in lots]


@given(lots=wallets(), data=st.data())
def test_an_allocation_takes_exactly_the_points_without_over_taking_a_lot(
    lots: list[Lot], data: st.DataObject
) -> None:
    balance = available(lots, NOW)
    points = data.draw(st.integers(1, balance + 50))

    if points > balance:
        with pytest.raises(InsufficientPoints):
            allocate(lots, points, NOW)
        return
    takes = allocate(lots, points, NOW)

    by_id = {x.lot_id: x for x in lots}
    assert sum(take.points for take in takes) == points
    assert len({take.lot_id for take in takes}) == len(takes)
    for take in takes:
        assert 0 < take.points <= by_id[take.lot_id].remaining
        assert is_live(by_id[take.lot_id], NOW)
        assert take.expires_at == by_id[take.lot_id].expires_at


@given(lots=wallets(), data=st.data())
def test_an_allocation_lowers_the_available_balance_by_the_points(
    lots: list[Lot], data: st.DataObject
) -> None:
    balance = available(lots, NOW)
    assume(balance > 0)
    points = data.draw(st.integers(1, balance))

    after = spend(lots, allocate(lots, points, NOW))

    assert available(after, NOW) == balance - points


@given(lots=wallets(), data=st.data())
def test_an_allocation_never_leaves_a_sooner_expiring_lot_untouched_while_a_later_one_is_used(
    lots: list[Lot], data: st.DataObject
) -> None:
    balance = available(lots, NOW)
    assume(balance > 0)
    takes = allocate(lots, data.draw(st.integers(1, balance)), NOW)

    after = {x.lot_id: x for x in spend(lots, takes)}
    order = [x.lot_id for x in spend_order(lots) if is_live(x, NOW)]
    used = [lot_id for lot_id in order if lot_id in {take.lot_id for take in takes}]
    # Every lot before the last one used is emptied (points come from the soonest expiries first).
    last_used = order.index(used[-1])
    assert all(after[lot_id].remaining == 0 for lot_id in order[:last_used])
    assert [take.lot_id for take in takes] == used


@given(lots=wallets())
def test_the_upcoming_expiries_add_up_to_the_live_dated_points(lots: list[Lot]) -> None:
    summary = expiring_summary(lots, NOW, PARIS)

    dated = sum(x.remaining for x in lots if is_live(x, NOW) and x.expires_at is not None)
    assert sum(points for _, _, points in summary) == dated
    assert [expires_at for _, expires_at, _ in summary] == sorted(
        {expires_at for _, expires_at, _ in summary}
    )
