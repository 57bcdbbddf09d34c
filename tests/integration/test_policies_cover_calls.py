"""Each function's policy in template.yaml grants exactly what its code does: nothing missing,
nothing unused (SPEC §8 least privilege; issue #6, docs/security.md).

The handlers run in-process on DynamoDB Local, with the program rules read from an SSM parameter
(moto) as a deployment with `RulesParameterName` does. A hook on botocore records every AWS call
and the IAM actions it needs (a transaction needs the action of each of its items; a query on an
index needs a right on that index), per function. Each call is checked against the function's
policy at once (a Lambda denied an action answers 500), and after every path has run, every
action a policy grants must have been used by some call of that function. A path that only runs
in rare cases (lots due but not yet expired, a lot not where the wallet said, a page emptied) is
driven here on purpose.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.client import BaseClient
from moto import mock_aws

from devtools.identity import Identity
from devtools.lambda_runtime import LambdaContext, load_handler
from devtools.template import function_code, serverless_functions
from loyalty.domain.earning import Purchase
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import default_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.http import resolver
from loyalty.notify import notify_config, ses
from loyalty.notify.tags import member_tag
from loyalty.notify.unsubscribe import make_token
from loyalty.runs.fanout import RunMessage, ShardTask
from loyalty.runs.jobs import RunKind
from loyalty.runs.queue import sqs_client
from loyalty.settings import program_rules, settings
from loyalty.store import keys, members, points
from loyalty.store.ledger import encode_cursor
from loyalty.store.reminders import read_reminder_state
from tests.integration.conftest import PARTNER, ROOT, UNSUBSCRIBE_SECRET, Api, ApiResponse, match

# Functions that serve no route, driven by `daily_runs`.
NOT_ROUTED = {
    "ExpiryFunction",
    "ExpiryWorkerFunction",
    "ReminderFunction",
    "ReminderWorkerFunction",
    "EmailEventsFunction",
    "LiabilityAggregatorFunction",
    "LiabilityExportFunction",
}
TRANSACTION_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
TRANSACTION_ITEM_ACTIONS["ConditionCheck"] = "ConditionCheckItem"
RULES_PARAMETER = "/loyalty-test/rules"
# The template's conditions as this module deploys it: the rules come from an SSM parameter.
CONDITIONS = {"HasRulesParameter"}
EMAIL_ENVIRONMENT = {
    "SENDER_ADDRESS": "no-reply@loyalty.example.com",
    "LINKS_BASE_URL": "https://loyalty.example.com/account",
}


def iam_actions(service: str, operation: str, params: dict[str, Any]) -> set[str]:
    """The IAM actions one API call needs."""
    if service == "dynamodb" and operation == "TransactWriteItems":
        kinds = {kind for item in params.get("TransactItems", []) for kind in item}
        return {f"dynamodb:{TRANSACTION_ITEM_ACTIONS[kind]}" for kind in kinds}
    if service == "dynamodb" and operation == "TransactGetItems":
        return {"dynamodb:GetItem"}
    if service == "dynamodb" and params.get("IndexName"):
        return {f"dynamodb:{operation} on index {params['IndexName']}"}
    if service == "sqs" and operation in (
        "SendMessageBatch",
        "DeleteMessageBatch",
        "ChangeMessageVisibilityBatch",
    ):
        return {f"sqs:{operation.removesuffix('Batch')}"}  # the batch calls need the single action
    if service == "ses" and operation == "SendEmail" and "Raw" in params.get("Content", {}):
        # SES v2 SendEmail of raw MIME: granted as both actions, as AWS's own grants for sending
        # from an identity do (CDK's grantSendEmail); the template grants exactly these two.
        return {"ses:SendEmail", "ses:SendRawEmail"}
    return {f"{service}:{operation}"}


class ActionRecorder:
    """Every IAM action the AWS calls of the process need: since the last `clear()`, and in total
    per function (the function whose route is being called)."""

    def __init__(self) -> None:
        self.actions: set[str] = set()
        self.function = "(outside a route)"
        self.used: dict[str, set[str]] = defaultdict(set)

    def record(self, client: BaseClient, operation: str, params: dict[str, Any]) -> None:
        service = client.meta.service_model.signing_name  # the IAM prefix (sesv2 signs as "ses")
        actions = iam_actions(service, client.meta.method_to_api_mapping.get(operation, operation), params)
        self.actions |= actions
        self.used[self.function] |= actions


@pytest.fixture(scope="module")
def recorder(dynamodb_local: str) -> Iterator[ActionRecorder]:
    """Records every botocore call while the module runs, with the rules in an SSM parameter
    (moto answers SSM; DynamoDB calls go on to DynamoDB Local, which moto does not know)."""
    hook = ActionRecorder()
    original = BaseClient._make_api_call

    def make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        hook.record(client, operation, params)
        return original(client, operation, params)

    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setattr(BaseClient, "_make_api_call", make_api_call)
        parameters.SSMProvider().client.put_parameter(
            Name=RULES_PARAMETER, Value=default_rules_text(), Type="String"
        )
        # The email settings the template gives the functions, the sender verified in SES (moto).
        for name, value in EMAIL_ENVIRONMENT.items():
            patch.setenv(name, value)
        boto3.client("sesv2").create_email_identity(EmailIdentity=EMAIL_ENVIRONMENT["SENDER_ADDRESS"])
        hook.used.clear()
        patch.setenv("RULES_SOURCE", f"ssm:{RULES_PARAMETER}")
        forget_configuration()
        try:
            yield hook
        finally:
            patch.undo()
            forget_configuration()


def forget_configuration() -> None:
    """Settings, rules and cached parameters are read once per process: read them again."""
    settings.cache_clear()
    program_rules.cache_clear()
    resolver.program_timezone.cache_clear()
    parameters.clear_caches()
    notify_config.cache_clear()
    ses.ses_client.cache_clear()
    ses.default_sender.cache_clear()
    sqs_client.cache_clear()


def granted(template: dict[str, Any], function: str) -> set[str]:
    """The actions the function's inline policies grant when `CONDITIONS` hold; an action on a
    resource naming an index also grants it `on index <name>`."""
    actions: set[str] = set()
    for policy in serverless_functions(template)[function].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if set(statement) == {"Fn::If"}:
                condition, when_true, when_false = statement["Fn::If"]
                statement = when_true if condition in CONDITIONS else when_false
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            listed = statement.get("Action", [])
            listed = [listed] if isinstance(listed, str) else listed
            resources = statement.get("Resource", [])
            for resource in resources if isinstance(resources, list) else [resources]:
                text = str(resource)
                if "/index/" in text:
                    index = text.rsplit("/index/", 1)[1].rstrip("'\"}]")
                    actions.update(f"{action} on index {index}" for action in listed)
                else:
                    actions.update(listed)
    return actions


class Probe:
    """Calls a route like `Api.call` and checks the actions it performed against its policy."""

    def __init__(self, api: Api, template: dict[str, Any], recorder: ActionRecorder) -> None:
        self.api, self.template, self.recorder = api, template, recorder

    def __call__(
        self, method: str, path: str, call: Callable[[], ApiResponse] | None = None, **kwargs: Any
    ) -> ApiResponse:
        route, _ = match(self.api.routes, method, path)
        # Each function is a process of its own in Lambda: what another route read and cached
        # here (the rules, the SSM parameter) is read again, as a cold start would.
        forget_configuration()
        self.recorder.actions.clear()
        self.recorder.function = route.function
        try:
            response = call() if call else self.api.call(method, path, **kwargs)
        finally:
            self.recorder.function = "(outside a route)"
        assert response.status < 500, response.body
        missing = self.recorder.actions - granted(self.template, route.function)
        assert not missing, f"{route.function} performs {sorted(missing)} without the right to"
        return response

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke a function that serves no route (a schedule, a queue, an EventBridge rule) with
        `event`, its handler as the template declares it, and check its actions likewise."""
        code_uri, handler = function_code(self.template, function)
        forget_configuration()
        self.recorder.actions.clear()
        self.recorder.function = function
        try:
            result = load_handler(code_uri, handler, root=ROOT)(event, LambdaContext(function))
        finally:
            self.recorder.function = "(outside a route)"
        missing = self.recorder.actions - granted(self.template, function)
        assert not missing, f"{function} performs {sorted(missing)} without the right to"
        return result


@pytest.fixture
def probe(api: Api, template: dict[str, Any], recorder: ActionRecorder) -> Probe:
    return Probe(api, template, recorder)


def new_member() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------- the paths


def every_route(api: Api, probe: Probe, member: str) -> None:
    """Every route, first calls and replays, a redemption that empties a lot, a ledger page."""
    me, support = Identity.member(member), Identity.support("agent-1")
    base = f"/members/{member}"
    today = datetime.now(UTC).isoformat()
    probe("PUT", base, lambda: api.enrol(member))
    probe("PUT", base, lambda: api.enrol(member, name="Again"))
    probe("GET", base, identity=me)
    probe("POST", f"{base}/earn", lambda: api.earn(member, transactionId=f"{member}-1"))
    probe("POST", f"{base}/earn", lambda: api.earn(member, transactionId=f"{member}-2", occurredAt=today))
    probe("POST", f"{base}/earn", lambda: api.earn(member, transactionId=f"{member}-1"))
    for points_, key in ((150, "k"), (150, "k"), (50, "k2"), (5, "k")):
        probe("POST", f"{base}/redemptions", lambda p=points_, k=key: api.redeem(member, p, key=k))
    probe("GET", f"{base}/balance", identity=me)
    probe("GET", f"{base}/lots", identity=me)
    first = probe("GET", f"{base}/ledger", identity=me, query={"limit": "1"})
    assert first.body["nextCursor"]
    probe("GET", f"{base}/ledger", identity=me, query={"limit": "1", "cursor": first.body["nextCursor"]})
    # A cursor for a member that was never enrolled: the empty page reads the profile (404)
    stranger = new_member()
    forged = {"cursor": encode_cursor(stranger, 5)}
    assert probe("GET", f"/members/{stranger}/ledger", identity=support, query=forged).status == 404
    probe("GET", "/openapi.json")
    probe("GET", "/swagger")
    a_transfer_that_empties_a_lot_page(api, probe, member)
    returns_that_owe_and_empty_a_lot_page(api, probe, member)
    claims_filed_listed_read_and_decided(api, probe, member)
    unsubscribed_by_the_link(api, probe, member)


def unsubscribed_by_the_link(api: Api, probe: Probe, member: str) -> None:
    """The email's link, public: its page (the locale read), the one-click opt-out, and again."""
    probe("PUT", f"/members/{member}", lambda: api.enrol(member, emailOptIn=True))
    token = make_token(member, secret=UNSUBSCRIBE_SECRET, now=datetime.now(UTC) - timedelta(minutes=1))
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert probe("GET", "/unsubscribe", query={"token": token}).status == 200
    for _ in range(2):
        response = probe(
            "POST", "/unsubscribe", query={"token": token}, body="List-Unsubscribe=One-Click", headers=form
        )
        assert response.status == 200


def claims_filed_listed_read_and_decided(api: Api, probe: Probe, member: str) -> None:
    """Claims filed (and again), the queue and its next page, a claim read, approved and rejected
    (each emailed), and a pending claim's purchase earned (the earn closes it and emails)."""
    me, support = Identity.member(member), Identity.support("agent-1")
    occurred = (datetime.now(UTC) - timedelta(days=10)).isoformat()

    def claim(suffix: str) -> dict[str, str]:
        return {
            "transactionId": f"{member}-{suffix}",
            "occurredAt": occurred,
            "amount": "42.50",
            "currency": "EUR",
        }

    path = f"/members/{member}/claims"
    ids = [
        probe("POST", path, identity=me, body=claim(suffix)).body["claimId"] for suffix in ("c1", "c2", "c3")
    ]
    assert probe("POST", path, identity=support, body=claim("c1")).status == 200  # the first again
    first = probe("GET", "/claims", identity=support, query={"status": "pending", "limit": "1"})
    assert first.body["nextCursor"]
    query = {"status": "pending", "limit": "1", "cursor": first.body["nextCursor"]}
    probe("GET", "/claims", identity=support, query=query)
    probe("GET", f"/claims/{ids[0]}", identity=me)
    for claim_id, decision in ((ids[0], "approve"), (ids[1], "reject")):
        body = {"decision": decision, "reason": "receipt checked"}
        decided = probe("POST", f"/claims/{claim_id}/decision", identity=support, body=body)
        assert decided.body["email"]["status"] == "sent", decided.body
    earned = probe("POST", f"/members/{member}/earn", lambda: api.earn(member, transactionId=f"{member}-c3"))
    assert earned.status == 201
    assert probe("GET", f"/claims/{ids[2]}", identity=support).body["email"]["status"] == "sent"


def a_transfer_that_empties_a_lot_page(api: Api, probe: Probe, member: str) -> None:
    """The member's only lot goes to another member whole (its page is deleted), then is replayed;
    a transfer of points it no longer has is refused (its request record is read first)."""
    receiver = new_member()
    probe("PUT", f"/members/{receiver}", lambda: api.enrol(receiver))
    probe("POST", f"/members/{member}/earn", lambda: api.earn(member, transactionId=f"{member}-t"))
    body, headers = {"toMemberId": receiver, "points": 100}, {"idempotency-key": f"{member}-t"}
    for _ in range(2):
        response = probe(
            "POST",
            f"/members/{member}/transfers",
            identity=Identity.member(member),
            body=body,
            headers=headers,
        )
        assert response.status == 201, response.body
    refused = probe(
        "POST",
        f"/members/{member}/transfers",
        identity=Identity.member(member),
        body=body,
        headers={"idempotency-key": f"{member}-t2"},
    )
    assert refused.error_code == "insufficient_points"


def returns_that_owe_and_empty_a_lot_page(api: Api, probe: Probe, member: str) -> None:
    """A return of spent points (owed), replayed; then a return that empties its lot's page."""

    def reverse(transaction_id: str) -> ApiResponse:
        return api.call(
            "POST",
            f"/members/{member}/earn/{transaction_id}/reversal",
            identity=PARTNER,
            body={},
            headers={"idempotency-key": f"return-{transaction_id}"},
        )

    path = f"/members/{member}/earn/{{transactionId}}/reversal"
    for _ in range(2):
        assert probe("POST", path, lambda: reverse(f"{member}-1")).status == 201
    # 150 points: 100 pay what the first return left owed, 50 make a lot (its page is new)
    earn = f"/members/{member}/earn"
    probe("POST", earn, lambda: api.earn(member, transactionId=f"{member}-r", amount="150"))
    emptied = probe("POST", path, lambda: reverse(f"{member}-r"))
    assert emptied.status == 201 and emptied.body["taken"] > 0, emptied.body


def lots_due_but_not_yet_expired(api: Api, probe: Probe, recorder: ActionRecorder, member: str) -> None:
    # Given a member whose lot expired yesterday and that no expiry run has expired yet
    long_ago = datetime.now(UTC) - timedelta(days=733)
    partner = Actor("partner", "pos-test")
    profile = {"email": "p@example.com", "name": None, "locale": "en", "emailOptIn": False}
    members.enrol_or_update(member, profile, actor=partner, now=long_ago)
    purchase = Purchase(Decimal("20"), "EUR", long_ago, "store")
    points.earn(member, f"{member}-old", purchase, actor=partner, rules=default_rules(), now=long_ago)

    # When a partner reports a purchase now, Then the earn's extra read is granted
    response = probe(
        "POST", f"/members/{member}/earn", lambda: api.earn(member, transactionId=f"{member}-new", amount="5")
    )
    assert response.body["balance"] == 5
    assert "dynamodb:Query" in recorder.actions


def days_lot_not_where_the_wallet_said(
    api: Api, probe: Probe, recorder: ActionRecorder, table: Any, member: str
) -> None:
    # Given today's lot exists, but the wallet no longer remembers it as the last one
    assert api.enrol(member).status == 201
    today = datetime.now(UTC).isoformat()
    assert api.earn(member, transactionId=f"{member}-a", occurredAt=today).status == 201
    table.update_item(Key={"pk": f"MEMBER#{member}", "sk": "WALLET"}, UpdateExpression="REMOVE lastLot")

    # When another purchase is reported today, Then the page read is granted and the lot grows
    response = probe(
        "POST",
        f"/members/{member}/earn",
        lambda: api.earn(member, transactionId=f"{member}-b", occurredAt=today),
    )
    assert response.body["balance"] == 200
    assert "dynamodb:GetItem" in recorder.actions


def sqs_event(*bodies: str) -> dict[str, Any]:
    records = [
        {"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": body, "attributes": {}}
        | {"messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "eu-west-1"}
        for body in bodies
    ]
    return {"Records": records}


def daily_runs(probe: Probe, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run started by its schedule, one shard paged, one message of members worked: the
    expiry of a member whose only lot is due (its page deleted), the reminder of one whose points
    expire within the window (emailed), then the run checked; then SES's bounce of that email
    through its rule."""
    sqs = boto3.client("sqs")
    for variable in ("EXPIRY", "REMINDER"):
        for queue in ("SHARD_QUEUE_URL", "QUEUE_URL"):
            url = sqs.create_queue(QueueName=f"policies-{variable}-{queue}".lower().replace("_", "-"))[
                "QueueUrl"
            ]
            monkeypatch.setenv(f"{variable}_{queue}", url)
    partner = Actor("partner", "pos-test")
    now = datetime.now(UTC)
    for kind, bought in (
        (RunKind.EXPIRY, now - timedelta(days=800)),
        (RunKind.REMINDERS, now - timedelta(days=720)),
    ):
        member = new_member()
        profile = {"email": f"{member}@example.com", "name": None, "locale": "en", "emailOptIn": True}
        members.enrol_or_update(member, profile, actor=partner, now=bought)
        purchase = Purchase(Decimal("20"), "EUR", bought, "store")
        points.earn(member, f"{member}-run", purchase, actor=partner, rules=default_rules(), now=bought)
        function = "ExpiryFunction" if kind is RunKind.EXPIRY else "ReminderFunction"
        started = probe.invoke(function, {"time": now.isoformat()})
        shard = int(keys.expiry_shard(member, settings().expiry_shards).removeprefix("EXPIRY#"))
        task = ShardTask(started["runId"], kind, datetime.fromisoformat(started["asOf"]), shard)
        assert probe.invoke(function, sqs_event(task.to_json())) == {"batchItemFailures": []}
        message = RunMessage(started["runId"], kind, task.as_of, (member,))
        assert probe.invoke(
            f"{function.removesuffix('Function')}WorkerFunction", sqs_event(message.to_json())
        ) == {"batchItemFailures": []}
        # Hours later, the check of the day's run (its own schedule): the kind's index and records
        checked = probe.invoke(function, {"check": (now + timedelta(hours=4)).isoformat()})
        assert checked["check"] == str(kind) and checked["run"] is not None
    # The reminder's email bounced: SES's event, through the stack's rule
    bounce = json.loads((ROOT / "events" / "email_events" / "ses-bounce.json").read_text(encoding="utf-8"))
    bounce["detail"]["mail"]["tags"]["member"] = [member_tag(member)]
    bounce["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] = f"{member}@example.com"
    probe.invoke("EmailEventsFunction", bounce)
    assert read_reminder_state(member).undeliverable_address == f"{member}@example.com"


def liability_figures(probe: Probe, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member's earn as the table's stream carries it to the aggregator (twice: the second
    delivery finds its marker), the report read by finance, and the monthly export to the bucket."""
    member = new_member()
    now = datetime.now(UTC)
    partner = Actor("partner", "pos-test")
    profile = {"email": f"{member}@example.com", "name": None, "locale": "en", "emailOptIn": False}
    members.enrol_or_update(member, profile, actor=partner, now=now)
    purchase = Purchase(Decimal("30"), "EUR", now, "store")
    points.earn(member, f"{member}-report", purchase, actor=partner, rules=default_rules(), now=now)
    image = boto3.client("dynamodb").get_item(
        TableName=settings().table_name,
        Key={"pk": {"S": keys.member_pk(member)}, "sk": {"S": keys.ledger_sk(1)}},
    )["Item"]
    record = {"eventID": uuid.uuid4().hex, "eventName": "INSERT", "eventSource": "aws:dynamodb"}
    record["dynamodb"] = {"NewImage": image, "SequenceNumber": "100", "StreamViewType": "NEW_IMAGE"}
    for _ in range(2):
        assert probe.invoke("LiabilityAggregatorFunction", {"Records": [record]}) == {"batchItemFailures": []}
    finance = Identity.finance("finance-1")
    assert probe("GET", "/reports/liability", identity=finance).body["outstanding"] >= 30
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    monkeypatch.setenv("REPORTS_BUCKET", bucket)
    written = probe.invoke("LiabilityExportFunction", {"time": now.isoformat()})
    assert len(written["keys"]) == 3


# ---------------------------------------------------------------- nothing missing


def test_the_daily_runs_and_the_email_events_perform_only_actions_their_functions_may(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    daily_runs(probe, monkeypatch)


def test_the_liability_figures_report_and_export_perform_only_actions_their_functions_may(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    liability_figures(probe, monkeypatch)


def test_every_route_performs_only_actions_its_function_may(api: Api, probe: Probe) -> None:
    every_route(api, probe, new_member())


def test_an_earn_while_lots_are_due_but_not_yet_expired_may_read_the_pages(
    api: Api, probe: Probe, recorder: ActionRecorder
) -> None:
    lots_due_but_not_yet_expired(api, probe, recorder, new_member())


def test_an_earn_that_finds_the_days_lot_elsewhere_than_the_wallet_said_may_read_its_page(
    api: Api, probe: Probe, recorder: ActionRecorder, table: Any
) -> None:
    days_lot_not_where_the_wallet_said(api, probe, recorder, table, new_member())


def test_the_functions_that_apply_the_rules_read_them_from_the_parameter(
    api: Api, probe: Probe, recorder: ActionRecorder
) -> None:
    """The control of the SSM set-up: a rules read is recorded, and granted (checked by `probe`)."""
    member = new_member()
    forget_configuration()
    probe("PUT", f"/members/{member}", lambda: api.enrol(member))
    probe("POST", f"/members/{member}/earn", lambda: api.earn(member))
    assert "ssm:GetParameter" in recorder.actions


# ---------------------------------------------------------------- nothing unused


def test_each_function_is_granted_no_action_its_code_does_not_use(
    api: Api, probe: Probe, recorder: ActionRecorder, table: Any, template: dict[str, Any]
) -> None:
    # Given every path of every route has run, each function reading the rules afresh
    recorder.used.clear()
    forget_configuration()
    every_route(api, probe, new_member())
    lots_due_but_not_yet_expired(api, probe, recorder, new_member())
    days_lot_not_where_the_wallet_said(api, probe, recorder, table, new_member())
    with pytest.MonkeyPatch.context() as patch:
        daily_runs(probe, patch)
    with pytest.MonkeyPatch.context() as patch:
        liability_figures(probe, patch)

    # Then each function's policy grants nothing more than its calls used
    functions = {route.function for route in api.routes} | NOT_ROUTED
    assert functions == set(serverless_functions(template)), "a function serves no route: drive it here"
    unused = {
        function: sorted(granted(template, function) - recorder.used[function])
        for function in sorted(functions)
    }
    unused = {function: actions for function, actions in unused.items() if actions}
    assert not unused, "; ".join(
        f"{function} is granted {', '.join(actions)} but its code never uses it"
        for function, actions in unused.items()
    )
