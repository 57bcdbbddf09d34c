#!/usr/bin/env python3
"""Smoke test of a deployed loyalty stack (docs/deploy.md, "Smoke test"), or of the local mode.

Run by an operator with AWS credentials after `sam deploy`, never in CI:

    python scripts/smoke_test.py --stack-name loyalty-points-prod --region eu-west-3
    python scripts/smoke_test.py --api-url https://abc.execute-api.eu-west-3.amazonaws.com \\
        --token-url https://acme.auth.eu-west-3.amazoncognito.com/oauth2/token \\
        --partner-client-id 1example... # secret: --partner-client-secret or LOYALTY_PARTNER_CLIENT_SECRET
    python scripts/smoke_test.py --local http://127.0.0.1:3000      # `make run`: development identities

It enrols a member of its own (`smoke-<time>-<random>`, no email sent: `emailOptIn` false), earns,
replays the earn, reads the balance, redeems, tries to redeem more than is left, returns the purchase,
and checks that a request without a token is refused; with a support agent's token
(`--support-token` or LOYALTY_SUPPORT_TOKEN; always in the local mode) it also reads the member's
ledger. Each step prints PASS or FAIL with its time; the exit status is 1 if any step failed. The
member stays in the table with a zero balance (its ledger is the record of the test).

Only the standard library and boto3 (for the stack's outputs and the partner's secret).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

PARTNER_SCOPE = "loyalty/partner"
SECRET_VARIABLE = "LOYALTY_PARTNER_CLIENT_SECRET"
SUPPORT_TOKEN_VARIABLE = "LOYALTY_SUPPORT_TOKEN"
TIMEOUT = 30


class SmokeError(Exception):
    """A step's check failed, or the target could not be set up; the message says what was expected."""


# --- the target: where the API is and who calls it ------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The API and the `Authorization` header values of the callers the steps use."""

    api_url: str
    partner: str
    support: str | None = None
    local: bool = False


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The stack's outputs by key (`ApiUrl`, `UserPoolId`, `PartnerClientId`, `TokenUrl`, ...)."""
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    if not stacks:
        raise SmokeError(f"no stack named {stack_name}")
    stack = stacks[0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    if "ApiUrl" not in outputs:  # a first deployment that failed and rolled back, or one still going
        raise SmokeError(f"stack {stack_name} ({stack['StackStatus']}) has no ApiUrl output: not deployed")
    return outputs


def partner_client_secret(cognito: Any, user_pool_id: str, client_id: str) -> str:
    """The app client's secret, as `aws cognito-idp describe-user-pool-client` shows it."""
    client = cognito.describe_user_pool_client(UserPoolId=user_pool_id, ClientId=client_id)["UserPoolClient"]
    secret = client.get("ClientSecret")
    if not secret:
        raise SmokeError(f"app client {client_id} has no secret: it is not a client-credentials client")
    return str(secret)


def hosted_token_url(cognito: Any, user_pool_id: str) -> str:
    """The token endpoint of a pool's domain: its custom domain, else its prefix domain."""
    pool = cognito.describe_user_pool(UserPoolId=user_pool_id)["UserPool"]
    region = user_pool_id.split("_", 1)[0]
    if pool.get("CustomDomain"):
        return f"https://{pool['CustomDomain']}/oauth2/token"
    if pool.get("Domain"):
        return f"https://{pool['Domain']}.auth.{region}.amazoncognito.com/oauth2/token"
    raise SmokeError(f"user pool {user_pool_id} has no domain: partners cannot get tokens (give --token-url)")


def token_request(
    token_url: str, client_id: str, client_secret: str, scope: str = PARTNER_SCOPE
) -> urllib.request.Request:
    """The OAuth 2.0 client-credentials request (RFC 6749 §4.4): the client authenticates with HTTP Basic."""
    credentials = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(client_secret, safe='')}"
    return urllib.request.Request(
        token_url,
        method="POST",
        data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode("ascii"),
        headers={
            "Authorization": "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii"),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )


def access_token(request: urllib.request.Request) -> str:
    """Sends the token request; the access token, or SmokeError with the endpoint's answer."""
    status, _, document = _send(request)
    if status != 200 or not isinstance(document, dict) or not document.get("access_token"):
        raise SmokeError(f"token endpoint answered {status}: {document!r}")
    return str(document["access_token"])


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any

    def error_code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error.get("code")) if isinstance(error, dict) else None


def _send(request: urllib.request.Request) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            status, headers, raw = response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as response:
        status, headers, raw = response.code, dict(response.headers.items()), response.read()
    try:
        return status, headers, json.loads(raw) if raw else None
    except ValueError:
        return status, headers, raw.decode("utf-8", "replace")


def call(
    target: Target,
    method: str,
    path: str,
    *,
    caller: str | None,
    body: object | None = None,
    idempotency_key: str | None = None,
) -> Answer:
    """One API request; `caller` is the Authorization header value (None: no header at all)."""
    headers = {"Accept": "application/json"}
    if caller is not None:
        headers["Authorization"] = caller
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(target.api_url + path, data=data, method=method, headers=headers)
    status, response_headers, document = _send(request)
    return Answer(status, {k.lower(): v for k, v in response_headers.items()}, document)


# --- the steps ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    name: str
    passed: bool
    seconds: float
    detail: str

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict}  {self.name:<34} {self.seconds * 1000:7.0f} ms  {self.detail}"


@dataclass
class SmokeRun:
    """The steps, in order, on one member of the run's own; each step returns what it checked."""

    target: Target
    run_id: str = field(default_factory=lambda: f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}")
    amount: str = "100.00"
    currency: str = "EUR"
    earned: int = 0
    redeemed: int = 0
    earn_body: dict[str, str] = field(default_factory=dict)
    earn_answer: object = None

    @property
    def member_id(self) -> str:
        return f"smoke-{self.run_id}"

    @property
    def transaction_id(self) -> str:
        return f"SMOKE-{self.run_id}"

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        steps = [
            ("API answers (openapi.json)", self.api_answers),
            ("no token: 401", self.unauthenticated_is_refused),
            ("enrol member", self.enrol),
            ("earn", self.earn),
            ("earn replayed", self.earn_replayed),
            ("balance", self.balance),
            ("redeem (partner)", self.redeem),
            ("redeem beyond balance: 409", self.redeem_too_much),
            ("reversal of the purchase", self.reverse),
        ]
        if self.target.support is not None:
            steps.append(("ledger (support)", self.ledger))
        return steps

    def _earn_body(self) -> dict[str, str]:
        return {
            "transactionId": self.transaction_id,
            "amount": self.amount,
            "currency": self.currency,
            "occurredAt": datetime.now(UTC).isoformat(timespec="seconds"),
            "channel": "online",
            "category": "smoke-test",
        }

    def api_answers(self) -> str:
        answer = call(self.target, "GET", "/openapi.json", caller=None)
        _expect(answer, 200)
        return f"OpenAPI {answer.body.get('openapi')}, {len(answer.body.get('paths', {}))} paths"

    def unauthenticated_is_refused(self) -> str:
        answer = call(self.target, "GET", f"/members/{self.member_id}/balance", caller=None)
        _expect(answer, 401)
        forged = call(self.target, "GET", f"/members/{self.member_id}/balance", caller="Bearer not-a-token")
        _expect(forged, 401)
        return "no token and a forged token both refused"

    def enrol(self) -> str:
        profile = {
            "email": f"{self.member_id}@example.com",
            "name": "Smoke Test",
            "locale": "en",
            "emailOptIn": False,
        }
        answer = call(
            self.target, "PUT", f"/members/{self.member_id}", caller=self.target.partner, body=profile
        )
        _expect(answer, 201)
        return f"member {self.member_id}"

    def earn(self) -> str:
        self.earn_body = self._earn_body()
        answer = call(
            self.target,
            "POST",
            f"/members/{self.member_id}/earn",
            caller=self.target.partner,
            body=self.earn_body,
        )
        _expect(answer, 201)
        points, balance = answer.body["points"], answer.body["balance"]
        _check(isinstance(points, int) and points > 0, f"points {points!r}: expected a positive whole number")
        _check(balance == points, f"balance {balance} after the first earn of {points} points")
        self.earned, self.earn_answer = points, answer.body
        return f"{points} points for {self.amount} {self.currency}, lot {answer.body['lotId']}"

    def earn_replayed(self) -> str:
        answer = call(
            self.target,
            "POST",
            f"/members/{self.member_id}/earn",
            caller=self.target.partner,
            body=self.earn_body,
        )
        _expect(answer, 201)
        _check(answer.headers.get("idempotent-replayed") == "true", "no Idempotent-Replayed: true header")
        _check(answer.body == self.earn_answer, "the replay's body differs from the original answer")
        return "same answer, Idempotent-Replayed: true"

    def balance(self) -> str:
        answer = call(self.target, "GET", f"/members/{self.member_id}/balance", caller=self.target.partner)
        _expect(answer, 200)
        _check(
            answer.body["available"] == self.earned,
            f"available {answer.body['available']}, expected {self.earned}",
        )
        soonest = answer.body["expiring"][0]
        return f"available {self.earned}, soonest expiry {soonest['points']} points on {soonest['date']}"

    def redeem(self) -> str:
        self.redeemed = max(1, self.earned // 2)
        key = f"{self.run_id}-redeem"
        path = f"/members/{self.member_id}/redemptions"
        answer = call(
            self.target,
            "POST",
            path,
            caller=self.target.partner,
            body={"points": self.redeemed},
            idempotency_key=key,
        )
        _expect(answer, 201)
        left = self.earned - self.redeemed
        _check(
            answer.body["balance"] == left,
            f"balance {answer.body['balance']} after redeeming, expected {left}",
        )
        return f"{self.redeemed} points, redemption {answer.body['redemptionId']}, balance {left}"

    def redeem_too_much(self) -> str:
        asked = self.earned - self.redeemed + 1
        key = f"{self.run_id}-too-much"
        path = f"/members/{self.member_id}/redemptions"
        answer = call(
            self.target, "POST", path, caller=self.target.partner, body={"points": asked}, idempotency_key=key
        )
        _expect(answer, 409)
        _check(
            answer.error_code() == "insufficient_points",
            f"error {answer.error_code()}, not insufficient_points",
        )
        after = call(self.target, "GET", f"/members/{self.member_id}/balance", caller=self.target.partner)
        _expect(after, 200)
        left = self.earned - self.redeemed
        _check(
            after.body["available"] == left,
            f"available {after.body['available']} after a refusal, expected {left}",
        )
        return f"{asked} points refused (insufficient_points), balance unchanged"

    def reverse(self) -> str:
        path = f"/members/{self.member_id}/earn/{self.transaction_id}/reversal"
        answer = call(
            self.target,
            "POST",
            path,
            caller=self.target.partner,
            body={},
            idempotency_key=f"{self.run_id}-return",
        )
        _expect(answer, 201)
        body = answer.body
        _check(body["points"] == self.earned, f"reversed {body['points']} points, expected {self.earned}")
        _check(body["balance"] == 0, f"balance {body['balance']} after the return, expected 0")
        _check(
            body["owed"] == self.redeemed,
            f"owed {body['owed']}, expected the {self.redeemed} points redeemed",
        )
        return f"{body['points']} points back: {body['taken']} taken, {body['owedAdded']} owed"

    def ledger(self) -> str:
        answer = call(
            self.target, "GET", f"/members/{self.member_id}/ledger?limit=10", caller=self.target.support
        )
        _expect(answer, 200)
        types = [entry["type"] for entry in answer.body["entries"]]
        _check(len(types) == 3, f"ledger entries {types}: expected the earn, the redemption and the return")
        return "entries " + ", ".join(types) + " (newest first)"


def _expect(answer: Answer, status: int) -> None:
    if answer.status != status:
        raise SmokeError(f"HTTP {answer.status}, expected {status}: {json.dumps(answer.body)[:300]}")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeError(message)


def run(smoke: SmokeRun, clock: Callable[[], float] = time.perf_counter) -> Iterator[StepResult]:
    """Each step in order; after a failure the later steps (which build on it) do not run."""
    for name, step in smoke.steps():
        started = clock()
        try:
            detail, passed = step(), True
        except (
            SmokeError,
            KeyError,
            TypeError,
            AttributeError,
            urllib.error.URLError,
            TimeoutError,
        ) as error:
            detail, passed = f"{type(error).__name__}: {error}", False
        yield StepResult(name, passed, clock() - started, detail)
        if not passed:
            return


# --- command line -------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--stack-name", help="read ApiUrl, UserPoolId, PartnerClientId and TokenUrl from the stack"
    )
    where.add_argument("--api-url", help="the API's base URL (then give --token-url and --partner-client-id)")
    where.add_argument(
        "--local", metavar="URL", help="the local mode (`make run`), e.g. http://127.0.0.1:3000"
    )
    parser.add_argument("--region", help="the stack's region (default: the AWS configuration's)")
    parser.add_argument("--profile", help="AWS profile to use (default: the environment's credentials)")
    parser.add_argument(
        "--token-url", help="OAuth2 token endpoint (default: the TokenUrl output, or the pool's domain)"
    )
    parser.add_argument(
        "--user-pool-id", help="the pool of the partner client (default: the UserPoolId output)"
    )
    parser.add_argument(
        "--partner-client-id", help="client-credentials app client (default: PartnerClientId output)"
    )
    parser.add_argument(
        "--partner-client-secret",
        default=os.environ.get(SECRET_VARIABLE),
        help=f"its secret (default: ${SECRET_VARIABLE}, else read with describe-user-pool-client)",
    )
    parser.add_argument(
        "--support-token",
        default=os.environ.get(SUPPORT_TOKEN_VARIABLE),
        help=f"a support agent's access token, to read the ledger (default: ${SUPPORT_TOKEN_VARIABLE})",
    )
    parser.add_argument(
        "--currency", default="EUR", help="a currency the program rules earn in (default: EUR)"
    )
    return parser.parse_args(argv)


def aws_target(arguments: argparse.Namespace, session: Any) -> Target:
    """The deployed API and a partner's token: from the stack's outputs, Cognito and the flags.

    `session` is a boto3 Session (its `client(service, region_name=...)` is all this uses).
    """
    outputs = (
        stack_outputs(session.client("cloudformation"), arguments.stack_name) if arguments.stack_name else {}
    )
    api_url = str(arguments.api_url or outputs.get("ApiUrl") or "").rstrip("/")
    pool_id = arguments.user_pool_id or outputs.get("UserPoolId")
    client_id = arguments.partner_client_id or outputs.get("PartnerClientId")
    if not api_url or not client_id:
        raise SmokeError(
            "no API URL or partner client id: give --partner-client-id (a stack with an existing pool)"
        )
    secret = arguments.partner_client_secret
    token_url = arguments.token_url or outputs.get("TokenUrl")
    if (not secret or not token_url) and not pool_id:
        raise SmokeError("give --user-pool-id, or --partner-client-secret and --token-url")
    cognito = session.client("cognito-idp", region_name=pool_id.split("_", 1)[0]) if pool_id else None
    secret = secret or partner_client_secret(cognito, str(pool_id), client_id)
    token_url = token_url or hosted_token_url(cognito, str(pool_id))
    token = access_token(token_request(token_url, client_id, secret))
    support = f"Bearer {arguments.support_token}" if arguments.support_token else None
    return Target(api_url=api_url, partner=f"Bearer {token}", support=support)


def _target(arguments: argparse.Namespace) -> Target:
    if arguments.local:
        # The development identities of the local mode (devtools/identity.py), never accepted in AWS.
        return Target(
            api_url=arguments.local.rstrip("/"),
            partner="Dev partner:smoke-test-pos",
            support="Dev support:smoke-test-agent",
            local=True,
        )
    import boto3  # only here: the local mode needs no AWS SDK

    return aws_target(arguments, boto3.Session(profile_name=arguments.profile, region_name=arguments.region))


def main(argv: list[str] | None = None, out: IO[str] = sys.stdout) -> int:
    """Runs every step against the target the arguments name; 0 when all passed, 1 otherwise."""
    arguments = parse_arguments(argv)
    started = time.perf_counter()
    try:
        target = _target(arguments)
    except Exception as error:  # noqa: BLE001 (any failure to set up is one FAIL line, not a traceback)
        detail = f"{type(error).__name__}: {error}"
        print(StepResult("setup", False, time.perf_counter() - started, detail).line(), file=out)
        return 1
    smoke = SmokeRun(target, currency=arguments.currency)
    print(f"smoke test of {target.api_url}, member {smoke.member_id}", file=out)
    how = "development identities" if target.local else "outputs read, partner token by client credentials"
    print(StepResult("setup", True, time.perf_counter() - started, how).line(), file=out)
    results = []
    for result in run(smoke):
        print(result.line(), file=out, flush=True)
        results.append(result)
    steps = len(smoke.steps())
    failed = len(results) < steps or not all(result.passed for result in results)
    skipped = "" if target.support else " (ledger not read: no --support-token)"
    passed = sum(result.passed for result in results)
    print(f"{'FAILED' if failed else 'PASSED'}: {passed}/{steps} steps{skipped}", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
