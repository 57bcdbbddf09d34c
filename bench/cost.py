"""What one million operations cost on AWS: earns, redemptions, transfers, balance reads, and the
daily expiry and reminder runs per million members due (issue #9, "Deploy and cost").

`python -m bench.cost` (also the last part of `python -m bench`). The inputs:

* DynamoDB request units per operation: measured by `bench.calls` (AWS's billing rules on the
  items' measured sizes, `bench/billing.py`), for its three members; nothing re-measured here.
* Lambda: the warm duration of each handler, timed in this process on DynamoDB Local (median of
  N calls after one warm-up call), wall clock and the Python process's CPU. DynamoDB Local's
  latency stands in for DynamoDB's. A 1,024 MB function gets 1,024 / 1,769 of a vCPU, so the
  CPU part is stretched by that share; the rest (waiting on DynamoDB) is not. Memory and
  architecture come from template.yaml (Globals).
* API Gateway HTTP API: one request per API operation. SES: one email per member reminded.
  SQS: the runs' messages (100 members each, sent, received and deleted in batches of 10).
* The runs: per due (or reminded) member, the figures `python -m bench.expiry_scale` printed
  (README, "The daily runs at scale"; docs/design.md, "Scheduled runs at scale"), as constants
  below. A run's cost follows the members due, not the members enrolled: the fan-out reads the
  index only up to the as-of, so a million members of whom 1% are due cost 1% of the row.
* Prices: bench/prices.json (region, date, and that they were not re-checked live).

The arithmetic is pure (`Usage` in, `Cost` out); only `time_operations` and `report` do I/O.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import statistics
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.environment import ROOT

PRICES = Path(__file__).with_name("prices.json")
MILLION = 1_000_000
# Lambda allocates CPU in proportion to memory: one full vCPU at 1,769 MB.
FULL_VCPU_MB = 1769
TIMED_CALLS = 15


# ---- prices


@dataclass(frozen=True)
class Prices:
    """Dollars, as bench/prices.json gives them."""

    region: str
    as_of: str
    note: str
    wru_per_million: float
    rru_per_million: float
    lambda_per_gb_second: float
    lambda_requests_per_million: float
    api_requests_per_million: float
    ses_per_thousand_emails: float
    sqs_requests_per_million: float


def load_prices(path: Path = PRICES) -> Prices:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Prices(
        region=data["region"],
        as_of=data["as_of"],
        note=data["note"],
        wru_per_million=data["dynamodb"]["write_request_units_per_million"],
        rru_per_million=data["dynamodb"]["read_request_units_per_million"],
        lambda_per_gb_second=data["lambda"]["per_gb_second"],
        lambda_requests_per_million=data["lambda"]["requests_per_million"],
        api_requests_per_million=data["api_gateway"]["requests_per_million"],
        ses_per_thousand_emails=data["ses"]["per_thousand_emails"],
        sqs_requests_per_million=data["sqs"]["requests_per_million"],
    )


def template_memory_mb(template: Mapping[str, Any] | None = None) -> int:
    """The functions' memory, from template.yaml's Globals (no function overrides it)."""
    if template is None:
        from devtools.template import load_template

        template = load_template(ROOT / "template.yaml")
    return int(template["Globals"]["Function"]["MemorySize"])


# ---- the arithmetic


@dataclass(frozen=True)
class Usage:
    """What one operation (or one due member of a run) consumes."""

    rru: float = 0.0
    wru: float = 0.0
    gb_seconds: float = 0.0
    invocations: float = 0.0
    api_requests: float = 0.0
    emails: float = 0.0
    sqs_requests: float = 0.0


@dataclass(frozen=True)
class Cost:
    """Dollars per million operations."""

    dynamodb: float
    lambda_: float
    api_gateway: float
    messaging: float  # SES and SQS

    @property
    def total(self) -> float:
        return self.dynamodb + self.lambda_ + self.api_gateway + self.messaging


def lambda_duration_ms(wall_ms: float, cpu_ms: float, memory_mb: int) -> float:
    """Duration on Lambda from a duration timed on a full core: the CPU part stretched by the
    share of a vCPU `memory_mb` gets, the waiting part as timed."""
    share = min(1.0, memory_mb / FULL_VCPU_MB)
    return wall_ms + cpu_ms * (1 / share - 1)


def gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """Billed GB-seconds of one invocation: duration rounded up to the millisecond."""
    return math.ceil(duration_ms) / 1000 * memory_mb / 1024


def api_usage(rru: float, wru: float, duration_ms: float, memory_mb: int) -> Usage:
    """An API operation: one HTTP API request, one invocation of `duration_ms`."""
    return Usage(
        rru=rru,
        wru=wru,
        gb_seconds=gb_seconds(duration_ms, memory_mb),
        invocations=1,
        api_requests=1,
    )


def cost_per_million(usage: Usage, prices: Prices) -> Cost:
    """Dollars for one million of `usage`: per-million prices times units per operation."""
    return Cost(
        dynamodb=usage.rru * prices.rru_per_million + usage.wru * prices.wru_per_million,
        lambda_=usage.gb_seconds * MILLION * prices.lambda_per_gb_second
        + usage.invocations * prices.lambda_requests_per_million,
        api_gateway=usage.api_requests * prices.api_requests_per_million,
        messaging=usage.emails * MILLION / 1000 * prices.ses_per_thousand_emails
        + usage.sqs_requests * prices.sqs_requests_per_million,
    )


# ---- the runs, per due member: measured by bench.expiry_scale (constants, see its output)

MEMBERS_PER_MESSAGE = 100
MESSAGES_PER_BATCH = 10  # SendMessageBatch, a worker's batch, DeleteMessageBatch
# Per 1,000 members: 1 SendMessageBatch, ~1 ReceiveMessage, ~1 DeleteMessageBatch.
SQS_REQUESTS_PER_MEMBER = 3 / (MEMBERS_PER_MESSAGE * MESSAGES_PER_BATCH)
WORKER_INVOCATIONS_PER_MEMBER = 1 / (MEMBERS_PER_MESSAGE * MESSAGES_PER_BATCH)
# Fan-out: one ByNextExpiry row of 98 bytes per due member, read in 1 MB eventually consistent pages.
FAN_OUT_RRU_PER_MEMBER = 98 / 4096 * 0.5
FAN_OUT_CPU_MS = 0.0384  # 38.4 µs of Python CPU per row listed (measured, docs/design.md)
FAN_OUT_WAIT_MS = 0.0064  # ~3 s of I/O per 469,000 rows (assumed, docs/design.md)
# The run's record: one 2-item transaction (4 WRU) per message of 100 members (measured).
RECORD_WRU_PER_MEMBER = 4 / MEMBERS_PER_MESSAGE

# Expiry, per due member (fixedDate, 10 lot pages): 1 Query + 1 TransactWriteItems, 1 RRU and
# 27 WRU measured when the member leaves ByNextExpiry; 28 when it keeps later points (its index
# row moves: 2 index writes instead of 1). We price 28.
EXPIRY_RRU = 1.0
EXPIRY_WRU = 28.0
# Time per due member, median on DynamoDB Local: 10.9, 14.5, 14.2 and 24.4 ms in four runs; we
# take the slowest. Python CPU: 3.7 to 4.1 ms; we take 4.1.
EXPIRY_WALL_MS = 24.4
EXPIRY_CPU_MS = 4.1

# Reminders, per member reminded: 4 DynamoDB calls, 2.5 RRU, 2 WRU, 1 SES SendEmail (measured).
# Its duration is not measured: 4 DynamoDB calls and one SES call, assumed 50 ms of which 10 ms CPU.
REMINDER_RRU = 2.5
REMINDER_WRU = 2.0
REMINDER_WALL_MS = 50.0
REMINDER_CPU_MS = 10.0


def _run_usage(rru: float, wru: float, wall_ms: float, cpu_ms: float, emails: float, memory_mb: int) -> Usage:
    worker_ms = lambda_duration_ms(wall_ms, cpu_ms, memory_mb)
    fan_out_ms = lambda_duration_ms(FAN_OUT_CPU_MS + FAN_OUT_WAIT_MS, FAN_OUT_CPU_MS, memory_mb)
    return Usage(
        rru=rru + FAN_OUT_RRU_PER_MEMBER,
        wru=wru + RECORD_WRU_PER_MEMBER,
        # Many members per invocation: no per-invocation rounding worth counting.
        gb_seconds=(worker_ms + fan_out_ms) / 1000 * memory_mb / 1024,
        invocations=WORKER_INVOCATIONS_PER_MEMBER,
        emails=emails,
        sqs_requests=SQS_REQUESTS_PER_MEMBER,
    )


def expiry_usage(memory_mb: int) -> Usage:
    """One due member of the daily expiry run."""
    return _run_usage(EXPIRY_RRU, EXPIRY_WRU, EXPIRY_WALL_MS, EXPIRY_CPU_MS, 0, memory_mb)


def reminder_usage(memory_mb: int) -> Usage:
    """One member reminded by the daily reminder run."""
    return _run_usage(REMINDER_RRU, REMINDER_WRU, REMINDER_WALL_MS, REMINDER_CPU_MS, 1, memory_mb)


# ---- the operations' warm duration, timed in this process


@dataclass(frozen=True)
class Timing:
    wall_ms: float
    cpu_ms: float
    calls: int


OPERATIONS = ("earn", "redeem", "transfer", "balance")


def _timed(action: Callable[[], dict[str, Any]], n: int) -> Timing:
    action()  # warm-up: imports, caches, the first connection
    walls, cpus = [], []
    for _ in range(n):
        wall, cpu = time.perf_counter(), time.process_time()
        response = action()
        cpus.append((time.process_time() - cpu) * 1000)
        walls.append((time.perf_counter() - wall) * 1000)
        if response["statusCode"] >= 300:
            raise RuntimeError(f"timed call answered {response['statusCode']}: {response.get('body')}")
    return Timing(statistics.median(walls), statistics.median(cpus), n)


def time_operations(n: int = TIMED_CALLS) -> dict[str, Timing]:
    """Warm duration of each operation's handler, in this process, against the table the
    environment names (bench.environment.local_table). One member, 40 purchases over 20 months
    (2 a month, ~40 lots: like bench.calls' member a, denser, to fund N redemptions and transfers)."""
    from devtools.identity import Identity
    from devtools.lambda_runtime import LambdaContext, http_event, load_handler

    member_id = f"bench-cost-{uuid.uuid4().hex[:8]}"
    receiver = f"{member_id}-friend"
    partner, as_member = Identity.partner("bench-pos"), Identity.member(member_id)
    json_headers = {"content-type": "application/json"}

    def call(function: str, route: str, member: str = member_id, **kwargs: Any) -> dict[str, Any]:
        method, path = route.split(" ", 1)
        handler = load_handler(f"functions/{function}", "app.lambda_handler", root=ROOT)
        event = http_event(
            method,
            path.replace("{memberId}", member),
            route_key=route,
            path_parameters={"memberId": member},
            **kwargs,
        )
        response: dict[str, Any] = handler(event, LambdaContext(function))
        return response

    for enrolled in (member_id, receiver):
        body = {"email": f"{enrolled}@example.com"}
        route = "PUT /members/{memberId}"
        response = call("members", route, enrolled, headers=json_headers, body=body, identity=partner)
        if response["statusCode"] not in (200, 201):
            raise RuntimeError(f"enrolment answered {response['statusCode']}: {response.get('body')}")

    counter = iter(range(10**6))

    def earn(days_ago: float = 0.001) -> dict[str, Any]:
        occurred = datetime.now(UTC) - timedelta(days=days_ago)
        body = {
            "transactionId": f"{member_id}-{next(counter)}",
            "amount": "89.90",
            "currency": "EUR",
            "occurredAt": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "channel": "store",
        }
        route = "POST /members/{memberId}/earn"
        return call("earn", route, headers=json_headers, body=body, identity=partner)

    for days in range(600, 0, -15):  # 40 purchases of 89 points: 3,560 points
        if earn(days)["statusCode"] != 201:
            raise RuntimeError("seeding earn failed")

    def redeem() -> dict[str, Any]:
        headers = {**json_headers, "idempotency-key": f"{member_id}-r{next(counter)}"}
        route = "POST /members/{memberId}/redemptions"
        return call("redeem", route, headers=headers, body={"points": 100}, identity=as_member)

    def transfer() -> dict[str, Any]:
        headers = {**json_headers, "idempotency-key": f"{member_id}-t{next(counter)}"}
        body = {"toMemberId": receiver, "points": 100}
        route = "POST /members/{memberId}/transfers"
        return call("transfer", route, headers=headers, body=body, identity=as_member)

    def balance() -> dict[str, Any]:
        return call("balance", "GET /members/{memberId}/balance", identity=as_member)

    actions = {"earn": earn, "redeem": redeem, "transfer": transfer, "balance": balance}
    return {name: _timed(actions[name], n) for name in OPERATIONS}


# ---- the table


@dataclass(frozen=True)
class Line:
    operation: str
    usage: Usage
    cost: Cost
    inputs: str


def operation_lines(
    measured: Mapping[str, Mapping[str, Any]],
    timings: Mapping[str, Timing],
    prices: Prices,
    memory_mb: int,
) -> list[Line]:
    """One line per member of bench.calls and operation, then the two runs."""
    lines = []
    for member, result in measured.items():
        rows = {row["operation"]: row for row in result["rows"]}
        for operation in OPERATIONS:
            row, timing = rows[operation], timings[operation]
            duration = lambda_duration_ms(timing.wall_ms, timing.cpu_ms, memory_mb)
            usage = api_usage(row["rru"], row["wru"], duration, memory_mb)
            inputs = f"{row['rru']:g} RRU, {row['wru']} WRU, {math.ceil(duration)} ms"
            lines.append(Line(f"{operation} ({member})", usage, cost_per_million(usage, prices), inputs))
    for name, usage, inputs in (
        ("expiry run, per 1M due", expiry_usage(memory_mb), f"{EXPIRY_RRU:g} RRU, {EXPIRY_WRU:g} WRU"),
        ("reminder run, per 1M reminded", reminder_usage(memory_mb), "2.5 RRU, 2 WRU, 1 email"),
    ):
        lines.append(Line(name, usage, cost_per_million(usage, prices), inputs + " per member"))
    return lines


def print_table(lines: list[Line], prices: Prices) -> None:
    where = f"{prices.region} list prices as of {prices.as_of}, not re-checked live"
    print(f"\nCost per million, in USD ({where})")
    print(
        f"  {'operation':<31}{'DynamoDB':>10}{'Lambda':>9}{'API GW':>9}{'SES/SQS':>10}{'total':>10}"
        f"  inputs per operation"
    )
    for line in lines:
        cost = line.cost
        print(
            f"  {line.operation:<31}{cost.dynamodb:>10.2f}{cost.lambda_:>9.2f}{cost.api_gateway:>9.2f}"
            f"{cost.messaging:>10.2f}{cost.total:>10.2f}  {line.inputs}"
        )


def report(endpoint: str, measured: Mapping[str, Mapping[str, Any]]) -> None:
    """Time the handlers (the table of `endpoint` is the environment's), price bench.calls'
    measured units, print the table."""
    del endpoint  # the handlers read it from the environment (bench.environment.local_table)
    prices = load_prices()
    memory_mb = template_memory_mb()
    with contextlib.redirect_stdout(io.StringIO()):  # the handlers' cold-start metric lines
        timings = time_operations()
    print_table(operation_lines(measured, timings, prices, memory_mb), prices)
    share = min(1.0, memory_mb / FULL_VCPU_MB)
    print(
        f"  members a, b, c: bench.calls' (RRU and WRU as measured above, index writes included)."
        f"\n  Lambda: arm64, {memory_mb} MB (template.yaml), {share:.2f} vCPU; warm duration timed here on"
        f" DynamoDB Local, median of {TIMED_CALLS} after a warm-up:"
    )
    for name, timing in timings.items():
        duration = lambda_duration_ms(timing.wall_ms, timing.cpu_ms, memory_mb)
        print(
            f"    {name:<9} wall {timing.wall_ms:6.1f} ms, CPU {timing.cpu_ms:6.1f} ms"
            f" -> {duration:6.1f} ms on Lambda (its CPU part / {share:.2f})"
        )
    print(
        "  Runs: per due member, the figures of bench.expiry_scale (constants in bench/cost.py): fan-out"
        "\n  reads, the run's record, SQS batches of 10 messages of 100 members; the reminder's duration"
        "\n  is assumed (50 ms). A run costs in proportion to the members due, not the members enrolled."
    )


def main() -> None:
    from bench import calls
    from bench.environment import local_table

    with local_table() as endpoint:
        measured = calls.report(endpoint)
        report(endpoint, measured)


if __name__ == "__main__":
    main()
