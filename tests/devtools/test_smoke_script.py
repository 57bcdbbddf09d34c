"""scripts/smoke_test.py, the operator's smoke test of a deployed stack (issue #9, "Deploy and cost").

Its steps run here against the real local mode (`--local`, development identities), and the parts
that talk to AWS are checked without it: the stack's outputs and the partner's secret from stubbed
CloudFormation and Cognito answers, the client-credentials request against a token endpoint of our own.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from devtools import REPO_ROOT
from devtools.dynamodb_local import free_port
from tests.devtools.test_run_command import local_app

__all__ = ["local_app"]  # the running local mode, shared with test_run_command.py

SCRIPT = REPO_ROOT / "scripts" / "smoke_test.py"
SECRET = "1a2b3c4d5e6f7g8h9i0j1k2l3m4n5o6p7q8r9s0t1u2v3w4x5y6z7"  # Cognito: 24+ characters
STEPS = [
    "API answers (openapi.json)",
    "no token: 401",
    "enrol member",
    "earn",
    "earn replayed",
    "balance",
    "redeem (partner)",
    "redeem beyond balance: 409",
    "reversal of the purchase",
    "ledger (support)",
]


def _load_script() -> ModuleType:
    """The script as a module: it is a file an operator runs, not a package of the project."""
    spec = importlib.util.spec_from_file_location("smoke_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["smoke_test"] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


smoke_test = _load_script()


def _step_lines(output: str) -> dict[str, str]:
    """`PASS  earn   12 ms  ...` lines by step name, with their verdict."""
    verdicts = {}
    for line in output.splitlines():
        if line.startswith(("PASS  ", "FAIL  ")):
            verdicts[line[6:40].rstrip()] = line[:4]  # the name is padded to 34 characters
    return verdicts


# ---------------------------------------------------------------- against the local mode


@pytest.mark.dynamodb
def test_the_script_run_against_the_local_mode_passes_every_step(local_app: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--local", local_app],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert _step_lines(completed.stdout) == {"setup": "PASS", **dict.fromkeys(STEPS, "PASS")}
    assert completed.stdout.splitlines()[-1] == f"PASSED: {len(STEPS)}/{len(STEPS)} steps"


@pytest.mark.dynamodb
def test_each_run_uses_a_member_and_purchase_of_its_own_so_runs_can_follow_each_other(local_app: str) -> None:
    first, second = io.StringIO(), io.StringIO()

    assert smoke_test.main(["--local", local_app], out=first) == 0
    assert smoke_test.main(["--local", local_app], out=second) == 0

    member = [line.rsplit("member ", 1)[1] for line in (first.getvalue(), second.getvalue())]
    assert member[0].split("\n")[0] != member[1].split("\n")[0]


@pytest.mark.dynamodb
def test_the_ledger_step_finds_the_earn_the_redemption_and_the_return(local_app: str) -> None:
    target = smoke_test.Target(
        api_url=local_app, partner="Dev partner:smoke-test-pos", support="Dev support:agent-7", local=True
    )
    smoke = smoke_test.SmokeRun(target)

    results = list(smoke_test.run(smoke))

    assert [result.name for result in results] == STEPS
    assert all(result.passed for result in results), [r.line() for r in results if not r.passed]
    assert results[-1].detail == "entries reversal, redeem, earn (newest first)"


def test_a_step_that_fails_stops_the_run_and_the_exit_status_says_so() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    out = io.StringIO()

    status = smoke_test.main(["--local", nobody], out=out)

    assert status == 1
    assert _step_lines(out.getvalue()) == {"setup": "PASS", "API answers (openapi.json)": "FAIL"}
    assert out.getvalue().splitlines()[-1] == f"FAILED: 0/{len(STEPS)} steps"


# ---------------------------------------------------------- the stack's outputs and the partner's secret


def _client(service: str) -> Any:
    return boto3.client(service, region_name="eu-west-3")


def _stack(status: str, outputs: dict[str, str]) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": "loyalty-points-prod",
                "CreationTime": "2026-11-25T09:00:00Z",
                "StackStatus": status,
                "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
            }
        ]
    }


def test_the_outputs_are_read_from_the_stack_by_key() -> None:
    cloudformation = _client("cloudformation")
    outputs = {
        "ApiUrl": "https://abc123.execute-api.eu-west-3.amazonaws.com",
        "UserPoolId": "eu-west-3_AbCd12345",
        "PartnerClientId": "1example23456789abcdefghij",
        "TokenUrl": "https://acme.auth.eu-west-3.amazoncognito.com/oauth2/token",
    }
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks", _stack("UPDATE_COMPLETE", outputs), {"StackName": "loyalty-points-prod"}
        )

        assert smoke_test.stack_outputs(cloudformation, "loyalty-points-prod") == outputs


def test_a_stack_without_an_api_url_is_reported_as_not_deployed() -> None:
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        stub.add_response("describe_stacks", _stack("ROLLBACK_COMPLETE", {}), {"StackName": "loyalty-points"})

        with pytest.raises(smoke_test.SmokeError, match=r"ROLLBACK_COMPLETE.*no ApiUrl output"):
            smoke_test.stack_outputs(cloudformation, "loyalty-points")


def test_the_partner_secret_is_the_app_clients_own() -> None:
    cognito = _client("cognito-idp")
    with Stubber(cognito) as stub:
        stub.add_response(
            "describe_user_pool_client",
            {"UserPoolClient": {"ClientId": "partnerclient1", "ClientSecret": SECRET}},
            {"UserPoolId": "eu-west-3_AbCd12345", "ClientId": "partnerclient1"},
        )

        assert smoke_test.partner_client_secret(cognito, "eu-west-3_AbCd12345", "partnerclient1") == SECRET


def test_a_client_without_a_secret_is_not_a_partner_client() -> None:
    cognito = _client("cognito-idp")
    with Stubber(cognito) as stub:
        stub.add_response("describe_user_pool_client", {"UserPoolClient": {"ClientId": "memberapps"}})

        with pytest.raises(smoke_test.SmokeError, match="no secret"):
            smoke_test.partner_client_secret(cognito, "eu-west-3_AbCd12345", "memberapps")


@pytest.mark.parametrize(("pool", "expected"), [
    ({"Id": "eu-west-3_AbC", "Domain": "acme-loyalty"}, "https://acme-loyalty.auth.eu-west-3.amazoncognito.com/oauth2/token"),
    ({"Id": "eu-west-3_AbC", "Domain": "acme-loyalty", "CustomDomain": "auth.acme.com"}, "https://auth.acme.com/oauth2/token"),
])  # fmt: skip
def test_an_existing_pools_token_url_is_its_own_domains(pool: dict[str, str], expected: str) -> None:
    """With ExistingUserPoolId the stack has no TokenUrl output: the pool's domain serves the tokens."""
    cognito = _client("cognito-idp")
    with Stubber(cognito) as stub:
        stub.add_response("describe_user_pool", {"UserPool": pool}, {"UserPoolId": "eu-west-3_AbC"})

        assert smoke_test.hosted_token_url(cognito, "eu-west-3_AbC") == expected


# ---------------------------------------------------------------- the client-credentials token


def test_the_token_request_is_a_client_credentials_grant_of_the_partner_scope_with_basic_auth() -> None:
    request = smoke_test.token_request("https://auth.example.com/oauth2/token", "client1", "se:cret/+")

    assert (request.get_method(), request.full_url) == ("POST", "https://auth.example.com/oauth2/token")
    assert request.get_header("Content-type") == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(request.data.decode("ascii")) == {
        "grant_type": ["client_credentials"],
        "scope": ["loyalty/partner"],
    }
    scheme, credentials = request.get_header("Authorization").split(" ")
    assert scheme == "Basic"
    client_id, secret = base64.b64decode(credentials).decode("utf-8").split(":")
    assert (urllib.parse.unquote(client_id), urllib.parse.unquote(secret)) == ("client1", "se:cret/+")


class _TokenEndpoint(BaseHTTPRequestHandler):
    """Answers as Cognito's /oauth2/token does: a token for client1:SECRET, 400 invalid_client otherwise."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        good = "Basic " + base64.b64encode(f"client1:{SECRET}".encode()).decode("ascii")
        granted = self.headers["Authorization"] == good and b"grant_type=client_credentials" in body
        answer = {"access_token": "eyJ.token", "token_type": "Bearer", "expires_in": 3600}
        document = json.dumps(answer if granted else {"error": "invalid_client"}).encode()
        self.send_response(200 if granted else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(document)))
        self.end_headers()
        self.wfile.write(document)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture()
def token_endpoint() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/oauth2/token"
    server.shutdown()
    server.server_close()


def test_the_partner_gets_an_access_token_with_its_id_and_secret(token_endpoint: str) -> None:
    request = smoke_test.token_request(token_endpoint, "client1", SECRET)

    assert smoke_test.access_token(request) == "eyJ.token"


def test_a_refused_token_request_says_what_the_endpoint_answered(token_endpoint: str) -> None:
    request = smoke_test.token_request(token_endpoint, "client1", "wrong")

    with pytest.raises(smoke_test.SmokeError, match=r"400.*invalid_client"):
        smoke_test.access_token(request)


# ---------------------------------------------------------------- from the stack to the partner's token


class _Session:
    """A boto3 Session whose clients answer from Stubbers: what `aws_target` calls, nothing else."""

    def __init__(self) -> None:
        self.clients = {"cloudformation": _client("cloudformation"), "cognito-idp": _client("cognito-idp")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}
        self.regions: dict[str, str | None] = {}

    def client(self, service: str, region_name: str | None = None) -> Any:
        self.regions[service] = region_name
        return self.clients[service]


def test_with_a_stack_name_the_target_is_its_api_and_a_token_for_its_partner_client(
    token_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(smoke_test.SECRET_VARIABLE, raising=False)
    session = _Session()
    outputs = {
        "ApiUrl": "https://abc123.execute-api.eu-west-3.amazonaws.com/",
        "UserPoolId": "eu-west-3_AbCd12345",
        "PartnerClientId": "client1",
        "TokenUrl": token_endpoint,
    }
    session.stubs["cloudformation"].add_response(
        "describe_stacks", _stack("CREATE_COMPLETE", outputs), {"StackName": "loyalty-points-prod"}
    )
    session.stubs["cognito-idp"].add_response(
        "describe_user_pool_client",
        {"UserPoolClient": {"ClientId": "client1", "ClientSecret": SECRET}},
        {"UserPoolId": "eu-west-3_AbCd12345", "ClientId": "client1"},
    )
    arguments = smoke_test.parse_arguments(["--stack-name", "loyalty-points-prod"])

    with session.stubs["cloudformation"], session.stubs["cognito-idp"]:
        target = smoke_test.aws_target(arguments, session)

    assert target == smoke_test.Target(
        api_url="https://abc123.execute-api.eu-west-3.amazonaws.com", partner="Bearer eyJ.token"
    )
    assert session.regions["cognito-idp"] == "eu-west-3"  # the pool's region, from its id


def test_a_secret_and_token_url_given_need_no_cognito_call(token_endpoint: str) -> None:
    session = _Session()
    arguments = smoke_test.parse_arguments([
        "--api-url", "https://abc123.execute-api.eu-west-3.amazonaws.com",
        "--token-url", token_endpoint, "--partner-client-id", "client1", "--partner-client-secret", SECRET,
        "--support-token", "eyJ.agent",
    ])  # fmt: skip

    with session.stubs["cloudformation"], session.stubs["cognito-idp"]:  # no response queued: no call allowed
        target = smoke_test.aws_target(arguments, session)

    assert (target.partner, target.support) == ("Bearer eyJ.token", "Bearer eyJ.agent")


def test_a_stack_with_an_existing_pool_needs_the_partner_client_named() -> None:
    session = _Session()
    outputs = {"ApiUrl": "https://abc123.execute-api.eu-west-3.amazonaws.com", "UserPoolId": "eu-west-3_AbC"}
    session.stubs["cloudformation"].add_response("describe_stacks", _stack("UPDATE_COMPLETE", outputs))
    arguments = smoke_test.parse_arguments(["--stack-name", "loyalty-points-prod"])

    with session.stubs["cloudformation"], pytest.raises(smoke_test.SmokeError, match="--partner-client-id"):
        smoke_test.aws_target(arguments, session)
