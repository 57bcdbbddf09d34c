"""Every DynamoDB action a function's code performs is granted by its policy in template.yaml.

The handlers run in-process on DynamoDB Local; a hook on the store's client records each call
and the actions it needs in IAM terms (a transaction needs the action of each of its items), and
the test compares them with the function's policy. A Lambda denied an action answers 500, so a
path that only runs in rare cases (lots due but not yet expired, a lot not where the wallet
said) is driven here on purpose.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from devtools.identity import Identity
from devtools.template import serverless_functions
from loyalty.domain.earning import Purchase
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import default_rules
from loyalty.store import members, points
from loyalty.store.client import dynamodb
from tests.integration.conftest import Api, ApiResponse, match

TRANSACTION_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
TRANSACTION_ITEM_ACTIONS["ConditionCheck"] = "ConditionCheckItem"


class ActionRecorder:
    """The IAM actions the calls on the store's client need, since the last `clear()`."""

    def __init__(self) -> None:
        self.actions: set[str] = set()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "TransactWriteItems":
            for item in params.get("TransactItems", []):
                self.actions.update(TRANSACTION_ITEM_ACTIONS[kind] for kind in item)
        elif model.name == "TransactGetItems":
            self.actions.add("GetItem")
        else:
            self.actions.add(model.name)


@pytest.fixture(scope="module")
def recorder(dynamodb_local: str) -> Iterator[ActionRecorder]:
    hook = ActionRecorder()
    events = dynamodb().meta.events
    events.register("before-call.dynamodb", hook, unique_id="policy-recorder")
    yield hook
    events.unregister("before-call.dynamodb", unique_id="policy-recorder")


def granted(template: dict[str, Any], function: str) -> set[str]:
    statements = [
        statement
        for policy in serverless_functions(template)[function].get("Policies", [])
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
        if isinstance(statement, dict)
    ]
    actions: set[str] = set()
    for statement in statements:
        listed = statement.get("Action", [])
        actions.update(a.removeprefix("dynamodb:") for a in ([listed] if isinstance(listed, str) else listed))
    return actions


class Probe:
    """Calls a route like `Api.call` and checks the actions it performed against its policy."""

    def __init__(self, api: Api, template: dict[str, Any], recorder: ActionRecorder) -> None:
        self.api, self.template, self.recorder = api, template, recorder

    def __call__(
        self, method: str, path: str, call: Callable[[], ApiResponse] | None = None, **kwargs: Any
    ) -> ApiResponse:
        route, _ = match(self.api.routes, method, path)
        self.recorder.actions.clear()
        response = call() if call else self.api.call(method, path, **kwargs)
        assert response.status < 500, response.body
        missing = self.recorder.actions - granted(self.template, route.function)
        assert not missing, f"{route.function} performs {sorted(missing)} without the right to"
        return response


@pytest.fixture
def probe(api: Api, template: dict[str, Any], recorder: ActionRecorder) -> Probe:
    return Probe(api, template, recorder)


@pytest.fixture
def member() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


def test_every_route_performs_only_actions_its_function_may(api: Api, probe: Probe, member: str) -> None:
    me = Identity.member(member)
    base = f"/members/{member}"
    today = datetime.now(UTC).isoformat()
    probe("PUT", base, lambda: api.enrol(member))
    probe("PUT", base, lambda: api.enrol(member, name="Again"))
    probe("GET", base, identity=me)
    probe("POST", f"{base}/earn", lambda: api.earn(member, transactionId=f"{member}-1"))
    probe("POST", f"{base}/earn", lambda: api.earn(member, transactionId=f"{member}-2", occurredAt=today))
    probe("POST", f"{base}/earn", lambda: api.earn(member, transactionId=f"{member}-1"))
    for points_, key in ((150, "k"), (150, "k"), (50, "k2"), (5, "k")):
        probe("POST", f"{base}/redemptions", lambda p=points_, k=key: api.redeem(member, p, key=k))
    probe("GET", f"{base}/balance", identity=me)
    probe("GET", f"{base}/lots", identity=me)
    first = probe("GET", f"{base}/ledger", identity=me, query={"limit": "1"})
    assert first.body["nextCursor"]
    probe("GET", f"{base}/ledger", identity=me, query={"limit": "1", "cursor": first.body["nextCursor"]})


def test_an_earn_while_lots_are_due_but_not_yet_expired_may_read_the_pages(
    api: Api, probe: Probe, recorder: ActionRecorder, member: str
) -> None:
    # Given a member whose lot expired yesterday and that no expiry run has expired yet
    long_ago = datetime.now(UTC) - timedelta(days=733)
    partner = Actor("partner", "pos-test")
    profile = {"email": "p@example.com", "name": None, "locale": "en", "emailOptIn": False}
    members.enrol_or_update(member, profile, actor=partner, now=long_ago)
    purchase = Purchase(Decimal("20"), "EUR", long_ago, "store")
    points.earn(member, f"{member}-old", purchase, actor=partner, rules=default_rules(), now=long_ago)

    # When a partner reports a purchase now, Then the earn's extra read is granted
    response = probe(
        "POST", f"/members/{member}/earn", lambda: api.earn(member, transactionId=f"{member}-new", amount="5")
    )
    assert response.body["balance"] == 5
    assert "Query" in recorder.actions


def test_an_earn_that_finds_the_days_lot_elsewhere_than_the_wallet_said_may_read_its_page(
    api: Api, probe: Probe, recorder: ActionRecorder, table: Any, member: str
) -> None:
    # Given today's lot exists, but the wallet no longer remembers it as the last one
    assert api.enrol(member).status == 201
    today = datetime.now(UTC).isoformat()
    assert api.earn(member, transactionId=f"{member}-a", occurredAt=today).status == 201
    table.update_item(Key={"pk": f"MEMBER#{member}", "sk": "WALLET"}, UpdateExpression="REMOVE lastLot")

    # When another purchase is reported today, Then the page read is granted and the lot grows
    response = probe(
        "POST",
        f"/members/{member}/earn",
        lambda: api.earn(member, transactionId=f"{member}-b", occurredAt=today),
    )
    assert response.body["balance"] == 200
    assert "GetItem" in recorder.actions
