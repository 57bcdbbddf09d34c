"""Many processes move points at once, on DynamoDB Local (the real engine): one member's
redemptions, then every kind of movement across members (earns, redemptions, transfers,
returns, claim decisions and earns of claimed purchases).

Whatever the interleaving: balances never go negative and always equal the sum of the lots and
the sum of the ledger, owed points are accounted for by the ledger, every point is accounted
for by exactly one success, a purchase is credited once and a claim decided once.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.identity import Identity
from tests.integration.conftest import ROOT, Api

pytestmark = pytest.mark.slow

WORKERS = 6
REDEMPTIONS_PER_WORKER = 12
PAGE = "WALLET#LOTS#"


def _redeem_worker(environment: dict[str, str], member_id: str, amounts: list[int]) -> list[tuple[int, Any]]:
    """Runs in a fresh interpreter: the redeem Lambda handler, called back to back."""
    os.environ.update(environment)
    from devtools.lambda_runtime import LambdaContext, http_event, load_handler

    handler = load_handler("functions/redeem", "app.lambda_handler", root=Path(ROOT))
    results = []
    for points in amounts:
        event = http_event(
            "POST",
            f"/members/{member_id}/redemptions",
            route_key="POST /members/{memberId}/redemptions",
            path_parameters={"memberId": member_id},
            headers={"content-type": "application/json", "idempotency-key": uuid.uuid4().hex},
            body={"points": points},
            identity=Identity.member(member_id),
        )
        response = handler(event, LambdaContext("RedeemFunction"))
        results.append((int(response["statusCode"]), response["body"]))
    return results


def _environment() -> dict[str, str]:
    names = ("AWS_ENDPOINT_URL_DYNAMODB", "TABLE_NAME", "RULES_SOURCE", "AWS_ACCESS_KEY_ID")
    names += ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "POWERTOOLS_LOG_LEVEL")
    return {name: os.environ[name] for name in names if name in os.environ}


def _ledger_sum(table: Any, member_id: str) -> int:
    items = table.query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ledger)",
        ExpressionAttributeValues={":pk": f"MEMBER#{member_id}", ":ledger": "LEDGER#"},
    )["Items"]
    return sum(int(item["points"]) for item in items)


def _remaining(page_item: dict[str, Any]) -> int:
    """Points left in a stored lot page: the `r` (remaining) of each lot of its `lots` map."""
    return sum(int(lot["r"]) for lot in page_item["lots"].values())


def _directory_entry(page_item: dict[str, Any]) -> str:
    """What the wallet's directory must say of a stored page: `<points>@<day>`, its points and
    the day of month of its soonest expiry (lot ids begin with their expiry date, YYYYMMDD)."""
    first_day = min(int(lot_id[6:8]) for lot_id in page_item["lots"])
    return f"{_remaining(page_item)}@{first_day}"


def _directory_agrees(wallet: dict[str, Any], pages: dict[str, dict[str, Any] | None]) -> bool:
    """The wallet's page directory lists exactly the stored pages, each with what it holds."""
    listed = {key: str(entry) for key, entry in wallet["pages"].items()}
    stored = {key: _directory_entry(page) for key, page in pages.items() if page is not None}
    return listed == stored


def _stored_lots_sum(table: Any, member_id: str) -> tuple[int, int]:
    """(sum of `remaining` over every stored lot, the wallet's `available` counter); the wallet's
    page directory must list exactly the stored pages and their points."""
    items = table.query(
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": f"MEMBER#{member_id}"},
        ConsistentRead=True,
    )["Items"]
    pages = {item["sk"].removeprefix(PAGE): item for item in items if item["sk"].startswith(PAGE)}
    wallet = next(item for item in items if item["sk"] == "WALLET")
    assert _directory_agrees(wallet, pages), (wallet["pages"], pages)
    return sum(_remaining(page) for page in pages.values()), int(wallet["available"])


class Watcher(threading.Thread):
    """Samples the member's points while the redemptions run, each sample one serialisable read
    (TransactGetItems of the wallet and the pages its directory lists), and keeps what it saw.
    The table resource's client speaks plain Python values (boto3's high-level interface)."""

    def __init__(self, table: Any, member_id: str) -> None:
        super().__init__(daemon=True)
        self.table, self.member_id = table, member_id
        self.client, self.table_name = table.meta.client, table.name
        self.samples: list[tuple[int, int, bool]] = []  # (wallet counter, sum of its lots, directory agrees)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            sample = self._sample()
            if sample is not None:
                self.samples.append(sample)

    def _sample(self) -> tuple[int, int, bool] | None:
        pk = f"MEMBER#{self.member_id}"
        wallet = self.table.get_item(Key={"pk": pk, "sk": "WALLET"}, ConsistentRead=True)["Item"]
        directory = list(wallet["pages"])
        keys = [{"pk": pk, "sk": "WALLET"}] + [{"pk": pk, "sk": f"{PAGE}{key}"} for key in directory]
        try:
            read = self.client.transact_get_items(
                TransactItems=[{"Get": {"TableName": self.table_name, "Key": key}} for key in keys]
            )["Responses"]
        except self.client.exceptions.TransactionCanceledException:
            return None  # a write was in flight: sample again
        items = [response.get("Item") for response in read]
        if items[0]["version"] != wallet["version"]:
            return None  # the directory moved between the two reads: sample again
        pages = dict(zip(directory, items[1:], strict=True))
        lots = sum(_remaining(page) for page in pages.values() if page)
        return int(items[0]["available"]), lots, _directory_agrees(items[0], pages)


def test_concurrent_redemptions_never_overspend_and_keep_every_total_equal(
    api: Api, enrolled: str, table: Any
) -> None:
    # Given a member with 30 lots worth 1,500 points, spread over many expiry dates
    start = datetime.now(UTC) - timedelta(days=300)
    for day in range(30):
        occurred = (start + timedelta(days=day * 9)).isoformat()
        assert api.earn(enrolled, amount="50", occurredAt=occurred).status == 201
    initial = api.balance(enrolled).body["available"]
    assert initial == 1500

    # When 6 processes each try 12 redemptions at once, asking for 2,160 points in all
    amounts = [
        [10 + (worker * 7 + n * 3) % 41 for n in range(REDEMPTIONS_PER_WORKER)] for worker in range(WORKERS)
    ]
    watcher = Watcher(table, enrolled)
    watcher.start()
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        batches = pool.starmap(_redeem_worker, [(_environment(), enrolled, batch) for batch in amounts])
    watcher.done.set()
    watcher.join()
    outcomes = [
        (status, body, points)
        for batch, asked in zip(batches, amounts, strict=True)
        for (status, body), points in zip(batch, asked, strict=True)
    ]

    # Then every answer is a success or a clean conflict, never anything else
    statuses = {status for status, _, _ in outcomes}
    assert statuses <= {201, 409}, statuses
    redeemed = sum(points for status, _, points in outcomes if status == 201)
    assert 201 in statuses and redeemed <= initial
    # And the balance is exactly what the successes left, equal to the lots and to the ledger
    final = api.balance(enrolled).body["available"]
    assert final == initial - redeemed >= 0
    lots_sum, counter = _stored_lots_sum(table, enrolled)
    assert lots_sum == counter == final
    assert _ledger_sum(table, enrolled) == final
    # And at every instant sampled meanwhile, the balance was never negative and equalled its lots
    assert len({counter for counter, _, _ in watcher.samples}) > 2, "the watcher saw the balance move"
    assert all(counter == lots >= 0 for counter, lots, _ in watcher.samples)
    assert all(agrees for _, _, agrees in watcher.samples), "the page directory disagreed with its pages"


def test_concurrent_redemptions_of_the_last_points_let_exactly_one_succeed(api: Api, enrolled: str) -> None:
    # Given a member with exactly 100 points
    assert api.earn(enrolled, amount="100").status == 201

    # When 6 processes each try to take those 100 points at the same moment
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        batches = pool.starmap(_redeem_worker, [(_environment(), enrolled, [100]) for _ in range(WORKERS)])
    statuses = sorted(status for batch in batches for status, _ in batch)

    # Then exactly one succeeds and the others are refused with a 409
    assert statuses == [201] + [409] * (WORKERS - 1)
    assert api.balance(enrolled).body["available"] == 0


# ---- every kind of movement, across members, from many processes


def _api_worker(
    environment: dict[str, str], calls: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], int, Any]]:
    """Runs in a fresh interpreter: each call routed by template.yaml to its handler, as API
    Gateway would; identities travel as (role, subject) and are minted here."""
    os.environ.update(environment)
    from devtools.template import http_routes, load_template
    from tests.integration.conftest import Api as WorkerApi

    api = WorkerApi(http_routes(load_template(Path(ROOT) / "template.yaml")))
    results = []
    for call in calls:
        role, subject = call["as"]
        response = api.call(
            call["method"],
            call["path"],
            identity=Identity.for_role(role, subject),
            body=call.get("body"),
            headers=call.get("headers"),
        )
        results.append((call, response.status, response.body))
    return results


def _mixed_calls(
    rng: Any, members: list[str], purchases: list[str], claims: list[str]
) -> list[dict[str, Any]]:
    """A worker's share: earns, redemptions, transfers, returns, decisions and earns of claimed
    purchases, in a seeded random order."""
    calls: list[dict[str, Any]] = []
    for _ in range(14):
        member = rng.choice(members)
        kind = rng.choice(["earn", "redeem", "transfer", "transfer", "reverse", "decide", "earn-claimed"])
        key = {"idempotency-key": uuid.uuid4().hex}
        if kind == "earn":
            body = {
                "transactionId": f"tx-{uuid.uuid4().hex}",
                "amount": f"{rng.randint(20, 400)}.00",
                "currency": "EUR",
                "occurredAt": (datetime.now(UTC) - timedelta(days=rng.randint(0, 200))).isoformat(),
                "channel": "store",
            }
            calls.append(
                {
                    "method": "POST",
                    "path": f"/members/{member}/earn",
                    "as": ("partner", "pos-mix"),
                    "body": body,
                }
            )
        elif kind == "redeem":
            calls.append(
                {
                    "method": "POST",
                    "path": f"/members/{member}/redemptions",
                    "as": ("member", member),
                    "body": {"points": rng.randint(1, 150)},
                    "headers": key,
                }
            )
        elif kind == "transfer":
            other = rng.choice([m for m in members if m != member])
            calls.append(
                {
                    "method": "POST",
                    "path": f"/members/{member}/transfers",
                    "as": ("member", member),
                    "body": {"toMemberId": other, "points": rng.randint(100, 300)},
                    "headers": key,
                }
            )
        elif kind == "reverse":
            owner, tx = rng.choice(purchases).split("|")
            body = {"amount": f"{rng.randint(5, 60)}.00"} if rng.random() < 0.7 else {}
            calls.append(
                {
                    "method": "POST",
                    "path": f"/members/{owner}/earn/{tx}/reversal",
                    "as": ("partner", "pos-mix"),
                    "body": body,
                    "headers": key,
                }
            )
        elif kind == "decide":
            decision = rng.choice(["approve", "reject"])
            calls.append(
                {
                    "method": "POST",
                    "path": f"/claims/{rng.choice(claims).split('|')[0]}/decision",
                    "as": ("support", f"agent-{rng.randint(1, 3)}"),
                    "body": {"decision": decision, "reason": "checked"},
                }
            )
        else:
            _claim_id, owner, tx, amount, occurred = rng.choice(claims).split("|")
            body = {
                "transactionId": tx,
                "amount": amount,
                "currency": "EUR",
                "occurredAt": occurred,
                "channel": "store",
            }
            calls.append(
                {
                    "method": "POST",
                    "path": f"/members/{owner}/earn",
                    "as": ("partner", "pos-mix"),
                    "body": body,
                }
            )
    return calls


def test_mixed_movements_across_members_from_many_processes_conserve_every_point(
    api: Api, table: Any
) -> None:
    # Given four members with points, purchases that can be returned, and claims waiting for support
    rng = random.Random(7)
    members = [f"mix-{uuid.uuid4().hex[:8]}-{index}" for index in range(4)]
    purchases: list[str] = []
    claims: list[str] = []
    for member in members:
        assert api.enrol(member).status == 201
        for _ in range(2):
            tx = f"tx-{uuid.uuid4().hex}"
            assert api.earn(member, transactionId=tx, amount="300.00").status == 201
            purchases.append(f"{member}|{tx}")
        tx, occurred = f"tx-{uuid.uuid4().hex}", (datetime.now(UTC) - timedelta(days=20)).isoformat()
        filed = api.call(
            "POST",
            f"/members/{member}/claims",
            identity=Identity.member(member),
            body={"transactionId": tx, "occurredAt": occurred, "amount": "120.00", "currency": "EUR"},
        )
        assert filed.status == 201 and filed.body["status"] == "pending", filed.body
        claims.append(f"{filed.body['claimId']}|{member}|{tx}|120.00|{occurred}")

    # When 6 processes send their mixed calls at once
    shares = [_mixed_calls(random.Random(rng.random()), members, purchases, claims) for _ in range(WORKERS)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        batches = pool.starmap(_api_worker, [(_environment(), share) for share in shares])
    results = [result for batch in batches for result in batch]

    # Then every answer is a success or a clean refusal
    statuses = Counter(status for _, status, _ in results)
    assert set(statuses) <= {200, 201, 409, 422}, [(c["path"], s, b) for c, s, b in results if s >= 500]
    assert statuses[201] > 20

    # And each member's balance equals its lots and its ledger, never negative
    ledgers = {}
    for member in members:
        items = table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": f"MEMBER#{member}"},
            ConsistentRead=True,
        )["Items"]
        ledgers[member] = [item for item in items if item["sk"].startswith("LEDGER#")]
        lots_sum, counter = _stored_lots_sum(table, member)
        balance = api.balance(member).body
        assert (
            lots_sum == counter == balance["available"] == sum(int(e["points"]) for e in ledgers[member]) >= 0
        )
    entries = [entry for ledger in ledgers.values() for entry in ledger]
    owed = sum(int(api.balance(member).body["owed"]) for member in members)
    assert owed == sum(
        int(e["details"].get("owedAdded", 0)) - int(e["details"].get("owedSettled", 0)) for e in entries
    )

    # And every success is in a ledger exactly once
    ids = Counter(str(entry["entryId"]) for entry in entries)
    ids.update(str(entry["details"]["transferId"]) for entry in entries if entry["type"] == "transfer-out")
    for call, status, body in results:
        if status != 201 or not isinstance(body, dict):
            continue
        movement = (
            body.get("entryId")
            or body.get("redemptionId")
            or body.get("transferId")
            or body.get("reversalId")
        )
        assert movement is None or ids[movement] >= 1, (call["path"], body)

    # And every purchase is credited at most once, by earn or by claim; a claim is decided once
    credited = Counter(
        str(e["details"]["transactionId"]) for e in entries if e["type"] in ("earn", "claim-credit")
    )
    assert max(credited.values()) == 1
    for claim in claims:
        claim_id = claim.split("|")[0]
        shown = api.call("GET", f"/claims/{claim_id}", identity=Identity.support("agent-check")).body
        closing = [
            event for event in shown["history"] if event["action"] in ("approved", "rejected", "matched")
        ]
        assert len(closing) == 1, shown["history"]
    # And no purchase gave back more than it earned
    for purchase in purchases:
        _owner, tx = purchase.split("|")
        guard = table.get_item(Key={"pk": f"PURCHASE#{tx}", "sk": "PURCHASE"}, ConsistentRead=True)["Item"]
        assert int(guard.get("reversedPoints", 0)) <= int(guard["points"]) == 300
