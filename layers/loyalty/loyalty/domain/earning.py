"""How many points a purchase earns under the program rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import get_args

from loyalty.domain.errors import InvalidRequest, UnknownCurrency
from loyalty.domain.rules import Campaign, Channel, ProgramRules

__all__ = ["CHANNELS", "EarnQuote", "Purchase", "active_campaigns", "quote_points", "round_points"]

CHANNELS: tuple[str, ...] = get_args(Channel)

_ROUNDING = {"floor": ROUND_FLOOR, "nearest": ROUND_HALF_UP, "ceil": ROUND_CEILING}


def round_points(value: Decimal, rounding: str) -> int:
    """`value` rounded to whole points by the rules' rounding mode: `floor`, `nearest` (half up)
    or `ceil` (the one rounding of `quote_points`; a partial return's points are rounded so too)."""
    return int(value.to_integral_value(rounding=_ROUNDING[rounding]))


@dataclass(frozen=True)
class Purchase:
    """A purchase reported by a partner: money spent, when (aware), where and on what."""

    amount: Decimal
    currency: str
    occurred_at: datetime
    channel: str
    category: str | None = None


@dataclass(frozen=True)
class EarnQuote:
    """The points a purchase earns and how: `points = round(base_points * multiplier) + bonus_points`."""

    points: int
    base_points: Decimal
    multiplier: Decimal
    bonus_points: int
    campaigns: tuple[str, ...]
    rules_version: str


def active_campaigns(rules: ProgramRules, purchase: Purchase) -> tuple[Campaign, ...]:
    """The campaigns that apply to a purchase: active on its local date in the program timezone
    (both ends inclusive), and matching its channel and category when the campaign restricts them.
    A campaign restricted to categories never applies to a purchase without a category."""
    if purchase.occurred_at.tzinfo is None or purchase.occurred_at.utcoffset() is None:
        raise ValueError("occurred_at must be a timezone-aware datetime")
    local_date = purchase.occurred_at.astimezone(rules.tz).date()
    return tuple(
        campaign
        for campaign in rules.earning.campaigns
        if campaign.starts_on <= local_date <= campaign.ends_on
        and (campaign.channels is None or purchase.channel in campaign.channels)
        and (campaign.categories is None or purchase.category in campaign.categories)
    )


def quote_points(rules: ProgramRules, purchase: Purchase) -> EarnQuote:
    """Points earned by a purchase.

    points = round(amount * pointsPerUnit[currency] * categoryMultiplier * product of campaign
             multipliers) + sum of campaign bonusPoints,
    over the campaigns active on the purchase's local date that match its channel and category.
    The product is rounded once, by the rules' rounding mode (floor, nearest half-up, or ceil).
    A category without a multiplier counts as 1. The result is never negative.

    Raises `UnknownCurrency` for a currency the program does not earn in, `InvalidRequest` for a
    non-positive amount or an unknown channel, `ValueError` for a naive `occurred_at`.
    """
    if not purchase.amount.is_finite() or purchase.amount <= 0:
        raise InvalidRequest("amount", "must be a positive amount")
    if purchase.channel not in CHANNELS:
        raise InvalidRequest("channel", f"must be one of {', '.join(CHANNELS)}")
    rate = rules.earning.currencies.get(purchase.currency)
    if rate is None:
        raise UnknownCurrency(purchase.currency)
    campaigns = active_campaigns(rules, purchase)

    # Enough precision that no realistic amount is rounded before the one rounding the rules define.
    with localcontext() as ctx:
        ctx.prec = 60
        base_points = purchase.amount * rate.points_per_unit
        multiplier = Decimal(1)
        if purchase.category is not None:
            multiplier = rules.earning.category_multipliers.get(purchase.category, multiplier)
        for campaign in campaigns:
            multiplier *= campaign.multiplier
        earned = (base_points * multiplier).to_integral_value(rounding=_ROUNDING[rules.earning.rounding])
    bonus_points = sum(campaign.bonus_points for campaign in campaigns)
    return EarnQuote(
        points=max(0, int(earned) + bonus_points),
        base_points=base_points,
        multiplier=multiplier,
        bonus_points=bonus_points,
        campaigns=tuple(campaign.id for campaign in campaigns),
        rules_version=rules.version,
    )
