"""Liability and breakage (SPEC §5, `GET /reports/liability`): pure, time passed in.

Points not yet used are a liability; points that expire unused are breakage. Both come from the
ledger alone: each entry names the lots it put points into or took points from, and a lot's id
says its month of issue and its expiry bucket (`loyalty.domain.wallet`). An entry becomes a few
signed *figures*:

- `out#<bucket>`: points held in lots of that expiry bucket (`YYYY-MM`, `ACTIVITY`, `NEVER`);
- `<figure>#<month of issue>`: `issued` (every credit into a lot: earn, claim, transfer in,
  adjustment), `received` (the part of `issued` a transfer brought), `redeemed`,
  `transferred` (sent to another member), `reversed` (taken back by a return), `expired`,
  `adjusted` (taken by an adjustment);
- `owed`: points owed after returns (added by a return, settled by a credit), outside the lots.

Figures are summed per *period* of the instant each movement took effect: a credit or a debit
when it was recorded; an expiry when its lot expired (a dated lot's `expiresAt`, midnight in the
program's zone), not when the run that wrote it came by, so the night's lag does not move points
across a month's end. Periods are UTC minutes, hours, days and months, each half-open on the
left, `(start, end]`: a movement at exactly an instant `T` on a minute boundary is in the minute
that ends at `T`. The figures as of `T` are then the sum of whole periods ending at or before `T`:
the months before, the days of the month before, the hours of the day before and the minutes of
the hour up to `T` — O(months) items whatever the size of the ledger (docs/design.md, "Liability
and breakage"). Reports are exact to the minute: an `asOf` within a minute is read as of the
minute's start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from loyalty.domain.ledger import EntryType
from loyalty.domain.wallet import ACTIVITY_BUCKET, NEVER_BUCKET, bucket_of_lot, issue_month_of_lot

MINUTE = timedelta(minutes=1)
OWED = "owed"
OUTSTANDING = "out"
# Per month of issue, in the order the report lists them.
ISSUE_FIGURES = ("issued", "received", "redeemed", "transferred", "reversed", "expired", "adjusted")
# What a debit's points are called, by the entry's type.
_DEBITS = {
    EntryType.REDEEM: "redeemed",
    EntryType.TRANSFER_OUT: "transferred",
    EntryType.REVERSAL: "reversed",
    EntryType.EXPIRY: "expired",
    EntryType.ADJUSTMENT: "adjusted",
}
_CREDITS = {EntryType.EARN, EntryType.CLAIM_CREDIT, EntryType.TRANSFER_IN, EntryType.ADJUSTMENT}


class Level(StrEnum):
    """The period sizes, as the letters the store's sort keys begin with."""

    MONTH = "M"
    DAY = "D"
    HOUR = "H"
    MINUTE = "N"


_FORMATS = {
    Level.MONTH: "%Y-%m",
    Level.DAY: "%Y-%m-%d",
    Level.HOUR: "%Y-%m-%dT%H",
    Level.MINUTE: "%Y-%m-%dT%H:%M",
}


# ---- what a ledger entry adds


@dataclass(frozen=True)
class LotPoints:
    """Points an entry put into (or took from) one lot, as its ledger entry says."""

    lot_id: str
    points: int
    expires_at: datetime | None


@dataclass(frozen=True)
class Movement:
    """A ledger entry, as much of it as the figures need."""

    type: EntryType
    points: int
    recorded_at: datetime
    occurred_at: datetime
    lots: tuple[LotPoints, ...]
    owed_added: int = 0
    owed_settled: int = 0


@dataclass(frozen=True)
class Figure:
    """One signed change to one figure, at the instant it took effect."""

    at: datetime
    name: str
    points: int


def figure_name(figure: str, month: str) -> str:
    return f"{figure}#{month}"


def figures_of(movement: Movement) -> list[Figure]:
    """The figures one ledger entry changes. Zero changes are left out."""
    figures: list[Figure] = []
    credit = movement.type in _CREDITS and (movement.type is not EntryType.ADJUSTMENT or movement.points > 0)
    for lot in movement.lots:
        points = abs(lot.points)
        if not points:
            continue
        issue_month = issue_month_of_lot(lot.lot_id)
        bucket = bucket_of_lot(lot.lot_id)
        at = effective_at(movement, lot, bucket)
        if credit:
            figures.append(Figure(at, figure_name(OUTSTANDING, bucket), points))
            figures.append(Figure(at, figure_name("issued", issue_month), points))
            if movement.type is EntryType.TRANSFER_IN:
                figures.append(Figure(at, figure_name("received", issue_month), points))
        else:
            figures.append(Figure(at, figure_name(OUTSTANDING, bucket), -points))
            figures.append(Figure(at, figure_name(_DEBITS[movement.type], issue_month), points))
    owed = movement.owed_added - movement.owed_settled
    if owed:
        figures.append(Figure(movement.recorded_at, OWED, owed))
    return figures


def effective_at(movement: Movement, lot: LotPoints, bucket: str) -> datetime:
    """When the points stopped (or started) counting: a dated lot's expiry at the instant it
    expired; anything else when the movement was recorded (an undated lot's expiry when the run
    found it due: its `occurredAt`, the run's as-of instant)."""
    if movement.type is EntryType.EXPIRY:
        dated = bucket not in (ACTIVITY_BUCKET, NEVER_BUCKET) and lot.expires_at is not None
        return lot.expires_at if dated and lot.expires_at is not None else movement.occurred_at
    return movement.recorded_at


# ---- periods


def period_start(at: datetime) -> datetime:
    """The start of the minute `(start, start + 1 min]` that holds `at` (UTC)."""
    moment = at.astimezone(UTC)
    floor = moment.replace(second=0, microsecond=0)
    return floor - MINUTE if floor == moment else floor


def period_labels(start: datetime) -> dict[Level, str]:
    """The month, day, hour and minute a minute period starting at `start` belongs to."""
    moment = start.astimezone(UTC)
    return {level: moment.strftime(pattern) for level, pattern in _FORMATS.items()}


def report_instant(as_of: datetime) -> datetime:
    """The instant a report is exact for: `as_of` to the minute (seconds dropped)."""
    return as_of.astimezone(UTC).replace(second=0, microsecond=0)


def minute_end(moment: datetime) -> datetime:
    """The end of the minute `moment` is in (itself on a boundary): the figures through it are
    everything up to `moment` when nothing has happened after it, as of now."""
    return period_start(moment) + MINUTE


@dataclass(frozen=True)
class LabelRange:
    """Periods of one level whose labels run from `first` (a prefix: the lowest label sorts after
    it) to `last`, `last` itself included or not."""

    level: Level
    first: str
    last: str
    include_last: bool


def periods_through(as_of: datetime) -> tuple[LabelRange, ...]:
    """The periods whose sums make the figures as of `as_of` (a minute boundary): every minute
    period starting before `as_of`, as whole months, days, hours and minutes."""
    last = period_labels(as_of.astimezone(UTC) - MINUTE)
    return (
        LabelRange(Level.MONTH, "", last[Level.MONTH], include_last=False),
        LabelRange(Level.DAY, last[Level.MONTH] + "-", last[Level.DAY], include_last=False),
        LabelRange(Level.HOUR, last[Level.DAY] + "T", last[Level.HOUR], include_last=False),
        LabelRange(Level.MINUTE, last[Level.HOUR] + ":", last[Level.MINUTE], include_last=True),
    )


def by_period(figures: Iterable[Figure]) -> dict[tuple[Level, str], dict[str, int]]:
    """Figures summed into every period they fall in (each change counts at all four levels).
    Changes that cancel out are left out, and so are periods left with nothing."""
    sums: dict[tuple[Level, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for figure in figures:
        for level, label in period_labels(period_start(figure.at)).items():
            sums[(level, label)][figure.name] += figure.points
    return {
        period: {name: points for name, points in changes.items() if points}
        for period, changes in sums.items()
        if any(changes.values())
    }


def totals(periods: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The figures of several periods added up."""
    summed: dict[str, int] = defaultdict(int)
    for figures in periods:
        for name, points in figures.items():
            summed[name] += points
    return dict(summed)


# ---- the report


@dataclass(frozen=True)
class PointValue:
    """What one point is worth to finance (rules, `reporting.pointValue`), in one currency."""

    amount: Decimal
    currency: str


@dataclass(frozen=True)
class IssueMonth:
    month: str
    issued: int
    received: int
    redeemed: int
    transferred: int
    reversed: int
    expired: int
    adjusted: int

    @property
    def outstanding(self) -> int:
        return self.issued - self.redeemed - self.transferred - self.reversed - self.expired - self.adjusted

    @property
    def breakage_rate(self) -> float | None:
        """Expired ÷ issued: the share of the month's points that expired unused (None before any)."""
        return round(self.expired / self.issued, 4) if self.issued else None


@dataclass(frozen=True)
class LiabilityReport:
    as_of: datetime
    outstanding: int
    by_expiry_month: tuple[tuple[str, int], ...]
    on_inactivity: int
    never_expiring: int
    owed: int
    by_issue_month: tuple[IssueMonth, ...]
    point_value: PointValue | None = None

    @property
    def outstanding_value(self) -> Decimal | None:
        if self.point_value is None:
            return None
        return (self.point_value.amount * self.outstanding).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def build_report(
    as_of: datetime, figures: Mapping[str, int], point_value: PointValue | None = None
) -> LiabilityReport:
    """The report of the figures summed as of `as_of`. Months with nothing left and nothing
    moved are left out."""
    buckets: dict[str, int] = {}
    issue: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ISSUE_FIGURES, 0))
    for name, points in figures.items():
        if name == OWED:
            continue
        figure, _, key = name.partition("#")
        if figure == OUTSTANDING:
            buckets[key] = buckets.get(key, 0) + points
        elif figure in ISSUE_FIGURES:
            issue[key][figure] += points
    months = tuple(
        IssueMonth(month=month, **counts) for month, counts in sorted(issue.items()) if any(counts.values())
    )
    return LiabilityReport(
        as_of=as_of,
        outstanding=sum(buckets.values()),
        by_expiry_month=tuple(
            (bucket, points)
            for bucket, points in sorted(buckets.items())
            if points and bucket not in (ACTIVITY_BUCKET, NEVER_BUCKET)
        ),
        on_inactivity=buckets.get(ACTIVITY_BUCKET, 0),
        never_expiring=buckets.get(NEVER_BUCKET, 0),
        owed=figures.get(OWED, 0),
        by_issue_month=months,
        point_value=point_value,
    )
