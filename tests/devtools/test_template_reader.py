"""devtools.template: reading template.yaml the way the local mode needs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.template import (
    Route,
    Schedule,
    TemplateError,
    function_environment,
    http_routes,
    load_template,
    schedules,
    table_definition,
    ttl_attribute,
)

TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
  SenderAddress:
    Type: String
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Runtime: python3.12
    Handler: app.lambda_handler
    CodeUri: functions/members/
    Environment:
      Variables:
        TABLE_NAME: !Ref LoyaltyTable
        POWERTOOLS_SERVICE_NAME: loyalty
        LOG_LEVEL: !If [IsProd, WARNING, DEBUG]
  HttpApi:
    Auth:
      DefaultAuthorizer: Cognito
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  MembersFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          TABLE_ARN: !GetAtt LoyaltyTable.Arn
          QUEUE_URL: !Sub "https://${AWS::Region}.example/${Queue}/${!Literal}"
          OPTIONAL: !If [IsProd, x, !Ref AWS::NoValue]
      Events:
        Enrol:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: put
            Path: /members/{memberId}
        Earn:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: post
            Path: /members/{memberId}/earn
            Auth:
              AuthorizationScopes: [loyalty/partner]
  OpenApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/openapi
      Handler: handler.main
      Events:
        Docs:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /swagger
            Auth:
              Authorizer: NONE
  ExpiryFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/expiry
      Events:
        Daily:
          Type: Schedule
          Properties:
            Schedule: cron(15 0 * * ? *)
        Hourly:
          Type: ScheduleV2
          Properties:
            Name: hourly-check
            ScheduleExpression: rate(1 hour)
  Queue:
    Type: AWS::SQS::Queue
  LoyaltyTable:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    Properties:
      TableName: !Sub "${AWS::StackName}-loyalty"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: gsi1pk, AttributeType: S}
        - {AttributeName: gsi1sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: ByNextExpiry
          KeySchema:
            - {AttributeName: gsi1pk, KeyType: HASH}
            - {AttributeName: gsi1sk, KeyType: RANGE}
          Projection: {ProjectionType: KEYS_ONLY}
          ContributorInsightsSpecification: {Enabled: false}
      TimeToLiveSpecification:
        AttributeName: ttl
        Enabled: true
      PointInTimeRecoverySpecification:
        PointInTimeRecoveryEnabled: true
"""

VALUES = {
    "LoyaltyTable": "loyalty-local",
    "LoyaltyTable.Arn": "arn:table",
    "Queue": "q-url",
    "AWS::Region": "eu-west-1",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("template") / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return load_template(path)


def test_given_short_tags_when_loading_then_they_become_the_long_form(template: dict) -> None:
    members = template["Resources"]["MembersFunction"]["Properties"]
    variables = members["Environment"]["Variables"]
    assert variables["TABLE_ARN"] == {"Fn::GetAtt": ["LoyaltyTable", "Arn"]}
    assert variables["QUEUE_URL"] == {"Fn::Sub": "https://${AWS::Region}.example/${Queue}/${!Literal}"}
    assert variables["OPTIONAL"] == {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}
    assert template["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert members["Events"]["Enrol"]["Properties"]["ApiId"] == {"Ref": "Api"}


def test_given_a_version_date_when_loading_then_it_stays_a_string(template: dict) -> None:
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("!GetAtt Db.Endpoint.Address", {"Fn::GetAtt": ["Db", "Endpoint.Address"]}),
        ("!GetAtt [Db, Arn]", {"Fn::GetAtt": ["Db", "Arn"]}),
        ("!Join [',', [a, !Ref B]]", {"Fn::Join": [",", ["a", {"Ref": "B"}]]}),
        ("!Select [0, !GetAZs '']", {"Fn::Select": [0, {"Fn::GetAZs": ""}]}),
        ("!Split [',', 'a,b']", {"Fn::Split": [",", "a,b"]}),
        ("!Not [!Condition IsProd]", {"Fn::Not": [{"Condition": "IsProd"}]}),
        (
            "!And [!Condition A, !Or [!Condition B, !Condition C]]",
            {"Fn::And": [{"Condition": "A"}, {"Fn::Or": [{"Condition": "B"}, {"Condition": "C"}]}]},
        ),
        ("!FindInMap [M, k, v]", {"Fn::FindInMap": ["M", "k", "v"]}),
        ("!Base64 text", {"Fn::Base64": "text"}),
        ("!ImportValue shared-vpc", {"Fn::ImportValue": "shared-vpc"}),
        ("!Cidr [10.0.0.0/16, 4, 8]", {"Fn::Cidr": ["10.0.0.0/16", 4, 8]}),
    ],
)
def test_given_each_short_tag_when_loading_then_its_long_form_is_returned(
    tmp_path: Path, source: str, expected: dict
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"Value: {source}\n", encoding="utf-8")

    assert load_template(path)["Value"] == expected


def test_given_function_events_when_reading_routes_then_globals_fill_code_uri_and_handler(
    template: dict,
) -> None:
    routes = {route.route_key: route for route in http_routes(template)}

    assert set(routes) == {"PUT /members/{memberId}", "POST /members/{memberId}/earn", "GET /swagger"}
    assert routes["PUT /members/{memberId}"] == Route(
        method="PUT",
        path="/members/{memberId}",
        function="MembersFunction",
        code_uri="functions/members",
        handler="app.lambda_handler",
        authorized=True,
    )
    assert routes["POST /members/{memberId}/earn"].authorization_scopes == ("loyalty/partner",)
    swagger = routes["GET /swagger"]
    assert (swagger.code_uri, swagger.handler, swagger.authorized) == (
        "functions/openapi",
        "handler.main",
        False,
    )


def test_given_an_api_without_a_default_authorizer_when_reading_routes_then_they_are_not_authorized(
    template: dict,
) -> None:
    without_auth = {**template, "Globals": {"Function": template["Globals"]["Function"]}}

    assert not any(route.authorized for route in http_routes(without_auth))


def test_given_schedule_events_when_reading_schedules_then_both_kinds_are_found(template: dict) -> None:
    assert schedules(template) == [
        Schedule("ExpiryFunction", "functions/expiry", "app.lambda_handler", "Daily", "cron(15 0 * * ? *)"),
        Schedule("ExpiryFunction", "functions/expiry", "app.lambda_handler", "hourly-check", "rate(1 hour)"),
    ]


def test_given_the_projects_template_when_reading_schedules_then_each_run_has_its_start_and_its_check() -> (
    None
):
    found = {(s.function, s.name): s.input for s in schedules(load_template())}

    assert found[("ExpiryFunction", "Daily")] == '{"time": "<aws.scheduler.scheduled-time>"}'
    assert found[("ExpiryFunction", "Check")] == '{"check": "<aws.scheduler.scheduled-time>"}'
    assert found[("ReminderFunction", "Check")] == '{"check": "<aws.scheduler.scheduled-time>"}'


def test_given_the_table_when_reading_its_definition_then_it_fits_create_table(template: dict) -> None:
    definition = table_definition(template)

    assert "TableName" not in definition
    assert definition["BillingMode"] == "PAY_PER_REQUEST"
    assert definition["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert len(definition["AttributeDefinitions"]) == 4
    assert definition["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "ByNextExpiry",
            "KeySchema": [
                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]
    assert ttl_attribute(template) == "ttl"


def test_given_an_unknown_table_when_reading_its_definition_then_it_says_so(template: dict) -> None:
    with pytest.raises(TemplateError, match="no AWS::DynamoDB::Table named Nope"):
        table_definition(template, "Nope")


def test_given_values_when_resolving_the_environment_then_globals_and_own_variables_merge(
    template: dict,
) -> None:
    environment = function_environment(template, "MembersFunction", VALUES)

    assert environment == {
        "TABLE_NAME": "loyalty-local",
        "POWERTOOLS_SERVICE_NAME": "loyalty",
        "LOG_LEVEL": "DEBUG",
        "TABLE_ARN": "arn:table",
        "QUEUE_URL": "https://eu-west-1.example/q-url/${Literal}",
    }


def test_given_a_condition_set_true_when_resolving_then_the_then_branch_is_used(template: dict) -> None:
    environment = function_environment(template, "MembersFunction", {**VALUES, "IsProd": "true"})

    assert (environment["LOG_LEVEL"], environment["OPTIONAL"]) == ("WARNING", "x")


def test_given_a_missing_value_when_resolving_then_the_error_names_it(template: dict) -> None:
    with pytest.raises(
        TemplateError, match=r"MembersFunction environment variable TABLE_ARN: .*LoyaltyTable\.Arn"
    ):
        function_environment(
            template, "MembersFunction", {"LoyaltyTable": "t", "Queue": "q", "AWS::Region": "r"}
        )


def test_given_a_parameter_with_a_default_when_resolving_then_the_default_is_used(template: dict) -> None:
    variables = {"STAGE": {"Ref": "Stage"}, "FROM": {"Ref": "SenderAddress"}}
    patched = {**template, "Globals": {"Function": {"Environment": {"Variables": variables}}}}

    assert function_environment(patched, "OpenApiFunction", {"SenderAddress": "a@b.c"}) == {
        "STAGE": "dev",
        "FROM": "a@b.c",
    }
    with pytest.raises(TemplateError, match="no value for Ref SenderAddress"):
        function_environment(patched, "OpenApiFunction", {})
