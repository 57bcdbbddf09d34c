"""Liability and breakage on DynamoDB Local: the table's stream, delivered as Lambda's event source
mapping would (`devtools.streams`), feeds the real aggregator handler; the report is read through
the real route (issue #9, SPEC §5 `GET /reports/liability`).

Proven here: the figures as of an instant (before, between and after movements, to the minute),
expiry counted at the lot's own instant, a batch delivered twice or in pieces or by two
invocations at once added once, a run that could not be written delivered again from its first
record, an unreadable record stopping its batch there, and the route's rights and bad input.
`test_program_model.py` rebuilds every figure from the full ledger after random histories.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools.identity import Identity
from devtools.lambda_runtime import LambdaContext, load_handler
from devtools.streams import StreamPoller
from devtools.template import function_code
from loyalty.domain.errors import Unavailable
from loyalty.domain.ledger import Actor
from loyalty.reports import aggregator
from loyalty.reports.handlers import aggregate
from loyalty.settings import program_rules
from loyalty.store import liability as liability_store
from loyalty.store import transfers
from loyalty.store.expiring import expire_member
from loyalty.store.transact import TransactionCancelled
from tests.integration.conftest import ROOT, Api
from tests.integration.test_points_policies import earn, enrol, redeem, rules_with

FINANCE = Identity.finance("fin-1")
SUPPORT = Identity.support("agent-1")
JAN = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
MAR = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def stream(own_table: Any, dynamodb_local: str) -> StreamPoller:
    """The test's own table's stream, delivered to the aggregator handler in batches of 100."""
    arn = boto3.client("dynamodb", endpoint_url=dynamodb_local).describe_table(TableName=own_table.name)[
        "Table"
    ]["LatestStreamArn"]
    client = boto3.client("dynamodbstreams", endpoint_url=dynamodb_local)
    return StreamPoller(client, arn, aggregate)


def report(api: Api, as_of: datetime | str | None = None, identity: Identity = FINANCE) -> dict[str, Any]:
    query = {} if as_of is None else {"asOf": as_of if isinstance(as_of, str) else as_of.isoformat()}
    response = api.call("GET", "/reports/liability", identity=identity, query=query)
    assert response.status == 200, response.body
    return dict(response.body)


def issue_month(body: dict[str, Any], month: str) -> dict[str, Any]:
    return next(row for row in body["byIssueMonth"] if row["month"] == month)


def member() -> str:
    member_id = f"li-{uuid.uuid4().hex[:10]}"
    enrol(member_id, JAN - timedelta(days=30))
    return member_id


def test_the_report_follows_the_movements_minute_by_minute(api: Api, stream: StreamPoller) -> None:
    rules = program_rules()
    alice, bob = member(), member()
    # Given: Alice earns 120 in January, redeems 20 in March, sends Bob 100 in March + 1 h
    earn(alice, rules, "120.00", JAN, JAN)
    redeem(alice, rules, 20, MAR, "r-1")
    sent = MAR + timedelta(hours=1)
    transfers.transfer(
        alice, bob, 100, idempotency_key="t-1", actor=Actor("member", alice), rules=rules, now=sent
    )
    # When the stream has been delivered
    assert stream.drain() > 0

    # Then, a minute before the earn, nothing; at the earn's minute, the earn
    assert report(api, JAN - timedelta(minutes=1))["outstanding"] == 0
    at_earn = report(api, JAN)
    assert at_earn["outstanding"] == 120
    assert issue_month(at_earn, "2026-01") == {
        "month": "2026-01",
        "issued": 120,
        "received": 0,
        "redeemed": 0,
        "transferred": 0,
        "reversed": 0,
        "expired": 0,
        "adjusted": 0,
        "outstanding": 120,
        "breakageRate": 0.0,
    }
    assert at_earn["byExpiryMonth"] == [{"month": "2028-01", "points": 120}]  # 24 months, the default
    # after the redemption
    assert report(api, MAR + timedelta(minutes=30))["outstanding"] == 100
    # after the transfer: the same points outstanding, now partly issued in March to Bob
    after = report(api, sent + timedelta(minutes=1))
    assert after["outstanding"] == 100
    assert issue_month(after, "2026-01")["transferred"] == 100
    assert issue_month(after, "2026-03") | {"month": "x"} == {
        "month": "x",
        "issued": 100,
        "received": 100,
        "redeemed": 0,
        "transferred": 0,
        "reversed": 0,
        "expired": 0,
        "adjusted": 0,
        "outstanding": 100,
        "breakageRate": 0.0,
    }
    assert after["byExpiryMonth"] == [{"month": "2028-01", "points": 100}]  # the sender's date, kept
    assert after["value"] == {"currency": "EUR", "perPoint": "0.01", "outstanding": "1.00"}


def test_points_expire_at_their_lots_instant_however_late_the_run(api: Api, stream: StreamPoller) -> None:
    rules = rules_with({"policy": "rolling", "months": 6})  # expired before today
    alice = member()
    lot = earn(alice, rules, "80.00", JAN, JAN)
    assert lot.expires_at is not None
    expires_at = datetime.fromisoformat(str(lot.expires_at))
    # The night's run comes by three hours after the lots expired
    expired = expire_member(
        alice, expires_at + timedelta(minutes=5), rules=rules, now=expires_at + timedelta(hours=3)
    )
    assert expired is not None and expired.points == 80
    stream.drain()

    before = report(api, expires_at - timedelta(minutes=1))
    assert (before["outstanding"], issue_month(before, "2026-01")["expired"]) == (80, 0)
    at = report(api, expires_at)
    assert at["outstanding"] == 0
    january = issue_month(at, "2026-01")
    assert (january["expired"], january["breakageRate"], january["outstanding"]) == (80, 1.0, 0)
    assert at["byExpiryMonth"] == []


def test_a_report_as_of_now_matches_the_balances(api: Api, stream: StreamPoller) -> None:
    members = [f"li-now-{uuid.uuid4().hex[:8]}-{n}" for n in range(3)]
    for n, member_id in enumerate(members):
        assert api.enrol(member_id).status == 201
        assert api.earn(member_id, amount=f"{50 + n * 25}.00").status == 201
    assert api.redeem(members[0], points=10).status == 201
    stream.drain()
    body = report(api)
    balances = sum(api.balance(member_id).body["available"] for member_id in members)
    assert body["outstanding"] == balances == 50 + 75 + 100 - 10
    assert datetime.fromisoformat(body["asOf"]) <= datetime.now(UTC)


# ---- delivered twice, in pieces, at once


def figures() -> dict[str, int]:
    return liability_store.figures_as_of(
        datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    )


def records_of(stream: StreamPoller) -> list[dict[str, Any]]:
    """Every record of the stream in one event, as a delivery would carry them (not delivered)."""
    seen: list[dict[str, Any]] = []
    catcher = StreamPoller(stream.client, stream.stream_arn, lambda event: seen.extend(event["Records"]))
    catcher.drain()
    return seen


def history(api: Api, members: int = 4) -> None:
    for n in range(members):
        member_id = f"li-h-{uuid.uuid4().hex[:8]}-{n}"
        assert api.enrol(member_id).status == 201
        assert api.earn(member_id, amount="40.00").status == 201
        assert api.earn(member_id, amount="2.00").status == 201
        assert api.redeem(member_id, points=5).status == 201


def test_a_batch_delivered_twice_adds_its_figures_once(api: Api, stream: StreamPoller) -> None:
    history(api)
    records = records_of(stream)
    assert aggregate({"Records": records}) == {"batchItemFailures": []}
    once = figures()
    assert sum(v for k, v in once.items() if k.startswith("out#")) == 4 * (42 - 5)
    assert aggregate({"Records": records}) == {"batchItemFailures": []}
    assert figures() == once


def minutes_apart(members: int = 4) -> None:
    """Each member earns 42 and redeems 5, every movement in a minute of its own."""
    rules = program_rules()
    moment = JAN
    for n in range(members):
        member_id = member()
        for amount in ("40.00", "2.00"):
            moment += timedelta(minutes=1)
            earn(member_id, rules, amount, moment, moment)
        moment += timedelta(minutes=1)
        redeem(member_id, rules, 5, moment, f"r-{n}")


def test_a_batch_cut_into_several_runs_and_stopped_halfway_is_added_once_when_delivered_again(
    stream: StreamPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    minutes_apart()
    records = records_of(stream)
    # Runs of at most 4 periods: a minute's figures fill a run (month, day, hour, minute), so each
    # movement of its own minute is a run
    monkeypatch.setattr(aggregator, "MAX_PERIODS", 4)
    real = liability_store.apply_run
    calls: list[str] = []

    def second_run_keeps_failing(marker: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(marker)
        if len(set(calls)) >= 2 and marker != calls[0]:
            raise TransactionCancelled()
        return real(marker, *args, **kwargs)

    monkeypatch.setattr(aggregator, "apply_run", second_run_keeps_failing)
    answer = aggregator.handle_stream_batch(
        {"Records": records}, now=lambda: datetime.now(UTC), sleep=lambda s: None
    )
    # Then the batch is failed from the second run's first record, after its attempts
    failed = answer["batchItemFailures"]
    assert len(failed) == 1 and failed[0]["itemIdentifier"] != records[0]["dynamodb"]["SequenceNumber"]
    assert calls.count(calls[-1]) == aggregator.ATTEMPTS
    # When Lambda delivers the whole batch again (a retry after a crash) and then from that record
    monkeypatch.setattr(aggregator, "apply_run", real)
    assert aggregate({"Records": records}) == {"batchItemFailures": []}
    start = next(
        i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == failed[0]["itemIdentifier"]
    )
    assert aggregate({"Records": records[start:]}) == {"batchItemFailures": []}
    # Then every figure counts once: as one clean delivery would
    assert sum(v for k, v in figures().items() if k.startswith("out#")) == 4 * (42 - 5)
    assert sum(v for k, v in figures().items() if k.startswith("issued#")) == 4 * 42


def test_a_record_too_big_for_one_transaction_is_written_in_parts_each_once(
    stream: StreamPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    minutes_apart(members=1)
    records = records_of(stream)
    # Runs of at most 3 periods: each movement's 4 periods are written in two parts
    monkeypatch.setattr(aggregator, "MAX_PERIODS", 3)
    real = liability_store.apply_run
    markers: list[str] = []

    def second_part_fails_once(marker: str, *args: Any, **kwargs: Any) -> Any:
        markers.append(marker)
        if marker.endswith("#1") and markers.count(marker) == 1:
            raise TransactionCancelled()
        return real(marker, *args, **kwargs)

    monkeypatch.setattr(aggregator, "apply_run", second_part_fails_once)
    # The failed part is tried again within the delivery, and a delivery again adds nothing
    assert aggregate({"Records": records}) == {"batchItemFailures": []}
    assert aggregate({"Records": records}) == {"batchItemFailures": []}
    assert {marker.rsplit("#", 1)[1] for marker in markers} == {"0", "1"}
    assert sum(v for k, v in figures().items() if k.startswith("out#")) == 42 - 5
    month = liability_store.figures_as_of(datetime(2026, 2, 1, tzinfo=UTC))
    assert (month["issued#2026-01"], month["redeemed#2026-01"]) == (42, 5)


def test_a_run_written_but_answered_as_failed_is_found_applied_on_the_next_attempt(
    api: Api, stream: StreamPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    history(api, members=2)
    real = liability_store.apply_run
    lost: list[bool] = []

    def commits_then_loses_the_answer(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not lost:
            lost.append(True)
            raise Unavailable("DynamoDB did not answer")
        return result

    monkeypatch.setattr(aggregator, "apply_run", commits_then_loses_the_answer)
    stream.drain()
    assert lost == [True]
    assert sum(v for k, v in figures().items() if k.startswith("out#")) == 2 * (42 - 5)


def test_two_invocations_with_the_same_batch_at_once_add_it_once(api: Api, stream: StreamPoller) -> None:
    history(api)
    records = records_of(stream)
    answers: list[Any] = []
    start = threading.Barrier(4)

    def deliver() -> None:
        start.wait()
        answers.append(aggregate({"Records": records}))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [{"batchItemFailures": []}] * 4
    assert sum(v for k, v in figures().items() if k.startswith("out#")) == 4 * (42 - 5)


def test_an_unreadable_record_stops_the_batch_there_and_the_records_before_it_count(
    api: Api, stream: StreamPoller
) -> None:
    history(api, members=1)
    records = records_of(stream)
    broken = dict(records[-1])
    broken["dynamodb"] = dict(broken["dynamodb"])
    broken["dynamodb"]["NewImage"] = {
        "itemType": {"S": "ledger"},
        "pk": {"S": "MEMBER#x"},
        "sk": {"S": "LEDGER#1"},
    }
    broken["eventName"] = "INSERT"
    answer = aggregate({"Records": [*records[:-1], broken]})
    assert answer == {"batchItemFailures": [{"itemIdentifier": broken["dynamodb"]["SequenceNumber"]}]}
    assert sum(v for k, v in figures().items() if k.startswith("out#")) == 42 - 5


def test_records_that_are_not_new_ledger_entries_add_nothing(api: Api, stream: StreamPoller) -> None:
    history(api, members=1)
    others = [
        r
        for r in records_of(stream)
        if r["dynamodb"].get("NewImage", {}).get("itemType", {}).get("S") != "ledger"
    ]
    assert others
    assert aggregate({"Records": others}) == {"batchItemFailures": []}
    assert figures() == {}


# ---- the route


@pytest.mark.parametrize(
    ("identity", "status"),
    [
        (None, 401),
        (Identity.member("li-someone"), 403),
        (Identity.partner("pos-1"), 403),
        (SUPPORT, 200),
        (FINANCE, 200),
    ],
)
def test_only_finance_and_support_read_the_liability_report(
    api: Api, own_table: Any, identity: Identity | None, status: int
) -> None:
    assert api.call("GET", "/reports/liability", identity=identity).status == status


@pytest.mark.parametrize(
    ("as_of", "reason"),
    [
        ("yesterday", "pattern"),
        ("2026-13-01T00:00:00Z", "is not a valid date and time"),
        ("2026-11-20T10:00:00", "pattern"),  # no offset
        ("2999-01-01T00:00:00Z", "must not be in the future"),
        ("1999-12-31T23:59:59Z", "must be in the year 2000 or later"),
    ],
)
def test_a_bad_as_of_is_a_422_naming_the_query_parameter(
    api: Api, own_table: Any, as_of: str, reason: str
) -> None:
    response = api.call("GET", "/reports/liability", identity=FINANCE, query={"asOf": as_of})
    assert response.status == 422, response.body
    problem = response.body["error"]["fields"][0]
    assert problem["field"] == "asOf" and problem.get("in") == "query"
    assert reason in problem["reason"]


def test_the_report_of_an_empty_program_is_zero_to_the_minute(api: Api, own_table: Any) -> None:
    body = report(api, "2026-11-24T10:30:59.999+01:00")
    assert body["asOf"] == "2026-11-24T09:30:00.000Z"
    assert (body["outstanding"], body["byExpiryMonth"], body["byIssueMonth"], body["owed"]) == (0, [], [], 0)


# ---- the sample events (also for `sam local invoke -e`)


def invoke(template: dict[str, Any], function: str, event: dict[str, Any]) -> Any:
    code_uri, handler = function_code(template, function)
    return load_handler(code_uri, handler, root=ROOT)(event, LambdaContext(function))


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "events" / "reports" / name).read_text(encoding="utf-8")))


def test_the_samples_add_an_earn_and_a_redemption_and_export_novembers_report(
    own_table: Any, template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the sample batch of the table's stream, delivered twice
    batch = sample("ledger-stream-batch.json")
    for _ in range(2):
        assert invoke(template, "LiabilityAggregatorFunction", batch) == {"batchItemFailures": []}
    # When the sample schedule's event (2 December) runs the monthly export
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket="loyalty-reports", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        monkeypatch.setenv("REPORTS_BUCKET", "loyalty-reports")
        written = invoke(template, "LiabilityExportFunction", sample("monthly-export.json"))
        files = {
            key: s3.get_object(Bucket="loyalty-reports", Key=key)["Body"].read().decode()
            for key in written["keys"]
        }
    # Then the report is as of midnight, 1 December in Paris: 129 issued in November, 100 redeemed
    assert sorted(files) == [
        "liability/2026-12-01/by-expiry-month.csv",
        "liability/2026-12-01/by-issue-month.csv",
        "liability/2026-12-01/report.json",
    ]
    body = json.loads(files["liability/2026-12-01/report.json"])
    assert (body["asOf"], body["outstanding"]) == ("2026-11-30T23:00:00.000Z", 29)
    assert body["byExpiryMonth"] == [{"month": "2028-11", "points": 29}]
    rows = list(csv.DictReader(io.StringIO(files["liability/2026-12-01/by-issue-month.csv"])))
    assert rows == [
        {
            "month": "2026-11",
            "issued": "129",
            "received": "0",
            "redeemed": "100",
            "transferred": "0",
            "reversed": "0",
            "expired": "0",
            "adjusted": "0",
            "outstanding": "29",
            "breakageRate": "0.0",
        }
    ]
    assert files["liability/2026-12-01/by-expiry-month.csv"] == "month,points\r\n2028-11,29\r\n"


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_a_report_while_dynamodb_keeps_throttling_is_a_503_to_retry(
    api: Api, own_table: Any, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    from botocore.exceptions import ClientError

    from loyalty.store.models import bind

    def throttled(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": "slow down"}}, "Query")

    monkeypatch.setattr(bind(), "query", throttled)
    response = api.call("GET", "/reports/liability", identity=FINANCE)
    assert response.status == 503, response.body
    assert response.headers.get("Retry-After") == "1"
    assert response.body["error"]["code"] == "service_unavailable"
