"""Handlers in-process against DynamoDB Local: one engine per test worker, one table per session.

Requests are routed exactly as template.yaml declares, and each test works on members of
its own (fresh ids), so tests never see each other's data.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devtools.dynamodb_local import DynamoDBLocal, ensure_table
from devtools.identity import Identity
from devtools.lambda_runtime import LambdaContext, http_event, load_handler
from devtools.template import Route, http_routes, load_template
from loyalty.notify.config import notify_config

ROOT = Path(__file__).resolve().parents[2]
TABLE = "loyalty-test"
PARTNER = Identity.partner("pos-test")
PARIS = ZoneInfo("Europe/Paris")  # the default rules' program timezone
# The unsubscribe keys of the functions under test: the first signs, both verify (rotation).
UNSUBSCRIBE_SECRET = "test-unsubscribe-secret-new-0123456789abcdef"
OLD_UNSUBSCRIBE_SECRET = "test-unsubscribe-secret-old-0123456789abcdef"


EMAIL_SENDER = "no-reply@loyalty.example.com"
EMAIL_LINKS = "https://loyalty.example.com/account"


def forget_email_configuration() -> None:
    """The email settings and SES clients are read once per process: read them again."""
    from loyalty.notify import ses

    notify_config.cache_clear()
    ses.ses_client.cache_clear()
    ses.default_sender.cache_clear()


def ses_throttled() -> ClientError:
    """What SES v2 answers a sender over its sending rate."""
    error = {"Code": "TooManyRequestsException", "Message": "Maximum sending rate exceeded."}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 429}}, "SendEmail")


@contextmanager
def emails_under_moto(
    monkeypatch: pytest.MonkeyPatch, *, unsubscribe_secret: str | None = None
) -> Iterator[None]:
    """SES (and every AWS service but DynamoDB, which stays DynamoDB Local) under moto, with the
    email settings the template gives a function that sends, the sender verified."""
    monkeypatch.setenv("SENDER_ADDRESS", EMAIL_SENDER)
    monkeypatch.setenv("PROGRAM_NAME", "Club Étoile")
    monkeypatch.setenv("LINKS_BASE_URL", EMAIL_LINKS)
    if unsubscribe_secret is not None:
        monkeypatch.setenv("UNSUBSCRIBE_SECRET", unsubscribe_secret)
    monkeypatch.delenv("SES_CONFIGURATION_SET", raising=False)
    monkeypatch.delenv("SES_MAX_ATTEMPTS", raising=False)
    forget_email_configuration()
    try:
        with mock_aws():
            boto3.client("sesv2").create_email_identity(EmailIdentity=EMAIL_SENDER)
            yield
    finally:
        forget_email_configuration()


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="session")
def dynamodb_local(template: dict[str, Any]) -> Iterator[str]:
    with DynamoDBLocal() as engine:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = engine.endpoint
        os.environ["TABLE_NAME"] = TABLE
        os.environ["RULES_SOURCE"] = "default"
        os.environ["UNSUBSCRIBE_SECRET"] = f"{UNSUBSCRIBE_SECRET},{OLD_UNSUBSCRIBE_SECRET}"
        notify_config.cache_clear()
        ensure_table(boto3.client("dynamodb", endpoint_url=engine.endpoint), TABLE, template)
        yield engine.endpoint


@pytest.fixture(scope="session")
def table(dynamodb_local: str) -> Any:
    return boto3.resource("dynamodb", endpoint_url=dynamodb_local).Table(TABLE)


@pytest.fixture
def own_table(dynamodb_local: str, template: dict[str, Any]) -> Iterator[Any]:
    """A fresh, empty table of the template's shape for one test, bound as THE table (settings and
    models) until the test ends: for whatever reads the whole table or a whole index (the
    scheduled runs page every ByNextExpiry shard), which must not see the other tests' members."""
    from loyalty.settings import settings
    from loyalty.store.models import bind

    name = f"loyalty-own-{uuid.uuid4().hex[:12]}"
    client = boto3.client("dynamodb", endpoint_url=dynamodb_local)
    ensure_table(client, name, template)
    previous = os.environ["TABLE_NAME"]
    os.environ["TABLE_NAME"] = name
    settings.cache_clear()
    bind.cache_clear()
    try:
        yield boto3.resource("dynamodb", endpoint_url=dynamodb_local).Table(name)
    finally:
        os.environ["TABLE_NAME"] = previous
        settings.cache_clear()
        bind.cache_clear()
        client.delete_table(TableName=name)


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def error_code(self) -> str | None:
        return (self.body or {}).get("error", {}).get("code") if isinstance(self.body, dict) else None


def match(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]]:
    segments = path.strip("/").split("/")
    for route in routes:
        pattern = route.path.strip("/").split("/")
        if route.method != method or len(pattern) != len(segments):
            continue
        params = {}
        for expected, actual in zip(pattern, segments, strict=True):
            if expected.startswith("{") and expected.endswith("}"):
                params[expected[1:-1]] = actual
            elif expected != actual:
                break
        else:
            return route, params
    raise LookupError(f"template.yaml routes no {method} {path}")


class Api:
    """Calls the handlers the way API Gateway would: route from template.yaml, payload 2.0 event."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def call(
        self,
        method: str,
        path: str,
        *,
        identity: Identity | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> ApiResponse:
        route, params = match(self.routes, method, path)
        event = http_event(
            method,
            path,
            route_key=f"{method} {route.path}",
            path_parameters=params or None,
            query=query,
            headers={"content-type": "application/json", **(headers or {})},
            body=body,
            identity=identity,
        )
        return self.invoke(route, event)

    def invoke(self, route: Route, event: dict[str, Any]) -> ApiResponse:
        handler = load_handler(route.code_uri, route.handler, root=ROOT)
        raw = handler(event, LambdaContext(route.function))
        text = raw.get("body") or ""
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        return ApiResponse(status=int(raw["statusCode"]), body=body, headers=dict(raw.get("headers") or {}))

    # ---- the operations most tests need

    def enrol(self, member_id: str, identity: Identity = PARTNER, **profile: Any) -> ApiResponse:
        body = {"email": f"{member_id}@example.com", "name": "Test Member", "locale": "en", **profile}
        return self.call("PUT", f"/members/{member_id}", identity=identity, body=body)

    def earn(self, member_id: str, identity: Identity = PARTNER, **purchase: Any) -> ApiResponse:
        body = {
            "transactionId": f"tx-{uuid.uuid4().hex}",
            "amount": "100.00",
            "currency": "EUR",
            "occurredAt": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "channel": "store",
            **purchase,
        }
        return self.call("POST", f"/members/{member_id}/earn", identity=identity, body=body)

    def redeem(
        self, member_id: str, points: int, identity: Identity | None = None, key: str | None = None
    ) -> ApiResponse:
        return self.call(
            "POST",
            f"/members/{member_id}/redemptions",
            identity=identity or Identity.member(member_id),
            body={"points": points},
            headers={"idempotency-key": key or uuid.uuid4().hex},
        )

    def balance(self, member_id: str, identity: Identity | None = None) -> ApiResponse:
        return self.call(
            "GET", f"/members/{member_id}/balance", identity=identity or Identity.member(member_id)
        )


def lots_of(api: Api, member_id: str) -> list[dict[str, Any]]:
    """The member's unexpired lots, read as the member."""
    response = api.call("GET", f"/members/{member_id}/lots", identity=Identity.member(member_id))
    assert response.status == 200
    return list(response.body["lots"])


def ledger_of(api: Api, member_id: str) -> list[dict[str, Any]]:
    """The first page of the member's ledger, read as the member."""
    response = api.call("GET", f"/members/{member_id}/ledger", identity=Identity.member(member_id))
    assert response.status == 200
    return list(response.body["entries"])


def paris_day(moment: str | datetime) -> date:
    """The local (Paris) day of an instant: the day a purchase counts for."""
    instant = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return instant.astimezone(PARIS).date()


def expiry_day(expires_at: str) -> date:
    """The last local day points can be used: `expiresAt` is the Paris midnight that ends it."""
    return paris_day(datetime.fromisoformat(expires_at) - timedelta(microseconds=1))


def earn_lot_id(occurred_at: str | datetime, expires_at: str) -> str:
    """The documented id of the lot a purchase goes to: `<expiry date>-<local day of issue>-e`
    (one lot per expiry date, day of issue and kind of credit)."""
    return f"{expiry_day(expires_at):%Y%m%d}-{paris_day(occurred_at):%Y%m%d}-e"


@pytest.fixture(scope="session")
def api(dynamodb_local: str, template: dict[str, Any]) -> Api:
    return Api(http_routes(template))


@pytest.fixture
def member_id() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def enrolled(api: Api, member_id: str) -> str:
    assert api.enrol(member_id).status == 201
    return member_id


@pytest.fixture
def member_items(table: Any) -> Any:
    """Every item of a member (and its purchases' guards): to prove that a refused request changed nothing."""

    def read(member_id: str, transaction_ids: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        items = table.query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"MEMBER#{member_id}"}
        )["Items"]
        guards = [
            table.get_item(Key={"pk": f"PURCHASE#{tx}", "sk": "PURCHASE"}).get("Item")
            for tx in transaction_ids
        ]
        return sorted(items, key=lambda item: item["sk"]) + [guard for guard in guards if guard]

    return read
