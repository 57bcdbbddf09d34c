"""Cold start to first response: the balance read, the earn and the redemption, each against a
bare boto3 function making one DynamoDB call.

Each sample is a fresh interpreter that imports a handler the way Lambda does and answers one
request against DynamoDB Local: the first GET balance, the first POST earn (a new purchase),
the first POST redemption (1 point, a new Idempotency-Key). The figure is the median wall time
of many samples; every round runs the bare function and the three handlers in turn, so that
machine noise hits them alike. Budget: balance ≤ 1.5x the bare function (the issue sets none
for earn and redeem: their ratios are printed as measured).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.environment import ROOT, TABLE
from devtools.identity import Identity
from devtools.lambda_runtime import http_event

SAMPLES = 15
BALANCE_BUDGET = 1.5

BARE = """
import json, sys
import boto3
client = boto3.client("dynamodb")
def handler(event, context):
    item = client.get_item(TableName=event["table"], Key={"pk": {"S": event["pk"]}, "sk": {"S": "WALLET"}})
    return {"statusCode": 200, "body": json.dumps({"found": "Item" in item})}
response = handler(json.load(open(sys.argv[1])), None)
# VmHWM: this process's own peak (ru_maxrss can carry the forking parent's high-water mark).
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"status": response["statusCode"], "rss_kb": peak}))
"""

OURS = """
import importlib.util, json, sys
event_file, handler_file, function_name = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("app", handler_file)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
class Context:
    memory_limit_in_mb = 1024; aws_request_id = "cold-start"
    function_name = function_name
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:" + function_name
response = module.lambda_handler(json.load(open(event_file)), Context())
# VmHWM: this process's own peak (ru_maxrss can carry the forking parent's high-water mark).
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"status": response["statusCode"], "rss_kb": peak}))
"""


@dataclass(frozen=True)
class Function:
    label: str
    name: str  # the template's logical id, as Lambda names the context's function
    folder: str
    route: str


FUNCTIONS = (
    Function(
        "balance read (BalanceFunction)", "BalanceFunction", "balance", "GET /members/{memberId}/balance"
    ),
    Function("first earn (EarnFunction)", "EarnFunction", "earn", "POST /members/{memberId}/earn"),
    Function(
        "first redemption (RedeemFunction)",
        "RedeemFunction",
        "redeem",
        "POST /members/{memberId}/redemptions",
    ),
)


# Set-up only (not measured): enrol the member, then give it points to redeem.
ENROL = Function("enrolment", "MembersFunction", "members", "PUT /members/{memberId}")
STOCK = Function("purchase", "EarnFunction", "earn", "POST /members/{memberId}/earn")


class Samples:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.rss_kb: list[int] = []
        self.statuses: Counter[int] = Counter()

    def add(self, elapsed: float, result: dict[str, Any]) -> None:
        self.times.append(elapsed)
        self.rss_kb.append(result["rss_kb"])
        self.statuses[result["status"]] += 1

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def rss_mib(self) -> float:
        return statistics.median(self.rss_kb) / 1024


def _run(code: str, *args: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=os.environ.copy()
    )
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(completed.stdout.strip().splitlines()[-1])


def _import_costs(events: Events, function: Function, runs: int = 3) -> list[tuple[str, int]]:
    """Import time (µs, self time summed per package) of everything a handler loads: the least
    of `runs` fresh interpreters per package, so that one noisy run does not stand out."""
    least: dict[str, int] = {}
    for _ in range(runs):
        handler_file = str(ROOT / "functions" / function.folder / "app.py")
        completed = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-c",
                OURS,
                events.write(function),
                handler_file,
                function.name,
            ],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ.copy(),
        )
        costs: Counter[str] = Counter()
        for line in completed.stderr.splitlines():
            if not line.startswith("import time:") or line.count("|") != 2:
                continue
            own, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            if own.isdigit():
                parts = name.split(".")
                package = (
                    ".".join(parts[:2]) if parts[0] in {"aws_lambda_powertools", "loyalty"} else parts[0]
                )
                costs[package] += int(own)
        for package, micros in costs.items():
            least[package] = min(micros, least.get(package, micros))
    return Counter(least).most_common(6)


class Events:
    """A fresh request per sample: a new purchase for earn, a new Idempotency-Key for redeem."""

    def __init__(self, folder: Path, member: str) -> None:
        self.folder, self.member = folder, member
        self.count = 0

    def purchase(self) -> dict[str, Any]:
        """A new purchase of 10 EUR, a minute ago."""
        self.count += 1
        return {
            "transactionId": f"{self.member}-cold-{self.count}",
            "amount": "10.00",
            "currency": "EUR",
            "occurredAt": (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "channel": "store",
        }

    def write(self, function: Function, body: dict[str, Any] | None = None) -> str:
        """The event file of `function`'s next request (`body` overrides the default one)."""
        self.count += 1
        method, template = function.route.split(" ", 1)
        request: dict[str, Any] = {"route_key": function.route, "path_parameters": {"memberId": self.member}}
        if function.folder in ("earn", "members"):
            request["identity"] = Identity.partner("bench-pos")
            request["body"] = body or self.purchase()
        elif function.folder == "redeem":
            request["identity"] = Identity.member(self.member)
            request["headers"] = {"idempotency-key": f"{self.member}-cold-{self.count}"}
            request["body"] = body or {"points": 1}
        else:
            request["identity"] = Identity.member(self.member)
        event = http_event(method, template.replace("{memberId}", self.member), **request)
        file = self.folder / f"event-{self.count}.json"
        file.write_text(json.dumps(event))
        return str(file)


def _enrol_with_points(events: Events) -> list[str]:
    """The member the samples read, credit and redeem: enrolled, with 1,000 points to spend, through
    the handlers in a fresh interpreter (this process stays free of the handlers' imports).
    Returns the problems met, if any: the samples then show the handlers' error statuses."""
    member = events.member
    problems = []
    for function, body in (
        (ENROL, {"email": f"{member}@example.com"}),
        (STOCK, {**events.purchase(), "amount": "1000.00"}),
    ):
        event = events.write(function, body=body)
        try:
            _, result = _run(OURS, event, str(ROOT / "functions" / function.folder / "app.py"), function.name)
        except subprocess.CalledProcessError as failed:
            problems.append(f"{function.route}: {_last_line(failed.stderr)}")
            continue
        if result["status"] not in (200, 201):
            problems.append(f"{function.route} answered {result['status']}")
    return problems


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def report(endpoint: str) -> None:
    bare = Samples()
    ours = {function.name: Samples() for function in FUNCTIONS}
    broken: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        events = Events(Path(folder), f"cold-{uuid.uuid4().hex[:8]}")
        problems = _enrol_with_points(events)
        bare_event = Path(folder, "bare.json")
        bare_event.write_text(json.dumps({"table": TABLE, "pk": f"MEMBER#{events.member}"}))

        def run_ours(function: Function, *, counted: bool = True) -> None:
            if function.name in broken:
                return
            handler_file = str(ROOT / "functions" / function.folder / "app.py")
            try:
                elapsed, result = _run(OURS, events.write(function), handler_file, function.name)
            except subprocess.CalledProcessError as failed:
                broken[function.name] = _last_line(failed.stderr)
                return
            if counted:
                ours[function.name].add(elapsed, result)

        _run(BARE, str(bare_event))  # warm the OS file cache
        for function in FUNCTIONS:
            run_ours(function, counted=False)
        for _ in range(SAMPLES):
            bare.add(*_run(BARE, str(bare_event)))
            for function in FUNCTIONS:
                run_ours(function)
        costs = {
            function.name: _import_costs(events, function)
            for function in FUNCTIONS
            if function.name not in broken
        }

    print(
        f"\nCold start to first response, median of {SAMPLES} fresh interpreters each, interleaved"
        f" ({sys.version.split()[0]})"
    )
    for problem in problems:
        print(f"  setup problem: {problem}")
    bare_label = "bare boto3 function, one GetItem"
    print(f"  {bare_label:<36}: {bare.median * 1000:6.0f} ms   peak RSS {bare.rss_mib:5.1f} MiB")
    for function in FUNCTIONS:
        samples = ours[function.name]
        if function.name in broken:
            print(f"  {function.label:<36}: FAILED: {broken[function.name]}")
            continue
        statuses = ", ".join(f"{status} x{count}" for status, count in sorted(samples.statuses.items()))
        ratio = samples.median / bare.median
        if function.folder == "balance":
            budget = f"budget ≤ {BALANCE_BUDGET}: {'ok' if ratio <= BALANCE_BUDGET else 'OVER'}"
        else:
            budget = "no budget"
        print(
            f"  {function.label:<36}: {samples.median * 1000:6.0f} ms   peak RSS {samples.rss_mib:5.1f} MiB"
            f"   ratio {ratio:4.2f} ({budget}; statuses {statuses})"
        )
    for function in FUNCTIONS:
        if function.name in costs:
            print(f"  heaviest imports of {function.label} (own import time per package, least of 3):")
            for name, micros in costs[function.name]:
                print(f"    {name:<40}{micros / 1000:7.0f} ms")
