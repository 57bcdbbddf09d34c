"""`python -m devtools.local run expiry|reminders --at …` against the real application in the local
mode: the run starts from the template's schedule, the local SQS poller feeds the workers, and the
command follows the run's record to its summary (issue #8, "Local mode and tools")."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools import REPO_ROOT
from devtools.run_command import check_line, follow, progress_bar, summary_lines
from tests.local_mode import running_local_mode

RUN = [sys.executable, "-m", "devtools.local", "run"]


def test_the_progress_bar_fills_with_the_members_done() -> None:
    assert progress_bar(0, 4, width=8) == "[--------] 0/4 members"
    assert progress_bar(1, 4, width=8) == "[##------] 1/4 members"
    assert progress_bar(1_000, 1_000, width=8) == "[########] 1,000/1,000 members"
    assert progress_bar(0, 0, width=8) == "[########] 0/0 members"  # nothing to do is done


def test_the_check_line_says_the_verdict_and_the_runs_progress_or_that_there_was_none() -> None:
    run = {"runId": "run_1", "asOf": "2028-12-01T03:00:00.000Z", "shards": 64, "shardsQueued": 64}
    run |= {"membersQueued": 1200, "membersDone": 1100, "memberFailures": 3}
    verdict = {
        "check": "expiry",
        "checkedAt": "2028-12-01T07:00:00.000Z",
        "verdict": "incomplete",
        "run": run,
    }

    assert check_line("expiry", verdict) == (
        "expiry run run_1 as of 2028-12-01T03:00:00.000Z: incomplete"
        " (1,100 of 1,200 members done, 64 of 64 shards paged, 3 member failures)"
    )
    assert check_line("expiry", {**verdict, "verdict": "missing", "run": None}) == (
        "expiry run: missing (no run in the 24 hours before 2028-12-01T07:00:00.000Z)"
    )


def test_the_summary_names_the_expiry_figures_and_the_emails_by_outcome() -> None:
    record: dict[str, Any] = {
        "run_id": "run_1",
        "as_of": "2028-12-01 03:00:00+00:00",
        "members_queued": 12,
        "messages_queued": 2,
        "shards": 64,
        "members_done": 12,
        "member_failures": 1,
        "counts": {"membersExpired": 11, "lotsExpired": 30, "pointsExpired": 4_200, "membersUnchanged": 1},
    }
    lines = summary_lines("expiry", record)
    assert "expired: 11 members, 30 lots, 4,200 points (1 members had nothing left to expire)" in lines[-1]
    assert "member failures (retried) 1" in lines[1]
    record["counts"] = {
        "emailsSent": 3,
        "emailsSkipped": 2,
        "skipped.opted_out": 1,
        "skipped.nothing_due": 1,
        "emailsFailed": 1,
        "failed.MessageRejected": 1,
    }
    (emails,) = [line for line in summary_lines("reminders", record) if "emails:" in line]
    assert emails.strip() == (
        "emails: sent 3, skipped 2 (nothing_due 1, opted_out 1), failed 1 (MessageRejected 1)"
    )


def test_following_a_run_that_stops_progressing_says_so_instead_of_waiting_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = iter(
        [{"members_done": 1, "members_queued": 3, "shards": 4, "shards_queued": 4, "complete": False}] * 10
    )
    monkeypatch.setattr("devtools.run_command._request", lambda base, method, path: (200, next(records)))
    ticks = iter(range(0, 1000, 30))
    out = io.StringIO()

    record = follow(
        "http://x", "run_1", out=out, sleep=lambda _: None, clock=lambda: float(next(ticks)), stall=60
    )

    assert record["complete"] is False
    assert "[##########--------------------] 1/3 members" in out.getvalue()
    assert "no progress for 60s" in out.getvalue()


@pytest.fixture(scope="module")
def local_app() -> Iterator[str]:
    with running_local_mode("local-run") as (base, _):
        yield base


def balance(base: str, member_id: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/members/{member_id}/balance", headers={"Authorization": f"Dev member:{member_id}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.loads(answer.read()))


def run(base: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    port = base.rsplit(":", 1)[1]
    return subprocess.run(
        [*RUN, *arguments, "--port", port], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.dynamodb
def test_a_reminder_run_then_an_expiry_run_fired_locally_email_then_expire_the_demo_members(
    local_app: str,
) -> None:
    alice = balance(local_app, "demo-alice")
    assert alice["available"] > 0
    # Ten days before Alice's soonest expiry date: inside the 30-day window, she is reminded.
    soonest = datetime.fromisoformat(alice["expiring"][0]["expiresAt"])
    reminder_at = f"{soonest - timedelta(days=10):%Y-%m-%dT%H:%M:%SZ}"

    reminders = run(local_app, "reminders", "--at", reminder_at)

    assert reminders.returncode == 0, reminders.stderr
    assert re.search(r"\[#+\] \d+/\d+ members", reminders.stdout)
    assert re.search(r"emails: sent [1-9]", reminders.stdout)
    saved = re.findall(r"alice@example\.com: '.*'  (\S+\.html)", reminders.stdout)
    assert saved and Path(saved[0]).is_file()
    assert "unsubscribe?token=" in Path(saved[0]).read_text(encoding="utf-8")

    again = run(local_app, "reminders", "--at", reminder_at)

    assert "emails: sent 0" in again.stdout  # never twice for the same dates and window

    # Far beyond every demo lot's expiry: everything expires, once.
    expiry = run(local_app, "expiry", "--at", "2099-01-01T00:05:00Z")

    assert expiry.returncode == 0, expiry.stderr
    assert re.search(r"expired: 2 members, \d+ lots, [\d,]+ points", expiry.stdout)
    assert balance(local_app, "demo-alice")["available"] == 0
    assert balance(local_app, "demo-bob")["available"] == 0

    rerun = run(local_app, "expiry", "--at", "2099-01-01T00:05:00Z")

    assert "members enqueued 0" in rerun.stdout

    # Hours later the day's check finds those runs complete; a day without a run is missing
    checked = run(local_app, "expiry", "--check", "--at", "2099-01-01T04:05:00Z")

    assert checked.returncode == 0, checked.stderr
    assert re.search(r"expiry run run_\w+ as of 2099-01-01T00:05:00.000Z: complete", checked.stdout)
    missing = run(local_app, "expiry", "--check", "--at", "2098-06-01T04:05:00Z")

    assert missing.returncode == 1 and "expiry run: missing" in missing.stdout
