"""DynamoDB calls per operation, counted on the handlers' own client (budget: earn ≤ 2, redeem ≤ 2,
balance ≤ 1, idempotent replay ≤ 2), with the request units DynamoDB reports where it does."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.environment import ROOT
from devtools.identity import Identity
from devtools.lambda_runtime import LambdaContext, http_event, load_handler
from loyalty.store.client import dynamodb

BUDGET = {
    "enrol": 1,
    "earn": 2,
    "earn (replay)": 2,
    "redeem": 2,
    "redeem (replay)": 2,
    "balance": 1,
    "lots": 1,
}
PARTNER = Identity.partner("bench-pos")


class CallCounter:
    """Counts the DynamoDB calls the handlers make, and the capacity units DynamoDB reports for them."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.units = 0.0
        events = dynamodb().meta.events
        events.register("provide-client-params.dynamodb", self._ask_for_capacity)
        events.register("before-call.dynamodb", self._count)
        events.register("after-call.dynamodb", self._add_capacity)

    def _ask_for_capacity(self, params: dict[str, Any], **_: Any) -> None:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def _add_capacity(self, parsed: dict[str, Any], **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity") or []
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            self.units += float(entry.get("CapacityUnits", 0))

    def measure(self, action: Callable[[], dict[str, Any]]) -> tuple[int, str, float, int]:
        self.calls.clear()
        self.units = 0.0
        response = action()
        detail = "+".join(f"{n} {op}" for op, n in self.calls.items())
        return sum(self.calls.values()), detail, self.units, response["statusCode"]


def _call(function: str, route: str, member_id: str, **kwargs: Any) -> dict[str, Any]:
    """Invoke a function's handler with an HTTP API event for `route` ("GET /members/{memberId}/…")."""
    method, path_template = route.split(" ", 1)
    handler = load_handler(f"functions/{function}", "app.lambda_handler", root=ROOT)
    path = path_template.replace("{memberId}", member_id)
    event = http_event(method, path, route_key=route, path_parameters={"memberId": member_id}, **kwargs)
    return handler(event, LambdaContext(function))


def report(endpoint: str) -> None:
    counter = CallCounter()
    member = f"bench-{uuid.uuid4().hex[:8]}"
    as_member = Identity.member(member)
    json_headers = {"content-type": "application/json"}
    purchase = {
        "transactionId": "bench-tx-0",
        "amount": "25.00",
        "currency": "EUR",
        "occurredAt": datetime.now(UTC).isoformat(),
        "channel": "store",
    }

    def enrol() -> dict[str, Any]:
        body = {"email": "b@example.com"}
        return _call(
            "members", "PUT /members/{memberId}", member, headers=json_headers, body=body, identity=PARTNER
        )

    def earn(body: dict[str, Any] = purchase) -> dict[str, Any]:
        route = "POST /members/{memberId}/earn"
        return _call("earn", route, member, headers=json_headers, body=body, identity=PARTNER)

    def redeem() -> dict[str, Any]:
        headers = {**json_headers, "idempotency-key": "bench-key"}
        route = "POST /members/{memberId}/redemptions"
        return _call("redeem", route, member, headers=headers, body={"points": 30}, identity=as_member)

    def balance() -> dict[str, Any]:
        return _call("balance", "GET /members/{memberId}/balance", member, identity=as_member)

    def lots() -> dict[str, Any]:
        return _call("balance", "GET /members/{memberId}/lots", member, identity=as_member)

    rows = [("enrol", *counter.measure(enrol))]
    # A daily shopper: 400 purchases on 400 days, then the measured ones.
    start = datetime.now(UTC) - timedelta(days=400)
    for day in range(400):
        earn(
            {
                **purchase,
                "transactionId": f"bench-seed-{day}",
                "occurredAt": (start + timedelta(days=day)).isoformat(),
            }
        )
    rows.append(("earn", *counter.measure(earn)))
    rows.append(("earn (replay)", *counter.measure(earn)))
    rows.append(("redeem", *counter.measure(redeem)))
    rows.append(("redeem (replay)", *counter.measure(redeem)))
    rows.append(("balance", *counter.measure(balance)))
    rows.append(("lots", *counter.measure(lots)))

    print("\nDynamoDB calls per operation (member holding ~400 lots on ~14 pages, DynamoDB Local)")
    print(
        "(capacity units as DynamoDB reports them: reads for reads, writes for writes, 2x in a transaction)"
    )
    print(f"{'operation':<18}{'calls':>6}{'budget':>8}{'units':>7}  {'status':>6}  calls made")
    for name, count, detail, units, status in rows:
        verdict = "ok" if count <= BUDGET[name] else "OVER"
        print(f"{name:<18}{count:>6}{BUDGET[name]:>8}{units:>7.1f}  {status:>6}  {detail}  {verdict}")
