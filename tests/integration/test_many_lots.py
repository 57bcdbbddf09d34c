"""A member with hundreds of small lots on distinct dates redeems them all in one request.

Lots live in one page per (expiry month, month of issue) (docs/design.md), so one transaction
covers any number of lots: 500 lots over 16 months are ~17 pages, far below the 100-item limit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.identity import Identity
from tests.integration.conftest import Api

pytestmark = pytest.mark.slow

LOTS = 500


def test_a_member_with_500_lots_on_distinct_days_redeems_them_all_at_once(
    api: Api, enrolled: str, table: Any
) -> None:
    # Given 500 purchases of 3 points each, on 500 different days of the last 16 months
    first_day = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=LOTS)
    for day in range(LOTS):
        response = api.earn(enrolled, amount="3.99", occurredAt=(first_day + timedelta(days=day)).isoformat())
        assert response.status == 201, response.body
    lots = api.call("GET", f"/members/{enrolled}/lots", identity=Identity.member(enrolled)).body["lots"]
    assert len(lots) == LOTS
    assert len({lot["expiresAt"] for lot in lots}) == LOTS

    # When the member redeems every point in one request
    response = api.redeem(enrolled, 3 * LOTS)

    # Then it succeeds, takes from every lot, soonest expiry first, and leaves nothing
    assert response.status == 201, response.body
    taken = response.body["lots"]
    assert len(taken) == LOTS
    assert [take["expiresAt"] for take in taken] == sorted(take["expiresAt"] for take in taken)
    assert response.body["balance"] == 0
    balance = api.balance(enrolled).body
    assert (balance["available"], balance["expiring"]) == (0, [])
    # And no lot page is left behind
    items = table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"MEMBER#{enrolled}"}
    )["Items"]
    assert not [item for item in items if item["sk"].startswith("WALLET#LOTS#")]


def test_a_partial_redemption_over_many_pages_takes_whole_early_pages_and_part_of_the_next(
    api: Api, enrolled: str
) -> None:
    # Given 60 lots of 10 points on 60 consecutive weeks
    first_day = datetime.now(UTC) - timedelta(weeks=60)
    for week in range(60):
        assert (
            api.earn(enrolled, amount="10", occurredAt=(first_day + timedelta(weeks=week)).isoformat()).status
            == 201
        )

    # When the member redeems 425 points
    response = api.redeem(enrolled, 425)

    # Then the 42 oldest lots are used up and the 43rd gives 5 points
    assert response.status == 201
    assert [take["points"] for take in response.body["lots"]] == [10] * 42 + [5]
    lots = api.call("GET", f"/members/{enrolled}/lots", identity=Identity.member(enrolled)).body["lots"]
    assert len(lots) == 18 and lots[0]["remaining"] == 5
    assert api.balance(enrolled).body["available"] == 175
