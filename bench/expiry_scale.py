"""The expiry and reminder runs at scale, on DynamoDB Local (issue #8, "Proof and figures").

`python -m bench.expiry_scale` seeds 100,000 lots over 10,000 members, 1% of them due (all their
10 lots expire on 31 December: a `fixedDate` program, the case docs/design.md works out for 30
million members), and runs the real runs on them: the reminder run on 1 December (twice: the
second sends nothing), then the expiry run on 1 January: `start_run` with an in-memory queue, then
`process_message` for every message, the botocore client hooked. `--scale 10` runs the same with a
table ten times larger (1,000,000 lots over 100,000 members, the same 100 due members) and prints
both side by side. Each table lives in a DynamoDB Local of its own, in a child process.

How the table is seeded: one member of each kind (due, later) is enrolled and earns its 10
purchases through the store (`members.enrol_or_update`, `points.earn`, with the clock passed in);
every item it wrote (profile, wallet with its page directory and ByNextExpiry row, lot pages,
ledger entries, purchase guards) is then cloned for every other member with the member id, the
ledger entry ids and the ByNextExpiry shard renewed, and written with BatchWriteItem from
threads. A few clones are read back with `store.wallet.read_wallet` (balance = Σ lots).

Figures: calls, items read, request units (bench/billing.py: item sizes measured on the items,
AWS's rules, twice for a transaction) and wall-clock time. The recorder reads every item a write
touches before and after it (to price it), which slows the call: the members it prices are not
the ones timed (one in five is priced, the others timed). Benchmarks print, they never assert.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import boto3

from bench.children import Child, hand_back
from bench.environment import ROOT, TABLE, local_table
from bench.recorder import Measurement, Recorder

LOTS_PER_MEMBER = 10
MEMBERS = 10_000  # at scale 1: 100,000 lots
DUE_MEMBERS = 100  # 1% at scale 1; the same 100 at scale 10
PARIS = ZoneInfo("Europe/Paris")
# Lots earned in 2027 expire at the end of 31 December 2028 (fixedDate, one year after).
DUE_PURCHASES = tuple(datetime(2027, month, 15, 10, 0, tzinfo=UTC) for month in range(3, 13))
LATER_PURCHASES = tuple(datetime(2028, month, 15, 10, 0, tzinfo=UTC) for month in range(1, 11))
ENROLLED = datetime(2027, 1, 2, 9, 0, tzinfo=UTC)
REMINDER_AS_OF = datetime(2028, 12, 1, 6, 0, tzinfo=PARIS)  # 30 days before 31 December
EXPIRY_AS_OF = datetime(2029, 1, 1, 6, 0, tzinfo=PARIS)  # the first run after the expiry
EVERYTHING_DUE = datetime(2031, 1, 1, 6, 0, tzinfo=PARIS)  # after every member's expiry
SEED_THREADS = 8
FANOUT_REPEATS = 5
PRICED_EVERY = 5  # one due member in five is priced by the recorder; the others are timed
EMAIL_ENVIRONMENT = {
    "SENDER_ADDRESS": "no-reply@loyalty.example.com",
    "PROGRAM_NAME": "Club Étoile",
    "LINKS_BASE_URL": "https://loyalty.example.com/account",
    "UNSUBSCRIBE_SECRET": "bench-reminders-secret-0123456789abcdefghij",
}
DEFAULT_RULES = ROOT / "layers/loyalty/loyalty/domain/default_rules.json"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # the alphabet of `loyalty.ids`


def fixed_date_rules() -> Any:
    from loyalty.domain.rules import parse_rules

    document = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    document["version"] = "bench-fixed-date"
    document["expiry"] = {"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1}
    return parse_rules(document)


def member_id(n: int, *, due: bool) -> str:
    """Ten characters whichever the kind, so every clone's items are the size of its template's."""
    return f"{'due' if due else 'mbr'}{n:07d}"


# ---- counting what the client does (cheap: no extra calls, so timed members are not slowed)


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    index_rows: int = 0  # rows returned by Queries of ByNextExpiry
    items_read: int = 0  # items returned by the table's Queries, GetItem, BatchGetItem


class CallCounter:
    """Counts the calls of the store's client and the items they return, into `current`."""

    def __init__(self, client: Any) -> None:
        self.current: Tally | None = None
        self._lock = threading.Lock()
        client.meta.events.register("provide-client-params.dynamodb", self._keep)
        client.meta.events.register("after-call.dynamodb", self._count)

    @contextmanager
    def counting(self) -> Iterator[Tally]:
        tally = Tally()
        self.current = tally
        try:
            yield tally
        finally:
            self.current = None

    @staticmethod
    def _keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["scale-index"] = params.get("IndexName")

    def _count(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        tally = self.current
        if tally is None:
            return
        with self._lock:
            tally.calls[model.name] += 1
            if model.name in ("Query", "Scan"):
                returned = int(parsed.get("Count", 0))
                if context.get("scale-index"):
                    tally.index_rows += returned
                else:
                    tally.items_read += returned
            elif model.name == "GetItem":
                tally.items_read += 1 if parsed.get("Item") else 0
            elif model.name == "BatchGetItem":
                tally.items_read += sum(len(items) for items in parsed.get("Responses", {}).values())


class MemoryQueue:
    """A `MessageQueue` that keeps the bodies (SendMessageBatch's place in the real run)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.batches = 0
        self._lock = threading.Lock()

    def send(self, bodies: Sequence[str]) -> None:
        with self._lock:
            self.bodies.extend(bodies)
            self.batches += 1


# ---- seeding


def seed_templates(rules: Any) -> dict[str, str]:
    """One member of each kind, enrolled and credited through the store: {template id: kind}."""
    from loyalty.domain.earning import Purchase
    from loyalty.domain.ledger import Actor
    from loyalty.store import members, points

    partner = Actor("partner", "bench-pos")
    templates = {member_id(0, due=True): "due", member_id(0, due=False): "later"}
    for template, kind in templates.items():
        profile = {"email": f"{template}@example.com", "name": "Anne", "locale": "en", "emailOptIn": True}
        members.enrol_or_update(template, profile, actor=partner, now=ENROLLED)
        for n, bought in enumerate(DUE_PURCHASES if kind == "due" else LATER_PURCHASES):
            purchase = Purchase(amount=Decimal("42.90"), currency="EUR", occurred_at=bought, channel="store")
            points.earn(template, f"{template}-p{n:02d}", purchase, actor=partner, rules=rules, now=bought)
    return templates


def template_items(client: Any, template: str) -> list[dict[str, Any]]:
    """Every item the template's enrolment and purchases wrote: its partition and its guards."""
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=TABLE):
        found += [item for item in page["Items"] if template in item["pk"]["S"]]
    return found


class Cloner:
    """A member's items from its template's: the member id, entry ids and shard renewed."""

    def __init__(self, template: str, items: list[dict[str, Any]], shards: int) -> None:
        self.template = template
        self.text = json.dumps(items)
        self.entry_ids = sorted(
            {item["entryId"]["S"] for item in items if item.get("itemType", {}).get("S") == "ledger"}
        )
        self.shards = shards
        self.bytes = len(self.text)

    def clone(self, new_id: str) -> list[dict[str, Any]]:
        from loyalty.store import keys

        text = self.text.replace(self.template, new_id)
        for old in self.entry_ids:
            # Same time part, new random part (`led_` + 10 + 16 characters, as `loyalty.ids`).
            text = text.replace(old, old[:-16] + "".join(secrets.choice(CROCKFORD) for _ in range(16)))
        items: list[dict[str, Any]] = json.loads(text)
        for item in items:
            if "gsi1pk" in item:
                item["gsi1pk"] = {"S": keys.expiry_shard(new_id, self.shards)}
        return items


def write_items(client: Any, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        pending: dict[str, Any] = {TABLE: requests}
        pause = 0.05
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if pending:
                time.sleep(pause)
                pause = min(1.0, pause * 2)


def seed_clones(endpoint: str, cloners: dict[str, Cloner], population: list[tuple[str, str]]) -> int:
    """Write every member of `population` ((id, kind)) as a clone of its kind's template."""
    local = threading.local()

    def client() -> Any:
        if not hasattr(local, "client"):
            local.client = boto3.client("dynamodb", endpoint_url=endpoint)
        return local.client

    def write(chunk: list[tuple[str, str]]) -> int:
        items = [item for new_id, kind in chunk for item in cloners[kind].clone(new_id)]
        write_items(client(), items)
        return len(items)

    chunks = [population[start : start + 100] for start in range(0, len(population), 100)]
    with ThreadPoolExecutor(max_workers=SEED_THREADS) as pool:
        return sum(pool.map(write, chunks))


def check_clones(ids: list[str]) -> list[str]:
    """Read clones back through the store: balance = Σ remaining lots, 10 lots, the right shard."""
    from loyalty.settings import settings
    from loyalty.store import keys
    from loyalty.store.models import WalletItem
    from loyalty.store.wallet import read_wallet

    problems = []
    for checked in ids:
        snapshot = read_wallet(checked)
        if snapshot is None:
            problems.append(f"{checked}: no wallet")
            continue
        lots = snapshot.lots()
        total = sum(lot.remaining for lot in lots)
        if total != snapshot.wallet.available or len(lots) != LOTS_PER_MEMBER:
            problems.append(f"{checked}: balance {snapshot.wallet.available}, {len(lots)} lots of {total}")
        wallet = WalletItem.get(keys.member_pk(checked), keys.wallet_sk())
        if wallet.gsi1pk != keys.expiry_shard(checked, settings().expiry_shards):
            problems.append(f"{checked}: ByNextExpiry row in {wallet.gsi1pk}")
        if not str(wallet.gsi1sk).endswith(f"#{checked}"):
            problems.append(f"{checked}: ByNextExpiry sort key {wallet.gsi1sk}")
    return problems


# ---- measuring


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summed(measurements: Sequence[Measurement]) -> dict[str, Any]:
    calls: Counter[str] = Counter()
    for measurement in measurements:
        calls.update(measurement.calls)
    return {
        "count": len(measurements),
        "calls": dict(calls),
        "rru": sum(m.rru for m in measurements),
        "wru": sum(m.wru + m.gsi_wru for m in measurements),  # the recorder keeps the index apart
        "gsi_wru": sum(m.gsi_wru for m in measurements),
        "largest": max((m.largest_written for m in measurements), default=0),
        "wallet": max((m.wallet_size or 0 for m in measurements), default=0),
        "notes": sorted({note for m in measurements for note in m.notes}),
        "distinct": sorted({(m.call_count, m.rru, m.wru) for m in measurements}),
    }


def run_messages(
    queue: MemoryQueue,
    rules: Any,
    recorder: Recorder,
    counter: CallCounter,
    *,
    price_every: int,
) -> dict[str, Any]:
    """`process_message` for every message; each member counted, and priced or timed."""
    from loyalty.runs import worker
    from loyalty.runs.fanout import RunMessage
    from loyalty.store import runs as run_store

    process_member = worker.process_member
    add_progress = run_store.add_progress
    priced: list[Measurement] = []
    progress: list[Measurement] = []
    seconds: list[float] = []
    cpu: list[float] = []
    tallies: list[Tally] = []
    counts: Counter[str] = Counter()
    seen = 0

    def each_member(*args: Any, **kwargs: Any) -> Any:
        nonlocal seen
        seen += 1
        with counter.counting() as tally:
            if seen % price_every == 0:
                with recorder.recording() as measurement:
                    result = process_member(*args, **kwargs)
                priced.append(measurement)
            else:
                started, used = time.perf_counter(), time.process_time()
                result = process_member(*args, **kwargs)
                seconds.append(time.perf_counter() - started)
                cpu.append(time.process_time() - used)
        tallies.append(tally)
        return result

    def each_progress(*args: Any, **kwargs: Any) -> Any:
        with recorder.recording() as measurement:
            result = add_progress(*args, **kwargs)
        progress.append(measurement)
        return result

    started = time.perf_counter()
    with (
        mock.patch.object(worker, "process_member", each_member),
        mock.patch.object(run_store, "add_progress", each_progress),
    ):
        for body in queue.bodies:
            counts.update(worker.process_message(RunMessage.from_json(body), rules=rules))
    elapsed = time.perf_counter() - started
    calls: Counter[str] = Counter()
    for tally in tallies:
        calls.update(tally.calls)
    return {
        "members": seen,
        "messages": len(queue.bodies),
        "counts": dict(counts),
        "priced": summed(priced),
        "progress": summed(progress),
        "seconds": seconds,
        "cpu": cpu,
        "elapsed": elapsed,
        "calls": dict(calls),
        "items_read": sum(tally.items_read for tally in tallies),
    }


def fan_out(kind: Any, as_of: datetime, rules: Any, *, threads: int) -> tuple[MemoryQueue, Any, float]:
    from loyalty.runs.fanout import start_run
    from loyalty.settings import settings

    queue = MemoryQueue()
    started = time.perf_counter()
    result = start_run(
        kind,
        as_of,
        rules=rules,
        queue=queue,
        shards=settings().expiry_shards,
        now=datetime.now(UTC),
        threads=threads,
    )
    return queue, result, time.perf_counter() - started


def measure_fan_out(
    kind: Any, as_of: datetime, rules: Any, recorder: Recorder, counter: CallCounter
) -> tuple[MemoryQueue, dict[str, Any]]:
    """Priced once (one thread: the recorder keeps one measurement at a time), then timed as the
    function runs it (16 threads), several times: nothing it does changes a member."""
    from loyalty.runs.fanout import PAGING_THREADS

    with counter.counting() as tally, recorder.recording() as measurement:
        queue, result, _ = fan_out(kind, as_of, rules, threads=1)
    timed = [fan_out(kind, as_of, rules, threads=PAGING_THREADS)[2] for _ in range(FANOUT_REPEATS)]
    figures = {
        "members": result.members,
        "messages": result.messages,
        "batches": queue.batches,
        "index_rows": tally.index_rows,
        "calls": dict(tally.calls),
        "priced": summed([measurement]),
        "seconds": timed,
    }
    return queue, figures


def measure_wide_fan_out(rules: Any, counter: CallCounter) -> dict[str, Any]:
    """A fan-out that lists every member of the table (as-of after every expiry): what one index
    row costs the start function in wall-clock and CPU time (the Python process only: DynamoDB
    Local runs in its own), and the size of an index row as DynamoDB bills it."""
    from bench import billing
    from loyalty.runs.fanout import PAGING_THREADS
    from loyalty.runs.jobs import RunKind

    runs = []
    for _ in range(2):
        cpu = time.process_time()
        with counter.counting() as tally:
            queue, result, seconds = fan_out(RunKind.EXPIRY, EVERYTHING_DUE, rules, threads=PAGING_THREADS)
        runs.append(
            {
                "rows": tally.index_rows,
                "members": result.members,
                "messages": result.messages,
                "queries": tally.calls["Query"],
                "seconds": seconds,
                "cpu": time.process_time() - cpu,
                "message_bytes": max(len(body.encode()) for body in queue.bodies),
            }
        )
    from loyalty.settings import settings
    from loyalty.store import keys

    client = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    rows = client.query(
        TableName=settings().table_name,
        IndexName="ByNextExpiry",
        KeyConditionExpression="gsi1pk = :shard",
        ExpressionAttributeValues={":shard": {"S": keys.expiry_shard_key(0)}},
        Limit=20,
    )["Items"]
    return {"runs": runs, "row_bytes": max(billing.item_size(row) for row in rows)}


# ---- reminders


@contextmanager
def emulated_ses() -> Iterator[Counter[str]]:
    """SES under moto, as tests/integration/test_reminders_store.py has it; counts SES calls."""
    from moto import mock_aws

    from loyalty.notify import notify_config
    from loyalty.notify import ses as ses_module

    os.environ.update(EMAIL_ENVIRONMENT)
    notify_config.cache_clear()
    ses_module.ses_client.cache_clear()
    ses_module.default_sender.cache_clear()
    calls: Counter[str] = Counter()
    with mock_aws():
        boto3.client("sesv2").create_email_identity(EmailIdentity=EMAIL_ENVIRONMENT["SENDER_ADDRESS"])

        def count(model: Any, **_: Any) -> None:
            calls[model.name] += 1

        ses_module.ses_client().meta.events.register("before-call.sesv2", count)
        yield calls


def measure_reminders(rules: Any, recorder: Recorder, counter: CallCounter) -> list[dict[str, Any]]:
    from loyalty.runs.jobs import RunKind

    passes = []
    with emulated_ses() as ses_calls:
        for _ in range(2):
            before = Counter(ses_calls)
            queue, fanned = measure_fan_out(RunKind.REMINDERS, REMINDER_AS_OF, rules, recorder, counter)
            worked = run_messages(queue, rules, recorder, counter, price_every=1)
            sent = ses_calls["SendEmail"] - before["SendEmail"]
            passes.append({"fan_out": fanned, "work": worked, "send_email": sent})
    return passes


# ---- one table, in a child process


def measure(scale: int) -> dict[str, Any]:
    from loyalty.runs.jobs import RunKind
    from loyalty.settings import settings
    from loyalty.store.client import dynamodb

    rules = fixed_date_rules()
    with local_table() as endpoint:
        client = boto3.client("dynamodb", endpoint_url=endpoint)
        started = time.perf_counter()
        templates = seed_templates(rules)
        cloners = {
            kind: Cloner(template, template_items(client, template), settings().expiry_shards)
            for template, kind in templates.items()
        }
        members = MEMBERS * scale
        population = [(member_id(n, due=True), "due") for n in range(1, DUE_MEMBERS)]
        population += [(member_id(n, due=False), "later") for n in range(1, members - DUE_MEMBERS)]
        written = seed_clones(endpoint, cloners, population)
        seeded = time.perf_counter() - started
        items = written + sum(len(json.loads(cloner.text)) for cloner in cloners.values())
        problems = check_clones(
            [member_id(n, due=True) for n in (1, DUE_MEMBERS - 1)]
            + [member_id(n, due=False) for n in (1, members - DUE_MEMBERS - 1)]
        )

        hooked = dynamodb()
        recorder = Recorder(hooked, endpoint)
        counter = CallCounter(hooked)
        wide = measure_wide_fan_out(rules, counter)
        reminders = measure_reminders(rules, recorder, counter)
        queue, fanned = measure_fan_out(RunKind.EXPIRY, EXPIRY_AS_OF, rules, recorder, counter)
        worked = run_messages(queue, rules, recorder, counter, price_every=PRICED_EVERY)
        again, _, _ = fan_out(RunKind.EXPIRY, EXPIRY_AS_OF, rules, threads=16)
        left = check_expired([member_id(n, due=True) for n in range(DUE_MEMBERS)])
    return {
        "scale": scale,
        "members": members,
        "lots": members * LOTS_PER_MEMBER,
        "items": items,
        "seed_seconds": seeded,
        "clone_problems": problems,
        "template_bytes": {kind: cloner.bytes for kind, cloner in cloners.items()},
        "wide_fan_out": wide,
        "reminders": reminders,
        "fan_out": fanned,
        "work": worked,
        "second_run_members": sum(len(json.loads(body)["members"]) for body in again.bodies),
        "due_left": left,
    }


def check_expired(ids: list[str]) -> int:
    """Points left on due members after the run (0 when every due lot expired)."""
    from loyalty.store.wallet import read_wallet

    left = 0
    for checked in ids:
        snapshot = read_wallet(checked)
        left += snapshot.wallet.available if snapshot is not None else 0
    return left


# ---- the parent: one child per scale, one after the other, then the table


def run_child(scale: int) -> Child:
    import subprocess

    process = subprocess.run(
        [sys.executable, "-m", "bench.expiry_scale", "--child", str(scale)],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    return Child(process.returncode, process.stdout, process.stderr)


def report(scales: Sequence[int] = (1,)) -> None:
    results: dict[int, dict[str, Any]] = {}
    for scale in scales:
        print(
            f"expiry run at scale {scale}: seeding {MEMBERS * scale:,} members, then the runs...", flush=True
        )
        started = time.perf_counter()
        child = run_child(scale)
        result = child.result()
        if result is None:
            print(f"\nexpiry run at scale {scale}:")
            child.print_failure()
            return
        result["child_seconds"] = time.perf_counter() - started
        results[scale] = result
    print_report(results)
    print_shopper()


def per(value: float, count: int) -> float:
    return value / count if count else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def print_report(results: dict[int, dict[str, Any]]) -> None:
    scales = sorted(results)
    width = 44
    print(
        "\nScheduled runs at scale (issue #8), DynamoDB Local; fixedDate program (31 December, 1 year after)"
    )
    print("  Each member holds 10 lots, one a month (10 lot pages); the due ones earned them in 2027 and")
    print("  all 10 expire at the end of 31 December 2028. Reminder run 1 December 2028 06:00 Paris, twice;")
    print("  expiry run 1 January 2029 06:00 Paris. Request units by AWS's rules (bench/billing.py) from the")
    print("  items' measured sizes; transactions twice; WRU includes the ByNextExpiry writes (GSI column).")

    def line(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        print(f"  {label:<50}" + "".join(f"{cell(results[s]):>{width}}" for s in scales))

    line("", lambda r: f"scale {r['scale']}")
    line("members / lots", lambda r: f"{r['members']:,} / {r['lots']:,}")
    line("items written to seed", lambda r: f"{r['items']:,}")
    line("seeding time (2 through the store, rest cloned)", lambda r: f"{r['seed_seconds']:.0f} s")
    line("clones read back (balance = Σ lots)", lambda r: "ok" if not r["clone_problems"] else "WRONG")
    line("whole child (seed + runs)", lambda r: f"{r['child_seconds']:.0f} s")

    print("\n  Expiry run: fan-out (start_run, 64 shards of ByNextExpiry, in-memory queue)")
    line("members enqueued / messages / batches", lambda r: _fan(r["fan_out"]))
    line("index rows read (ByNextExpiry)", lambda r: f"{r['fan_out']['index_rows']}")
    line("calls", lambda r: _calls(r["fan_out"]["calls"]))
    line("RRU / WRU", lambda r: f"{r['fan_out']['priced']['rru']:.1f} / {r['fan_out']['priced']['wru']}")
    line("Lambda-like wall clock, 16 threads (med/p90 of 5)", lambda r: _spread(r["fan_out"]["seconds"]))

    print("\n  A fan-out listing every member (as-of 2031: all due; nothing is processed), 16 threads")
    line(
        "index rows / Query calls / messages",
        lambda r: _wide(r, "rows") + f" / {_wide(r, 'queries')} / {_wide(r, 'messages')}",
    )
    line("wall clock per 1,000 rows (best of 2)", lambda r: ms(_wide_best(r, "seconds")))
    line("CPU of the Python process per 1,000 rows", lambda r: ms(_wide_best(r, "cpu")))
    line(
        "index row size (billed) / largest message",
        lambda r: f"{r['wide_fan_out']['row_bytes']} B / {_wide(r, 'message_bytes')} B",
    )

    print("\n  Expiry run: the workers (process_message for every message)")
    line("due members processed / expired", lambda r: _done(r["work"]))
    line("lots / points expired", lambda r: _expired(r["work"]))
    line("index rows read per due member", lambda r: f"{_index_per_member(r):.2f}")
    line("items read by the member's queries, per member", lambda r: f"{_items_per_member(r):.2f}")
    line("items read per due lot (budget <= 2)", lambda r: _per_lot(r))
    line("calls per due member", lambda r: _calls(_per_member_calls(r["work"])))
    line("RRU / WRU per due member (priced: 1 in 5)", lambda r: _units(r["work"]["priced"]))
    line(
        "  of which ByNextExpiry WRU",
        lambda r: f"{per(r['work']['priced']['gsi_wru'], r['work']['priced']['count']):.1f}",
    )
    line("largest item written", lambda r: f"{r['work']['priced']['largest']:,} B")
    line("run record per message: calls, WRU", lambda r: _progress(r["work"]["progress"]))
    line("time per due member (median / p90)", lambda r: _spread(r["work"]["seconds"]))
    line("  of which CPU of the Python process", lambda r: _spread(r["work"]["cpu"]))
    line("  members timed", lambda r: f"{len(r['work']['seconds'])}")
    line(
        "second fan-out enqueues / points left on due",
        lambda r: f"{r['second_run_members']} / {r['due_left']}",
    )

    print("\n  Reminder run (SES under moto), run twice at the same instant")
    for index, label in enumerate(("first", "second")):
        line(f"{label}: members enqueued / emails sent", lambda r, i=index: _reminded(r["reminders"][i]))
        line(
            f"{label}: SES SendEmail calls per member sent",
            lambda r, i=index: _ses_per_sent(r["reminders"][i]),
        )
        line(
            f"{label}: calls per member",
            lambda r, i=index: _calls(_per_member_calls(r["reminders"][i]["work"])),
        )
        line(f"{label}: RRU / WRU per member", lambda r, i=index: _units(r["reminders"][i]["work"]["priced"]))

    if len(scales) == 2:
        small, large = (results[s] for s in scales)
        print(
            f"\n  Ratio scale {scales[1]} / scale {scales[0]}, per due member"
            " (about 1 when the table's size costs nothing)"
        )
        ratios = {
            "calls": (_total_calls(large["work"]) / large["work"]["members"])
            / (_total_calls(small["work"]) / small["work"]["members"]),
            "items read per due lot": _per_lot_value(large) / _per_lot_value(small),
            "RRU": _unit(large, "rru") / _unit(small, "rru"),
            "WRU": _unit(large, "wru") / _unit(small, "wru"),
            "time (median; wall clock of a shared machine)": statistics.median(large["work"]["seconds"])
            / statistics.median(small["work"]["seconds"]),
            "time (p90)": percentile(large["work"]["seconds"], 0.9)
            / percentile(small["work"]["seconds"], 0.9),
            "Python CPU (median)": statistics.median(large["work"]["cpu"])
            / statistics.median(small["work"]["cpu"]),
            "fan-out time (median)": statistics.median(large["fan_out"]["seconds"])
            / statistics.median(small["fan_out"]["seconds"]),
        }
        for name, ratio in ratios.items():
            print(f"  {name:<50}{ratio:>{width}.2f}")
    for result in results.values():
        for problem in result["clone_problems"]:
            print(f"  clone problem (scale {result['scale']}): {problem}")
        for note in result["work"]["priced"]["notes"]:
            print(f"  note (scale {result['scale']}): {note}")


def _wide(result: dict[str, Any], name: str) -> str:
    return f"{result['wide_fan_out']['runs'][0][name]:,}"


def _wide_best(result: dict[str, Any], name: str) -> float:
    return min(run[name] / run["rows"] * 1000 for run in result["wide_fan_out"]["runs"] if run["rows"])


def _fan(figures: dict[str, Any]) -> str:
    return f"{figures['members']} / {figures['messages']} / {figures['batches']}"


def _calls(calls: dict[str, float]) -> str:
    return " + ".join(f"{count:.3g} {name}" for name, count in sorted(calls.items())) or "-"


def _spread(seconds: Sequence[float]) -> str:
    if not seconds:
        return "-"
    return f"{ms(statistics.median(seconds))} / {ms(percentile(seconds, 0.9))}"


def _done(work: dict[str, Any]) -> str:
    return f"{work['members']} / {work['counts'].get('membersExpired', 0)}"


def _expired(work: dict[str, Any]) -> str:
    return f"{work['counts'].get('lotsExpired', 0)} / {work['counts'].get('pointsExpired', 0):,}"


def _due_lots(result: dict[str, Any]) -> int:
    return int(result["work"]["counts"].get("lotsExpired", 0))


def _index_per_member(result: dict[str, Any]) -> float:
    return per(result["fan_out"]["index_rows"], result["work"]["members"])


def _items_per_member(result: dict[str, Any]) -> float:
    return per(result["work"]["items_read"], result["work"]["members"])


def _per_lot_value(result: dict[str, Any]) -> float:
    return per(result["fan_out"]["index_rows"] + result["work"]["items_read"], _due_lots(result))


def _per_lot(result: dict[str, Any]) -> str:
    value = _per_lot_value(result)
    return f"{value:.2f} ({'ok' if value <= 2 else 'OVER'})"


def _per_member_calls(work: dict[str, Any]) -> dict[str, float]:
    return {name: count / work["members"] for name, count in work["calls"].items()} if work["members"] else {}


def _total_calls(work: dict[str, Any]) -> int:
    return sum(work["calls"].values())


def _units(priced: dict[str, Any]) -> str:
    if not priced["count"]:
        return "-"
    return f"{per(priced['rru'], priced['count']):.1f} / {per(priced['wru'], priced['count']):.1f}"


def _unit(result: dict[str, Any], name: str) -> float:
    priced = result["work"]["priced"]
    return per(priced[name], priced["count"])


def _progress(priced: dict[str, Any]) -> str:
    return f"{per(sum(priced['calls'].values()), priced['count']):g}, {per(priced['wru'], priced['count']):g}"


def _reminded(one: dict[str, Any]) -> str:
    return f"{one['fan_out']['members']} / {one['work']['counts'].get('emailsSent', 0)}"


def _ses_per_sent(one: dict[str, Any]) -> str:
    sent = one["work"]["counts"].get("emailsSent", 0)
    if not sent:
        return f"{one['send_email']} calls, none sent"
    return f"{per(one['send_email'], sent):.2f}"


def print_shopper() -> None:
    from loyalty.domain.reminders import simulate_shopper
    from loyalty.domain.rules import default_rules

    rules = default_rules()
    print(
        "\n  A daily shopper's reminder emails per quarter, default rules (rolling 24 months; windows 30 and"
    )
    print("  7 days; at least 7 days apart), simulate_shopper over the four quarters of 2029:")
    for start in (date(2029, 1, 1), date(2029, 4, 1), date(2029, 7, 1), date(2029, 10, 1)):
        days = ((start.replace(month=start.month + 3) if start.month < 10 else date(2030, 1, 1)) - start).days
        figures = simulate_shopper(rules, shop_every_days=1, start=start, days=days)
        print(
            f"  from {start}: {figures.emails} emails in {days} days ({figures.emails_per_quarter:.1f} per"
            f" 91 days; bound {figures.bound}), {figures.reminded_last_chance}/{figures.expiry_dates}"
            f" expiry dates reminded in the last-chance window"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.expiry_scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=int, choices=(1, 10), default=1, help="10: also the 10x table")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        # Stopped by the parent (or by hand): exit normally, so that DynamoDB Local is stopped too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        hand_back(measure(arguments.child))
        return
    report((1, 10) if arguments.scale == 10 else (1,))


if __name__ == "__main__":
    main()
