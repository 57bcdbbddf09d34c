"""`python -m bench.liability`: what the liability figures cost on AWS, by AWS's billing rules.

The figures' items are sized from the real code: a month of synthetic movements of a program in
steady state (earns into lots expiring 24 months on, redemptions, transfers and returns taking
from lots of the 24 months before, expiries of lots issued 24 months before), turned into figures
by `loyalty.domain.liability` and summed per period; every number is given 9 digits, the size of a
large program's totals. A stream batch of a shard writes one transaction: the marker and the
month, day, hour and minute items its movements fall in (a batch spans a minute or two). The
aggregator's CPU per record is measured on the sample stream record (`events/reports/`).

Printed: the items' sizes, one report's read units after two years, and the cost per million
movements at a few rates (the batch a shard gathers in the 5 s window, up to 1,000 records).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.billing import item_size, query_read_units, write_units
from bench.cost import load_prices, template_memory_mb
from loyalty.domain.ledger import EntryType
from loyalty.domain.liability import Level, LotPoints, Movement, by_period, figures_of
from loyalty.reports.aggregator import read_record

MONTH_START = datetime(2028, 3, 1, tzinfo=UTC)
MOVEMENTS = 20_000  # one month's, spread over its days: enough to touch every figure a month has
BIG = "123456789"  # every figure's value: 9 digits
WINDOW_SECONDS = 5
MAX_BATCH = 1_000
# Stream shards follow the table's partitions: a few for a small program, more at a peak (assumed).
SHARDS_AT_RATE = {1: 1, 10: 1, 100: 2, 1_000: 4, 5_000: 10}
DYNAMODB_CALL_MS = 12.0  # one TransactWriteItems, as the store's transactions take on AWS (assumed)
SAMPLE = Path(__file__).resolve().parents[1] / "events" / "reports" / "ledger-stream-batch.json"


def _lot(expires: date, issued: date, kind: str = "e") -> str:
    return f"{expires:%Y%m%d}-{issued:%Y%m%d}-{kind}"


def month_of_movements(rng: random.Random) -> Iterator[Movement]:
    """A steady-state month: 70% earns, 20% redemptions, 4% transfers, 3% returns, 3% expiries."""
    for _ in range(MOVEMENTS):
        at = MONTH_START + timedelta(seconds=rng.randrange(31 * 86400))
        today = at.date()
        past = today - timedelta(days=rng.randrange(1, 730))
        old = _lot(past + timedelta(days=730), past)
        kind = rng.random()
        if kind < 0.70:
            lots: tuple[LotPoints, ...] = (LotPoints(_lot(today + timedelta(days=730), today), 40, None),)
            yield Movement(EntryType.EARN, 40, at, at, lots)
        elif kind < 0.90:
            yield Movement(
                EntryType.REDEEM, -60, at, at, (LotPoints(old, 30, None), LotPoints(old, 30, None))
            )
        elif kind < 0.94:
            yield Movement(EntryType.TRANSFER_OUT, -100, at, at, (LotPoints(old, 100, None),))
            yield Movement(
                EntryType.TRANSFER_IN,
                100,
                at,
                at,
                (LotPoints(_lot(past + timedelta(730), today, "t"), 100, None),),
            )
        elif kind < 0.97:
            yield Movement(EntryType.REVERSAL, -20, at, at, (LotPoints(old, 20, None),), owed_added=5)
        else:
            issued = today - timedelta(days=730)
            expires = datetime(today.year, today.month, today.day, 23, tzinfo=UTC)
            yield Movement(EntryType.EXPIRY, -15, at, at, (LotPoints(_lot(today, issued), 15, expires),))


def period_item(level: Level, label: str, figures: dict[str, int]) -> dict[str, Any]:
    """The item as DynamoDB stores it, each figure at 9 digits."""
    item: dict[str, Any] = {
        "pk": {"S": "LIABILITY"},
        "sk": {"S": f"{level}#{label}"},
        "itemType": {"S": "liability"},
    }
    item.update({name: {"N": BIG} for name in figures})
    return item


def marker_item() -> dict[str, Any]:
    return {
        "pk": {"S": "LIABILITY"},
        "sk": {"S": "APPLIED#c81e728d9d4c2f636f067f89cc148621"},
        "itemType": {"S": "liabilityApplied"},
        "records": {"N": "1000"},
        "ttl": {"N": "1795600000"},
    }


def cpu_ms_per_record(rounds: int = 2_000) -> float:
    records = json.loads(SAMPLE.read_text(encoding="utf-8"))["Records"]
    started = time.process_time()
    for _ in range(rounds):
        for raw in records:
            by_period(read_record(raw).figures)
    return (time.process_time() - started) * 1000 / (rounds * len(records))


def report() -> None:
    prices = load_prices()
    memory_mb = template_memory_mb()
    periods = by_period(
        figure for movement in month_of_movements(random.Random(7)) for figure in figures_of(movement)
    )
    sizes: dict[Level, list[int]] = {level: [] for level in Level}
    for (level, label), figures in periods.items():
        sizes[level].append(item_size(period_item(level, label, figures)))
    largest = {level: max(values) for level, values in sizes.items()}
    marker = item_size(marker_item())
    print(f"liability figures, by AWS's billing rules ({prices.region} list prices as of {prices.as_of})")
    print("  period items after a month of a steady program (largest; figures at 9 digits):")
    for level, name in (
        (Level.MONTH, "month"),
        (Level.DAY, "day"),
        (Level.HOUR, "hour"),
        (Level.MINUTE, "minute"),
    ):
        print(f"    {name:<7} {largest[level]:>6,} B   ({len(periods_of(periods, level))} items)")
    # A batch: the marker and the month, day, hour and one or two minutes, each a transactional write
    batch_wru = (
        write_units("Put", 0, marker, transactional=True)
        + sum(write_units("Update", largest[level], largest[level], transactional=True) for level in Level)
        + write_units("Update", largest[Level.MINUTE], largest[Level.MINUTE], transactional=True)
    )
    print(f"  one stream batch (marker, month, day, hour, two minutes): {batch_wru} write units")
    # A report after two years: 24 months, ≤ 30 days, ≤ 23 hours, ≤ 59 minutes, one Query a level
    report_rru = (
        query_read_units([largest[Level.MONTH]] * 24, consistent=True)
        + query_read_units([largest[Level.DAY]] * 30, consistent=True)
        + query_read_units([largest[Level.HOUR]] * 23, consistent=True)
        + query_read_units([largest[Level.MINUTE]] * 59, consistent=True)
    )
    print(
        f"  one report after two years (4 Queries, ~136 items): {report_rru:.0f} read units,"
        f" ${report_rru * prices.rru_per_million:.2f} per million reports of DynamoDB"
    )
    cpu = cpu_ms_per_record()
    print(f"  aggregator CPU per record (read the image, its figures, by period): {cpu * 1000:.0f} µs")
    print(f"  per million movements ({WINDOW_SECONDS} s batching window, batches of at most {MAX_BATCH:,}):")
    header = ("movements/s", "shards", "batch", "transactions", "DynamoDB $", "Lambda $", "total $")
    print("    " + " ".join(f"{name:>12}" for name in header))
    for rate, shards in SHARDS_AT_RATE.items():
        batch = max(1, min(MAX_BATCH, round(rate / shards * WINDOW_SECONDS)))
        transactions = 1_000_000 / batch
        dynamodb = transactions * batch_wru * prices.wru_per_million / 1_000_000
        duration_ms = DYNAMODB_CALL_MS + batch * cpu * max(1.0, 1769 / memory_mb)
        gb_s = transactions * duration_ms / 1000 * memory_mb / 1024
        lambda_cost = (
            gb_s * prices.lambda_per_gb_second + transactions * prices.lambda_requests_per_million / 1e6
        )
        row = (
            f"{rate:,}",
            f"{shards}",
            f"{batch:,}",
            f"{transactions:,.0f}",
            f"{dynamodb:.2f}",
            f"{lambda_cost:.2f}",
        )
        print("    " + " ".join(f"{cell:>12}" for cell in row) + f" {dynamodb + lambda_cost:>12.2f}")
    print("  (stream reads by Lambda are free; the stream itself costs nothing more for Lambda triggers)")


def periods_of(periods: dict[tuple[Level, str], dict[str, int]], level: Level) -> list[str]:
    return [label for (each, label) in periods if each is level]


if __name__ == "__main__":
    report()
