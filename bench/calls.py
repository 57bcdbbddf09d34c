"""DynamoDB calls and request units per operation, as AWS would bill them, for three members.

Each member runs in a process of its own (`python -m bench.calls <member>`): its own program
rules (RULES_SOURCE), its own handlers' client and caches, and the three run side by side
(different partitions, different purchase ids: they share nothing). The parent prints the table.

Budgets (from the issue): earn ≤ 2 calls and ≤ 8 / 10 / 16 WRU for members a / b / c; a
redemption of 100 points ≤ 2 calls, ≤ 4 RRU and ≤ 14 WRU; a transfer of 100 points to another
member ≤ 3 calls (issue #7; its units grow with the lot pages it touches on each side:
docs/design.md, "Cost per operation"); a claim decision ≤ 3 calls, plus one write after the
email that records its outcome on the claim; balance 1 call and ≤ 2 RRU; an idempotent
replay 1 call; the wallet item under 1 KB. Benchmarks print ("ok" / "OVER"), they
never assert.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.children import hand_back, run_side_by_side
from bench.environment import ROOT
from bench.recorder import Recorder
from devtools.identity import Identity
from devtools.lambda_runtime import LambdaContext, http_event, load_handler
from loyalty.store.client import dynamodb

KB = 1024
DEFAULT_RULES = ROOT / "layers/loyalty/loyalty/domain/default_rules.json"


@dataclass(frozen=True)
class Member:
    key: str
    title: str
    days_ago: tuple[int, ...]
    fixed_date: bool
    earn_wru_budget: int


MEMBERS = (
    Member(
        "a",
        "20 purchases, one every 30 days over 20 months; rolling 24 months",
        tuple(range(600, 0, -30)),
        False,
        8,
    ),
    Member(
        "b",
        "a daily shopper: a purchase a day for 730 days; rolling 24 months",
        tuple(range(729, 0, -1)),
        False,
        10,
    ),
    Member(
        "c",
        "a daily shopper: a purchase a day for 730 days; fixedDate, 31 December of the year after",
        tuple(range(729, 0, -1)),
        True,
        16,
    ),
)
# The measured earn is the 730th purchase of b and c: today's.
REDEEM_POINTS = 100
TRANSFER_POINTS = 100  # the rules' minimum transfer


@dataclass
class Row:
    operation: str
    status: int
    calls: int
    detail: str
    rru: float
    wru: int
    gsi_wru: int
    local_units: float
    largest_written: int
    wallet_size: int | None
    failed_calls: int
    notes: list[str]


# ---- the parent: three members side by side, then the table


def fixed_date_rules(folder: Path) -> Path:
    """The default rules with points valid until 31 December of the year after earning."""
    document = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    document["version"] = "bench-fixed-date"
    document["expiry"] = {"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1}
    path = folder / "fixed-date-rules.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def report(endpoint: str) -> dict[str, dict[str, Any]]:
    """Measure the three members side by side, print the table; return each measured member's
    figures by key ("a", "b", "c": rows as `Row` fields), for bench.cost to price."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        rules_file = fixed_date_rules(Path(folder))
        children = run_side_by_side(
            {
                member.key: (
                    ["-m", "bench.calls", member.key],
                    {
                        **os.environ,
                        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
                        "RULES_SOURCE": f"file:{rules_file}" if member.fixed_date else "default",
                    },
                )
                for member in MEMBERS
            }
        )
    elapsed = time.perf_counter() - started

    print("\nDynamoDB cost per operation, by AWS's billing rules (engine: DynamoDB Local)")
    print("  RRU / WRU: read / write request units as AWS bills them (bench/billing.py): item sizes by")
    print("  AWS's rules, 4 KB per read unit (half when eventually consistent), 1 KB per write unit,")
    print("  twice in a transaction; WRU includes the global secondary index writes (column GSI).")
    print("  Local: what DynamoDB Local itself reports (ReturnConsumedCapacity TOTAL, reads and writes")
    print("  summed), for comparison only. largest: the largest item an operation wrote.")
    for member in MEMBERS:
        child = children[member.key]
        result = child.result()
        if result is None:
            print(f"\nmember {member.key}: {member.title}")
            child.print_failure()
            continue
        _print_member(member, result)
    print(f"\n(three members seeded and measured side by side in {elapsed:.0f} s)")
    results = {member.key: children[member.key].result() for member in MEMBERS}
    return {key: result for key, result in results.items() if result is not None}


def _verdicts(member: Member, row: Row) -> list[str]:
    """Each budget the row breaks, as "what measured > budget"; empty when within budget."""
    limits: dict[str, dict[str, float]] = {
        "earn": {"calls": 2, "WRU": member.earn_wru_budget},
        "earn (replay)": {"calls": 1},
        "redeem": {"calls": 2, "RRU": 4, "WRU": 14},
        "redeem (replay)": {"calls": 1},
        "transfer": {"calls": 3},
        "transfer (replay)": {"calls": 1},
        "return (replay)": {"calls": 1},
        # 3 for the decision (the claim, the member, one transaction) + 1 UpdateItem after the
        # email, recording its outcome on the claim (docs/design.md, "Claims").
        "claim decision": {"calls": 4},
        "balance": {"calls": 1, "RRU": 2},
    }
    measured = {"calls": row.calls, "RRU": row.rru, "WRU": row.wru}
    broken = []
    for name, limit in limits.get(row.operation, {}).items():
        if measured[name] > limit:
            # The index writes are billed too; say when they alone cross the budget.
            table_only = row.wru - row.gsi_wru
            within = f" ({table_only} without the index writes)" if name == "WRU" and row.gsi_wru else ""
            broken.append(f"{name} {measured[name]:g} > {limit:g}{within}")
    return broken


def _print_member(member: Member, result: dict[str, Any]) -> None:
    seed = result["seed"]
    wallet = result["wallet_size"]
    if wallet is None:
        wallet_verdict = "unknown: no measured operation wrote it"
    else:
        wallet_verdict = "ok" if wallet < KB else "OVER"
    print(f"\nmember {member.key}: {member.title}")
    refused = f", {seed['refused']} refused as already expired" if seed["refused"] else ""
    print(
        f"  seeded {seed['credited']} purchases through the earn handler in {seed['seconds']:.0f} s{refused};"
        f" {result['live_lots']} live lots after the measured operations"
    )
    size = "-" if wallet is None else f"{wallet:,} bytes"
    print(
        f"  wallet item (sk WALLET) after the measured operations: {size}  (budget < 1 KB: {wallet_verdict})"
    )
    print(
        f"  {'operation':<16}{'calls':>5}{'RRU':>7}{'WRU':>6}{'GSI':>5}{'Local':>8}{'status':>7}"
        f"{'largest':>10}  {'calls made':<52}budget"
    )
    for data in result["rows"]:
        row = Row(**data)
        broken = _verdicts(member, row)
        verdict = (
            ("OVER: " + ", ".join(broken)) if broken else ("ok" if row.operation != "lots" else "(none)")
        )
        print(
            f"  {row.operation:<16}{row.calls:>5}{row.rru:>7.1f}{row.wru:>6}{row.gsi_wru:>5}"
            f"{row.local_units:>8.1f}{row.status:>7}{_bytes(row.largest_written or None):>10}"
            f"  {row.detail:<52}{verdict}"
        )
        for note in row.notes:
            print(f"      note: {note}")


def _bytes(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size} B" if size < KB else f"{size / KB:.1f} KB"


# ---- a child: one member, seeded and measured in this process


def _measure_member(member: Member) -> dict[str, Any]:
    recorder = Recorder(dynamodb(), os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    member_id = f"bench-{member.key}-{uuid.uuid4().hex[:8]}"
    partner = Identity.partner("bench-pos")
    as_member = Identity.member(member_id)
    json_headers = {"content-type": "application/json"}

    def call(function: str, route: str, **kwargs: Any) -> dict[str, Any]:
        method, path_template = route.split(" ", 1)
        handler = load_handler(f"functions/{function}", "app.lambda_handler", root=ROOT)
        path = kwargs.pop("path", path_template.replace("{memberId}", member_id))
        parameters = kwargs.pop("path_parameters", {"memberId": member_id})
        event = http_event(method, path, route_key=route, path_parameters=parameters, **kwargs)
        response: dict[str, Any] = handler(event, LambdaContext(function))
        return response

    def earn(transaction_id: str, occurred_at: datetime, amount: str) -> dict[str, Any]:
        body = {
            "transactionId": transaction_id,
            "amount": amount,
            "currency": "EUR",
            "occurredAt": occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "channel": "store",
        }
        route = "POST /members/{memberId}/earn"
        return call("earn", route, headers=json_headers, body=body, identity=partner)

    enrolled = call(
        "members",
        "PUT /members/{memberId}",
        headers=json_headers,
        body={"email": f"{member_id}@example.com"},
        identity=partner,
    )
    if enrolled["statusCode"] not in (200, 201):
        raise RuntimeError(f"enrolment answered {enrolled['statusCode']}: {enrolled.get('body')}")

    now = datetime.now(UTC)
    started = time.perf_counter()
    credited = refused = 0
    for days in member.days_ago:
        amount = f"{10 + (days * 7) % 50}.90"  # 10.90 .. 59.90 EUR: 10 to 59 points
        response = earn(f"{member_id}-seed-{days}", now - timedelta(days=days), amount)
        if response["statusCode"] == 201:
            credited += 1
        elif response["statusCode"] == 422 and "expired" in response.get("body", ""):
            refused += 1  # older than the policy allows: the API refuses it, as it should
        else:
            raise RuntimeError(f"seeding earn answered {response['statusCode']}: {response.get('body')}")
    seed = {"credited": credited, "refused": refused, "seconds": time.perf_counter() - started}

    todays = (f"{member_id}-today", now - timedelta(minutes=1), "42.90")
    redemption_headers = {**json_headers, "idempotency-key": f"{member_id}-redeem"}

    def redeem() -> dict[str, Any]:
        route = "POST /members/{memberId}/redemptions"
        body = {"points": REDEEM_POINTS}
        return call("redeem", route, headers=redemption_headers, body=body, identity=as_member)

    # The receiver of the transfer: another member, enrolled before anything is measured.
    receiver = f"{member_id}-friend"
    friend = call(
        "members",
        "PUT /members/{memberId}",
        headers=json_headers,
        body={"email": f"{receiver}@example.com"},
        identity=partner,
        path_parameters={"memberId": receiver},
        path=f"/members/{receiver}",
    )
    if friend["statusCode"] not in (200, 201):
        raise RuntimeError(f"the receiver's enrolment answered {friend['statusCode']}: {friend.get('body')}")
    transfer_headers = {**json_headers, "idempotency-key": f"{member_id}-transfer"}

    def transfer() -> dict[str, Any]:
        route = "POST /members/{memberId}/transfers"
        body = {"toMemberId": receiver, "points": TRANSFER_POINTS}
        return call("transfer", route, headers=transfer_headers, body=body, identity=as_member)

    # A purchase of 20 days ago the member claims, then support approves (issue #7).
    claimed_at = (now - timedelta(days=20)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    claim_body = {
        "transactionId": f"{member_id}-claimed",
        "occurredAt": claimed_at,
        "amount": "64.90",
        "currency": "EUR",
    }
    claim_path = {"claimId": ""}

    def file_claim() -> dict[str, Any]:
        route = "POST /members/{memberId}/claims"
        response = call("claims", route, headers=json_headers, body=claim_body, identity=as_member)
        if response["statusCode"] in (200, 201):
            claim_path["claimId"] = json.loads(response["body"])["claimId"]
        return response

    def decide() -> dict[str, Any]:
        claim_id = claim_path["claimId"]
        return call(
            "claims",
            "POST /claims/{claimId}/decision",
            headers=json_headers,
            body={"decision": "approve", "reason": "receipt checked"},
            identity=Identity.support("bench-agent"),
            path=f"/claims/{claim_id}/decision",
            path_parameters={"claimId": claim_id},
        )

    def reverse() -> dict[str, Any]:
        transaction_id = todays[0]
        return call(
            "earn",
            "POST /members/{memberId}/earn/{transactionId}/reversal",
            headers={**json_headers, "idempotency-key": f"{member_id}-return"},
            body={"amount": "20.00"},
            identity=partner,
            path=f"/members/{member_id}/earn/{transaction_id}/reversal",
            path_parameters={"memberId": member_id, "transactionId": transaction_id},
        )

    operations: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("earn", lambda: earn(*todays)),
        ("earn (replay)", lambda: earn(*todays)),
        ("redeem", redeem),
        ("redeem (replay)", redeem),
        ("transfer", transfer),
        ("transfer (replay)", transfer),
        ("return (partial)", reverse),
        ("return (replay)", reverse),
        ("claim (file)", file_claim),
        ("claim decision", decide),
        ("decision (replay)", decide),
        ("balance", lambda: call("balance", "GET /members/{memberId}/balance", identity=as_member)),
        ("lots", lambda: call("balance", "GET /members/{memberId}/lots", identity=as_member)),
    ]
    rows = []
    wallet_size = None
    live_lots = None
    for name, action in operations:
        response, measured = recorder.measure(action)
        rows.append(_row(name, response, measured))
        if name == "claim decision":
            rows[-1].notes.append(
                "the decision is 3 calls (budget ≤ 3); the UpdateItem after it records the email's outcome"
            )
        wallet_size = measured.wallet_size if measured.wallet_size is not None else wallet_size
        if name == "lots" and response["statusCode"] == 200:
            live_lots = len(json.loads(response["body"])["lots"])
    return {
        "member": member_id,
        "seed": seed,
        "rows": [asdict(row) for row in rows],
        "wallet_size": wallet_size,
        "live_lots": live_lots,
    }


def _row(name: str, response: dict[str, Any], measured: Any) -> Row:
    return Row(
        operation=name,
        status=response["statusCode"],
        calls=measured.call_count,
        detail=measured.detail,
        rru=measured.rru,
        wru=measured.wru + measured.gsi_wru,
        gsi_wru=measured.gsi_wru,
        local_units=measured.local_units,
        largest_written=measured.largest_written,
        wallet_size=measured.wallet_size,
        failed_calls=measured.failed_calls,
        notes=measured.notes,
    )


def main(argv: list[str]) -> None:
    (key,) = argv
    member = next(member for member in MEMBERS if member.key == key)
    result = _measure_member(member)
    hand_back(result)


if __name__ == "__main__":
    main(sys.argv[1:])
