"""No personal data in the logs (issue #6, docs/security.md): a full run through every route, its
refusals and its errors, with every log line captured at DEBUG, carries no email, no name and no
raw request body.

Every record of every logger is captured as CloudWatch would receive it (Powertools' JSON
formatter, exceptions and their tracebacks included), with the most verbose settings a deployer
could choose: the function's logger at DEBUG (template parameter `LogLevel`), Powertools' own
package logger at DEBUG (`POWERTOOLS_DEBUG`), the root logger at DEBUG (Lambda's
`ApplicationLogLevel`), and `POWERTOOLS_LOGGER_LOG_EVENT=true`. Anything printed to stdout or
stderr is captured too. A positive control proves the capture sees a handler that logs its event.
"""

from __future__ import annotations

import json
import logging
import os
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devtools.identity import Identity
from devtools.lambda_runtime import LambdaContext, http_event, load_handler
from loyalty.http.telemetry import logger
from loyalty.notify import notify_config, ses
from loyalty.notify.unsubscribe import make_token
from loyalty.store import members as member_store
from loyalty.store.client import dynamodb
from tests.integration.conftest import PARTNER, ROOT, UNSUBSCRIBE_SECRET, Api, match

# Distinctive values, each of which must never reach a log line (in any encoding).
PEOPLE = [
    ("zephyrine.quillfeather+loyalty@example.org", "Zéphyrine Quillfeather-Ødegård"),
    ("li.xiaolong.logtest@例え.jp", "李小龍測試者"),
    ("omega.unicorn.logtest@exämple.com", "Ωmega 🦄 Løgtester"),
]
UPDATED_NAME = "Ärnfríður Þorgilsdóttir-Logtest"
UPDATED_EMAIL = "arnfridur.logtest@example.net"
REFUSED_EMAIL = "refused.body.logtest@example.org"
REFUSED_NAME = "Refusé Bodyname Logtest"


@dataclass
class Capture:
    """Every log line, formatted as it would reach CloudWatch, and what was printed."""

    printed: pytest.CaptureFixture[str]
    records: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        taken = self.printed.readouterr()
        self.output.extend((taken.out + taken.err).splitlines())
        return self.records + self.output

    def text(self) -> str:
        return "\n".join(self.lines)


class _Lines(logging.Handler):
    def __init__(self, capture: Capture) -> None:
        super().__init__(level=logging.DEBUG)
        self.capture = capture
        # The formatter the functions' logs are written with (JSON, extras and tracebacks included).
        self.setFormatter(logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.capture.records.append(self.format(record))
        except (TypeError, ValueError):  # a record that cannot be formatted: keep its raw parts
            self.capture.records.append(f"{record.name} {record.msg!r} {record.args!r}")


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Capture]:
    """Every record of every logger at DEBUG, plus stdout and stderr, while the test runs."""
    capture = Capture(capsys)
    handler = _Lines(capture)
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    root = logging.getLogger()
    # Loggers that do not propagate to the root get the handler too (Powertools' own may not).
    loggers = [root] + [
        candidate
        for candidate in list(logging.Logger.manager.loggerDict.values())
        if isinstance(candidate, logging.Logger) and not candidate.propagate
    ]
    # The root logger (Lambda's application log level) and the functions' logger (`LogLevel`) at
    # DEBUG; `POWERTOOLS_DEBUG` acts at import, before loyalty.http.telemetry holds the libraries.
    levels = {name: logging.getLogger(name).level for name in ("", logger.name)}
    for target in loggers:
        target.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        for target in loggers:
            target.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def spellings(value: str) -> set[str]:
    """The forms a value can take in a log line: as is, lower-cased, NFD, repr'd, URL-encoded, and
    JSON-escaped once or twice (a body is a JSON string inside the JSON log line)."""
    forms = {value, value.lower(), unicodedata.normalize("NFD", value), repr(value)[1:-1]}
    forms |= {quote(value), quote(value, safe="@")}
    for _ in range(2):
        forms |= {json.dumps(form)[1:-1] for form in list(forms)}
    return {form for form in forms if form}


def leaks(capture: Capture, secrets: list[str]) -> list[str]:
    """`secret in: line` for each secret that appears in a log line, in any of its spellings."""
    found = []
    for line in capture.lines:  # read once: stdout and stderr are taken as they are read
        for secret in secrets:
            if any(form in line for form in spellings(secret)):
                found.append(f"{secret!r} in: {line}")
    return found


TEN_DAYS_AGO = (datetime.now(UTC) - timedelta(days=10)).isoformat()


@contextmanager
def ses_emulated() -> Iterator[None]:
    """The email settings of the template and SES emulated (moto), the sender verified."""
    saved = {name: os.environ.get(name) for name in ("SENDER_ADDRESS", "LINKS_BASE_URL")}
    os.environ.update(
        SENDER_ADDRESS="no-reply@loyalty.example.com", LINKS_BASE_URL="https://loyalty.example.com/"
    )
    forget = (notify_config, ses.ses_client, ses.default_sender)
    for cached in forget:
        cached.cache_clear()
    try:
        with mock_aws():
            boto3.client("sesv2").create_email_identity(EmailIdentity="no-reply@loyalty.example.com")
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for cached in forget:
            cached.cache_clear()


def full_run(api: Api, member: str, email: str, name: str) -> list[str]:
    """Every route with this member's data, as the callers of SPEC §2 would call them, including
    refusals; returns the raw bodies that were sent."""
    me = Identity.member(member)
    other = Identity.member(f"m-other-{uuid.uuid4().hex[:8]}")
    base = f"/members/{member}"
    bodies: list[str] = []

    def send(method: str, path: str, identity: Identity | None, body: Any, **kwargs: Any) -> int:
        if body is not None:
            bodies.append(body if isinstance(body, str) else json.dumps(body))
        return api.call(method, path, identity=identity, body=body, **kwargs).status

    profile = {"email": email, "name": name, "locale": "fr", "emailOptIn": True}
    assert send("PUT", base, PARTNER, profile) == 201
    assert send("PUT", base, me, {**profile, "name": UPDATED_NAME, "email": UPDATED_EMAIL}) == 200
    assert send("PUT", base, me, profile) == 200
    # Refused bodies that hold the email and the name: invalid fields, bad JSON, wrong media type,
    # duplicate keys, a control character in the name, an unknown field, a foreign caller.
    assert send("PUT", base, me, {**profile, "locale": "xx"}) == 422
    assert send("PUT", base, me, {**profile, "name": f"{name}\r\nBcc: {REFUSED_EMAIL}"}) == 422
    assert send("PUT", base, me, {**profile, "nickname": REFUSED_NAME}) == 422
    assert send("PUT", base, me, f'{{"email": "{email}", "name": "{name}"') == 400
    assert send("PUT", base, me, f'{{"email": "{email}", "email": "{REFUSED_EMAIL}"}}') == 400
    assert send("PUT", base, me, json.dumps(profile), headers={"content-type": "text/plain"}) == 415
    assert send("PUT", base, other, profile) == 403
    assert send("PUT", base, None, profile) == 401
    assert send("GET", base, me, None) == 200
    assert send("GET", base, other, None) == 403
    assert send("GET", f"/members/m-never-{uuid.uuid4().hex[:8]}", Identity.support("agent-1"), None) == 404

    purchase = {"transactionId": f"{member}-tx-1", "amount": "120.00", "currency": "EUR"}
    purchase |= {"occurredAt": "2025-01-02T10:00:00+01:00", "channel": "store"}
    assert send("POST", f"{base}/earn", PARTNER, purchase) == 201
    assert send("POST", f"{base}/earn", PARTNER, purchase) == 201  # replayed
    assert send("POST", f"{base}/earn", PARTNER, {**purchase, "amount": "121.00"}) == 409
    assert send("POST", f"{base}/earn", PARTNER, {**purchase, "amount": email}) == 422
    assert send("POST", f"{base}/earn", me, purchase) == 403
    redemption = {"headers": {"idempotency-key": f"{member}-r1"}}
    assert send("POST", f"{base}/redemptions", me, {"points": 20}, **redemption) == 201
    assert send("POST", f"{base}/redemptions", me, {"points": 20}, **redemption) == 201  # replayed
    assert send("POST", f"{base}/redemptions", me, {"points": 21}, **redemption) == 409
    assert send("POST", f"{base}/redemptions", me, {"points": 10_000}) == 422  # no key
    big = {"headers": {"idempotency-key": f"{member}-r2"}}
    assert send("POST", f"{base}/redemptions", me, {"points": 10_000}, **big) == 409
    assert send("POST", f"{base}/redemptions", me, {"points": name}, **big) == 422
    assert send("GET", f"{base}/balance", me, None) == 200
    assert send("GET", f"{base}/balance", PARTNER, None) == 200
    assert send("GET", f"{base}/lots", me, None) == 200
    first = api.call("GET", f"{base}/ledger", identity=me, query={"limit": "1"})
    assert first.status == 200
    cursor = first.body["nextCursor"]
    assert send("GET", f"{base}/ledger", me, None, query={"limit": "1", "cursor": cursor}) == 200
    assert send("GET", f"{base}/ledger", me, None, query={"cursor": email}) in (400, 422)
    assert send("GET", f"{base}/ledger", other, None) == 403
    # Claims: filed with the member's name in the store, read, listed, decided and emailed (SES
    # emulated): the outcome email carries the address and the name, no log line may.
    with ses_emulated():
        claim = {"transactionId": f"{member}-claim", "occurredAt": TEN_DAYS_AGO, "amount": "12.00"}
        claim |= {"currency": "EUR", "store": name, "receiptRef": email}
        claims = f"{base}/claims"
        filed = api.call("POST", claims, identity=me, body=claim)
        bodies.append(json.dumps(claim))
        assert filed.status == 201, filed.body
        assert send("POST", claims, me, claim) == 200  # the first again
        assert send("POST", claims, other, claim) == 403
        assert send("POST", claims, me, {**claim, "store": f"{name}\r\n"}) == 422
        support = Identity.support("agent-logs")
        assert send("GET", "/claims", support, None, query={"status": "pending", "limit": "5"}) == 200
        assert send("GET", f"/claims/{filed.body['claimId']}", me, None) == 200
        assert send("GET", f"/claims/{filed.body['claimId']}", other, None) == 404
        decision = {"decision": "approve", "reason": f"receipt of {name} checked"}
        decided = api.call(
            "POST", f"/claims/{filed.body['claimId']}/decision", identity=support, body=decision
        )
        bodies.append(json.dumps(decision))
        assert decided.status == 200 and decided.body["email"]["status"] == "sent", decided.body
        assert send("POST", f"/claims/{filed.body['claimId']}/decision", support, decision) == 200
        assert (
            send("POST", f"/claims/{filed.body['claimId']}/decision", support, {**decision, "reason": email})
            == 409
        )
    assert send("GET", "/openapi.json", None, None) == 200
    # The email's unsubscribe link, public: its page, the one-click opt-out and bad tokens. The
    # token is a credential: no log line may carry it either.
    token = make_token(member, secret=UNSUBSCRIBE_SECRET, now=datetime.now(UTC) - timedelta(minutes=1))
    link, form = {"query": {"token": token}}, {"content-type": "application/x-www-form-urlencoded"}
    bodies.append(token)
    assert send("GET", "/unsubscribe", None, None, **link) == 200
    assert send("POST", "/unsubscribe", None, "List-Unsubscribe=One-Click", headers=form, **link) == 200
    assert send("POST", "/unsubscribe", None, None, query={"token": f"{token[:-2]}xx"}) == 400
    assert send("GET", "/unsubscribe", None, None, query={"token": email}) == 400
    return bodies


@pytest.fixture
def people() -> list[tuple[str, str, str]]:
    return [(f"m-logs-{uuid.uuid4().hex[:10]}", email, name) for email, name in PEOPLE]


def secrets_of(people: list[tuple[str, str, str]]) -> list[str]:
    values = [UPDATED_NAME, UPDATED_EMAIL, REFUSED_EMAIL, REFUSED_NAME]
    for _, email, name in people:
        values += [email, name, email.split("@")[0]]
    return values


def test_a_full_run_through_every_route_logs_no_email_name_or_body(
    api: Api, people: list[tuple[str, str, str]], logs: Capture
) -> None:
    # Given members with distinctive emails and names, When each goes through every route
    bodies: list[str] = []
    for member, email, name in people:
        bodies += full_run(api, member, email, name)

    # Then no log line carries any of them, nor any body as sent
    assert logs.lines, "the capture saw no log line at all: DEBUG logging is not being captured"
    assert leaks(logs, secrets_of(people)) == []
    assert [body for body in bodies if body in logs.text()] == []


def test_a_write_the_table_refuses_is_logged_without_the_members_data(
    api: Api, people: list[tuple[str, str, str]], logs: Capture
) -> None:
    # Given DynamoDB refuses every write (a policy gone wrong, say)
    member, email, name = people[0]

    def refuse(model: Any, **_: Any) -> None:
        if model.name in {"PutItem", "UpdateItem", "TransactWriteItems"}:
            message = f"User is not authorized to perform: dynamodb:{model.name}"
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, model.name)

    events = dynamodb().meta.events
    events.register("before-call.dynamodb", refuse, unique_id="refuse-writes")
    try:
        # When a partner enrols the member
        response = api.enrol(member, name=name, email=email)
    finally:
        events.unregister("before-call.dynamodb", unique_id="refuse-writes")

    # Then the caller gets a 500, the error and its traceback are logged, and no personal data
    assert response.status == 500
    assert any("AccessDeniedException" in line for line in logs.lines)
    assert leaks(logs, secrets_of(people)) == []


def test_an_unexpected_error_is_logged_without_the_members_data(
    api: Api, people: list[tuple[str, str, str]], logs: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an enrolled member and a read that crashes on a bug of ours
    member, email, name = people[0]
    assert api.enrol(member, name=name, email=email).status == 201

    def crash(*_: Any, **__: Any) -> Any:
        raise KeyError("balance")

    monkeypatch.setattr(member_store, "profile_and_balance", crash)

    # When the member reads its profile
    response = api.call("GET", f"/members/{member}", identity=Identity.member(member))

    # Then the caller gets a 500, the traceback is logged, and no personal data
    assert response.status == 500
    assert any("KeyError" in line for line in logs.lines)
    assert leaks(logs, secrets_of(people)) == []


def test_the_capture_would_see_a_handler_that_logs_its_event(
    api: Api, people: list[tuple[str, str, str]], logs: Capture
) -> None:
    """Positive control: the same capture, a handler that logs the event it receives."""
    member, email, name = people[0]
    route, params = match(api.routes, "PUT", f"/members/{member}")
    handler = load_handler(route.code_uri, route.handler, root=ROOT)
    leaky = logger.inject_lambda_context(log_event=True)(handler)
    body = {"email": email, "name": name, "locale": "en"}
    event = http_event(
        "PUT",
        f"/members/{member}",
        route_key=f"PUT {route.path}",
        path_parameters=params,
        body=body,
        identity=PARTNER,
    )

    assert leaky(event, LambdaContext(route.function))["statusCode"] == 201
    logger.debug("a debug line naming %s", name)
    print(f"printed {email}")

    found = leaks(logs, [email, name])
    assert any("printed" in line for line in found)
    assert any("a debug line" in line for line in found)
    assert sum(1 for line in found if '"event"' in line or "requestContext" in line) >= 1
