"""`python -m devtools.local report` against the real application in the local mode: the table's
stream reaches the liability aggregator, the template's monthly schedule writes the report to the
emulated bucket, the local mode mirrors it to `.local/reports`, and the command charts it (issue #9)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools import REPO_ROOT
from devtools.report_command import draw_chart, summary_lines
from tests.devtools.test_run_command import local_app  # noqa: F401 - the running local mode, a fixture

PNG = b"\x89PNG\r\n\x1a\n"
REPORT: dict[str, Any] = {
    "asOf": "2026-11-30T23:00:00.000Z",
    "outstanding": 750,
    "byExpiryMonth": [{"month": "2027-01", "points": 50}, {"month": "2028-11", "points": 700}],
    "expiresOnInactivity": 0,
    "neverExpires": 0,
    "owed": 12,
    "byIssueMonth": [
        {
            "month": "2025-01",
            "issued": 100,
            "received": 0,
            "redeemed": 20,
            "transferred": 0,
            "reversed": 0,
            "expired": 30,
            "adjusted": 0,
            "outstanding": 50,
            "breakageRate": 0.3,
        }
    ],
    "value": {"currency": "EUR", "perPoint": "0.01", "outstanding": "7.50"},
}


def test_the_chart_is_a_png_of_both_views_even_of_an_empty_program(tmp_path: Path) -> None:
    full = draw_chart(REPORT, tmp_path / "chart.png")
    empty = draw_chart(
        {**REPORT, "outstanding": 0, "byExpiryMonth": [], "byIssueMonth": []}, tmp_path / "e.png"
    )
    for chart in (full, empty):
        assert chart.read_bytes().startswith(PNG) and chart.stat().st_size > 10_000


def test_the_summary_gives_the_value_and_each_month_of_issue_with_its_breakage() -> None:
    lines = summary_lines(REPORT)
    assert lines[0] == "liability as of 2026-11-30T23:00:00.000Z: 750 points outstanding (worth 7.50 EUR)"
    assert "owed by members 12" in lines[1]
    assert lines[2] == "  issued 2025-01: 100 issued, 20 redeemed, 30 expired (30.0%), 50 outstanding"


def call(base: str, method: str, path: str, identity: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{base}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Dev {identity}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@pytest.mark.dynamodb
def test_a_purchase_reaches_the_live_report_and_the_monthly_files_and_chart(local_app: str) -> None:  # noqa: F811
    # Given a member's purchase in the running local mode
    member = f"rep-{uuid.uuid4().hex[:8]}"
    call(
        local_app,
        "PUT",
        f"/members/{member}",
        "partner:pos-1",
        {"email": f"{member}@example.com", "locale": "en"},
    )
    before = call(local_app, "GET", "/reports/liability", "finance:fin-1")["outstanding"]
    bought = {
        "transactionId": f"{member}-1",
        "amount": "250.00",
        "currency": "EUR",
        "occurredAt": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "channel": "store",
    }
    call(local_app, "POST", f"/members/{member}/earn", "partner:pos-1", bought)
    # When the stream has reached the aggregator (polled every second), the live report has it
    deadline = time.monotonic() + 30
    while (now := call(local_app, "GET", "/reports/liability", "finance:fin-1"))[
        "outstanding"
    ] != before + 250:
        assert time.monotonic() < deadline, now
        time.sleep(0.5)
    # And the monthly export of next month (as of its first midnight) holds it, as files and a chart
    next_month = (datetime.now(UTC).replace(day=1) + timedelta(days=40)).strftime("%Y-%m-15T12:00:00Z")
    port = local_app.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "devtools.local", "report", "--at", next_month, "--port", port],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    files = [Path(line.strip()) for line in done.stdout.splitlines() if line.strip().startswith("/")]
    assert sorted(file.name for file in files) == [
        "by-expiry-month.csv",
        "by-issue-month.csv",
        "chart.png",
        "report.json",
    ]
    report = json.loads(
        next(file for file in files if file.name == "report.json").read_text(encoding="utf-8")
    )
    assert report["outstanding"] == now["outstanding"]
    assert next(file for file in files if file.name == "chart.png").read_bytes().startswith(PNG)
    assert f"{report['outstanding']:,} points outstanding" in done.stdout
