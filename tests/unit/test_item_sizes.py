"""Items near DynamoDB's 400 KB limit (issue #9, observability): the store's size of an item by
AWS's rules, and the watch that counts `ItemsNearSizeLimit` for an item past 300 KB only."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from bench import billing
from loyalty.http import telemetry
from loyalty.store import sizes
from loyalty.store.sizes import NEAR_LIMIT, item_size, number_size, read_items, written_items

# ---- the size of an item


def test_a_string_counts_its_name_and_its_utf8_bytes() -> None:
    assert item_size({"name": {"S": "Léa"}}) == 4 + 4  # é is 2 bytes in UTF-8


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 1), ("12345", 4), ("001200", 2), ("12.5", 3), ("-12.50", 3), ("0.001", 2), ("1E+5", 2)],
)
def test_a_number_is_one_byte_per_two_significant_digits_plus_one(text: str, size: int) -> None:
    assert number_size(text) == size


def test_maps_and_lists_cost_three_bytes_and_one_per_element() -> None:
    # Given a lot page's map of one lot {o: 50, r: 50} and a list of two strings
    item = {"lots": {"M": {"lot_1": {"M": {"o": {"N": "50"}, "r": {"N": "50"}}}}}, "l": {"L": [{"S": "a"}]}}

    # Then: lots = 4 + 3 + (5 + (3 + (1 + 2 + 1) * 2) + 1), l = 1 + 3 + (1 + 1)
    assert item_size(item) == (4 + 3 + 5 + 3 + 8 + 1) + (1 + 3 + 2)


def test_a_binary_counts_its_raw_bytes_whether_raw_or_base64_as_in_a_request() -> None:
    raw = bytes(range(7))
    assert item_size({"b": {"B": raw}}) == item_size({"b": {"B": base64.b64encode(raw).decode()}}) == 1 + 7


def test_booleans_nulls_and_sets_follow_the_documented_rules() -> None:
    assert item_size({"ok": {"BOOL": True}, "no": {"NULL": True}}) == 3 + 3
    assert item_size({"s": {"SS": ["ab", "c"]}, "n": {"NS": ["1", "123"]}}) == (1 + 3) + (1 + 2 + 3)


def test_the_bench_bills_the_sizes_the_store_measures(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the store's sizing replaced by a marker
    monkeypatch.setattr(sizes, "item_size", lambda item: 12345)

    # Then the bench's size of an item is the store's: one implementation, not a copy kept in step
    assert billing.item_size({"pk": {"S": "x"}}) == 12345
    assert billing.item_size(None) == 0  # no item read: nothing billed by size


# ---- the items of a request and of a response


def test_a_transaction_puts_its_put_items_and_an_update_none() -> None:
    put = {"pk": {"S": "MEMBER#m-1"}, "sk": {"S": "LEDGER#000000000001"}}
    request = {"TransactItems": [{"Put": {"Item": put}}, {"Update": {"Key": put}}, {"Delete": {"Key": put}}]}

    assert list(written_items("TransactWriteItems", request)) == [put]
    assert list(written_items("PutItem", {"Item": put})) == [put]
    batch = {"RequestItems": {"t": [{"PutRequest": {"Item": put}}, {"DeleteRequest": {"Key": put}}]}}
    assert list(written_items("BatchWriteItem", batch)) == [put]
    assert list(written_items("UpdateItem", {"Key": put})) == []


def test_every_read_gives_the_items_it_returned() -> None:
    one = {"pk": {"S": "a"}}
    assert list(read_items("GetItem", {"Item": one})) == [one]
    assert list(read_items("GetItem", {})) == []
    assert list(read_items("Query", {"Items": [one, one]})) == [one, one]
    assert list(read_items("BatchGetItem", {"Responses": {"t": [one]}})) == [one]
    assert list(read_items("TransactGetItems", {"Responses": [{"Item": one}, {}]})) == [one]


# ---- the watch: a metric for an item past 300 KB, nothing below


@pytest.fixture
def emf(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Metrics published (EMF on stdout), none pending from another test."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    telemetry.metrics.clear_metrics()
    capsys.readouterr()
    yield
    telemetry.metrics.clear_metrics()


def flushed(capsys: pytest.CaptureFixture[str]) -> list[float]:
    telemetry.metrics.flush_metrics()
    values: list[float] = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"') and sizes.METRIC in line:
            values += json.loads(line)[sizes.METRIC]
    return values


def ledger_entry(reason_bytes: int) -> dict[str, Any]:
    return {
        "pk": {"S": "MEMBER#m-1"},
        "sk": {"S": "LEDGER#000000000001"},
        "itemType": {"S": "ledger"},
        "reason": {"S": "x" * reason_bytes},
    }


@pytest.fixture(autouse=True)
def nothing_logged_yet() -> None:
    sizes._LOGGED.clear()


def write(item: dict[str, Any]) -> None:
    body = json.dumps({"TransactItems": [{"Put": {"TableName": "t", "Item": item}}]}).encode()
    sizes._on_write(params={"body": body}, model=SimpleNamespace(name="TransactWriteItems"))


def test_an_item_written_past_300_kb_is_counted_and_logged_by_type_and_key(
    emf: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(telemetry.logger, "warning", lambda message, extra: logged.append(extra))
    item = ledger_entry(NEAR_LIMIT)

    write(item)

    assert flushed(capsys) == [1.0]
    assert logged == [
        {
            "itemType": "ledger",
            "pk": "MEMBER#m-1",
            "sk": "LEDGER#000000000001",
            "bytes": item_size(item),
            "limitBytes": 400 * 1024,
            "operation": "TransactWriteItems",
        }
    ]


def test_an_item_seen_again_is_counted_again_but_logged_once(
    emf: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(telemetry.logger, "warning", lambda message, extra: logged.append(extra))
    item = ledger_entry(NEAR_LIMIT)

    for _ in range(3):
        write(item)
    other = ledger_entry(NEAR_LIMIT)
    other["sk"] = {"S": "LEDGER#000000000002"}
    write(other)

    assert flushed(capsys) == [1.0] * 4
    assert [entry["sk"] for entry in logged] == ["LEDGER#000000000001", "LEDGER#000000000002"]


def test_an_item_just_under_300_kb_is_not_counted(emf: None, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an item one byte under the threshold, in a request body well over it (JSON's overhead)
    item = ledger_entry(0)
    item["reason"] = {"S": "x" * (NEAR_LIMIT - 1 - item_size(item))}
    assert item_size(item) == NEAR_LIMIT - 1

    write(item)

    assert flushed(capsys) == []


def test_a_read_response_with_an_item_past_300_kb_is_counted_and_a_small_one_costs_one_len(
    emf: None, capsys: pytest.CaptureFixture[str]
) -> None:
    big, small = ledger_entry(NEAR_LIMIT), ledger_entry(10)
    query = SimpleNamespace(name="Query")

    sizes._on_read(
        http_response=SimpleNamespace(content=b"x" * NEAR_LIMIT), parsed={"Items": [big]}, model=query
    )
    # a short body is not looked into (its item would be too small to matter)
    sizes._on_read(http_response=SimpleNamespace(content=b"{}"), parsed={"Items": [big]}, model=query)
    sizes._on_read(
        http_response=SimpleNamespace(content=b"x" * NEAR_LIMIT), parsed={"Items": [small]}, model=query
    )

    assert flushed(capsys) == [1.0]
