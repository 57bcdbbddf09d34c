"""The check of a day's run through the run's own start function (issue #9, observability): the
check schedule's `{"check": …}` reads the run of the day on DynamoDB Local and publishes
`RunsIncomplete` (EMF, dimension `kind`): 0 for a run that completed, 1 for one stuck or missing.
The harness (queues, shard tasks, workers) is test_runs.py's."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from devtools.lambda_runtime import LambdaContext, load_handler
from loyalty.runs.jobs import RunKind
from tests.integration.conftest import ROOT
from tests.integration.test_runs import BOUGHT, FUNCTIONS, Runs, earn, new_member
from tests.integration.test_runs import app as app  # the fixture: queues, workers, own table

# The check fires a few hours after the run (template.yaml: ExpiryCheckSchedule, 04:05 in Paris).
LATER = timedelta(hours=4)


def check(kind: RunKind, event: dict[str, Any]) -> dict[str, Any]:
    function = load_handler(FUNCTIONS[kind], "app.lambda_handler", root=ROOT)
    return dict(function(event, LambdaContext(f"{kind}-start")))


def published(text: str, kind: RunKind) -> list[float]:
    """The `RunsIncomplete` values of `kind` the function printed as EMF."""
    values: list[float] = []
    for line in text.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        if "RunsIncomplete" in blob and blob.get("kind") == str(kind):
            (directive,) = blob["_aws"]["CloudWatchMetrics"]
            assert directive["Namespace"] == "Loyalty" and directive["Dimensions"] == [["kind", "service"]]
            values += blob["RunsIncomplete"]
    return values


@pytest.fixture
def emf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def test_a_run_that_completed_reports_zero(app: Runs, emf: None, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a day's expiry run whose due member was expired
    member = new_member()
    lot = earn(member, BOUGHT, 100)
    record = app.run(RunKind.EXPIRY, lot.expires_at)
    assert record.complete and record.members_done == 1
    capsys.readouterr()

    # When the check fires hours later
    answer = check(RunKind.EXPIRY, {"check": (lot.expires_at + LATER).isoformat()})

    # Then it found that run complete and published 0
    assert answer["verdict"] == "complete" and answer["RunsIncomplete"] == 0
    assert answer["run"]["runId"] == record.run_id and answer["run"]["membersDone"] == 1
    assert published(capsys.readouterr().out, RunKind.EXPIRY) == [0.0]


def test_a_run_whose_members_were_not_all_done_reports_one(
    app: Runs, emf: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a reminder run that paged its shards but whose workers never ran
    member = new_member()
    lot = earn(member, BOUGHT, 100)
    at = lot.expires_at - timedelta(days=6)
    started = app.start(RunKind.REMINDERS, at)
    assert started["membersQueued"] == 1
    capsys.readouterr()

    # When the check fires
    answer = check(RunKind.REMINDERS, {"check": (at + LATER).isoformat()})

    # Then it reports that run, stuck with its member not done, and publishes 1
    assert answer["verdict"] == "incomplete" and answer["RunsIncomplete"] == 1
    assert (answer["run"]["runId"], answer["run"]["membersQueued"], answer["run"]["membersDone"]) == (
        started["runId"],
        1,
        0,
    )
    assert published(capsys.readouterr().out, RunKind.REMINDERS) == [1.0]

    # When the workers catch up and the check is run again (as docs/deploy.md says)
    app.drain(RunKind.REMINDERS)
    again = check(RunKind.REMINDERS, {"check": (at + LATER).isoformat()})

    # Then the run is complete
    assert again["verdict"] == "complete" and published(capsys.readouterr().out, RunKind.REMINDERS) == [0.0]


def test_no_run_at_all_reports_one_and_a_run_of_the_other_kind_does_not_count(
    app: Runs, emf: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a reminder run completed on the day, and no expiry run
    lot = earn(new_member(), BOUGHT, 100)
    app.run(RunKind.REMINDERS, lot.expires_at)
    # and an expiry run two days earlier, outside the check's window
    app.run(RunKind.EXPIRY, lot.expires_at - timedelta(days=2))
    capsys.readouterr()

    answer = check(RunKind.EXPIRY, {"check": (lot.expires_at + LATER).isoformat()})

    assert answer == {
        "check": "expiry",
        "checkedAt": answer["checkedAt"],
        "verdict": "missing",
        "RunsIncomplete": 1,
        "run": None,
    }
    assert published(capsys.readouterr().out, RunKind.EXPIRY) == [1.0]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"check": ""}, "has no `check`"),
        ({"check": "yesterday"}, "'yesterday' is not an ISO 8601 instant"),
        ({"check": "2028-12-01T04:05:00"}, "has no time zone"),
        ({"check": 1795600000}, "has no `check`"),
    ],
    ids=["empty", "not-an-instant", "naive", "a-number"],
)
def test_a_check_without_a_proper_instant_is_refused_with_a_clear_error_and_publishes_nothing(
    app: Runs, emf: None, capsys: pytest.CaptureFixture[str], event: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check(RunKind.EXPIRY, event)

    assert published(capsys.readouterr().out, RunKind.EXPIRY) == []
