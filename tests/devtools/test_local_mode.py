"""`python -m devtools.local` as a developer runs it: emulators wired, schedules, queues, emails, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import REPO_ROOT
from devtools.dynamodb_local import free_port, java_available

pytestmark = pytest.mark.dynamodb
LocalMode = tuple[str, "subprocess.Popen[bytes]", Path]

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  SenderAddress: {Type: String, Default: loyalty@example.com}
Globals:
  Function:
    Handler: app.lambda_handler
    Environment:
      Variables:
        TABLE_NAME: !Ref LoyaltyTable
  HttpApi:
    Auth: {DefaultAuthorizer: Cognito}
Resources:
  NotesFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/notes
      Events:
        Put: {Type: HttpApi, Properties: {Method: put, Path: "/notes/{noteId}"}}
        Get: {Type: HttpApi, Properties: {Method: get, Path: "/notes/{noteId}"}}
  RemindersFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/reminders
      Environment: {Variables: {QUEUE_URL: !Ref MailQueue}}
      Events:
        Daily: {Type: Schedule, Properties: {Schedule: "cron(0 6 * * ? *)"}}
  MailerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/mailer
      Environment: {Variables: {SENDER: !Ref SenderAddress}}
      Events:
        Mail: {Type: SQS, Properties: {Queue: !GetAtt MailQueue.Arn, BatchSize: 5}}
  MailQueue:
    Type: AWS::SQS::Queue
  LoyaltyTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
"""

FUNCTIONS = {
    "notes": """\
import json, os, boto3
table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
def lambda_handler(event, context):
    key = {"pk": event["pathParameters"]["noteId"]}
    if event["requestContext"]["http"]["method"] == "PUT":
        table.put_item(Item={**key, "text": event["body"]})
        return {"statusCode": 204}
    item = table.get_item(Key=key).get("Item")
    return {"statusCode": 200 if item else 404, "body": json.dumps(item or {})}
""",
    "reminders": """\
import json, os, boto3
def lambda_handler(event, context):
    message = {"to": "alice@example.com", "asOf": event["time"]}
    boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(message))
    return {"queued": 1}
""",
    "mailer": """\
import json, os, boto3
def lambda_handler(event, context):
    for record in event["Records"]:
        message = json.loads(record["body"])
        boto3.client("sesv2").send_email(
            FromEmailAddress=os.environ["SENDER"],
            Destination={"ToAddresses": [message["to"]]},
            Content={"Simple": {"Subject": {"Data": "Expiring " + message["asOf"]},
                                "Body": {"Text": {"Data": "Some points expire soon."}}}},
        )
""",
}


def call(
    url: str, method: str = "GET", body: bytes | None = None, auth: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": auth} if auth else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as answer:
        status, text = answer.code, answer.read()
    return status, json.loads(text) if text else None


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    if not java_available():
        pytest.skip("Java 17+ is not installed: DynamoDB Local cannot run")
    root = tmp_path_factory.mktemp("app")
    (root / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    for name, source in FUNCTIONS.items():
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "app.py").write_text(source, encoding="utf-8")
    port = free_port()
    command = [sys.executable, "-m", "devtools.local", "--template", str(root / "template.yaml")]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TABLE_NAME"))}
    with (root / "console.log").open("wb") as console:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--in-memory", "--no-demo"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if call(f"{base}/")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the local mode did not start:\n" + (root / "console.log").read_text())
        time.sleep(0.3)
    yield base, process, root
    if process.poll() is None:
        process.kill()
        process.wait()


def test_given_the_local_mode_when_writing_then_reading_then_dynamodb_local_holds_the_item(
    local_mode: LocalMode,
) -> None:
    base, _, _ = local_mode

    assert call(f"{base}/notes/n1", "PUT", b"hello", auth="Dev member:m1")[0] == 204
    assert call(f"{base}/notes/n1", auth="Dev member:m1") == (200, {"pk": "n1", "text": "hello"})


def test_given_a_schedule_that_queues_an_email_when_fired_then_the_email_is_listed_and_saved(
    local_mode: LocalMode,
) -> None:
    base, _, root = local_mode

    status, run = call(f"{base}/_local/schedules/RemindersFunction?asOf=2027-05-01T06:00:00Z", "POST")

    assert (status, run["result"], run["event"]["time"]) == (200, {"queued": 1}, "2027-05-01T06:00:00Z")
    deadline = time.monotonic() + 20
    emails: list[dict[str, Any]] = []
    while not emails and time.monotonic() < deadline:
        time.sleep(0.5)
        emails = call(f"{base}/_local/emails")[1]["emails"]
    [email] = emails
    assert (email["from"], email["to"], email["subject"]) == (
        "loyalty@example.com",
        ["alice@example.com"],
        "Expiring 2027-05-01T06:00:00Z",
    )
    assert all(Path(name).parent == root / ".local" / "emails" for name in email["files"])


def test_given_sigterm_when_running_then_everything_stops_cleanly(
    local_mode: LocalMode,
) -> None:
    _, process, root = local_mode

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=30) == 0
    assert "stopping" in (root / "console.log").read_text()
