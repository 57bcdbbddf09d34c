"""Points earned by a purchase: rates, rounding, category multipliers and dated campaigns."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.earning import EarnQuote, Purchase, active_campaigns, quote_points
from loyalty.domain.errors import InvalidRequest, UnknownCurrency
from loyalty.domain.rules import ProgramRules, default_rules, parse_rules

# Paris is UTC+1 in winter (CET) and UTC+2 in summer (CEST).
WINTER_NOON = datetime(2026, 12, 10, 11, 0, tzinfo=UTC)


def rules_with(**earning: Any) -> ProgramRules:
    document = copy.deepcopy(default_rules().model_dump(by_alias=True, mode="json"))
    document["earning"].update(earning)
    return parse_rules(document)


def campaign(**fields: Any) -> dict[str, Any]:
    return {"id": "december", "startsOn": "2026-12-01", "endsOn": "2026-12-31", "multiplier": "2"} | fields


def purchase(
    amount: str = "100.00",
    currency: str = "EUR",
    occurred_at: datetime = WINTER_NOON,
    channel: str = "store",
    category: str | None = None,
) -> Purchase:
    return Purchase(Decimal(amount), currency, occurred_at, channel, category)


# --- rate and rounding --------------------------------------------------------------------------


def test_the_default_rules_give_one_point_per_whole_euro() -> None:
    quote = quote_points(default_rules(), purchase("12.99"))

    assert quote == EarnQuote(
        points=12,
        base_points=Decimal("12.99"),
        multiplier=Decimal(1),
        bonus_points=0,
        campaigns=(),
        rules_version="2026-11-default",
    )


def test_each_currency_earns_at_its_own_rate() -> None:
    rules = rules_with(currencies={"EUR": {"pointsPerUnit": "1"}, "JPY": {"pointsPerUnit": "0.0065"}})

    assert quote_points(rules, purchase("10000", currency="JPY")).points == 65


@pytest.mark.parametrize(
    ("rounding", "amount", "points"),
    [
        ("floor", "10.50", 10),
        ("nearest", "10.50", 11),
        ("ceil", "10.50", 11),
        ("floor", "10.49", 10),
        ("nearest", "10.49", 10),
        ("ceil", "10.49", 11),
        ("floor", "10.00", 10),
        ("nearest", "10.00", 10),
        ("ceil", "10.00", 10),
        ("nearest", "2.50", 3),  # half-up, not banker's rounding (which gives 2)
        ("ceil", "0.01", 1),
        ("floor", "0.99", 0),
    ],
)
def test_the_product_is_rounded_by_the_rules_rounding_mode(rounding: str, amount: str, points: int) -> None:
    assert quote_points(rules_with(rounding=rounding), purchase(amount)).points == points


def test_rounding_is_applied_once_to_the_whole_product_not_to_each_factor() -> None:
    rules = rules_with(rounding="floor", categoryMultipliers={"toys": "2"})

    # 1.90 x 2 = 3.8 → 3; flooring the base first would give 1 x 2 = 2.
    assert quote_points(rules, purchase("1.90", category="toys")).points == 3


def test_a_purchase_too_small_for_a_point_earns_zero() -> None:
    assert quote_points(default_rules(), purchase("0.50")).points == 0


# --- category multipliers -----------------------------------------------------------------------


def test_a_category_multiplier_multiplies_the_points_of_that_category() -> None:
    rules = rules_with(categoryMultipliers={"grocery": "1.5"})

    quote = quote_points(rules, purchase("40", category="grocery"))

    assert (quote.points, quote.multiplier) == (60, Decimal("1.5"))


def test_a_category_without_a_multiplier_earns_the_base_rate() -> None:
    rules = rules_with(categoryMultipliers={"grocery": "1.5"})

    assert quote_points(rules, purchase("40", category="books")).points == 40


def test_a_purchase_without_a_category_earns_the_base_rate() -> None:
    rules = rules_with(categoryMultipliers={"grocery": "1.5"})

    assert quote_points(rules, purchase("40", category=None)).points == 40


def test_a_multiplier_below_one_reduces_the_points() -> None:
    rules = rules_with(categoryMultipliers={"tobacco": "0.25"})

    assert quote_points(rules, purchase("40", category="tobacco")).points == 10


# --- campaigns ----------------------------------------------------------------------------------


def test_a_campaign_active_on_the_purchase_date_multiplies_the_points() -> None:
    quote = quote_points(rules_with(campaigns=[campaign()]), purchase("30"))

    assert (quote.points, quote.campaigns) == (60, ("december",))


def test_a_campaign_does_not_apply_outside_its_dates() -> None:
    rules = rules_with(campaigns=[campaign()])

    quote = quote_points(rules, purchase("30", occurred_at=datetime(2027, 1, 10, 12, tzinfo=UTC)))

    assert (quote.points, quote.campaigns) == (30, ())


def test_a_purchase_at_2330_paris_on_the_last_day_is_inside_the_campaign() -> None:
    last_evening = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)  # 23:30 in Paris (UTC+1)

    assert (
        quote_points(rules_with(campaigns=[campaign()]), purchase("30", occurred_at=last_evening)).points
        == 60
    )


def test_a_purchase_at_0030_paris_the_day_after_is_outside_the_campaign() -> None:
    # Still 31 December in UTC, but already 1 January in Paris: the campaign is over.
    next_morning = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)

    assert (
        quote_points(rules_with(campaigns=[campaign()]), purchase("30", occurred_at=next_morning)).points
        == 30
    )


def test_a_purchase_at_0030_paris_on_the_first_day_is_inside_the_campaign() -> None:
    first_morning = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 00:30 on 1 December in Paris

    assert (
        quote_points(rules_with(campaigns=[campaign()]), purchase("30", occurred_at=first_morning)).points
        == 60
    )


def test_a_purchase_at_2330_paris_the_day_before_is_outside_the_campaign() -> None:
    eve = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)  # 23:30 on 30 November in Paris

    assert quote_points(rules_with(campaigns=[campaign()]), purchase("30", occurred_at=eve)).points == 30


def test_campaign_dates_follow_summer_time_in_the_program_timezone() -> None:
    rules = rules_with(campaigns=[campaign(startsOn="2026-07-14", endsOn="2026-07-14")])

    # Paris is UTC+2 in July: 22:30 UTC on the 13th is 00:30 on the 14th; 22:30 UTC on the 14th is the 15th.
    inside = purchase("30", occurred_at=datetime(2026, 7, 13, 22, 30, tzinfo=UTC))
    outside = purchase("30", occurred_at=datetime(2026, 7, 14, 22, 30, tzinfo=UTC))
    assert (quote_points(rules, inside).points, quote_points(rules, outside).points) == (60, 30)


def test_a_purchase_time_given_in_another_offset_is_read_on_the_program_calendar() -> None:
    tokyo = timezone(timedelta(hours=9))
    rules = rules_with(campaigns=[campaign()])

    # 08:00 on 1 January in Tokyo is 00:00 on 1 January in Paris: outside a campaign ending 31 December.
    assert (
        quote_points(rules, purchase("30", occurred_at=datetime(2027, 1, 1, 8, 0, tzinfo=tokyo))).points == 30
    )


def test_a_campaign_restricted_to_a_channel_ignores_other_channels() -> None:
    rules = rules_with(campaigns=[campaign(channels=["online"])])

    assert quote_points(rules, purchase("30", channel="online")).points == 60
    assert quote_points(rules, purchase("30", channel="store")).points == 30


def test_a_campaign_restricted_to_categories_ignores_other_categories() -> None:
    rules = rules_with(campaigns=[campaign(categories=["toys", "games"])])

    assert quote_points(rules, purchase("30", category="games")).points == 60
    assert quote_points(rules, purchase("30", category="books")).points == 30


def test_a_campaign_restricted_to_categories_ignores_a_purchase_without_category() -> None:
    rules = rules_with(campaigns=[campaign(categories=["toys"])])

    assert quote_points(rules, purchase("30", category=None)).points == 30


def test_a_campaign_bonus_is_added_after_rounding() -> None:
    rules = rules_with(campaigns=[campaign(multiplier="1", bonusPoints=50)])

    quote = quote_points(rules, purchase("30.70"))

    assert (quote.points, quote.bonus_points) == (80, 50)


def test_active_campaigns_stack_multipliers_by_product_and_bonuses_by_sum() -> None:
    rules = rules_with(
        categoryMultipliers={"toys": "1.5"},
        campaigns=[
            campaign(id="december", multiplier="2", bonusPoints=10),
            campaign(id="toy-week", multiplier="3", bonusPoints=5, categories=["toys"]),
            campaign(id="online-only", multiplier="10", channels=["online"]),
        ],
    )

    quote = quote_points(rules, purchase("10.10", category="toys"))

    # 10.10 x 1.5 x 2 x 3 = 90.9 → 90, + 15 bonus
    assert quote == EarnQuote(
        points=105,
        base_points=Decimal("10.10"),
        multiplier=Decimal("9.0"),
        bonus_points=15,
        campaigns=("december", "toy-week"),
        rules_version="2026-11-default",
    )


def test_active_campaigns_are_listed_in_document_order() -> None:
    rules = rules_with(campaigns=[campaign(id="b"), campaign(id="a")])

    assert [c.id for c in active_campaigns(rules, purchase())] == ["b", "a"]


def test_the_quote_records_the_rules_version() -> None:
    document = copy.deepcopy(default_rules().model_dump(by_alias=True, mode="json")) | {"version": "v2"}

    assert quote_points(parse_rules(document), purchase()).rules_version == "v2"


# --- refused purchases --------------------------------------------------------------------------


def test_a_currency_the_program_does_not_earn_in_is_refused() -> None:
    with pytest.raises(UnknownCurrency) as caught:
        quote_points(default_rules(), purchase(currency="JPY"))

    assert caught.value.field == "currency"
    assert "JPY" in caught.value.reason


def test_a_currency_code_is_matched_exactly() -> None:
    with pytest.raises(UnknownCurrency):
        quote_points(default_rules(), purchase(currency="eur"))


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "NaN", "Infinity", "-Infinity"])
def test_an_amount_that_is_not_positive_is_refused(amount: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        quote_points(default_rules(), purchase(amount))

    assert caught.value.field == "amount"


def test_an_unknown_channel_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        quote_points(default_rules(), purchase(channel="phone"))

    assert caught.value.field == "channel"


def test_a_naive_purchase_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        quote_points(default_rules(), purchase(occurred_at=datetime(2026, 12, 10, 12, 0)))


# --- properties ---------------------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2)
roundings = st.sampled_from(["floor", "nearest", "ceil"])


@given(amount=amounts, rounding=roundings, bonus=st.integers(0, 1000))
def test_points_are_never_negative(amount: Decimal, rounding: str, bonus: int) -> None:
    rules = rules_with(rounding=rounding, campaigns=[campaign(multiplier="1.25", bonusPoints=bonus)])

    assert quote_points(rules, purchase(str(amount))).points >= 0


@given(a=amounts, b=amounts, rounding=roundings)
def test_spending_more_never_earns_fewer_points(a: Decimal, b: Decimal, rounding: str) -> None:
    rules = rules_with(rounding=rounding, categoryMultipliers={"toys": "1.75"})
    low, high = sorted((a, b))

    assert (
        quote_points(rules, purchase(str(low), category="toys")).points
        <= quote_points(rules, purchase(str(high), category="toys")).points
    )


@given(amount=amounts)
def test_nearest_lies_between_floor_and_ceil_which_differ_by_at_most_one(amount: Decimal) -> None:
    floor, nearest, ceil = (
        quote_points(
            rules_with(rounding=mode, categoryMultipliers={"toys": "1.3"}),
            purchase(str(amount), category="toys"),
        ).points
        for mode in ("floor", "nearest", "ceil")
    )

    assert floor <= nearest <= ceil <= floor + 1
