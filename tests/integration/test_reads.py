"""GET balance, lots and ledger: what a member can spend, when it expires, and every movement."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.identity import Identity
from tests.integration.conftest import Api


def days_ago(days: int, hour: int = 10) -> str:
    moment = (datetime.now(UTC) - timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def earn(api: Api, member_id: str, amount: str, days: int, hour: int = 10) -> dict[str, Any]:
    response = api.earn(member_id, amount=amount, occurredAt=days_ago(days, hour))
    assert response.status == 201
    return dict(response.body)


def ledger(api: Api, member_id: str, **query: str) -> Any:
    return api.call("GET", f"/members/{member_id}/ledger", identity=Identity.member(member_id), query=query)


def forged(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


# ---- balance


def test_the_balance_groups_points_by_expiry_date_soonest_first(api: Api, enrolled: str) -> None:
    # Given two purchases on one day and one purchase on an earlier day
    later_a = earn(api, enrolled, "30.00", days=20, hour=9)
    earlier = earn(api, enrolled, "10.00", days=200)
    later_b = earn(api, enrolled, "5.00", days=20, hour=15)
    assert later_a["expiresAt"] == later_b["expiresAt"]

    # When the member reads its balance
    response = api.balance(enrolled)

    # Then it sees the total, and the points of each expiry date, soonest first
    assert response.status == 200
    body = response.body
    assert body["memberId"] == enrolled
    assert body["available"] == 45
    assert [(row["expiresAt"], row["points"]) for row in body["expiring"]] == [
        (earlier["expiresAt"], 10),
        (later_a["expiresAt"], 35),
    ]
    # and each date is the last local (Paris) day the points can be used: expiresAt is the Paris
    # midnight that ends it, 22:00 or 23:00 UTC on that same date
    for row in body["expiring"]:
        assert row["expiresAt"][10:] in {"T22:00:00.000Z", "T23:00:00.000Z"}
        assert row["date"] == row["expiresAt"][:10]
    # and the same points per expiry month (the two dates are 180 days apart: two months)
    assert [(row["month"], row["points"]) for row in body["expiringByMonth"]] == [
        (earlier["expiresAt"][:7], 10),
        (later_a["expiresAt"][:7], 35),
    ]
    assert body["asOf"].endswith("Z")


def test_the_balance_of_a_new_member_is_zero_with_nothing_expiring(api: Api, enrolled: str) -> None:
    response = api.balance(enrolled)

    assert response.status == 200
    assert response.body["available"] == 0
    assert response.body["expiring"] == []
    assert response.body["expiringByMonth"] == []


def test_the_balance_of_an_unknown_member_is_a_404(api: Api, member_id: str) -> None:
    response = api.balance(member_id, identity=Identity.support("agent-1"))

    assert response.status == 404
    assert response.error_code == "member_not_found"


# ---- lots


def test_lots_are_listed_soonest_expiry_first(api: Api, enrolled: str) -> None:
    # Given three lots credited out of expiry order
    middle = earn(api, enrolled, "20.00", days=100)
    newest = earn(api, enrolled, "30.00", days=1)
    oldest = earn(api, enrolled, "10.00", days=400)

    # When the member lists its lots
    response = api.call("GET", f"/members/{enrolled}/lots", identity=Identity.member(enrolled))

    # Then they come soonest expiry first, each with its points and origin
    assert response.status == 200
    lots = response.body["lots"]
    assert [lot["lotId"] for lot in lots] == [oldest["lotId"], middle["lotId"], newest["lotId"]]
    assert [lot["remaining"] for lot in lots] == [10, 20, 30]
    assert [lot["expiresAt"] for lot in lots] == sorted(lot["expiresAt"] for lot in lots)
    assert all(lot["source"]["kind"] == "earn" for lot in lots)


def test_lots_of_an_unknown_member_is_a_404(api: Api, member_id: str) -> None:
    response = api.call("GET", f"/members/{member_id}/lots", identity=Identity.support("agent-1"))

    assert response.status == 404
    assert response.error_code == "member_not_found"


# ---- ledger


def test_the_ledger_lists_movements_newest_first(api: Api, enrolled: str) -> None:
    # Given two earns and then a redemption
    first = earn(api, enrolled, "10.00", days=30)
    second = earn(api, enrolled, "20.00", days=3)
    redemption = api.redeem(enrolled, 15).body

    # When the member reads its ledger
    response = ledger(api, enrolled)

    # Then the movements come newest first, each with the balance after it
    assert response.status == 200
    entries = response.body["entries"]
    assert [entry["entryId"] for entry in entries] == [
        redemption["redemptionId"],
        second["entryId"],
        first["entryId"],
    ]
    assert [(entry["type"], entry["points"], entry["balanceAfter"]) for entry in entries] == [
        ("redeem", -15, 15),
        ("earn", 20, 30),
        ("earn", 10, 10),
    ]
    assert response.body["nextCursor"] is None


def test_the_ledger_pages_with_limit_and_cursor_until_the_end(api: Api, enrolled: str) -> None:
    # Given seven movements
    for amount in ("1.00", "2.00", "3.00", "4.00", "5.00"):
        earn(api, enrolled, amount, days=2)
    assert api.redeem(enrolled, 1).status == 201
    assert api.redeem(enrolled, 2).status == 201
    everything = ledger(api, enrolled).body["entries"]
    assert len(everything) == 7

    # When the member reads them three at a time, following the cursors
    pages = []
    cursor: str | None = None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        response = ledger(api, enrolled, **query)
        assert response.status == 200
        pages.append(response.body["entries"])
        cursor = response.body["nextCursor"]
        if cursor is None or len(pages) > 5:
            break

    # Then it gets 3, 3 and 1 entries, the last page without a cursor, newest first overall
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [entry["entryId"] for page in pages for entry in page] == [
        entry["entryId"] for entry in everything
    ]


def test_a_ledger_that_ends_on_a_page_boundary_gives_no_cursor_on_its_last_page(
    api: Api, enrolled: str
) -> None:
    # Given exactly three movements
    for amount in ("1.00", "2.00", "3.00"):
        earn(api, enrolled, amount, days=2)

    # When the member reads them three at a time
    response = ledger(api, enrolled, limit="3")

    # Then the first page holds them all and says there is nothing more
    assert response.status == 200
    assert len(response.body["entries"]) == 3
    assert response.body["nextCursor"] is None


def test_a_cursor_the_api_did_not_issue_is_refused(api: Api, enrolled: str) -> None:
    earn(api, enrolled, "1.00", days=2)

    response = ledger(api, enrolled, cursor="not-a-cursor!")

    assert response.status == 422
    assert response.error_code == "invalid_request"
    assert [problem["field"] for problem in response.body["error"]["fields"]] == ["cursor"]


FORGERIES: dict[str, Callable[[str], str]] = {
    "another-members-cursor": lambda me: forged({"m": f"{me}-other", "s": 5}),
    "sequence-zero": lambda me: forged({"m": me, "s": 0}),
    "sequence-negative": lambda me: forged({"m": me, "s": -3}),
    "sequence-as-text": lambda me: forged({"m": me, "s": "5"}),
    "sequence-as-boolean": lambda me: forged({"m": me, "s": True}),
    "sequence-as-decimal": lambda me: forged({"m": me, "s": 2.5}),
    "no-member": lambda me: forged({"s": 5}),
    "no-sequence": lambda me: forged({"m": me}),
    "a-sort-key": lambda me: forged({"m": me, "s": "LEDGER#000000000005"}),
    "a-list": lambda me: forged([me, 5]),
    "a-number": lambda me: forged(5),
    "a-string": lambda me: forged("LEDGER#000000000005"),
    "not-base64": lambda me: "%%%%",
}


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_cursor_is_refused_naming_the_cursor(
    api: Api, enrolled: str, forgery: Callable[[str], str]
) -> None:
    # Given a member with a ledger
    earn(api, enrolled, "1.00", days=2)

    # When it reads its ledger with a cursor the API did not issue for it
    response = ledger(api, enrolled, cursor=forgery(enrolled))

    # Then the cursor is refused, naming it
    assert response.status == 422
    assert response.error_code == "invalid_request"
    assert response.body["error"]["fields"][0]["field"] == "cursor"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_a_limit_outside_1_to_100_is_refused_naming_the_limit(api: Api, enrolled: str, limit: str) -> None:
    response = ledger(api, enrolled, limit=limit)

    assert response.status == 422
    assert response.error_code == "validation_error"
    assert [problem["field"] for problem in response.body["error"]["fields"]] == ["limit"]


def test_the_ledger_of_an_unknown_member_is_a_404(api: Api, member_id: str) -> None:
    response = api.call("GET", f"/members/{member_id}/ledger", identity=Identity.support("agent-1"))

    assert response.status == 404
    assert response.error_code == "member_not_found"


# ---- invariant 1


def test_the_sum_of_the_ledger_equals_the_balance_and_the_lots(api: Api, enrolled: str) -> None:
    # Given a member who earned and redeemed several times
    earn(api, enrolled, "100.00", days=300)
    earn(api, enrolled, "55.55", days=60)
    assert api.redeem(enrolled, 120).status == 201
    earn(api, enrolled, "0.40", days=5)
    earn(api, enrolled, "12.00", days=1)
    assert api.redeem(enrolled, 7).status == 201

    # When it reads its balance, lots and ledger
    balance = api.balance(enrolled).body
    lots = api.call("GET", f"/members/{enrolled}/lots", identity=Identity.member(enrolled)).body["lots"]
    entries = ledger(api, enrolled, limit="100").body["entries"]

    # Then the three agree (invariant 1)
    assert balance["available"] == 100 + 55 - 120 + 0 + 12 - 7
    assert sum(entry["points"] for entry in entries) == balance["available"]
    assert sum(lot["remaining"] for lot in lots) == balance["available"]
    assert sum(row["points"] for row in balance["expiring"]) == balance["available"]
    assert entries[0]["balanceAfter"] == balance["available"]


def test_a_cursor_used_on_another_member_id_is_refused_and_reveals_nothing(api: Api, enrolled: str) -> None:
    # Given a cursor issued for a real member's ledger
    for amount in ("1.00", "2.00"):
        earn(api, enrolled, amount, days=2)
    cursor = ledger(api, enrolled, limit="1").body["nextCursor"]
    assert cursor is not None

    # When it is used on a member id that was never enrolled
    response = api.call(
        "GET",
        f"/members/m-unknown-{enrolled}/ledger",
        identity=Identity.support("agent-1"),
        query={"cursor": cursor},
    )

    # Then the cursor is refused, naming it: a cursor is only valid for the ledger it came from
    assert response.status == 422
    assert [problem["field"] for problem in response.body["error"]["fields"]] == ["cursor"]
