"""Fire a daily run against the running local application, follow it, summarise it; or check it.

    python -m devtools.local run expiry --at 2028-12-01T03:00:00Z
    python -m devtools.local run reminders --at 2028-11-20T10:00:00+01:00
    make schedule RUN=expiry AT=2028-12-01T03:00:00Z
    python -m devtools.local run expiry --check --at 2028-12-01T07:00:00Z   # did that day's run complete?

The local application (`make run`) must be running: the command asks it to start the run
(`POST /_local/schedules/<function>?asOf=…`, the schedule event the template declares, with that
`time`), then follows the run's record (`GET /_local/runs/<runId>`) while the local SQS poller
feeds the workers, with a progress bar, and prints the summary and the emails the run wrote.
With `--check` it fires the run's check schedule instead (`{"check": …}`, as AWS does hours after
the run) and prints its verdict; the exit status is 1 unless the day's run completed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO
from urllib.parse import quote

__all__ = ["RUN_FUNCTIONS", "check_line", "main", "progress_bar", "summary_lines"]

# The function each run starts with (template.yaml).
RUN_FUNCTIONS = {"expiry": "ExpiryFunction", "reminders": "ReminderFunction"}
# No progress for this long: the remaining messages failed and wait for their retry (or the DLQ).
STALL_SECONDS = 60.0
BAR_WIDTH = 30


class LocalAppUnreachable(Exception):
    pass


def _request(base: str, method: str, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(f"{base}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=900) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body or b"null")
        except ValueError:
            return error.code, body.decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as problem:
        raise LocalAppUnreachable(str(getattr(problem, "reason", problem))) from None


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`[#######-------]  512/1,000 members`; a run with nothing to do is full."""
    filled = width if total <= 0 else min(width, done * width // total)
    return f"[{'#' * filled}{'-' * (width - filled)}] {done:,}/{total:,} members"


def summary_lines(kind: str, record: Mapping[str, Any]) -> list[str]:
    counts: Mapping[str, int] = record.get("counts") or {}
    lines = [
        f"{kind} run {record['run_id']} as of {record['as_of']}",
        f"  members enqueued {record['members_queued']:,} in {record['messages_queued']:,} messages"
        f" over {record['shards']} shards; done {record['members_done']:,};"
        f" member failures (retried) {record['member_failures']:,}",
    ]
    if kind == "expiry":
        lines.append(
            f"  expired: {counts.get('membersExpired', 0):,} members, {counts.get('lotsExpired', 0):,} lots,"
            f" {counts.get('pointsExpired', 0):,} points"
            f" ({counts.get('membersUnchanged', 0):,} members had nothing left to expire)"
        )
    else:
        skipped = {
            name.partition(".")[2]: value for name, value in counts.items() if name.startswith("skipped.")
        }
        failed = {
            name.partition(".")[2]: value for name, value in counts.items() if name.startswith("failed.")
        }
        detail = ", ".join(f"{reason} {value:,}" for reason, value in sorted(skipped.items()))
        lines.append(
            f"  emails: sent {counts.get('emailsSent', 0):,}, skipped {counts.get('emailsSkipped', 0):,}"
            + (f" ({detail})" if detail else "")
            + f", failed {counts.get('emailsFailed', 0):,}"
            + (
                f" ({', '.join(f'{code} {value:,}' for code, value in sorted(failed.items()))})"
                if failed
                else ""
            )
        )
        if counts.get("emailsUnconfirmed"):
            lines.append(
                f"  unconfirmed (a process died between record and send): {counts['emailsUnconfirmed']:,}"
            )
    if counts.get("deferred"):
        deferred = counts["deferred"]
        lines.append(f"  deferred to the message's retry (the worker's time was short): {deferred:,}")
    if counts.get("retryLater"):
        lines.append(f"  to retry later (SES throttled or unavailable): {counts['retryLater']:,}")
    return lines


def follow(
    base: str,
    run_id: str,
    *,
    out: TextIO,
    poll: float = 0.5,
    stall: float = STALL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll the run's record until it is complete (or stalls), drawing the bar on `out`."""
    last_done, last_change = (-1, -1), clock()
    interactive = out.isatty()
    while True:
        status, record = _request(base, "GET", f"/_local/runs/{quote(run_id, safe='')}")
        if status != 200:
            raise LocalAppUnreachable(f"GET /_local/runs/{run_id} answered {status}: {record}")
        done, total = int(record["members_done"]), int(record["members_queued"])
        paged = int(record.get("shards_queued", 0))
        if (done, paged) != last_done:
            last_done, last_change = (done, paged), clock()
            shards = int(record.get("shards", 0))
            line = (
                progress_bar(done, total)
                if paged >= shards
                else f"paging shards {paged}/{shards}: {total:,} members enqueued, {done:,} done"
            )
            out.write(f"\r{line}" if interactive else f"{line}\n")
            out.flush()
        if record.get("complete"):
            break
        if clock() - last_change > stall:
            out.write(
                f"\nno progress for {stall:.0f}s: the remaining messages failed and come back after their"
                " visibility timeout (or went to the dead-letter queue); see the server's console\n"
            )
            break
        sleep(poll)
    if interactive:
        out.write("\n")
    return dict(record)


def check_line(kind: str, verdict: Mapping[str, Any]) -> str:
    """One line of the check's answer (runs/check.py: `verdict`, `checkedAt`, `run`)."""
    run = verdict.get("run")
    if run is None:
        return f"{kind} run: missing (no run in the 24 hours before {verdict['checkedAt']})"
    return (
        f"{kind} run {run['runId']} as of {run['asOf']}: {verdict['verdict']}"
        f" ({run['membersDone']:,} of {run['membersQueued']:,} members done,"
        f" {run['shardsQueued']} of {run['shards']} shards paged, {run['memberFailures']:,} member failures)"
    )


def _check(base: str, kind: str, path: str, *, out: TextIO) -> int:
    try:
        status, answer = _request(base, "POST", path)
    except LocalAppUnreachable as problem:
        print(
            f"cannot reach the local application on {base} ({problem}): start it with `make run` first",
            file=sys.stderr,
        )
        return 1
    if status != 200:
        message = answer.get("error") if isinstance(answer, dict) else answer
        print(f"the {kind} check did not run ({status}): {message}", file=sys.stderr)
        return 1
    verdict = answer["result"]
    out.write(check_line(kind, verdict) + "\n")
    return 0 if verdict["RunsIncomplete"] == 0 else 1


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.local run",
        description="Fire a daily run against the running local application (make run) and follow it.",
    )
    parser.add_argument("kind", choices=sorted(RUN_FUNCTIONS), help="which run")
    parser.add_argument(
        "--at",
        metavar="INSTANT",
        help="the as-of instant, ISO 8601 with a zone (2028-12-01T03:00:00Z); default now",
    )
    parser.add_argument("--port", type=int, default=3000, help="the local application's port (default 3000)")
    parser.add_argument("--no-follow", action="store_true", help="start the run and return")
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the day's run instead of starting one (--at: the check's instant, hours after the run);"
        " exit status 1 unless it completed",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    arguments = _parse(list(sys.argv[1:] if argv is None else argv))
    base = f"http://127.0.0.1:{arguments.port}"
    function = RUN_FUNCTIONS[arguments.kind]
    at = f"&asOf={quote(arguments.at, safe='')}" if arguments.at else ""
    if arguments.check:
        return _check(base, arguments.kind, f"/_local/schedules/{function}?name=Check{at}", out=out)
    try:
        _, before = _request(base, "GET", "/_local/emails")
        status, started = _request(base, "POST", f"/_local/schedules/{function}?name=Daily{at}")
        if status != 200:
            message = started.get("error") if isinstance(started, dict) else started
            print(f"the {arguments.kind} run did not start ({status}): {message}", file=sys.stderr)
            return 1
        result = started["result"]
        out.write(
            f"{arguments.kind} run {result['runId']} as of {result['asOf']}:"
            f" {result['shards']} shards to page ({started['durationMs']} ms)\n"
        )
        if arguments.no_follow:
            return 0
        record = follow(base, result["runId"], out=out)
        _, after = _request(base, "GET", "/_local/emails")
    except LocalAppUnreachable as problem:
        print(
            f"cannot reach the local application on {base} ({problem}): start it with `make run` first",
            file=sys.stderr,
        )
        return 1
    for line in summary_lines(arguments.kind, record):
        out.write(line + "\n")
    seen = {str(email.get("id")) for email in (before or {}).get("emails", [])}
    written = [email for email in (after or {}).get("emails", []) if str(email.get("id")) not in seen]
    if written:
        out.write(f"  emails written ({len(written)}):\n")
        for email in written:
            files = (
                [name for name in email.get("files") or [] if name.endswith(".html")]
                or email.get("files")
                or []
            )
            recipients = ", ".join(email.get("to") or [])
            out.write(f"    {recipients}: {email.get('subject')!r}  {files[0] if files else ''}\n")
    return 0 if record.get("complete") else 1
