"""The check of a day's run (issue #9, observability): which run is the day's, and whether it
completed; `RunsIncomplete` is 1 unless it did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loyalty.runs.check import WINDOW, Verdict, assess
from loyalty.runs.jobs import RunKind
from loyalty.store.keys import run_index_range, run_index_sk
from loyalty.store.runs import ListedRun, RunRecord
from loyalty.timefmt import format_instant

AS_OF = datetime(2028, 11, 30, 23, 5, tzinfo=UTC)
CHECKED_AT = AS_OF + timedelta(hours=4)


def record(run_id: str, *, shards_queued: int = 4, queued: int = 10, done: int = 10) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        kind="expiry",
        as_of=AS_OF,
        started_at=AS_OF,
        shards=4,
        shards_queued=shards_queued,
        members_queued=queued,
        messages_queued=5,
        members_done=done,
        member_failures=0,
    )


def listed(run: RunRecord | None, run_id: str = "run_A", as_of: datetime = AS_OF) -> ListedRun:
    return ListedRun(run_id, as_of, run)


def test_a_run_fanned_out_with_every_member_done_is_complete_and_reports_zero() -> None:
    check = assess(RunKind.EXPIRY, CHECKED_AT, [listed(record("run_A"))])

    assert check.verdict is Verdict.COMPLETE and check.incomplete == 0
    assert check.summary()["run"] == {
        "runId": "run_A",
        "asOf": "2028-11-30T23:05:00.000Z",
        "shards": 4,
        "shardsQueued": 4,
        "membersQueued": 10,
        "membersDone": 10,
        "memberFailures": 0,
    }


def test_a_run_with_members_not_done_is_incomplete_and_reports_one() -> None:
    check = assess(RunKind.EXPIRY, CHECKED_AT, [listed(record("run_A", done=7))])

    assert (check.verdict, check.incomplete, check.members_done) == (Verdict.INCOMPLETE, 1, 7)


def test_a_run_whose_shards_were_not_all_paged_is_incomplete_even_with_nothing_queued_yet() -> None:
    check = assess(RunKind.EXPIRY, CHECKED_AT, [listed(record("run_A", shards_queued=3, queued=0, done=0))])

    assert check.verdict is Verdict.INCOMPLETE


def test_a_run_with_no_member_due_is_complete_once_every_shard_was_paged() -> None:
    check = assess(RunKind.EXPIRY, CHECKED_AT, [listed(record("run_A", queued=0, done=0))])

    assert check.verdict is Verdict.COMPLETE


def test_no_run_at_all_is_missing_and_reports_one() -> None:
    check = assess(RunKind.REMINDERS, CHECKED_AT, [])

    assert (check.verdict, check.incomplete, check.run_id) == (Verdict.MISSING, 1, None)
    assert check.summary() == {
        "check": "reminders",
        "checkedAt": "2028-12-01T03:05:00.000Z",
        "verdict": "missing",
        "RunsIncomplete": 1,
        "run": None,
    }


def test_a_run_listed_whose_record_is_gone_is_incomplete() -> None:
    check = assess(RunKind.EXPIRY, CHECKED_AT, [listed(None)])

    assert (check.verdict, check.run_id, check.incomplete) == (Verdict.INCOMPLETE, "run_A", 1)


def test_a_retried_start_that_completed_makes_the_day_complete_despite_the_stuck_first_one() -> None:
    # Given the schedule's first attempt, which never fanned out, and its retry, which completed
    stuck = listed(record("run_A", shards_queued=0, queued=0, done=0), "run_A")
    retried = listed(record("run_B"), "run_B")

    check = assess(RunKind.EXPIRY, CHECKED_AT, [stuck, retried])

    assert (check.verdict, check.run_id) == (Verdict.COMPLETE, "run_B")


def test_the_day_is_the_latest_as_of_a_complete_older_run_does_not_hide_a_stuck_newer_one() -> None:
    older = listed(record("run_A"), "run_A", AS_OF - timedelta(hours=20))
    newer = listed(record("run_B", done=3), "run_B")

    check = assess(RunKind.EXPIRY, CHECKED_AT, [older, newer])

    assert (check.verdict, check.run_id) == (Verdict.INCOMPLETE, "run_B")


def test_of_several_stuck_runs_of_the_day_the_most_advanced_is_reported() -> None:
    never_paged = listed(record("run_A", shards_queued=0, queued=0, done=0), "run_A")
    halfway = listed(record("run_B", done=5), "run_B")

    check = assess(RunKind.EXPIRY, CHECKED_AT, [halfway, never_paged])

    assert (check.verdict, check.run_id, check.members_done) == (Verdict.INCOMPLETE, "run_B", 5)


def test_the_index_range_holds_the_runs_of_the_window_and_no_other() -> None:
    # Given runs listed at the window's two ends, and just outside them
    since, until = CHECKED_AT - WINDOW, CHECKED_AT
    key_range = run_index_range(format_instant(since), format_instant(until))

    def inside(at: datetime) -> bool:
        sort_key = run_index_sk(format_instant(at), "run_01ZZZZZZZZZZZZZZZZZZZZZZZZ")
        return key_range.first <= sort_key <= key_range.last

    # Then the range is inclusive at both ends, to the millisecond
    assert inside(since) and inside(until) and inside(AS_OF)
    assert not inside(since - timedelta(milliseconds=1)) and not inside(until + timedelta(milliseconds=1))
