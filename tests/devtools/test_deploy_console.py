"""scripts/deploy_console.py, which publishes the support console to a deployed stack (issue #10):
driven against botocore's Stubber, so every AWS call and its parameters are checked, none sent."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from devtools import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "deploy_console.py"
STACK = "loyalty-points-prod"
OUTPUTS = {
    "ApiUrl": "https://abc123.execute-api.eu-west-3.amazonaws.com",
    "ConsoleUrl": "https://d111111abcdef8.cloudfront.net/",
    "ConsoleBucketName": "loyalty-points-prod-consolebucket-1a2b3c",
    "ConsoleDistributionId": "E2EXAMPLE12345",
    "ConsoleClientId": "4console5client6id7example8",
    "ConsoleSignInDomain": "https://acme-loyalty-prod.auth.eu-west-3.amazoncognito.com",
    "TableName": "loyalty-points-prod-LoyaltyTable-XYZ",
}


def _load_script() -> ModuleType:
    """The script as a module: it is a file an operator runs, not a package of the project."""
    spec = importlib.util.spec_from_file_location("deploy_console", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_console"] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


deploy_console = _load_script()


class StubbedSession:
    """What the script asks of a boto3 session: clients, here each behind a Stubber."""

    def __init__(self) -> None:
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-west-3"
        )
        self.clients = {name: session.client(name) for name in ("cloudformation", "s3", "cloudfront")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def client(self, name: str) -> Any:
        return self.clients[name]

    def __enter__(self) -> StubbedSession:
        for stub in self.stubs.values():
            stub.activate()
        return self

    def __exit__(self, *problem: object) -> None:
        for stub in self.stubs.values():
            stub.deactivate()

    def assert_no_pending_responses(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


def describe(session: StubbedSession, outputs: dict[str, str]) -> None:
    session.stubs["cloudformation"].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": STACK,
                    "CreationTime": "2026-11-25T08:00:00Z",
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                }
            ]
        },
        {"StackName": STACK},
    )


@pytest.fixture
def console_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "console"
    (folder / "js" / "views").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html>")
    (folder / "style.css").write_text("body{}")
    (folder / "js" / "main.js").write_text("import './views/a.js';")
    (folder / "js" / "views" / "a.js").write_text("export {};")
    (folder / "config.json").write_text('{"mode": "local"}')  # a developer's: never uploaded
    (folder / ".DS_Store").write_text("junk")
    (folder / "README.txt").write_text("not a type the console serves")
    return folder


def expect_upload(session: StubbedSession, key: str, content_type: str, cache: str, body: Any = ANY) -> None:
    session.stubs["s3"].add_response(
        "put_object",
        {"ETag": '"etag"'},
        {
            "Bucket": OUTPUTS["ConsoleBucketName"],
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "CacheControl": cache,
        },
    )


def test_the_files_and_a_config_written_from_the_stack_are_uploaded_stale_ones_deleted_and_the_cache_cleared(
    console_dir: Path,
) -> None:
    # Given a stack with its own user pool, whose console bucket holds an old module
    session = StubbedSession()
    describe(session, OUTPUTS)
    expected_config = {
        "mode": "cognito",
        "apiUrl": OUTPUTS["ApiUrl"],
        "cognito": {
            "domain": OUTPUTS["ConsoleSignInDomain"],
            "clientId": OUTPUTS["ConsoleClientId"],
            "redirectUri": OUTPUTS["ConsoleUrl"],
            "scopes": "openid email",
        },
    }
    expect_upload(session, "index.html", "text/html; charset=utf-8", "no-cache", b"<!doctype html>")
    expect_upload(session, "js/main.js", "text/javascript; charset=utf-8", "no-cache")
    expect_upload(session, "js/views/a.js", "text/javascript; charset=utf-8", "no-cache")
    expect_upload(session, "style.css", "text/css; charset=utf-8", "no-cache")
    config_body = json.dumps(expected_config, indent=2).encode() + b"\n"
    expect_upload(session, "config.json", "application/json", "no-cache", config_body)
    session.stubs["s3"].add_response(
        "list_objects_v2",
        {
            "IsTruncated": False,
            "Contents": [{"Key": "index.html"}, {"Key": "js/old.js"}, {"Key": "config.json"}],
        },
        {"Bucket": OUTPUTS["ConsoleBucketName"]},
    )
    session.stubs["s3"].add_response(
        "delete_objects",
        {"Deleted": [{"Key": "js/old.js"}]},
        {
            "Bucket": OUTPUTS["ConsoleBucketName"],
            "Delete": {"Objects": [{"Key": "js/old.js"}], "Quiet": True},
        },
    )
    session.stubs["cloudfront"].add_response(
        "create_invalidation",
        {"Location": "https://cloudfront/inv", "Invalidation": _invalidation()},
        {
            "DistributionId": OUTPUTS["ConsoleDistributionId"],
            "InvalidationBatch": {"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": ANY},
        },
    )
    out = io.StringIO()

    # When the operator publishes the console
    with session:
        status = deploy_console.main(
            ["--stack-name", STACK, "--console-dir", str(console_dir)], session=session, out=out
        )

    # Then every expected call was made, in order, and the console's URL is printed
    assert status == 0
    session.assert_no_pending_responses()
    assert "deleted js/old.js" in out.getvalue()
    assert out.getvalue().rstrip().endswith(f"the console: {OUTPUTS['ConsoleUrl']}")


def _invalidation() -> dict[str, Any]:
    return {
        "Id": "I1",
        "Status": "InProgress",
        "CreateTime": "2026-11-25T08:00:00Z",
        "InvalidationBatch": {"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": "1"},
    }


def test_a_stack_on_an_existing_pool_needs_the_client_and_the_sign_in_domain_and_says_so(
    console_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = StubbedSession()
    describe(
        session, {k: v for k, v in OUTPUTS.items() if k not in ("ConsoleClientId", "ConsoleSignInDomain")}
    )

    with session:
        status = deploy_console.main(
            ["--stack-name", STACK, "--console-dir", str(console_dir)], session=session, out=io.StringIO()
        )

    assert status == 2
    assert "give --client-id" in capsys.readouterr().err
    session.assert_no_pending_responses()


def test_with_an_existing_pool_the_given_client_and_domain_go_into_the_config(console_dir: Path) -> None:
    session = StubbedSession()
    outputs = {k: v for k, v in OUTPUTS.items() if k not in ("ConsoleClientId", "ConsoleSignInDomain")}
    describe(session, outputs)
    out = io.StringIO()

    with session:
        status = deploy_console.main(
            [
                "--stack-name",
                STACK,
                "--console-dir",
                str(console_dir),
                "--client-id",
                "their-console-client",
                "--sign-in-domain",
                "https://auth.example.com/",
                "--dry-run",
            ],
            session=session,
            out=out,
        )

    assert status == 0
    config = json.loads(out.getvalue().split("\nwould upload")[0])
    assert config["cognito"] == {
        "domain": "https://auth.example.com",
        "clientId": "their-console-client",
        "redirectUri": OUTPUTS["ConsoleUrl"],
        "scopes": "openid email",
    }
    assert out.getvalue().count("would upload") == 4  # not the local config.json, nor junk
    session.assert_no_pending_responses()


def test_a_stack_deployed_before_the_console_existed_is_refused_naming_the_missing_outputs() -> None:
    with pytest.raises(deploy_console.ConsoleDeployError, match="ConsoleBucketName, ConsoleDistributionId"):
        deploy_console.console_from({"ApiUrl": OUTPUTS["ApiUrl"], "ConsoleUrl": OUTPUTS["ConsoleUrl"]})


def test_the_repositorys_console_is_what_gets_uploaded() -> None:
    files = deploy_console.console_files(REPO_ROOT / "console")
    assert {"index.html", "style.css", "js/main.js", "js/api.js", "js/auth.js"} <= set(files)
    assert all(not key.startswith(".") and key != "config.json" for key in files)
