"""Cost per million operations on AWS (bench/cost.py): the arithmetic and the price list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.cost import (
    Prices,
    Timing,
    Usage,
    api_usage,
    cost_per_million,
    expiry_usage,
    gb_seconds,
    lambda_duration_ms,
    load_prices,
    operation_lines,
    reminder_usage,
    template_memory_mb,
)

PRICES = Prices(
    region="us-east-1",
    as_of="2026-11-25",
    note="test",
    wru_per_million=0.625,
    rru_per_million=0.125,
    lambda_per_gb_second=0.0000133334,
    lambda_requests_per_million=0.20,
    api_requests_per_million=1.00,
    ses_per_thousand_emails=0.10,
    sqs_requests_per_million=0.40,
)


def test_the_price_list_names_its_region_and_date_and_has_every_price() -> None:
    prices = load_prices()
    assert prices.region == "us-east-1"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices.as_of)
    assert "not re-checked" in prices.note.lower()
    # The figures docs/design.md prices its night with, and the HTTP API's first tier.
    assert prices == Prices(**{**PRICES.__dict__, "as_of": prices.as_of, "note": prices.note})


def test_the_price_list_is_data() -> None:
    data = json.loads((Path(__file__).parents[2] / "bench" / "prices.json").read_text(encoding="utf-8"))
    assert {"region", "as_of", "dynamodb", "lambda", "api_gateway", "ses", "sqs"} <= data.keys()
    assert data["lambda"]["architecture"] == "arm64"


def test_memory_comes_from_the_template_globals() -> None:
    assert template_memory_mb({"Globals": {"Function": {"MemorySize": 512}}}) == 512
    assert template_memory_mb() == 1024


def test_lambda_bills_whole_milliseconds_of_gigabytes() -> None:
    assert gb_seconds(49.2, 1024) == pytest.approx(0.050)
    assert gb_seconds(50.0, 2048) == pytest.approx(0.100)


def test_cpu_is_stretched_by_the_share_of_a_vcpu_only() -> None:
    assert lambda_duration_ms(20.0, 0.0, 1024) == 20.0
    assert lambda_duration_ms(20.0, 10.0, 1769) == 20.0
    assert lambda_duration_ms(20.0, 10.0, 1024) == pytest.approx(20.0 + 10.0 * (1769 / 1024 - 1))


def test_a_million_earns_of_known_units_cost_a_known_sum() -> None:
    # 2 RRU, 10 WRU, 50 ms at 1,024 MB, one HTTP API request.
    cost = cost_per_million(api_usage(2.0, 10, 50.0, 1024), PRICES)
    assert cost.dynamodb == pytest.approx(2 * 0.125 + 10 * 0.625)  # 6.50
    assert cost.lambda_ == pytest.approx(50_000 * 0.0000133334 + 0.20)  # 0.6667 + 0.20
    assert cost.api_gateway == pytest.approx(1.00)
    assert cost.messaging == 0
    assert cost.total == pytest.approx(6.50 + 0.86667 + 1.00, abs=1e-4)


def test_emails_and_queue_requests() -> None:
    cost = cost_per_million(Usage(emails=1, sqs_requests=0.003), PRICES)
    assert cost.messaging == pytest.approx(100.0 + 0.0012)


def test_the_runs_per_million_members_due() -> None:
    expiry = cost_per_million(expiry_usage(1024), PRICES)
    # 28 WRU + 0.04 for the run's record; 1 RRU + ~0.012 for the fan-out's index rows.
    assert expiry.dynamodb == pytest.approx(28.04 * 0.625 + (1 + 98 / 8192) * 0.125)
    assert expiry.api_gateway == 0
    assert 17 < expiry.total < 19  # docs/design.md: "about $18 per million members expired"
    reminders = cost_per_million(reminder_usage(1024), PRICES)
    assert reminders.messaging == pytest.approx(100.0 + 0.0012)  # one email each: SES is the cost
    assert reminders.dynamodb == pytest.approx((2.5 + 98 / 8192) * 0.125 + 2.04 * 0.625)


def test_lines_price_the_measured_rows_of_bench_calls() -> None:
    rows = [
        {"operation": name, "rru": rru, "wru": wru}
        for name, rru, wru in (
            ("earn", 2.0, 8),
            ("redeem", 1.0, 16),
            ("transfer", 6.0, 31),
            ("balance", 0.5, 0),
        )
    ]
    timings = {
        name: Timing(wall_ms=10.0, cpu_ms=0.0, calls=3) for name in ("earn", "redeem", "transfer", "balance")
    }
    lines = operation_lines({"a": {"rows": rows}}, timings, PRICES, 1024)
    assert [line.operation for line in lines][:4] == ["earn (a)", "redeem (a)", "transfer (a)", "balance (a)"]
    balance = lines[3].cost
    assert balance.dynamodb == pytest.approx(0.0625)
    assert balance.total == pytest.approx(0.0625 + 10_000 * 0.0000133334 + 0.20 + 1.00)
    assert lines[-2].operation.startswith("expiry") and lines[-1].operation.startswith("reminder")
