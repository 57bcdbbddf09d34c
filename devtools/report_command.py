"""Write the monthly liability report locally, as the schedule does in AWS, and chart it.

    python -m devtools.local report                      # as of the start of this month
    python -m devtools.local report --at 2027-01-15T12:00:00Z   # as of 1 January 2027, midnight
    make report AT=2027-01-15T12:00:00Z

The local application (`make run`) must be running: the command fires the template's monthly
schedule (`POST /_local/schedules/LiabilityExportFunction?asOf=…`), so the same function writes
`report.json`, `by-issue-month.csv` and `by-expiry-month.csv` to the emulated reports bucket,
which the local mode mirrors to `.local/reports/liability/<date>/`; this command then draws
`chart.png` beside them: outstanding points by expiry month, and breakage by month of issue.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from devtools.run_command import LocalAppUnreachable, _request

EXPORT_FUNCTION = "LiabilityExportFunction"


def draw_chart(report: Mapping[str, Any], path: Path) -> Path:
    """Two bar charts in one PNG: points outstanding by expiry month, breakage rate by month of
    issue (months that issued nothing have no rate)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: files only
    import matplotlib.pyplot as plt

    expiry = list(report.get("byExpiryMonth") or [])
    issue = [row for row in report.get("byIssueMonth") or [] if row.get("breakageRate") is not None]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), constrained_layout=True)
    figure.suptitle(f"Liability as of {report['asOf']}: {report['outstanding']:,} points outstanding")
    top.bar([row["month"] for row in expiry], [row["points"] for row in expiry], color="#1f5f8b")
    top.set_title("Outstanding points by expiry month")
    top.set_ylabel("points")
    bottom.bar([row["month"] for row in issue], [100 * row["breakageRate"] for row in issue], color="#b5472a")
    bottom.set_title("Breakage by month of issue (expired / issued)")
    bottom.set_ylabel("%")
    bottom.set_ylim(0, 100)
    for axis in (top, bottom):
        axis.tick_params(axis="x", labelrotation=60, labelsize=8)
        axis.grid(axis="y", alpha=0.3)
        if not axis.patches:
            axis.text(0.5, 0.5, "nothing yet", ha="center", va="center", transform=axis.transAxes)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    value = report.get("value")
    lines = [
        f"liability as of {report['asOf']}: {report['outstanding']:,} points outstanding"
        + (f" (worth {value['outstanding']} {value['currency']})" if value else ""),
        f"  expiring on inactivity {report['expiresOnInactivity']:,}, never {report['neverExpires']:,};"
        f" owed by members {report['owed']:,}",
    ]
    for row in report.get("byIssueMonth") or []:
        rate = "-" if row["breakageRate"] is None else f"{100 * row['breakageRate']:.1f}%"
        lines.append(
            f"  issued {row['month']}: {row['issued']:,} issued, {row['redeemed']:,} redeemed,"
            f" {row['expired']:,} expired ({rate}), {row['outstanding']:,} outstanding"
        )
    return lines


def main(argv: Sequence[str] | None = None, root: Path | None = None) -> int:
    from devtools import REPO_ROOT

    parser = argparse.ArgumentParser(
        prog="python -m devtools.local report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--at", help="an instant of the month after the one reported (default: now)")
    parser.add_argument("--port", type=int, default=3000, help="the local application's port (default 3000)")
    arguments = parser.parse_args(argv)
    base = f"http://127.0.0.1:{arguments.port}"
    path = f"/_local/schedules/{EXPORT_FUNCTION}" + (f"?asOf={quote(arguments.at)}" if arguments.at else "")
    try:
        status, answer = _request(base, "POST", path)
        if status != 200:
            print(f"the export failed ({status}): {json.dumps(answer)}", file=sys.stderr)
            return 1
        _, mirrored = _request(base, "GET", "/_local/reports")
    except LocalAppUnreachable as problem:
        print(
            f"the local application is not running on {base} ({problem}): start it with `make run`",
            file=sys.stderr,
        )
        return 1
    reports = Path((root or REPO_ROOT) / ".local" / "reports")
    keys: list[str] = answer["result"]["keys"]
    files = [reports / key for key in keys]
    missing = [str(file) for file in files if str(file.resolve()) not in set(mirrored.get("files") or [])]
    if missing:
        print(f"the local mode did not mirror {', '.join(missing)}", file=sys.stderr)
        return 1
    report_file = next(file for file in files if file.name == "report.json")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    chart = draw_chart(report, report_file.with_name("chart.png"))
    print("\n".join(summary_lines(report)))
    for file in [*files, chart]:
        print(f"  {file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
