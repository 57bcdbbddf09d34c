"""The check of a day's run: did the expiry (or reminder) run started before it complete?

A second schedule per kind (template.yaml, `ExpiryCheckSchedule`, `ReminderCheckSchedule`) invokes
the run's start function a few hours after the run with `{"check": "<the check's instant>"}`. The
check looks at the runs of that kind whose as-of instant falls in the `WINDOW` before it (a run a
day, so the day's run and no other), and publishes `RunsIncomplete` (dimension `kind`): 0 when one
of the latest runs completed, 1 when none did or there is no run at all. An alarm per kind fires
on 1 (docs/deploy.md, "What the alarms watch" and "Checking a run").

`assess` is the rule, pure; `check_run` reads the runs and assesses them; the start function's
handler (`runs.handlers.check`) publishes the metric and logs the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from loyalty.runs.jobs import RunKind
from loyalty.store import runs
from loyalty.timefmt import format_instant

# Runs are daily: the day's run is the one whose as-of instant is within a day before the check.
WINDOW = timedelta(hours=24)
METRIC = "RunsIncomplete"


class Verdict(StrEnum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"  # found, and either not fanned out or with members not done
    MISSING = "missing"  # no run of this kind in the window: the schedule did not start one


@dataclass(frozen=True)
class RunCheck:
    kind: RunKind
    checked_at: datetime
    verdict: Verdict
    run_id: str | None = None
    as_of: datetime | None = None
    shards: int = 0
    shards_queued: int = 0
    members_queued: int = 0
    members_done: int = 0
    member_failures: int = 0

    @property
    def incomplete(self) -> int:
        """The metric's value: 1 when the day's run did not complete (or never started), else 0."""
        return 0 if self.verdict is Verdict.COMPLETE else 1

    def summary(self) -> dict[str, object]:
        """What the check answers and logs: ids, instants and counts, no member data."""
        run: dict[str, object] | None = None
        if self.run_id is not None:
            run = {
                "runId": self.run_id,
                "asOf": format_instant(self.as_of) if self.as_of else None,
                "shards": self.shards,
                "shardsQueued": self.shards_queued,
                "membersQueued": self.members_queued,
                "membersDone": self.members_done,
                "memberFailures": self.member_failures,
            }
        return {
            "check": str(self.kind),
            "checkedAt": format_instant(self.checked_at),
            "verdict": str(self.verdict),
            METRIC: self.incomplete,
            "run": run,
        }


def assess(kind: RunKind, checked_at: datetime, found: Sequence[runs.ListedRun]) -> RunCheck:
    """The verdict on the day's run of `kind`, from the runs listed in the window before
    `checked_at` (any order). The day's run is the latest as-of instant found; several runs of that
    instant (a retried schedule, a replay) count as complete when one of them is: each does the
    whole day's work. Otherwise the most advanced of them is reported. A listed run whose record is
    gone counts as not complete."""
    if not found:
        return RunCheck(kind, checked_at, Verdict.MISSING)
    latest = max(run.as_of for run in found)
    candidates = [run for run in found if run.as_of == latest]
    complete = [run for run in candidates if run.record is not None and run.record.complete]

    def progress(run: runs.ListedRun) -> tuple[int, int, int, str]:
        record = run.record
        if record is None:
            return (-1, -1, -1, run.run_id)
        return (int(record.fanned_out), record.shards_queued, record.members_done, run.run_id)

    chosen = max(complete or candidates, key=progress)
    record = chosen.record
    return RunCheck(
        kind,
        checked_at,
        Verdict.COMPLETE if complete else Verdict.INCOMPLETE,
        run_id=chosen.run_id,
        as_of=chosen.as_of,
        shards=record.shards if record else 0,
        shards_queued=record.shards_queued if record else 0,
        members_queued=record.members_queued if record else 0,
        members_done=record.members_done if record else 0,
        member_failures=record.member_failures if record else 0,
    )


def check_run(kind: RunKind, checked_at: datetime) -> RunCheck:
    """Read the runs of `kind` in the `WINDOW` before `checked_at` and assess the day's run."""
    found = runs.runs_between(str(kind), checked_at - WINDOW, checked_at)
    return assess(kind, checked_at, found)
