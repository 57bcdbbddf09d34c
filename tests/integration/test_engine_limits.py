"""The engine's worst cases on DynamoDB Local: no cliff for a business card, and no writer
erases what it does not own.

A business card makes many purchases a day with long references for two years. Lots are
merged per (expiry date, day of issue, kind), so what it holds grows with days, not with
purchases: set LOYALTY_CARD_PURCHASES_PER_DAY=30 (`make test-scale`) for the full 30 a day
(~22,000 purchases, ~6 minutes per policy); the default suite runs 2 a day.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from bench.billing import item_size
from loyalty.domain.earning import Purchase
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import ProgramRules, parse_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.store import members, points
from loyalty.store.wallet import read_wallet
from tests.integration.conftest import Api, lots_of

PARTNER = Actor("partner", "pos-business")
PER_DAY = int(os.environ.get("LOYALTY_CARD_PURCHASES_PER_DAY", "2"))
START = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
DAYS = 729  # every day of 2025 and 2026 but the last: all points still live at the end
REFERENCE = "R" * 118  # + 10 digits: 128-character purchase references


def rules_with(expiry: dict[str, Any]) -> ProgramRules:
    document = json.loads(default_rules_text())
    return parse_rules({**document, "version": f"card-{expiry['policy']}", "expiry": expiry})


def stored_sizes(member_id: str) -> dict[str, int]:
    """Each item's size by DynamoDB's rules (bench/billing.py), by sort key."""
    client = boto3.client("dynamodb")
    items = client.query(
        TableName=os.environ["TABLE_NAME"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :wallet)",
        ExpressionAttributeValues={":pk": {"S": f"MEMBER#{member_id}"}, ":wallet": {"S": "WALLET"}},
    )["Items"]
    return {item["sk"]["S"]: item_size(item) for item in items}


def business_card(table: Any, member_id: str, rules: ProgramRules) -> int:
    """Two years of PER_DAY purchases a day, each on its own day's clock; returns points earned."""
    members.enrol_or_update(
        member_id,
        {"email": "card@example.com", "name": None, "locale": "en", "emailOptIn": False},
        actor=PARTNER,
        now=START - timedelta(days=1),
    )
    earned = 0
    for day in range(DAYS):
        for number in range(PER_DAY):
            at = START + timedelta(days=day, minutes=7 * number)
            purchase = Purchase(Decimal("17.80"), "EUR", at, "store")
            reference = f"{member_id}-{REFERENCE}"[:118] + f"{day * 100 + number:010d}"
            result = points.earn(member_id, reference, purchase, actor=PARTNER, rules=rules, now=at)
            earned += result.points
    return earned


def stored(table: Any, member_id: str, prefix: str = "") -> list[dict[str, Any]]:
    """The member's items whose sort key starts with `prefix` (every page of the Query)."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :prefix AND :end",
        "ExpressionAttributeValues": {
            ":pk": f"MEMBER#{member_id}",
            ":prefix": prefix or " ",
            ":end": prefix + "~",
        },
    }
    while True:
        response = table.query(**request)
        items += response["Items"]
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "expiry",
    [
        {"policy": "rolling", "months": 24, "endOfMonth": False},
        {"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1},
    ],
    ids=["rolling-24-months", "fixed-date-31-december"],
)
def test_a_business_card_keeps_earning_and_redeems_everything_in_one_request(
    table: Any, member_id: str, expiry: dict[str, Any]
) -> None:
    # Given a business card that bought PER_DAY times a day for two years, 128-character references
    rules = rules_with(expiry)
    earned = business_card(table, member_id, rules)
    now = START + timedelta(days=DAYS, hours=1)

    # Then it holds one lot per day of issue, in small pages, and a wallet under 1 KB
    snapshot = read_wallet(member_id)
    assert snapshot is not None
    assert snapshot.wallet.available == earned
    assert len(snapshot.lots()) == DAYS
    sizes = stored_sizes(member_id)
    pages = [size for sort_key, size in sizes.items() if sort_key.startswith("WALLET#LOTS#")]
    assert len(pages) <= 25
    assert max(pages) < 4_096
    assert sizes["WALLET"] < 1_024

    # When it redeems 100 points, then everything that is left, one request each
    member = Actor("member", member_id)
    first = points.redeem(member_id, 100, idempotency_key="k-100", actor=member, rules=rules, now=now)
    everything = earned - 100
    last = points.redeem(member_id, everything, idempotency_key="k-all", actor=member, rules=rules, now=now)

    # Then both are taken soonest-expiring first, nothing is left, and no page remains
    assert first.balance == everything
    assert last.balance == 0
    assert sum(take.points for take in last.lots) == everything
    expiries = [take.expires_at for take in (*first.lots, *last.lots)]
    assert expiries == sorted(expiries)
    assert not stored(table, member_id, "WALLET#LOTS#")

    # And it keeps earning
    purchase = Purchase(Decimal("10"), "EUR", now, "store")
    again = points.earn(member_id, f"{member_id}-after", purchase, actor=PARTNER, rules=rules, now=now)
    assert again.balance == 10


def test_no_writer_erases_an_attribute_it_does_not_own(api: Api, table: Any, enrolled: str) -> None:
    # Given a member with points on two days, and a foreign attribute on every item it has
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    today = datetime.now(UTC).isoformat()
    first = api.earn(enrolled, transactionId=f"{enrolled}-a", amount="50", occurredAt=yesterday)
    assert first.status == 201
    assert api.earn(enrolled, transactionId=f"{enrolled}-b", amount="40", occurredAt=today).status == 201
    assert api.redeem(enrolled, 5).status == 201
    tagged = stored(table, enrolled)
    for item in tagged:
        table.update_item(
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET ownedByAnother = :v",
            ExpressionAttributeValues={":v": "keep me"},
        )

    # When the member earns (a new lot, and a top-up of today's), redeems and updates its profile
    assert api.earn(enrolled, transactionId=f"{enrolled}-c", amount="30", occurredAt=today).status == 201
    assert api.earn(enrolled, transactionId=f"{enrolled}-d", amount="20", occurredAt=yesterday).status == 201
    assert api.redeem(enrolled, 10).status == 201
    assert api.enrol(enrolled, name="Renamed").status == 200

    # Then every item that still exists still has it: the wallet, the profile and both pages
    after = {(item["pk"], item["sk"]): item for item in stored(table, enrolled)}
    survivors = [after[(item["pk"], item["sk"])] for item in tagged if (item["pk"], item["sk"]) in after]
    assert {"WALLET", "PROFILE"} <= {item["sk"] for item in survivors}
    assert len([item for item in survivors if item["sk"].startswith("WALLET#LOTS#")]) == 1
    assert [item["sk"] for item in survivors if item.get("ownedByAnother") != "keep me"] == []
    assert len(lots_of(api, enrolled)) == 2


def test_a_redemption_too_large_to_copy_into_its_records_is_replayed_from_its_ledger_entry(
    table: Any, member_id: str
) -> None:
    # Given a member holding 40 lots (one purchase a day for 40 days)
    rules = rules_with({"policy": "rolling", "months": 24, "endOfMonth": False})
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    profile = {"email": "big@example.com", "name": None, "locale": "en", "emailOptIn": False}
    members.enrol_or_update(member_id, profile, actor=PARTNER, now=start)
    for day in range(40):
        at = start + timedelta(days=day)
        purchase = Purchase(Decimal("10"), "EUR", at, "store")
        points.earn(member_id, f"{member_id}-{day}", purchase, actor=PARTNER, rules=rules, now=at)
    now = start + timedelta(days=41)
    member = Actor("member", member_id)

    # When it redeems everything (40 lots taken: a result of ~3 KB)
    first = points.redeem(member_id, 400, idempotency_key="all", actor=member, rules=rules, now=now)

    # Then its records point at the ledger entry instead of copying the result
    last = table.get_item(Key={"pk": f"MEMBER#{member_id}", "sk": "WALLET#LAST"}, ConsistentRead=True)["Item"]
    assert "result" not in last
    assert int(last["sequence"]) == 41

    # And a retry gets the same result, as the last request and after another request
    again = points.redeem(member_id, 400, idempotency_key="all", actor=member, rules=rules, now=now)
    assert again == replace(first, replayed=True)
    purchase = Purchase(Decimal("5"), "EUR", now, "store")
    points.earn(member_id, f"{member_id}-later", purchase, actor=PARTNER, rules=rules, now=now)
    points.redeem(member_id, 5, idempotency_key="small", actor=member, rules=rules, now=now)
    later = points.redeem(member_id, 400, idempotency_key="all", actor=member, rules=rules, now=now)
    assert later == replace(first, replayed=True)
    assert len(first.lots) == 40
