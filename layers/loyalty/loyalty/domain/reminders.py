"""Expiry reminders: which member is emailed, when, and about which dates. Pure: time passed in
(docs/design.md, "Reminders"; SPEC §4 invariant 6, §6).

The rule, in local dates of the program timezone:

- A **window** is a number of days before an expiry date (`rules.reminders.days_before`, default
  30 and 7). An expiry date `d` is inside window `w` on local day `t` when `0 <= d - t <= w` and
  its points are still live. The narrowest window is the **last chance**.
- A date is **pending** when it has not been reminded in the narrowest window that holds it
  today. An email covers every pending date at once (one row per date, its points) and records
  the key `(date, window)` for every window holding the date that was not recorded yet: a date
  mentioned 5 days before its expiry is thereby reminded in the 30-day window too, and is never
  mentioned twice for one window (invariant 6).
- **Spacing**: at most one email per member every `min_days_between` local days (default 7).
  When a pending date is new to the last-chance window, the spacing is the narrowest window
  instead, if that is shorter. A date held when it enters the last-chance window is then always
  reminded in it with 1 to `w` days of use left. With the defaults the two spacings are equal:
  a daily shopper gets one email a week, a monthly shopper two per expiry date.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import NamedTuple

from loyalty.domain.expiry import expires_at, follows_activity, last_day
from loyalty.domain.rules import ProgramRules

__all__ = [
    "ReminderKey",
    "ReminderPlan",
    "ReminderRow",
    "SentReminder",
    "SimulationFigures",
    "plan_reminder",
    "reminder_horizon",
    "simulate_shopper",
]


def reminder_horizon(as_of: datetime, rules: ProgramRules) -> datetime:
    """The latest expiry instant a reminder at `as_of` can mention: the end of the local day
    `largest window` days after the as-of date (expiry instants are local midnights). The daily
    run lists the members whose next expiry is at or before it; no window: `as_of` itself."""
    _require_aware("as_of", as_of)
    windows = rules.reminders.days_before
    if not windows:
        return as_of
    last = as_of.astimezone(rules.tz).date() + timedelta(days=max(windows) + 1)
    return datetime.combine(last, time.min, tzinfo=rules.tz)


class ReminderKey(NamedTuple):
    """One (expiry date, window) a member was reminded of: a later conditional write records it
    per member, so that no second email is ever sent for it (invariant 6)."""

    expires_on: date
    window: int


@dataclass(frozen=True)
class ReminderRow:
    """One line of a reminder email: `points` usable until the end of local day `expires_on`;
    `window` is the narrowest window holding that date on the day of the email."""

    expires_on: date
    points: int
    window: int


@dataclass(frozen=True)
class ReminderPlan:
    """One email to send: its `rows` (soonest first) and the `keys` to record with it.

    `window` is the narrowest window of any row (the email's urgency: the last-chance window when
    a row is in it); `last_chance` says whether a row is new to the last-chance window;
    `overrides_spacing` whether the email goes out inside `min_days_between` for that reason."""

    window: int
    rows: tuple[ReminderRow, ...]
    keys: tuple[ReminderKey, ...]
    last_chance: bool
    overrides_spacing: bool

    @property
    def points(self) -> int:
        """The points the email tells about."""
        return sum(row.points for row in self.rows)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _points_by_date(expiring: Iterable[tuple[datetime, int]], as_of: datetime, tz: tzinfo) -> dict[date, int]:
    totals: dict[date, int] = {}
    for instant, points in expiring:
        _require_aware("expires_at", instant)
        if points < 0:
            raise ValueError(f"points expiring at {instant.isoformat()} must not be negative ({points})")
        # An instant at or before as_of is expired already (the expiry run will take it): not live.
        if points and instant > as_of:
            day = last_day(instant, tz)
            totals[day] = totals.get(day, 0) + points
    return totals


def plan_reminder(
    as_of: datetime,
    rules: ProgramRules,
    *,
    expiring: Iterable[tuple[datetime, int]],
    reminded: Collection[tuple[date, int]],
    last_reminded_at: datetime | None,
) -> ReminderPlan | None:
    """The reminder email a member gets at `as_of`, or None (nothing pending, or too soon).

    - `expiring`: the member's points per expiry instant, `(expires_at, points)` (from
      `lots.expiring_summary`, or any source; instants sharing a local date are summed, instants
      at or before `as_of` are expired and left out).
    - `reminded`: the `(expiry date, window)` keys recorded by earlier emails.
    - `last_reminded_at`: when the member was last emailed a reminder (None: never).

    Windows and spacing are counted in local days of the program timezone (module docstring):
    DST changes move no boundary. The plan covers every pending date; its `keys` are exactly
    the keys to record with it, none of them in `reminded`. Deterministic: a run replayed with
    the same inputs plans the same email, and once its keys and time are recorded, nothing.
    """
    _require_aware("as_of", as_of)
    windows = rules.reminders.days_before  # largest first
    if not windows:
        return None
    tz = rules.tz
    today = as_of.astimezone(tz).date()
    last_chance = windows[-1]

    rows: list[ReminderRow] = []
    keys: list[ReminderKey] = []
    new_to_last_chance = False
    for day, points in sorted(_points_by_date(expiring, as_of, tz).items()):
        left = (day - today).days
        holding = [w for w in windows if left <= w]
        if not holding or (day, holding[-1]) in reminded:
            continue  # outside every window, or already reminded in its narrowest one
        rows.append(ReminderRow(day, points, holding[-1]))
        keys.extend(ReminderKey(day, w) for w in holding if (day, w) not in reminded)
        new_to_last_chance = new_to_last_chance or holding[-1] == last_chance
    if not rows:
        return None

    spacing = rules.reminders.min_days_between
    overrides = False
    if last_reminded_at is not None:
        _require_aware("last_reminded_at", last_reminded_at)
        elapsed = (today - last_reminded_at.astimezone(tz).date()).days
        if elapsed < spacing:
            if not (new_to_last_chance and elapsed >= last_chance):
                return None
            overrides = True
    return ReminderPlan(
        window=min(row.window for row in rows),
        rows=tuple(rows),
        keys=tuple(keys),
        last_chance=new_to_last_chance,
        overrides_spacing=overrides,
    )


# ---- simulation: how many emails a shopper gets (tests and the bench)


@dataclass(frozen=True)
class SentReminder:
    """One email of a simulation: the local day it went out and its plan."""

    sent_on: date
    plan: ReminderPlan


@dataclass(frozen=True)
class SimulationFigures:
    """What one member got over the simulated days (`simulate_shopper`).

    `expiry_dates`: the expiry dates inside the period on which the member still had points;
    `reminded_before_expiry` / `reminded_last_chance`: how many of those were in an email sent
    before they expired / in one where they were in the last-chance window; `least_days_left`:
    the fewest days of use left when the last-chance row went out, over the dates that entered
    that window during the period (the first run also finds dates already in it); `bound`: the most
    emails the spacing allows, `ceil(days / min_days_between)` plus the overrides."""

    days: int
    emails: int
    overrides: int
    bound: int
    expiry_dates: int
    reminded_before_expiry: int
    reminded_last_chance: int
    least_days_left: int | None
    largest_email_rows: int
    sent: tuple[SentReminder, ...] = field(repr=False)

    @property
    def emails_per_quarter(self) -> float:
        """Emails scaled to a 91-day quarter."""
        return self.emails * 91 / self.days


def simulate_shopper(
    rules: ProgramRules,
    *,
    shop_every_days: int,
    start: date,
    days: int = 91,
    history_days: int = 3 * 366,
    points_per_purchase: int = 10,
    shop_at: time = time(12, 0),
    run_at: time = time(6, 0),
) -> SimulationFigures:
    """Run the daily reminder job for one member over `days` local days from `start`.

    The member shops every `shop_every_days` days, at `shop_at` local time, from `history_days`
    before `start` to the end, and never spends; each purchase earns `points_per_purchase` points
    expiring under the rules' policy (with activity on every purchase). The job runs every local
    day at `run_at`; each email's keys and time are recorded as the store will. Pure: the same
    arguments give the same figures.
    """
    tz = rules.tz
    first = start - timedelta(days=history_days)
    end = start + timedelta(days=days)  # exclusive
    purchases = [
        datetime.combine(first + timedelta(days=n), shop_at, tzinfo=tz)
        for n in range(0, (end - first).days, shop_every_days)
    ]
    enrolled_at = purchases[0]

    moves = follows_activity(rules)  # inactivity: every lot's expiry follows the last purchase
    fixed: dict[datetime, datetime | None] = {}
    if not moves:  # each lot's expiry is known once earned: compute it once
        fixed = {
            p: expires_at(rules, earned_at=p, enrolled_at=enrolled_at, last_activity_at=p) for p in purchases
        }

    reminded: set[ReminderKey] = set()
    last_reminded_at: datetime | None = None
    sent: list[SentReminder] = []
    expiring_today: set[date] = set()  # dates in the period with points left on their last day
    for n in range(days):
        today = start + timedelta(days=n)
        as_of = datetime.combine(today, run_at, tzinfo=tz)
        earned = [p for p in purchases if p <= as_of]
        expiring: list[tuple[datetime, int]] = []
        for earned_at in earned:
            instant = (
                fixed[earned_at]
                if not moves
                else expires_at(
                    rules, earned_at=earned_at, enrolled_at=enrolled_at, last_activity_at=earned[-1]
                )
            )
            if instant is not None:
                expiring.append((instant, points_per_purchase))
                if instant > as_of and last_day(instant, tz) == today:
                    expiring_today.add(today)
        plan = plan_reminder(
            as_of, rules, expiring=expiring, reminded=reminded, last_reminded_at=last_reminded_at
        )
        if plan is not None:
            reminded.update(plan.keys)
            last_reminded_at = as_of
            sent.append(SentReminder(today, plan))

    before: set[date] = set()
    last_chance: set[date] = set()
    least: int | None = None
    window = rules.reminders.days_before[-1] if rules.reminders.days_before else None
    for email in sent:
        for row in email.plan.rows:
            if row.expires_on in expiring_today and email.sent_on <= row.expires_on:
                before.add(row.expires_on)
                if row.window == window:
                    last_chance.add(row.expires_on)
                    if row.expires_on - timedelta(days=row.window) >= start:  # entered in the period
                        left = (row.expires_on - email.sent_on).days
                        least = left if least is None else min(least, left)
    overrides = sum(1 for email in sent if email.plan.overrides_spacing)
    return SimulationFigures(
        days=days,
        emails=len(sent),
        overrides=overrides,
        bound=math.ceil(days / rules.reminders.min_days_between) + overrides,
        expiry_dates=len(expiring_today),
        reminded_before_expiry=len(before),
        reminded_last_chance=len(last_chance),
        least_days_left=least,
        largest_email_rows=max((len(email.plan.rows) for email in sent), default=0),
        sent=tuple(sent),
    )
