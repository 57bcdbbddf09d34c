"""The two scheduled runs and what each does for one member (docs/design.md, "Scheduled runs").

- `expiry`: every lot due at the as-of instant is expired (`store.expiring.expire_member`: one
  transaction per member, exactly once).
- `reminders`: the member gets the reminder email due at the as-of instant, if any
  (`store.reminders.remind_member`: at most once per (expiry date, window)).

Both find their members through the ByNextExpiry index, up to `horizon`: the as-of instant for
expiry, the end of the largest reminder window for reminders.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from loyalty.domain.reminders import reminder_horizon
from loyalty.domain.rules import ProgramRules

Counts = dict[str, int]


class RunKind(StrEnum):
    EXPIRY = "expiry"
    REMINDERS = "reminders"


class RetryLater(Exception):
    """The member's step could not be done now and must be tried again later (SES throttled or
    unavailable with nothing recorded): its message fails, and SQS delivers it again."""

    def __init__(self, member_id: str, reason: str) -> None:
        super().__init__(f"member {member_id}: {reason}, to be retried")
        self.reason = reason


def horizon(kind: RunKind, as_of: datetime, rules: ProgramRules) -> datetime:
    """The members a run visits: those whose next expiry is at or before this instant."""
    if kind is RunKind.EXPIRY:
        return as_of
    return reminder_horizon(as_of, rules)


def process_member(
    kind: RunKind, member_id: str, as_of: datetime, *, rules: ProgramRules, now: datetime
) -> Counts:
    """Do the run's work for one member; the figures it adds to the run's record."""
    if kind is RunKind.EXPIRY:
        return _expire(member_id, as_of, rules=rules, now=now)
    return _remind(member_id, as_of, rules=rules, now=now)


def _expire(member_id: str, as_of: datetime, *, rules: ProgramRules, now: datetime) -> Counts:
    from loyalty.store.expiring import expire_member

    result = expire_member(member_id, as_of, rules=rules, now=now)
    if result is None:
        return {"membersUnchanged": 1}
    return {
        "membersExpired": 1,
        "lotsExpired": len(result.lots),
        "pointsExpired": result.points,
        "ledgerEntries": len(result.entry_ids),
    }


def _remind(member_id: str, as_of: datetime, *, rules: ProgramRules, now: datetime) -> Counts:
    from loyalty.store.reminders import ReminderStatus, remind_member

    outcome = remind_member(member_id, as_of, rules=rules, now=now)
    if outcome.retry_later:
        raise RetryLater(member_id, outcome.error or "email not sent")
    counts: Counts = {"emailsUnconfirmed": 1} if outcome.unconfirmed else {}
    if outcome.status is ReminderStatus.SENT:
        counts["emailsSent"] = 1
    elif outcome.status is ReminderStatus.SKIPPED:
        counts["emailsSkipped"] = 1
        counts[f"skipped.{outcome.reason}"] = 1
    else:
        counts["emailsFailed"] = 1
        counts[f"failed.{outcome.error}"] = 1
    return counts
