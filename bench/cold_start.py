"""Cold start to first response: our balance read versus a bare boto3 function making one call.

Each sample is a fresh interpreter that imports a handler the way Lambda does and answers
one request against DynamoDB Local; the figure is the median wall time of many samples, the
two kinds interleaved so that machine noise hits both alike. Budget: ratio ≤ 1.5.
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
from pathlib import Path
from typing import Any

from bench.environment import ROOT, TABLE
from devtools.identity import Identity
from devtools.lambda_runtime import http_event

SAMPLES = 25

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
spec = importlib.util.spec_from_file_location("app", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
class Context:
    function_name = "BalanceFunction"; memory_limit_in_mb = 1024; aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:BalanceFunction"
response = module.lambda_handler(json.load(open(sys.argv[1])), Context())
# VmHWM: this process's own peak (ru_maxrss can carry the forking parent's high-water mark).
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"status": response["statusCode"], "rss_kb": peak}))
"""


def _run(code: str, *args: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=os.environ.copy()
    )
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(completed.stdout.strip().splitlines()[-1])


def _import_costs(event_file: str) -> list[tuple[str, int]]:
    """Import time (µs, self time summed per package) of everything the balance handler loads."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", OURS, event_file, str(ROOT / "functions/balance/app.py")],
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
            costs[".".join(parts[:2]) if parts[0] in {"aws_lambda_powertools", "loyalty"} else parts[0]] += (
                int(own)
            )
    return costs.most_common(10)


def report(endpoint: str) -> None:
    member = f"cold-{uuid.uuid4().hex[:8]}"
    event = http_event(
        "GET",
        f"/members/{member}/balance",
        route_key="GET /members/{memberId}/balance",
        path_parameters={"memberId": member},
        identity=Identity.member(member),
    )
    with tempfile.TemporaryDirectory() as folder:
        ours_event = Path(folder, "ours.json")
        ours_event.write_text(json.dumps(event))
        bare_event = Path(folder, "bare.json")
        bare_event.write_text(json.dumps({"table": TABLE, "pk": f"MEMBER#{member}"}))
        handler_file = str(ROOT / "functions/balance/app.py")
        bare_times, ours_times, bare_rss, ours_rss = [], [], [], []
        _run(BARE, str(bare_event)), _run(OURS, str(ours_event), handler_file)  # warm the OS file cache
        for _ in range(SAMPLES):
            elapsed, result = _run(BARE, str(bare_event))
            bare_times.append(elapsed)
            bare_rss.append(result["rss_kb"])
            elapsed, result = _run(OURS, str(ours_event), handler_file)
            ours_times.append(elapsed)
            ours_rss.append(result["rss_kb"])
        costs = _import_costs(str(ours_event))
    bare, ours = statistics.median(bare_times), statistics.median(ours_times)
    print(
        f"\nCold start to first response, median of {SAMPLES} fresh interpreters ({sys.version.split()[0]})"
    )
    bare_mib, ours_mib = statistics.median(bare_rss) / 1024, statistics.median(ours_rss) / 1024
    print(f"  bare boto3 function, one GetItem : {bare * 1000:7.0f} ms   peak RSS {bare_mib:5.1f} MiB")
    print(f"  balance read (BalanceFunction)   : {ours * 1000:7.0f} ms   peak RSS {ours_mib:5.1f} MiB")
    verdict = "ok" if ours / bare <= 1.5 else "OVER"
    print(f"  ratio                            : {ours / bare:7.2f}    (budget ≤ 1.5: {verdict})")
    print("  heaviest imports of the balance handler (own import time summed per package):")
    for name, micros in costs:
        print(f"    {name:<28}{micros / 1000:7.0f} ms")
