"""Contract tests of template.yaml's observability (issue #9): every function, queue and business
metric is watched, and the dashboard shows what the code publishes.

The metric names are collected from the code itself (every call of the telemetry helpers and every
name they are given, through constants, dicts and imports), so a metric added or renamed in the
code and forgotten on the dashboard fails here.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loyalty.runs.jobs import RunKind
from tests.contract.test_template import NO_VALUE, ROOT, _of_type
from tests.contract.test_template import resources as resources  # the fixtures
from tests.contract.test_template import template as template

ALARM = "AWS::CloudWatch::Alarm"
NOTIFY = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], NO_VALUE]}
# The telemetry helpers (layers/loyalty/loyalty/http/telemetry.py) and Powertools' own calls: the
# metric's name is their first argument or their `name`.
METRIC_CALLS = {"count_movement", "count_event", "count_refusal", "gauge", "add_metric", "single_metric"}
CODE = [ROOT / "layers" / "loyalty" / "loyalty", ROOT / "functions"]
METRIC_NAME = re.compile(r"^[A-Z][A-Za-z0-9]+$")


# ---------------------------------------------------------------- the metrics the code publishes


class Module:
    """A parsed source file and its module-level names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        self.constants: dict[str, ast.expr] = {}
        self.imports: dict[str, tuple[str, str]] = {}  # local name -> (module, name)
        for node in self.tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.constants[target.id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                self.constants[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)


def _module_path(dotted: str) -> Path | None:
    path = ROOT / "layers" / "loyalty" / Path(*dotted.split("."))
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def _names_in(expression: ast.AST, module: Module, scope: ast.AST, depth: int = 0) -> Iterator[str]:
    """The metric names an expression can evaluate to: its string constants, and those of the
    module constants, imported constants and loop or local variables it names."""
    if depth > 5:
        return
    for node in ast.walk(expression):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and METRIC_NAME.match(node.value):
            yield node.value
        elif isinstance(node, ast.Name):
            yield from _resolve(node.id, module, scope, depth + 1)


def _resolve(name: str, module: Module, scope: ast.AST, depth: int) -> Iterator[str]:
    if name in module.constants:
        yield from _names_in(module.constants[name], module, module.tree, depth)
    elif name in module.imports:
        source, original = module.imports[name]
        path = _module_path(source)
        if path is not None:
            other = Module(path)
            yield from _resolve(original, other, other.tree, depth + 1)
    else:  # a loop variable or a local assignment in the enclosing function
        for node in ast.walk(scope):
            if isinstance(node, ast.For) and any(
                isinstance(t, ast.Name) and t.id == name for t in ast.walk(node.target)
            ):
                yield from _names_in(node.iter, module, scope, depth + 1)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets
            ):
                yield from _names_in(node.value, module, scope, depth + 1)


def _metric_argument(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "name":
            return keyword.value
    return call.args[0] if call.args else None


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def published_metrics() -> dict[str, set[str]]:
    """Every metric name the code can publish, with the files that publish it. A call whose name
    is a parameter of a telemetry helper (`count_event(name)` inside telemetry.py) adds nothing:
    its callers are collected instead."""
    found: dict[str, set[str]] = {}
    for root in CODE:
        for path in sorted(root.rglob("*.py")):
            module = Module(path)
            functions = [n for n in ast.walk(module.tree) if isinstance(n, ast.FunctionDef)]
            for function in functions:
                for node in ast.walk(function):
                    if isinstance(node, ast.Call) and _called(node) in METRIC_CALLS:
                        argument = _metric_argument(node)
                        if argument is None:
                            continue
                        for name in _names_in(argument, module, function):
                            found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_the_metric_collector_finds_the_business_metrics_of_the_issue() -> None:
    # The control: the issue's metrics, each published through a different path (a literal, a
    # dict of the runs' figures, an imported constant, a conditional, a module constant)
    metrics = published_metrics()
    assert {
        "PointsEarned",
        "PointsRedeemed",
        "PointsTransferred",
        "PointsReversed",
        "PointsExpired",
        "ClaimsOpened",
        "ClaimsApproved",
        "ClaimsRejected",
        "RemindersSent",
        "RemindersSkipped",
        "RemindersBounced",
        "ColdStart",
        "RunsIncomplete",
        "ItemsNearSizeLimit",
        "ClaimEmailsSent",
    } <= set(metrics)
    # and nothing that is not a metric (a dimension, a message, an argument name)
    assert not {"Count", "Loyalty", "ReplayedRequest"} & set(metrics)


# ---------------------------------------------------------------- alarms


def _alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: alarm["Properties"] for name, alarm in _of_type(resources, ALARM).items()}


def _watching(resources: dict[str, Any], namespace: str, metric: str, dimension: dict[str, Any]) -> list[str]:
    return [
        name
        for name, alarm in _alarms(resources).items()
        if alarm.get("Namespace") == namespace
        and alarm.get("MetricName") == metric
        and dimension in alarm.get("Dimensions", [])
    ]


def _functions(resources: dict[str, Any]) -> list[str]:
    return sorted(_of_type(resources, "AWS::Serverless::Function"))


def test_every_function_has_an_errors_and_a_throttles_alarm_at_the_first_one(
    resources: dict[str, Any],
) -> None:
    alarms = _alarms(resources)
    for function in _functions(resources):
        for metric in ("Errors", "Throttles"):
            dimension = {"Name": "FunctionName", "Value": {"Ref": function}}
            watching = _watching(resources, "AWS/Lambda", metric, dimension)
            assert len(watching) == 1, f"{function} has {len(watching)} {metric} alarms, not one"
            alarm = alarms[watching[0]]
            assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
                "Sum",
                0,
                "GreaterThanThreshold",
            ), watching
            assert alarm["TreatMissingData"] == "notBreaching", watching


def _dead_letter_queues(resources: dict[str, Any]) -> set[str]:
    """Queues something sends its failures to: a queue's redrive target, an event source's
    on-failure destination."""
    queues: set[str] = set()
    for queue in _of_type(resources, "AWS::SQS::Queue").values():
        target = (queue["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn")
        if target:
            queues.add(target["Fn::GetAtt"][0])
    for function in _of_type(resources, "AWS::Serverless::Function").values():
        for event in (function["Properties"].get("Events") or {}).values():
            destination = (event["Properties"].get("DestinationConfig") or {}).get("OnFailure", {})
            if destination.get("Type") == "SQS":
                queues.add(destination["Destination"]["Fn::GetAtt"][0])
    return queues


def test_every_dead_letter_queue_has_an_alarm_on_its_first_message(resources: dict[str, Any]) -> None:
    dead_letters = _dead_letter_queues(resources)
    assert {"ExpiryDeadLetterQueue", "ReminderDeadLetterQueue", "LiabilityDeadLetterQueue"} <= dead_letters
    for queue in dead_letters:
        dimension = {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
        watching = _watching(resources, "AWS/SQS", "ApproximateNumberOfMessagesVisible", dimension)
        assert len(watching) == 1, f"the dead-letter queue {queue} has {len(watching)} alarms, not one"
        alarm = _alarms(resources)[watching[0]]
        assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
            "Maximum",
            0,
            "GreaterThanThreshold",
        )


def test_every_alarm_notifies_the_topic_when_one_is_given_and_when_it_clears(
    resources: dict[str, Any],
) -> None:
    alarms = _alarms(resources)
    assert len(alarms) >= 2 * len(_functions(resources))
    for name, alarm in alarms.items():
        assert alarm.get("AlarmActions") == NOTIFY, name
        assert alarm.get("OKActions") == NOTIFY, name


def test_the_table_throttle_alarm_sums_reads_and_writes_of_the_table_and_each_index(
    resources: dict[str, Any],
) -> None:
    alarm = _alarms(resources)["TableThrottlesAlarm"]
    indexes = [i["IndexName"] for i in resources["LoyaltyTable"]["Properties"]["GlobalSecondaryIndexes"]]
    watched = set()
    for metric in alarm["Metrics"]:
        if "MetricStat" not in metric:
            continue
        stat = metric["MetricStat"]["Metric"]
        dimensions = {d["Name"]: d["Value"] for d in stat["Dimensions"]}
        assert stat["Namespace"] == "AWS/DynamoDB" and dimensions["TableName"] == {"Ref": "LoyaltyTable"}
        watched.add((stat["MetricName"], dimensions.get("GlobalSecondaryIndexName")))
        assert metric["Id"] in next(m["Expression"] for m in alarm["Metrics"] if m.get("ReturnData"))
    assert watched == {
        (metric, index)
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents")
        for index in [None, *indexes]
    }


def test_the_alarms_on_the_codes_metrics_watch_metrics_the_code_publishes_as_it_publishes_them(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    published = published_metrics()
    service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    ours = {name: alarm for name, alarm in _alarms(resources).items() if alarm.get("Namespace") == namespace}
    expected = {"ExpiryRunIncompleteAlarm", "ReminderRunIncompleteAlarm", "ItemsNearSizeLimitAlarm"}
    assert expected | {"MovementTooLargeAlarm"} <= set(ours)
    for name, alarm in ours.items():
        assert alarm["MetricName"] in published, name
        assert {"Name": "service", "Value": service} in alarm["Dimensions"], name
    kinds = {
        next(d["Value"] for d in alarm["Dimensions"] if d["Name"] == "kind")
        for alarm in ours.values()
        if alarm["MetricName"] == "RunsIncomplete"
    }
    assert kinds == {str(kind) for kind in RunKind}


def test_a_check_by_hand_minutes_after_a_failed_one_clears_the_run_alarm(resources: dict[str, Any]) -> None:
    # Given the scheduled check's 1, then a 0 from a check by hand once the run is done (deploy.md,
    # "Checking a run"), minutes later: the alarm takes the latest value only if the two fall in
    # periods of their own (the Maximum of an hour holding both stays 1, and missing data after it
    # is ignored, so the alarm would stay on until the next day's check)
    alarms = {
        name: alarm
        for name, alarm in _alarms(resources).items()
        if alarm.get("MetricName") == "RunsIncomplete"
    }

    assert len(alarms) == len(RunKind)
    for name, alarm in alarms.items():
        assert alarm["TreatMissingData"] == "ignore", name
        assert alarm["Statistic"] == "Maximum" and alarm["Period"] == 60, name
        assert alarm["EvaluationPeriods"] == 1, name


@pytest.mark.parametrize(
    ("function", "kind"), [("ExpiryFunction", "Expiry"), ("ReminderFunction", "Reminder")]
)
def test_each_run_is_checked_by_a_schedule_of_its_own_hours_after_it(
    resources: dict[str, Any], function: str, kind: str
) -> None:
    events = resources[function]["Properties"]["Events"]
    check = events["Check"]["Properties"]
    assert events["Check"]["Type"] == "ScheduleV2"
    assert check["ScheduleExpression"] == {"Ref": f"{kind}CheckSchedule"}
    assert check["ScheduleExpressionTimezone"] == events["Daily"]["Properties"]["ScheduleExpressionTimezone"]
    assert json.loads(check["Input"]) == {"check": "<aws.scheduler.scheduled-time>"}


# ---------------------------------------------------------------- the dashboard


def _dashboard_body(resources: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The body with each `${…}` replaced by a placeholder, parsed, and the references it makes."""
    [dashboard] = _of_type(resources, "AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str), "the body is one !Sub string"
    references = set(re.findall(r"\$\{([^}]+)\}", text))
    return json.loads(re.sub(r"\$\{([^}]+)\}", r"placeholder-\1", text)), references


def _metric_rows(body: dict[str, Any]) -> Iterator[list[Any]]:
    for widget in body["widgets"]:
        yield from widget["properties"].get("metrics", [])


def _shown(body: dict[str, Any], namespace: str, metric: str) -> list[list[Any]]:
    return [row for row in _metric_rows(body) if row[:2] == [namespace, metric]]


def test_the_dashboard_body_is_json_whose_references_are_the_stacks_resources(
    resources: dict[str, Any],
) -> None:
    body, references = _dashboard_body(resources)

    assert body["widgets"]
    for reference in references:
        name = reference.split(".", 1)[0]
        assert name in resources or name.startswith("AWS::"), f"${{{reference}}} names nothing of the stack"
    for widget in body["widgets"]:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget)
        assert widget["x"] + widget["width"] <= 24


def test_the_dashboard_shows_every_metric_the_code_publishes(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    body, _ = _dashboard_body(resources)
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    shown = {row[1] for row in _metric_rows(body) if row and row[0] == namespace}
    searched = " ".join(
        row[0]["expression"]
        for row in _metric_rows(body)
        if row and isinstance(row[0], dict) and "expression" in row[0]
    )

    missing = {
        metric: sorted(files)
        for metric, files in published_metrics().items()
        if metric not in shown and f'MetricName="{metric}"' not in searched
    }

    assert not missing, f"published by the code, not on the dashboard: {missing}"


def test_the_dashboard_shows_each_functions_errors_throttles_and_duration(resources: dict[str, Any]) -> None:
    body, _ = _dashboard_body(resources)
    for metric in ("Errors", "Throttles", "Duration"):
        on_board = {row[3] for row in _shown(body, "AWS/Lambda", metric)}
        assert on_board == {f"placeholder-{f}" for f in _functions(resources)}, metric


def test_the_dashboard_shows_every_queue_and_the_table_and_the_api(resources: dict[str, Any]) -> None:
    body, _ = _dashboard_body(resources)
    queues = {row[3] for row in _shown(body, "AWS/SQS", "ApproximateNumberOfMessagesVisible")}
    assert queues == {f"placeholder-{q}.QueueName" for q in _of_type(resources, "AWS::SQS::Queue")}
    for metric in (
        "ConsumedReadCapacityUnits",
        "ConsumedWriteCapacityUnits",
        "ReadThrottleEvents",
        "WriteThrottleEvents",
    ):
        assert _shown(body, "AWS/DynamoDB", metric), metric
    for metric in ("Count", "4xx", "5xx", "Latency"):
        assert {row[3] for row in _shown(body, "AWS/ApiGateway", metric)} == {"placeholder-LoyaltyApi"}, (
            metric
        )
    for metric in ("Reputation.BounceRate", "Reputation.ComplaintRate"):
        assert _shown(body, "AWS/SES", metric), metric


def test_the_outputs_give_the_dashboards_address(template: dict[str, Any]) -> None:
    url = template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert (
        url.endswith("#dashboards/dashboard/${Dashboard}") and "cloudwatch/home?region=${AWS::Region}" in url
    )
    # The console is served from aws.amazon.com (AWS::URLSuffix, amazonaws.com, names the API
    # endpoints: <region>.console.amazonaws.com does not exist).
    assert url.startswith("https://${AWS::Region}.console.aws.amazon.com/"), url


def test_every_section_of_deploy_md_the_template_names_exists() -> None:
    # Given the template's pointers to docs/deploy.md (`docs/deploy.md, "<section>"`), the alarms'
    # descriptions among them: they reach the operator in every alarm notification
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8").splitlines()
    headings = {line.lstrip("#").strip() for line in deploy if line.startswith("#")}
    named = {" ".join(name.split()) for name in re.findall(r'docs/deploy\.md, "([^"]+)"', text)}

    # Then each is a heading of deploy.md
    assert "What the alarms watch" in named
    assert named <= headings, sorted(named - headings)
