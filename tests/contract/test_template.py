"""Contract tests of template.yaml: what the deployment promises (SPEC §2, §5, §8; docs/design.md).

The template is read with PyYAML as CloudFormation would read it: the short intrinsic tags
(`!Ref`, `!Sub`, ...) become their long form (`{"Ref": ...}`, `{"Fn::Sub": ...}`).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.template import function_environment
from loyalty.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that knows CloudFormation's short-form intrinsic functions."""


def _intrinsic(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":  # !GetAtt Resource.Attribute is the list [Resource, Attribute]
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            assert isinstance(node, yaml.MappingNode)
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _tag in (
    "Ref", "Sub", "GetAtt", "If", "Join", "Select", "Split", "Equals", "Not", "And", "Or",
    "Condition", "FindInMap", "Base64", "ImportValue", "GetAZs", "Cidr",
):  # fmt: skip
    CloudFormationLoader.add_constructor(f"!{_tag}", _intrinsic(_tag))


# What each function is for, and nothing more (SPEC §5, docs/design.md "Access patterns").
FUNCTIONS: dict[str, dict[str, Any]] = {
    "MembersFunction": {
        "dir": "members",
        "routes": {("PUT", "/members/{memberId}"), ("GET", "/members/{memberId}")},
        "table_actions": {"PutItem", "UpdateItem", "Query"},
        "reads_rules": False,
    },
    "BalanceFunction": {
        "dir": "balance",
        "routes": {("GET", "/members/{memberId}/balance"), ("GET", "/members/{memberId}/lots")},
        "table_actions": {"Query"},
        "reads_rules": True,  # the program timezone, to name the expiry dates
    },
    "LedgerFunction": {
        "dir": "ledger",
        "routes": {("GET", "/members/{memberId}/ledger")},
        "table_actions": {"Query", "GetItem"},
        "reads_rules": False,
    },
    "EarnFunction": {
        "dir": "earn",
        "routes": {
            ("POST", "/members/{memberId}/earn"),
            ("POST", "/members/{memberId}/earn/{transactionId}/reversal"),
        },
        "table_actions": {"BatchGetItem", "GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
        "reads_rules": True,
        "sends_email": True,  # the outcome of a claim its earn closed
    },
    "RedeemFunction": {
        "dir": "redeem",
        "routes": {("POST", "/members/{memberId}/redemptions")},
        "table_actions": {"Query", "GetItem", "PutItem", "UpdateItem", "DeleteItem"},
        "reads_rules": True,
    },
    "TransferFunction": {
        "dir": "transfer",
        "routes": {("POST", "/members/{memberId}/transfers")},
        "table_actions": {"Query", "BatchGetItem", "GetItem", "PutItem", "UpdateItem", "DeleteItem"},
        "reads_rules": True,
    },
    "ClaimsFunction": {
        "dir": "claims",
        "routes": {
            ("POST", "/members/{memberId}/claims"),
            ("GET", "/claims"),
            ("GET", "/claims/{claimId}"),
            ("POST", "/claims/{claimId}/decision"),
        },
        "table_actions": {"BatchGetItem", "GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
        "index_actions": {"ByStatus": {"Query"}},
        "reads_rules": True,
        "sends_email": True,
    },
    "OpenApiFunction": {
        "dir": "openapi",
        "routes": {("GET", "/openapi.json"), ("GET", "/swagger")},
        "table_actions": set(),
        "reads_rules": False,
    },
    "UnsubscribeFunction": {
        "dir": "unsubscribe",
        "routes": {("GET", "/unsubscribe"), ("POST", "/unsubscribe")},
        "table_actions": {"GetItem", "UpdateItem"},
        "reads_rules": False,
    },
    "ExpiryFunction": {
        "dir": "expiry",
        "routes": set(),  # an EventBridge Scheduler schedule
        # the run's record and index entry; the check reads the kind's index and the runs' records
        "table_actions": {"PutItem", "UpdateItem", "Query", "GetItem"},
        "index_actions": {"ByNextExpiry": {"Query"}},
        "reads_rules": True,
        "sends_to": ["ExpiryShardQueue", "ExpiryQueue"],
    },
    "ExpiryWorkerFunction": {
        "dir": "expiry",
        "handler": "worker.lambda_handler",
        "routes": set(),  # SQS: ExpiryQueue
        "table_actions": {"Query", "PutItem", "UpdateItem", "DeleteItem"},
        "reads_rules": True,
    },
    "ReminderFunction": {
        "dir": "reminders",
        "routes": set(),
        "table_actions": {"PutItem", "UpdateItem", "Query", "GetItem"},
        "index_actions": {"ByNextExpiry": {"Query"}},
        "reads_rules": True,
        "sends_to": ["ReminderShardQueue", "ReminderQueue"],
    },
    "ReminderWorkerFunction": {
        "dir": "reminders",
        "handler": "worker.lambda_handler",
        "routes": set(),  # SQS: ReminderQueue
        "table_actions": {"BatchGetItem", "Query", "PutItem", "UpdateItem"},
        "reads_rules": True,
        "sends_email": True,
    },
    "ReportsFunction": {
        "dir": "reports",
        "routes": {("GET", "/reports/liability")},
        "table_actions": {"Query"},  # the period figures
        "reads_rules": True,  # the value of a point
    },
    "LiabilityAggregatorFunction": {
        "dir": "reports",
        "handler": "aggregate.lambda_handler",
        "routes": set(),  # the table's stream: new ledger entries
        "table_actions": {"PutItem", "UpdateItem"},  # a run's marker and figures, one transaction
        "reads_rules": False,
    },
    "LiabilityExportFunction": {
        "dir": "reports",
        "handler": "export.lambda_handler",
        "routes": set(),  # a monthly EventBridge Scheduler schedule
        "table_actions": {"Query"},
        "reads_rules": True,
        "writes_reports": True,
    },
    "EmailEventsFunction": {
        "dir": "email_events",
        "routes": set(),  # an EventBridge rule: SES bounces and complaints
        "table_actions": {"BatchGetItem", "UpdateItem"},  # the profile and reminder state; the mark
        "reads_rules": False,
    },
}
PUBLIC_ROUTES = {
    ("GET", "/openapi.json"),
    ("GET", "/swagger"),
    ("GET", "/unsubscribe"),
    ("POST", "/unsubscribe"),
}
TABLE_ARN = {"Fn::GetAtt": ["LoyaltyTable", "Arn"]}
NO_VALUE = {"Ref": "AWS::NoValue"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=CloudFormationLoader)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def _of_type(resources: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == type_}


def _http_events(function: dict[str, Any]) -> dict[str, dict[str, Any]]:
    events = function["Properties"].get("Events", {})
    return {name: e["Properties"] for name, e in events.items() if e["Type"] == "HttpApi"}


def _statements(function: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """Every IAM statement of a function's inline policies, with the condition it depends on.

    Policy templates (`DynamoDBCrudPolicy: ...`) and managed policy names are refused: they
    grant more than the handler needs, and could not be checked here.
    """
    found: list[tuple[str | None, dict[str, Any]]] = []
    for policy in function["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and set(policy) <= {"Version", "Statement"}, (
            f"only inline policy documents are allowed, got {policy!r}"
        )
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                condition, when_true, when_false = statement["Fn::If"]
                assert when_false == NO_VALUE, (
                    "a conditional statement must vanish when its condition is false"
                )
                found.append((condition, when_true))
            else:
                found.append((None, statement))
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def _is_dynamodb(statement: dict[str, Any]) -> bool:
    return any(a.startswith("dynamodb:") for a in _actions(statement))


def _is_ses(statement: dict[str, Any]) -> bool:
    return any(a.startswith("ses:") for a in _actions(statement))


def _is_sqs(statement: dict[str, Any]) -> bool:
    return any(a.startswith("sqs:") for a in _actions(statement))


def _is_s3(statement: dict[str, Any]) -> bool:
    return any(a.startswith("s3:") for a in _actions(statement))


def _index_of(resource: Any) -> str | None:
    """The index a statement's resource names (`${LoyaltyTable.Arn}/index/<name>`), if any."""
    text = resource.get("Fn::Sub") if isinstance(resource, dict) else None
    prefix = "${LoyaltyTable.Arn}/index/"
    return text.removeprefix(prefix) if isinstance(text, str) and text.startswith(prefix) else None


_ABSENT = object()


def _with_conditions(value: Any, true: set[str]) -> Any:
    """The value CloudFormation would deploy when exactly the conditions in `true` hold.

    Resolves every `Fn::If` and drops what resolves to `AWS::NoValue` (`_ABSENT` at the top).
    """
    if isinstance(value, list):
        items = [_with_conditions(item, true) for item in value]
        return [item for item in items if item is not _ABSENT]
    if not isinstance(value, dict):
        return value
    if value == NO_VALUE:
        return _ABSENT
    if set(value) == {"Fn::If"}:
        condition, when_true, when_false = value["Fn::If"]
        return _with_conditions(when_true if condition in true else when_false, true)
    resolved = {key: _with_conditions(item, true) for key, item in value.items()}
    return {key: item for key, item in resolved.items() if item is not _ABSENT}


def _is_set_when_not_empty(template: dict[str, Any], condition: str, parameter: str) -> bool:
    return template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}


# ---------------------------------------------------------------- the table


def test_the_table_keeps_its_data_when_the_stack_is_deleted_or_the_table_replaced(
    resources: dict[str, Any],
) -> None:
    """Given the table, then stack deletion and replacement retain it, and deletion protection is on."""
    table = resources["LoyaltyTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True


def test_the_table_has_point_in_time_recovery_and_encryption(resources: dict[str, Any]) -> None:
    properties = resources["LoyaltyTable"]["Properties"]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True


def test_the_table_is_on_demand_with_string_pk_and_sk(resources: dict[str, Any]) -> None:
    properties = resources["LoyaltyTable"]["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
    assert types == {name: "S" for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")}


@pytest.mark.parametrize(
    ("index", "hash_key", "range_key", "projection"),
    [
        ("ByNextExpiry", "gsi1pk", "gsi1sk", {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["itemType"]}),
        ("ByStatus", "gsi2pk", "gsi2sk", {"ProjectionType": "ALL"}),
    ],
)
def test_the_table_declares_the_indexes_of_the_design(
    resources: dict[str, Any], index: str, hash_key: str, range_key: str, projection: dict[str, Any]
) -> None:
    indexes = {i["IndexName"]: i for i in resources["LoyaltyTable"]["Properties"]["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"ByNextExpiry", "ByStatus"}
    assert indexes[index]["KeySchema"] == [
        {"AttributeName": hash_key, "KeyType": "HASH"},
        {"AttributeName": range_key, "KeyType": "RANGE"},
    ]
    assert indexes[index]["Projection"] == projection


def test_the_table_garbage_collects_on_the_ttl_attribute(resources: dict[str, Any]) -> None:
    ttl = resources["LoyaltyTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "ttl", "Enabled": True}


# ---------------------------------------------------------------- the functions


def test_the_template_declares_exactly_the_known_functions(resources: dict[str, Any]) -> None:
    """Given a new function in the template, this test fails until its rights are written down here."""
    assert set(_of_type(resources, "AWS::Serverless::Function")) == set(FUNCTIONS)


def test_every_function_runs_python_3_12_on_arm64_with_the_shared_layer(template: dict[str, Any]) -> None:
    defaults = template["Globals"]["Function"]
    assert defaults["Runtime"] == "python3.12"
    assert defaults["Architectures"] == ["arm64"]
    assert defaults["Layers"] == [{"Ref": "LoyaltyLayer"}]
    assert "Tracing" not in defaults or defaults["Tracing"] == "Disabled"
    for name, function in _of_type(template["Resources"], "AWS::Serverless::Function").items():
        overridden = set(function["Properties"]) & {"Runtime", "Architectures", "Layers"}
        assert not overridden, f"{name} overrides {overridden} of Globals"


def test_every_function_gets_its_configuration_from_the_environment(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": "LoyaltyTable"}
    assert variables["RULES_SOURCE"] == {
        "Fn::If": ["HasRulesParameter", {"Fn::Sub": "ssm:${RulesParameterName}"}, "default"]
    }
    assert variables["POWERTOOLS_SERVICE_NAME"] == "loyalty"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Loyalty"
    assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_code_folder_exists_with_an_app_module(resources: dict[str, Any], name: str) -> None:
    """Given a function, when its CodeUri is resolved, then the folder holds app.py with lambda_handler."""
    properties = resources[name]["Properties"]
    assert properties["CodeUri"].rstrip("/") == f"functions/{FUNCTIONS[name]['dir']}"
    handler = FUNCTIONS[name].get("handler", "app.lambda_handler")
    assert properties["Handler"] == handler
    module, _, function = handler.partition(".")
    app = ROOT / properties["CodeUri"] / f"{module}.py"
    assert app.is_file(), f"{app.relative_to(ROOT)} is missing"
    assert re.search(rf"^def {function}\(", app.read_text(encoding="utf-8"), re.MULTILINE), (
        f"{app.relative_to(ROOT)} defines no {function}"
    )


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_may_perform_exactly_its_table_actions_on_the_table_only(
    resources: dict[str, Any], name: str
) -> None:
    """Given a function, when its policies are read, then the DynamoDB actions equal what its job needs."""
    dynamodb = [s for _, s in _statements(resources[name]) if _is_dynamodb(s)]
    on_indexes = [s for s in dynamodb if _index_of(s["Resource"]) is not None]
    on_table = [s for s in dynamodb if s not in on_indexes]
    granted = {a.removeprefix("dynamodb:") for s in on_table for a in _actions(s)}
    assert granted == FUNCTIONS[name]["table_actions"]
    by_index = {
        str(_index_of(s["Resource"])): {a.removeprefix("dynamodb:") for a in _actions(s)} for s in on_indexes
    }
    assert by_index == FUNCTIONS[name].get("index_actions", {}), "an index is queried only where listed"
    for statement in dynamodb:
        assert statement["Effect"] == "Allow"
        assert statement in on_indexes or statement["Resource"] == TABLE_ARN, "no other table, no wildcard"
        assert all(a.startswith("dynamodb:") and "*" not in a for a in _actions(statement))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_only_the_functions_that_apply_the_rules_may_read_the_rules_parameter_and_only_when_set(
    resources: dict[str, Any], name: str
) -> None:
    others = [
        (c, s)
        for c, s in _statements(resources[name])
        if not _is_dynamodb(s) and not _is_ses(s) and not _is_sqs(s) and not _is_s3(s)
    ]
    if not FUNCTIONS[name]["reads_rules"]:
        assert others == []
        return
    assert len(others) == 1
    condition, statement = others[0]
    assert condition == "HasRulesParameter"
    assert _actions(statement) == {"ssm:GetParameter"}
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${RulesParameterName}"
    }


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_only_the_runs_starts_may_enqueue_and_each_on_its_own_queue(
    resources: dict[str, Any], name: str
) -> None:
    """Given a function, then it may send SQS messages only if it starts a run, to that run's shard
    queue and workers' queue only (receive rights come from the SQS events, added by SAM)."""
    sqs = [s for _, s in _statements(resources[name]) if _is_sqs(s)]
    queue = FUNCTIONS[name].get("sends_to")
    if queue is None:
        assert sqs == []
        return
    (statement,) = sqs
    assert statement["Effect"] == "Allow"
    assert _actions(statement) == {"sqs:SendMessage"}
    assert statement["Resource"] == [{"Fn::GetAtt": [name, "Arn"]} for name in queue]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_only_the_monthly_export_may_write_to_the_reports_bucket_and_only_its_reports(
    resources: dict[str, Any], name: str
) -> None:
    s3 = [(c, s) for c, s in _statements(resources[name]) if _is_s3(s)]
    if not FUNCTIONS[name].get("writes_reports"):
        assert s3 == []
        return
    ((condition, statement),) = s3
    assert condition is None
    assert statement["Effect"] == "Allow"
    assert _actions(statement) == {"s3:PutObject"}
    assert statement["Resource"] == {"Fn::Sub": "${ReportsBucket.Arn}/liability/*"}


def test_the_reports_bucket_is_private_encrypted_versioned_tls_only_and_kept(
    resources: dict[str, Any],
) -> None:
    bucket = resources["ReportsBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    properties = bucket["Properties"]
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (statement,) = resources["ReportsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_aggregator_reads_only_new_ledger_entries_of_the_stream_and_retries_from_the_failed_record(
    resources: dict[str, Any],
) -> None:
    table = resources["LoyaltyTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    (event,) = resources["LiabilityAggregatorFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "DynamoDB"
    properties = event["Properties"]
    assert properties["Stream"] == {"Fn::GetAtt": ["LoyaltyTable", "StreamArn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is False  # a halved batch would cut other runs
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["LiabilityDeadLetterQueue", "Arn"]
    }
    (pattern,) = [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"itemType": {"S": ["ledger"]}}}}


SES_IDENTITY = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
SES_CONFIGURATION_SET = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_only_the_functions_that_email_may_send_and_only_from_the_sender_identity(
    resources: dict[str, Any], name: str
) -> None:
    """Given a function, then it may send email only if its job does, from the sender's identity
    (the address, or its domain when that is what SES verified), with the stack's configuration
    set only."""
    ses = [s for c, s in _statements(resources[name]) if _is_ses(s)]
    if not FUNCTIONS[name].get("sends_email"):
        assert ses == []
        return
    conditions = [c for c, s in _statements(resources[name]) if _is_ses(s)]
    assert conditions == [None], "sending is not conditional"
    (statement,) = ses
    assert statement["Effect"] == "Allow"
    assert _actions(statement) == {"ses:SendEmail", "ses:SendRawEmail"}
    sender_domain = {"SenderDomain": {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "SenderAddress"}]}]}}
    assert statement["Resource"] == [
        {"Fn::Sub": SES_IDENTITY + "${SenderAddress}"},
        {"Fn::Sub": [SES_IDENTITY + "${SenderDomain}", sender_domain]},
        {"Fn::Sub": SES_CONFIGURATION_SET + "${EmailConfigurationSet}"},
    ]


def test_the_functions_get_the_email_settings_from_parameters(template: dict[str, Any]) -> None:
    """Given the template, then the email module's variables (loyalty/notify/config.py) come from
    parameters, and the configuration set is the stack's own (no parameter names another)."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SENDER_ADDRESS"] == {"Ref": "SenderAddress"}
    assert variables["PROGRAM_NAME"] == {"Ref": "ProgramName"}
    assert variables["LINKS_BASE_URL"] == {"Ref": "LinksBaseUrl"}
    assert variables["SES_CONFIGURATION_SET"] == {"Ref": "EmailConfigurationSet"}
    assert template["Resources"]["EmailConfigurationSet"]["Type"] == "AWS::SES::ConfigurationSet"
    assert "EmailConfigurationSet" not in template["Parameters"]
    assert "HasEmailConfigurationSet" not in template["Conditions"]
    sender = template["Parameters"]["SenderAddress"]
    assert re.fullmatch(sender["AllowedPattern"], sender["Default"])
    assert not re.fullmatch(sender["AllowedPattern"], "no-reply@example.com\nBcc: x@example.com")
    links = template["Parameters"]["LinksBaseUrl"]
    assert re.fullmatch(links["AllowedPattern"], links["Default"])
    assert not re.fullmatch(links["AllowedPattern"], "https://example.com/?next=evil")


def test_ses_publishes_the_bounces_and_complaints_of_the_stacks_set_to_the_default_event_bus(
    resources: dict[str, Any],
) -> None:
    """Given the configuration set every email is sent with, then one event destination publishes
    its bounces and complaints, and nothing else, to the default EventBridge bus (SES's only one)."""
    (destination,) = _of_type(resources, "AWS::SES::ConfigurationSetEventDestination").values()
    properties = destination["Properties"]
    assert properties["ConfigurationSetName"] == {"Ref": "EmailConfigurationSet"}
    events = properties["EventDestination"]
    assert events["Enabled"] is True
    assert sorted(events["MatchingEventTypes"]) == ["BOUNCE", "COMPLAINT"]
    assert set(events) == {"Name", "Enabled", "MatchingEventTypes", "EventBridgeDestination"}
    assert events["EventBridgeDestination"] == {
        "EventBusArn": {
            "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
        }
    }
    assert "Name" not in (resources["EmailConfigurationSet"].get("Properties") or {}), (
        "a generated name: two stacks of one account never share a configuration set"
    )


def test_the_email_events_function_gets_exactly_the_stacks_bounces_and_complaints(
    resources: dict[str, Any],
) -> None:
    """Given EmailEventsFunction, then its only trigger is an EventBridge rule on the default bus
    matching SES's bounce and complaint events of this stack's configuration set."""
    events = resources["EmailEventsFunction"]["Properties"]["Events"]
    (event,) = events.values()
    assert event["Type"] == "EventBridgeRule"
    assert "EventBusName" not in event["Properties"], "SES publishes to the default bus"
    assert event["Properties"]["Pattern"] == {
        "source": ["aws.ses"],
        "detail-type": ["Email Bounced", "Email Complaint Received"],
        "detail": {"mail": {"tags": {"ses:configuration-set": [{"Ref": "EmailConfigurationSet"}]}}},
    }


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_serves_exactly_its_routes_on_the_loyalty_api(
    resources: dict[str, Any], name: str
) -> None:
    events = _http_events(resources[name])
    assert {(e["Method"], e["Path"]) for e in events.values()} == FUNCTIONS[name]["routes"]
    assert all(e["ApiId"] == {"Ref": "LoyaltyApi"} for e in events.values())


def test_every_route_is_behind_the_cognito_jwt_authorizer_except_the_documentation(
    resources: dict[str, Any],
) -> None:
    """Given all HttpApi events, then only /openapi.json and /swagger opt out of the default authorizer."""
    auth = resources["LoyaltyApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "CognitoJwt"
    public = set()
    for function in _of_type(resources, "AWS::Serverless::Function").values():
        for event in _http_events(function).values():
            authorizer = event.get("Auth", {}).get("Authorizer", "CognitoJwt")
            assert authorizer in ("CognitoJwt", "NONE")
            if authorizer == "NONE":
                public.add((event["Method"], event["Path"]))
    assert public == PUBLIC_ROUTES


def test_the_authorizer_accepts_tokens_of_the_pool_for_members_partners_and_the_support_console(
    resources: dict[str, Any],
) -> None:
    """With the stack's own pool (the existing-pool variant: test_template_deploy.py)."""
    authorizer = resources["LoyaltyApi"]["Properties"]["Auth"]["Authorizers"]["CognitoJwt"]
    assert authorizer["IdentitySource"] == "$request.header.Authorization"
    assert _with_conditions(authorizer["JwtConfiguration"], {"CreatesUserPool"}) == {
        "issuer": {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"},
        "audience": [{"Ref": "MemberClient"}, {"Ref": "PartnerClient"}, {"Ref": "ConsoleClient"}],
    }


def test_the_api_lets_browsers_send_the_headers_the_routes_read(resources: dict[str, Any]) -> None:
    """From the origins given (the support console's is added: test_template_console.py)."""
    cors = resources["LoyaltyApi"]["Properties"]["CorsConfiguration"]
    assert _with_conditions(cors["AllowOrigins"], {"AllowsAnyOrigin"}) == {"Ref": "CorsAllowedOrigins"}
    assert set(cors["AllowHeaders"]) == {"authorization", "content-type", "idempotency-key"}
    assert set(cors["AllowMethods"]) == {"GET", "PUT", "POST"}


def test_the_api_never_lets_browsers_send_credentials_cross_origin(resources: dict[str, Any]) -> None:
    """Callers authenticate with a bearer token a script must attach itself, never with cookies:
    so the default origin `*` gives another site nothing it could not do without a browser
    (docs/security.md, "CORS")."""
    properties = resources["LoyaltyApi"]["Properties"]
    assert properties["CorsConfiguration"].get("AllowCredentials", False) is False
    authorizer = properties["Auth"]["Authorizers"][properties["Auth"]["DefaultAuthorizer"]]
    assert authorizer["IdentitySource"] == "$request.header.Authorization"


def test_the_api_logs_every_access_as_json(resources: dict[str, Any]) -> None:
    properties = resources["LoyaltyApi"]["Properties"]
    logs = properties["AccessLogSettings"]
    assert logs["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    assert logs["Format"].lstrip().startswith("{") and "$context.requestId" in logs["Format"]
    assert resources["ApiAccessLogs"]["Properties"]["RetentionInDays"] == 30


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_logs_to_its_own_group_kept_thirty_days(resources: dict[str, Any], name: str) -> None:
    groups = [
        g["Properties"]
        for g in _of_type(resources, "AWS::Logs::LogGroup").values()
        if g["Properties"].get("LogGroupName") == {"Fn::Sub": f"/aws/lambda/${{{name}}}"}
    ]
    assert len(groups) == 1
    assert groups[0]["RetentionInDays"] == 30


# ---------------------------------------------------------------- sizing (docs/design.md, docs/deploy.md)

API_ACCOUNT_QUOTA = {"rate": 10_000, "burst": 5_000}  # API Gateway, per account and region
PEAK_EARNS_PER_SECOND = 5_000  # docs/deploy.md, "Sizing for a peak of 5,000 earns/s"


def test_the_expiry_shard_count_is_a_bounded_number_parameter_defaulting_to_the_code_default(
    template: dict[str, Any],
) -> None:
    """Given ExpiryShards, then it is a Number in [1, MaxValue] whose Default is the layer's own fallback."""
    parameter = template["Parameters"]["ExpiryShards"]
    assert parameter["Type"] == "Number"
    assert parameter["MinValue"] == 1
    assert parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"]
    assert parameter["Default"] == Settings.__dataclass_fields__["expiry_shards"].default == 64


def test_every_function_gets_the_expiry_shard_count_from_the_parameter(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["EXPIRY_SHARDS"] == {"Ref": "ExpiryShards"}
    for name, function in _of_type(template["Resources"], "AWS::Serverless::Function").items():
        own = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "EXPIRY_SHARDS" not in own, f"{name} overrides the shard count of Globals"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_run_locally_gets_the_default_shard_count(template: dict[str, Any], name: str) -> None:
    """Given the local mode's reading of the template and no value, then EXPIRY_SHARDS is the Default."""
    values = {
        "LoyaltyTable": "loyalty-local",
        "EmailConfigurationSet": "loyalty-local-emails",
        "UnsubscribeSecret": "u" * 32,  # NoEcho: no Default
        "ExpiryQueue": "http://127.0.0.1/queue/expiry",
        "ReminderQueue": "http://127.0.0.1/queue/reminders",
        "ExpiryShardQueue": "http://127.0.0.1/queue/expiry-shards",
        "ReminderShardQueue": "http://127.0.0.1/queue/reminder-shards",
        "ReportsBucket": "loyalty-local-reports",
    }
    environment = function_environment(template, name, values)
    assert environment["EXPIRY_SHARDS"] == str(template["Parameters"]["ExpiryShards"]["Default"])


def test_the_route_throttles_are_parameters_of_the_api(resources: dict[str, Any]) -> None:
    settings = resources["LoyaltyApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottleRate"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurst"},
    }


@pytest.mark.parametrize(("name", "quota"), [("ApiThrottleRate", "rate"), ("ApiThrottleBurst", "burst")])
def test_the_route_throttles_default_to_the_account_quota_not_to_a_cap_on_the_program(
    template: dict[str, Any], name: str, quota: str
) -> None:
    """Given a throttle parameter, then its default admits the earn peak and is within the account's quota."""
    parameter = template["Parameters"][name]
    assert parameter["Type"] == "Number"
    assert parameter["MinValue"] >= 1, "a route throttled to 0 would refuse every request"
    # 200 requests/s per route used to cap the whole program: the default must admit the peak.
    assert PEAK_EARNS_PER_SECOND <= parameter["Default"] <= API_ACCOUNT_QUOTA[quota]


@pytest.mark.parametrize("name", ["TableWarmReadUnits", "TableWarmWriteUnits", "ExpiryIndexWarmWriteUnits"])
@pytest.mark.parametrize(("value", "accepted"), [
    ("", True), ("1", True), ("50000", True),
    ("0", False), ("-1", False), ("1.5", False), ("05", False), ("50,000", False),
])  # fmt: skip
def test_each_warm_throughput_parameter_is_empty_by_default_or_a_positive_whole_number(
    template: dict[str, Any], name: str, value: str, accepted: bool
) -> None:
    parameter = template["Parameters"][name]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    assert bool(re.fullmatch(parameter["AllowedPattern"], value)) is accepted


@pytest.mark.parametrize(("given", "expected"), [
    (set(), None),
    ({"HasTableWarmReads"}, {"ReadUnitsPerSecond": {"Ref": "TableWarmReadUnits"}}),
    ({"HasTableWarmWrites"}, {"WriteUnitsPerSecond": {"Ref": "TableWarmWriteUnits"}}),
    ({"HasTableWarmReads", "HasTableWarmWrites"}, {
        "ReadUnitsPerSecond": {"Ref": "TableWarmReadUnits"},
        "WriteUnitsPerSecond": {"Ref": "TableWarmWriteUnits"},
    }),
])  # fmt: skip
def test_the_table_is_pre_warmed_with_exactly_the_units_given(
    template: dict[str, Any], given: set[str], expected: dict[str, Any] | None
) -> None:
    """Given some warm throughput parameters set, then the table declares those; given none, none."""
    assert _is_set_when_not_empty(template, "HasTableWarmReads", "TableWarmReadUnits")
    assert _is_set_when_not_empty(template, "HasTableWarmWrites", "TableWarmWriteUnits")
    properties = _with_conditions(template["Resources"]["LoyaltyTable"]["Properties"], given)
    assert properties.get("WarmThroughput") == expected


@pytest.mark.parametrize(("given", "expected"), [
    (set(), None),
    ({"HasExpiryIndexWarmWrites"}, {"WriteUnitsPerSecond": {"Ref": "ExpiryIndexWarmWriteUnits"}}),
])  # fmt: skip
def test_the_expiry_index_is_pre_warmed_for_writes_only_when_asked(
    template: dict[str, Any], given: set[str], expected: dict[str, Any] | None
) -> None:
    assert _is_set_when_not_empty(template, "HasExpiryIndexWarmWrites", "ExpiryIndexWarmWriteUnits")
    properties = _with_conditions(template["Resources"]["LoyaltyTable"]["Properties"], given)
    indexes = {i["IndexName"]: i for i in properties["GlobalSecondaryIndexes"]}
    assert indexes["ByNextExpiry"].get("WarmThroughput") == expected
    assert "WarmThroughput" not in indexes["ByStatus"]


# ---------------------------------------------------------------- identity


def test_partners_get_client_credentials_tokens_with_the_partner_scope(resources: dict[str, Any]) -> None:
    server = resources["PartnerResourceServer"]["Properties"]
    assert server["Identifier"] == "loyalty"
    assert [s["ScopeName"] for s in server["Scopes"]] == ["partner"]
    client = resources["PartnerClient"]
    assert "PartnerResourceServer" in (
        [client["DependsOn"]] if isinstance(client["DependsOn"], str) else client["DependsOn"]
    )
    properties = client["Properties"]
    assert properties["GenerateSecret"] is True
    assert properties["AllowedOAuthFlows"] == ["client_credentials"]
    assert properties["AllowedOAuthScopes"] == ["loyalty/partner"]
    assert properties["AllowedOAuthFlowsUserPoolClient"] is True


def test_the_member_apps_use_a_public_client_signing_in_with_srp(resources: dict[str, Any]) -> None:
    properties = resources["MemberClient"]["Properties"]
    assert properties.get("GenerateSecret", False) is False
    assert set(properties["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}


def test_the_pool_has_the_support_and_finance_groups(resources: dict[str, Any]) -> None:
    groups = {
        g["Properties"]["GroupName"] for g in _of_type(resources, "AWS::Cognito::UserPoolGroup").values()
    }
    assert groups == {"support", "finance"}


def test_members_sign_in_with_a_case_insensitive_email(resources: dict[str, Any]) -> None:
    properties = resources["UserPool"]["Properties"]
    assert properties["UsernameAttributes"] == ["email"]
    assert properties["UsernameConfiguration"] == {"CaseSensitive": False}
    assert properties["Policies"]["PasswordPolicy"]["MinimumLength"] >= 8


@pytest.mark.parametrize(("prefix", "accepted"), [
    ("acme-loyalty", True), ("a", True), ("a1-b2", True),
    ("-acme", False), ("acme-", False), ("Acme", False), ("a" * 64, False),
    ("", True),  # an existing pool's stack; the rule CreatedUserPoolNeedsItsDomain (test_template_deploy.py)
])  # fmt: skip
def test_the_auth_domain_prefix_must_be_a_valid_cognito_domain_label(
    template: dict[str, Any], prefix: str, accepted: bool
) -> None:
    pattern = template["Parameters"]["AuthDomainPrefix"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, prefix)) is accepted


@pytest.mark.parametrize(("name", "accepted"), [
    ("", True), ("/loyalty/rules", True), ("/loyalty/prod/rules-v2", True),
    ("loyalty/rules", False), ("/loyalty/", False), ("/a b", False),
])  # fmt: skip
def test_the_rules_parameter_is_empty_or_a_path_the_policy_arn_can_name(
    template: dict[str, Any], name: str, accepted: bool
) -> None:
    """The ARN is built as `...:parameter${RulesParameterName}`: right only for names with a leading slash."""
    pattern = template["Parameters"]["RulesParameterName"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, name)) is accepted
    assert template["Conditions"]["HasRulesParameter"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "RulesParameterName"}, ""]}]
    }


# ---------------------------------------------------------------- alarms and outputs


def test_an_alarm_watches_the_api_5xx(resources: dict[str, Any]) -> None:
    alarms = [
        a["Properties"]
        for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "AWS/ApiGateway"
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["MetricName"] == "5xx"
    assert alarm["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "LoyaltyApi"}}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Period"]) == (
        0,
        "GreaterThanThreshold",
        300,
    )


@pytest.mark.parametrize(
    "name",
    [
        "EarnFunction",
        "RedeemFunction",
        "TransferFunction",
        "ClaimsFunction",
        "MembersFunction",
        "EmailEventsFunction",
    ],
)
def test_an_alarm_watches_the_errors_of_each_function_that_changes_state(
    resources: dict[str, Any], name: str
) -> None:
    alarms = [
        a["Properties"]
        for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "AWS/Lambda"
        and a["Properties"].get("MetricName") == "Errors"
        and a["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": name}}]
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["MetricName"] == "Errors"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_alarms_notify_the_topic_only_when_one_is_given(resources: dict[str, Any]) -> None:
    for name, alarm in _of_type(resources, "AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"]["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], NO_VALUE]
        }, name


def test_the_outputs_tell_the_operator_what_clients_need(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(outputs) >= {
        "ApiUrl",
        "UserPoolId",
        "MemberClientId",
        "PartnerClientId",
        "TokenUrl",
        "TableName",
    }
    assert outputs["TokenUrl"]["Value"] == {
        "Fn::Sub": "https://${AuthDomainPrefix}.auth.${AWS::Region}.amazoncognito.com/oauth2/token"
    }


# ---------------------------------------------------------------- the layer


def test_the_layer_ships_the_runtime_dependencies_pinned_in_pyproject(resources: dict[str, Any]) -> None:
    """Given pyproject's dependencies, the layer pins the same versions, boto3 aside (the runtime has it)."""
    layer = resources["LoyaltyLayer"]
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/loyalty"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert "build-LoyaltyLayer:" in (ROOT / "layers/loyalty/Makefile").read_text(encoding="utf-8")
    pinned = {
        line.strip()
        for line in (ROOT / "layers/loyalty/requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert pinned == {d for d in project["dependencies"] if not d.startswith("boto3")}


# ---------------------------------------------------------------- the daily runs

RUNS = {
    "Expiry": ("ExpiryRunSchedule", "EXPIRY_QUEUE_URL"),
    "Reminder": ("ReminderRunSchedule", "REMINDER_QUEUE_URL"),
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_each_run_starts_daily_at_a_local_time_with_the_scheduled_time_as_its_as_of(
    resources: dict[str, Any], template: dict[str, Any], run: str
) -> None:
    """Given a run, then EventBridge Scheduler starts it in the program's time zone and passes the
    scheduled instant as the event's `time` (the run's as-of: a missed day is replayed with it)."""
    schedule_parameter, queue_variable = RUNS[run]
    start = resources[f"{run}Function"]["Properties"]
    event = start["Events"]["Daily"]
    assert event["Type"] == "ScheduleV2"
    properties = event["Properties"]
    assert properties["ScheduleExpression"] == {"Ref": schedule_parameter}
    assert properties["ScheduleExpressionTimezone"] == {"Ref": "ProgramTimezone"}
    assert json.loads(properties["Input"]) == {"time": "<aws.scheduler.scheduled-time>"}
    assert re.fullmatch(r"cron\(\d+ \d+ \* \* \? \*\)", template["Parameters"][schedule_parameter]["Default"])
    shard_variable = queue_variable.replace("_QUEUE_URL", "_SHARD_QUEUE_URL")
    assert start["Environment"]["Variables"] == {
        shard_variable: {"Ref": f"{run}ShardQueue"},
        queue_variable: {"Ref": f"{run}Queue"},
    }
    # and it pages the shards itself, one task an invocation, from its shard queue
    shards = start["Events"]["Shards"]
    assert shards["Type"] == "SQS"
    assert shards["Properties"]["Queue"] == {"Fn::GetAtt": [f"{run}ShardQueue", "Arn"]}
    assert shards["Properties"]["BatchSize"] == 1
    assert shards["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    shard_queue = resources[f"{run}ShardQueue"]["Properties"]
    assert shard_queue["VisibilityTimeout"] >= 6 * start["Timeout"]
    assert shard_queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": [f"{run}DeadLetterQueue", "Arn"]
    }
    assert start["Timeout"] == 900


@pytest.mark.parametrize("run", sorted(RUNS))
def test_each_runs_workers_report_partial_failures_and_are_capped(
    resources: dict[str, Any], run: str
) -> None:
    """Given a run's worker, then it takes its queue's messages 10 at a time, reports the failed ones
    only, and no more than RunWorkerConcurrency instances run at once (the live traffic's share)."""
    worker = resources[f"{run}WorkerFunction"]["Properties"]
    (event,) = worker["Events"].values()
    assert event["Type"] == "SQS"
    properties = event["Properties"]
    assert properties["Queue"] == {"Fn::GetAtt": [f"{run}Queue", "Arn"]}
    assert properties["BatchSize"] == 10
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "RunWorkerConcurrency"}}
    assert "ReservedConcurrentExecutions" not in worker  # would throttle the poller, not cap it


@pytest.mark.parametrize("run", sorted(RUNS))
def test_what_keeps_failing_ends_in_a_dead_letter_queue_with_an_alarm(
    resources: dict[str, Any], run: str
) -> None:
    """Given a run's queue, then a message is retried after six worker timeouts, moved to the
    dead-letter queue after 5 deliveries, and the dead-letter queue's first message raises an alarm."""
    queue = resources[f"{run}Queue"]["Properties"]
    worker_timeout = resources[f"{run}WorkerFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [f"{run}DeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert resources[f"{run}DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    alarm = resources[f"{run}DeadLetterAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [f"{run}DeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    for function in (f"{run}Function", f"{run}WorkerFunction"):
        errors = resources[f"{function}ErrorsAlarm"]["Properties"]
        assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]


def test_the_reminder_worker_signs_unsubscribe_links_with_the_stacks_secret(
    resources: dict[str, Any],
) -> None:
    variables = resources["ReminderWorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables == {"UNSUBSCRIBE_SECRET": {"Ref": "UnsubscribeSecret"}}


@pytest.mark.parametrize(
    ("alarm", "metric", "threshold"),
    [
        ("EmailBounceRateAlarm", "Reputation.BounceRate", 0.05),
        ("EmailComplaintRateAlarm", "Reputation.ComplaintRate", 0.001),
    ],
)
def test_alarms_call_the_operator_at_the_rates_where_ses_reviews_the_account(
    resources: dict[str, Any], alarm: str, metric: str, threshold: float
) -> None:
    properties = resources[alarm]["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/SES", metric)
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (
        threshold,
        "GreaterThanOrEqualToThreshold",
    )
    assert properties["TreatMissingData"] == "notBreaching"
