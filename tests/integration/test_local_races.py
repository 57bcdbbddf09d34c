"""The local mode runs concurrent requests as Lambda does, in instances of their own, so they race
in DynamoDB Local as they would on AWS (issue #6).

Before, each function served one request at a time, so these races never happened locally; and
all functions ran in one process, sharing module state (Powertools keeps the current event in a
class attribute) that Lambda instances never share.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devtools.local import JSON, LocalApp, Response
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.dynamodb

PARTNER = "Dev partner:pos-races"


@pytest.fixture(scope="module")
def app(dynamodb_local: str, template: dict[str, Any]) -> Iterator[LocalApp]:
    # The instances are started from this process's environment, which points at DynamoDB Local.
    local = LocalApp(template, ROOT, instances=4)
    yield local
    local.close()


def send(app: LocalApp, method: str, path: str, who: str, body: Any = None, **headers: str) -> Response:
    sent = {"authorization": who, **headers}
    payload = b""
    if body is not None:
        sent["content-type"] = JSON
        payload = json.dumps(body).encode()
    return app.handle(method, path, list(sent.items()), payload)


def member_with_points(app: LocalApp, points_worth: str) -> str:
    member = f"m-{uuid.uuid4().hex[:12]}"
    profile = {"email": f"{member}@example.com", "name": "Race", "locale": "en"}
    assert send(app, "PUT", f"/members/{member}", PARTNER, profile).status == 201
    purchase = {
        "transactionId": f"tx-{uuid.uuid4().hex}",
        "amount": points_worth,
        "currency": "EUR",
        "occurredAt": "2026-11-20T10:00:00+01:00",
        "channel": "store",
    }
    assert send(app, "POST", f"/members/{member}/earn", PARTNER, purchase).status == 201
    return member


def test_concurrent_redemptions_race_and_the_balance_never_goes_below_zero(app: LocalApp) -> None:
    # Given a member with 100 points
    member = member_with_points(app, "100.00")
    me = f"Dev member:{member}"

    # When six redemptions of 30 points, each with its own key, arrive at once
    def redeem(_: int) -> Response:
        key = {"idempotency-key": uuid.uuid4().hex}
        return send(app, "POST", f"/members/{member}/redemptions", me, {"points": 30}, **key)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(redeem, range(6)))

    # Then exactly three succeed, the others are refused for the balance, and 10 points remain
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [201, 201, 201, 409, 409, 409], [answer.json_body() for answer in answers]
    refused = [answer.json_body()["error"]["code"] for answer in answers if answer.status == 409]
    assert set(refused) == {"insufficient_points"}
    assert send(app, "GET", f"/members/{member}/balance", me).json_body()["available"] == 10


def test_concurrent_requests_to_different_functions_each_see_their_own_caller(app: LocalApp) -> None:
    # Given members with points
    members = [member_with_points(app, "10.00") for _ in range(4)]

    # When each reads its balance, lots and ledger at the same time as the others
    calls = [
        (member, path)
        for member in members
        for path in (f"/members/{member}/balance", f"/members/{member}/lots", f"/members/{member}/ledger")
    ] * 3

    def read(call: tuple[str, str]) -> tuple[int, Any]:
        member, path = call
        answer = send(app, "GET", path, f"Dev member:{member}")
        return answer.status, answer.json_body()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(read, calls))

    # Then every request was answered for its own caller: no 403 from reading another's identity
    assert [status for status, _ in answers] == [200] * len(calls), answers


def test_another_member_is_still_refused_when_instances_are_warm(app: LocalApp) -> None:
    member = member_with_points(app, "10.00")
    assert send(app, "GET", f"/members/{member}/balance", f"Dev member:{member}").status == 200
    assert send(app, "GET", f"/members/{member}/balance", "Dev member:someone-else").status == 403
