"""A business card at full scale: what it stores after two years, and what its operations cost.

`python -m bench.business_card [--per-day N]` (`make bench-card`): a card making N purchases a
day (default 30) with 128-character references for 729 days, seeded through the store day by
day with `now` = the purchase instant, exactly like tests/integration/test_engine_limits.py
(`business_card()`), on two policies: the default rules (rolling 24 months) and fixedDate
31 December of the next year. Each policy runs in a process of its own, both side by side on
one DynamoDB Local. The parent prints:

* what seeding left: purchases credited, live lots, lot pages (the largest), the wallet item
  and the largest ledger entry, sized by AWS's rules (bench/billing.py, on the low-level items);
* then, priced by bench/recorder.py like bench/calls.py (calls, RRU, WRU by AWS's rules): a
  top-up of the last day's lot, a redemption of 100 points, its replay, a balance read (through
  the balance handler, its clock set to the simulated instant), a redemption of everything left
  in one request (with the size of its ledger entry and request record), and one more earn.

Benchmarks print, they never assert.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from bench.billing import item_size
from bench.children import hand_back, run_side_by_side
from bench.environment import ROOT, local_table
from bench.recorder import Recorder
from devtools.identity import Identity
from devtools.lambda_runtime import LambdaContext, http_event, load_handler
from loyalty.domain.earning import Purchase
from loyalty.domain.errors import DomainError
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import ProgramRules, parse_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.store import keys, members, points
from loyalty.store.client import dynamodb
from loyalty.store.wallet import read_wallet

KB = 1024
# The same card as tests/integration/test_engine_limits.py.
PARTNER = Actor("partner", "pos-business")
START = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
DAYS = 729  # every day of 2025 and 2026 but the last: all points still live at the end
NOW = START + timedelta(days=DAYS, hours=1)  # when the card redeems (31 December 2026)
REFERENCE_LENGTH = 128
AMOUNT = Decimal("17.80")
REDEEM_POINTS = 100
POLICIES: dict[str, tuple[str, dict[str, Any]]] = {
    "rolling": (
        "default rules, rolling 24 months",
        {"policy": "rolling", "months": 24, "endOfMonth": False},
    ),
    "fixed-date": (
        "fixedDate, 31 December of the next year",
        {"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1},
    ),
}


def rules_document(expiry: dict[str, Any]) -> dict[str, Any]:
    """The default rules with another expiry policy (test_engine_limits.rules_with)."""
    document = json.loads(default_rules_text())
    return {**document, "version": f"card-{expiry['policy']}", "expiry": expiry}


def reference(member_id: str, serial: int) -> str:
    """A 128-character purchase reference, unique per serial."""
    return (f"{member_id}-" + "R" * REFERENCE_LENGTH)[: REFERENCE_LENGTH - 10] + f"{serial:010d}"


def purchase_step(per_day: int) -> timedelta:
    """7 minutes between purchases, like the test; closer when N purchases would leave the local
    day (from 09:00 UTC, 13 hours stay within the day in Paris)."""
    return min(timedelta(minutes=7), timedelta(hours=13) / (per_day + 1))


# ---- the parent: both policies side by side, then a table each


def report(endpoint: str, per_day: int) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        runs = {}
        for policy, (_, expiry) in POLICIES.items():
            # The balance handler reads the rules from RULES_SOURCE: give it the same document.
            rules_file = Path(folder) / f"{policy}.json"
            rules_file.write_text(json.dumps(rules_document(expiry)), encoding="utf-8")
            environment = {
                **os.environ,
                "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
                "RULES_SOURCE": f"file:{rules_file}",
            }
            runs[policy] = (
                ["-m", "bench.business_card", "--per-day", str(per_day), "--child", policy],
                environment,
            )
        children = run_side_by_side(runs)
    elapsed = time.perf_counter() - started

    print(
        f"\nA business card: {_plural(per_day, 'purchase')} a day of {AMOUNT} EUR for {DAYS} days "
        f"({START:%Y-%m-%d} to {START + timedelta(days=DAYS - 1):%Y-%m-%d}), {REFERENCE_LENGTH}-character "
        "references; seeded through the store with now = each purchase's instant (DynamoDB Local)"
    )
    print(
        "  Sizes and units by AWS's rules (bench/billing.py): RRU per 4 KB read (half when eventually"
        " consistent), WRU per 1 KB written, twice in a transaction, GSI writes included (column GSI)."
    )
    print(
        f"  Measured at {NOW:%Y-%m-%d %H:%M} UTC through the store (earn, redeem) and the balance"
        " handler (its clock set to that instant); the top-up is on the last seeded day."
    )
    for policy, (title, _) in POLICIES.items():
        child = children[policy]
        result = child.result()
        print(f"\n{policy}: {title}")
        if result is None:
            child.print_failure()
            continue
        _print_policy(result)
    print(f"\n(both policies seeded and measured side by side in {elapsed:.0f} s)")


def _print_policy(result: dict[str, Any]) -> None:
    seed = result["seed"]
    print(
        f"  seeding: {seed['seconds']:.0f} s; {seed['credited']:,} of {seed['purchases']:,} purchases"
        f" credited ({seed['points']:,} points); {seed['live_lots']} live lots in {seed['pages']} pages"
        f" (largest {_bytes(seed['largest_page'])}); wallet {_bytes(seed['wallet'])};"
        f" largest ledger entry {_bytes(seed['largest_ledger_entry'])}"
    )
    print(
        f"  {'operation':<20}{'calls':>5}{'RRU':>7}{'WRU':>6}{'GSI':>5}{'tx items':>9}{'largest':>10}"
        f"  {'calls made':<38}result"
    )
    notes: list[str] = []
    for data in result["rows"]:
        row = Row(**data)
        items = "+".join(map(str, row.transaction_items)) or "-"
        print(
            f"  {row.operation:<20}{row.calls:>5}{row.rru:>7.1f}{row.wru:>6}{row.gsi_wru:>5}{items:>9}"
            f"{_bytes(row.largest_written or None):>10}  {row.detail:<38}{row.outcome}"
        )
        notes += [f"{row.operation}: {note}" for note in row.notes if f"{row.operation}: {note}" not in notes]
    everything = result["everything"]
    print(
        f"  redeem everything: ledger entry {_bytes(everything['ledger_entry'])}, request record"
        f" {_bytes(everything['request_record'])} (its copy WALLET#LAST"
        f" {_bytes(everything['last_request'])});"
        f" {everything['pages_left']} lot pages left; wallet after all {_bytes(result['wallet_after'])}"
    )
    for note in notes:
        print(f"      note: {note}")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _bytes(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size:,} B" if size < KB else f"{size / KB:.1f} KB"


# ---- a child: one policy, seeded and measured in this process


@dataclass
class Row:
    operation: str
    outcome: str
    calls: int
    detail: str
    rru: float
    wru: int
    gsi_wru: int
    transaction_items: list[int]
    largest_written: int
    notes: list[str] = field(default_factory=list)


def _seed(member_id: str, rules: ProgramRules, per_day: int) -> dict[str, Any]:
    """test_engine_limits.business_card(): every purchase on its own day's clock."""
    members.enrol_or_update(
        member_id,
        {"email": "card@example.com", "name": None, "locale": "en", "emailOptIn": False},
        actor=PARTNER,
        now=START - timedelta(days=1),
    )
    step = purchase_step(per_day)
    started = time.perf_counter()
    credited = earned = 0
    for day in range(DAYS):
        for number in range(per_day):
            at = START + timedelta(days=day) + number * step
            purchase = Purchase(AMOUNT, "EUR", at, "store")
            serial = day * 100_000 + number
            result = points.earn(
                member_id, reference(member_id, serial), purchase, actor=PARTNER, rules=rules, now=at
            )
            credited += not result.replayed
            earned += result.points
    return {
        "seconds": time.perf_counter() - started,
        "purchases": DAYS * per_day,
        "credited": credited,
        "points": earned,
    }


def _all_items(reader: Any, member_id: str, first: str, last: str) -> list[dict[str, Any]]:
    """The member's low-level items with a sort key in [first, last], every page of the Query."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": os.environ["TABLE_NAME"],
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.member_pk(member_id)},
            ":first": {"S": first},
            ":last": {"S": last},
        },
        "ConsistentRead": True,
    }
    while True:
        response = reader.query(**request)
        items += response["Items"]
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _item(reader: Any, pk: str, sk: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = reader.get_item(
        TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    ).get("Item")
    return item


def _newest_ledger_entry(reader: Any, member_id: str) -> dict[str, Any] | None:
    items = reader.query(
        TableName=os.environ["TABLE_NAME"],
        KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
        ExpressionAttributeValues={
            ":pk": {"S": keys.member_pk(member_id)},
            ":first": {"S": keys.LEDGER_RANGE.first},
            ":last": {"S": keys.LEDGER_RANGE.last},
        },
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
    )["Items"]
    return items[0] if items else None


def _pages(reader: Any, member_id: str) -> list[dict[str, Any]]:
    return _all_items(reader, member_id, keys.LOT_PAGE_PREFIX, keys.LOT_PAGE_PREFIX + keys.END)


def _measure_policy(policy: str, per_day: int) -> dict[str, Any]:
    title, expiry = POLICIES[policy]
    rules = parse_rules(rules_document(expiry))
    member_id = f"card-{policy}-{uuid.uuid4().hex[:8]}"
    client = dynamodb()
    recorder = Recorder(client, os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    reader = boto3.client("dynamodb")  # not hooked: its calls are not counted

    # Items in each TransactWriteItems of a measured operation (the recorder does not keep them).
    transactions: list[int] | None = None

    def count_items(params: dict[str, Any], **_: Any) -> None:
        if transactions is not None:
            transactions.append(len(params.get("TransactItems", [])))

    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", count_items)

    seed = _seed(member_id, rules, per_day)
    snapshot = read_wallet(member_id)
    lots_before = {lot.lot_id for lot in snapshot.lots()} if snapshot else set()
    pages = _pages(reader, member_id)
    ledger = _all_items(reader, member_id, keys.LEDGER_RANGE.first, keys.LEDGER_RANGE.last)
    seed |= {
        "live_lots": len(snapshot.lots()) if snapshot else 0,
        "pages": len(pages),
        "largest_page": max((item_size(page) for page in pages), default=None),
        "wallet": item_size(_item(reader, keys.member_pk(member_id), keys.wallet_sk())),
        "largest_ledger_entry": max((item_size(entry) for entry in ledger), default=None),
    }

    as_member = Actor("member", member_id)
    balance_handler = load_handler("functions/balance", "app.lambda_handler", root=ROOT)

    def earn(serial: int, at: datetime) -> str:
        purchase = Purchase(AMOUNT, "EUR", at, "store")
        result = points.earn(
            member_id, reference(member_id, serial), purchase, actor=PARTNER, rules=rules, now=at
        )
        kind = "top-up of" if result.lot_id in lots_before else "new lot"
        return f"+{result.points}, {kind} {result.lot_id}; balance {result.balance:,}"

    def redeem(amount: Callable[[], int], key: str) -> str:
        result = points.redeem(
            member_id, amount(), idempotency_key=key, actor=as_member, rules=rules, now=NOW
        )
        replay = " (replayed)" if result.replayed else ""
        taken = _plural(len(result.lots), "lot")
        return f"-{result.points:,} from {taken}{replay}; balance {result.balance:,}"

    def balance() -> str:
        route = "GET /members/{memberId}/balance"
        event = http_event(
            "GET",
            f"/members/{member_id}/balance",
            route_key=route,
            path_parameters={"memberId": member_id},
            identity=Identity.member(member_id),
        )
        with mock.patch("loyalty.http.routes.balance.utcnow", return_value=NOW):
            response = balance_handler(event, LambdaContext("balance"))
        if response["statusCode"] != 200:
            return f"HTTP {response['statusCode']}: {response.get('body')}"
        body = json.loads(response["body"])
        return f"HTTP 200 (handler); available {body['available']:,}"

    remaining: dict[str, int] = {}

    def left() -> int:
        return remaining["balance"]

    top_up_at = START + timedelta(days=DAYS - 1) + per_day * purchase_step(per_day)
    operations: list[tuple[str, Callable[[], str]]] = [
        ("earn (top-up)", lambda: earn(DAYS * 100_000 + 1, top_up_at)),
        (f"redeem {REDEEM_POINTS}", lambda: redeem(lambda: REDEEM_POINTS, "k-100")),
        (f"redeem {REDEEM_POINTS} (replay)", lambda: redeem(lambda: REDEEM_POINTS, "k-100")),
        ("balance", balance),
        ("redeem everything", lambda: redeem(left, "k-all")),
        ("earn after", lambda: earn(DAYS * 100_000 + 2, NOW)),
    ]
    rows = []
    wallet_after = None
    everything: dict[str, Any] = {}
    for name, action in operations:
        if name == "redeem everything":
            state = read_wallet(member_id)  # not measured: what is left to redeem
            remaining["balance"] = state.wallet.available if state else 0
        transactions = []
        with recorder.recording() as measured:
            try:
                outcome = action()
            except DomainError as error:
                outcome = f"refused: {type(error).__name__} ({error.code}): {error}"
        rows.append(
            Row(
                operation=name,
                outcome=outcome,
                calls=measured.call_count,
                detail=measured.detail,
                rru=measured.rru,
                wru=measured.wru + measured.gsi_wru,
                gsi_wru=measured.gsi_wru,
                transaction_items=transactions,
                largest_written=measured.largest_written,
                notes=list(measured.notes),
            )
        )
        transactions = None
        wallet_after = measured.wallet_size if measured.wallet_size is not None else wallet_after
        if name == "redeem everything":
            pk = keys.member_pk(member_id)
            everything = {
                "ledger_entry": item_size(_newest_ledger_entry(reader, member_id)),
                "request_record": item_size(_item(reader, pk, keys.request_sk(points.REDEEM, "k-all"))),
                "last_request": item_size(_item(reader, pk, keys.last_request_sk())),
                "pages_left": len(_pages(reader, member_id)),
            }
    return {
        "member": member_id,
        "title": title,
        "seed": seed,
        "rows": [asdict(row) for row in rows],
        "everything": everything,
        "wallet_after": wallet_after,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.business_card", description="A business card at full scale."
    )
    parser.add_argument("--per-day", type=int, default=30, help="purchases a day (default 30)")
    parser.add_argument("--child", choices=sorted(POLICIES), help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.per_day < 1:
        parser.error("--per-day must be at least 1")
    if arguments.child:
        result = _measure_policy(arguments.child, arguments.per_day)
        hand_back(result)
        return
    with local_table() as endpoint:
        report(endpoint, arguments.per_day)


if __name__ == "__main__":
    main()
