"""POST /members/{memberId}/redemptions: spend points, soonest-expiring lots first (invariant 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.conftest import PARTNER, Api, expiry_day, ledger_of, lots_of, paris_day


def days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def earn(api: Api, member_id: str, amount: str, days: int) -> dict[str, Any]:
    """A purchase of `amount` EUR `days` days ago; its lot expires 24 months after that day."""
    response = api.earn(member_id, amount=amount, occurredAt=days_ago(days))
    assert response.status == 201
    return dict(response.body)


def test_a_redemption_spends_the_soonest_expiring_lots_first(api: Api, enrolled: str) -> None:
    # Given three lots of 100 points, credited in an order that is not their expiry order
    newest = earn(api, enrolled, "100.00", days=10)
    oldest = earn(api, enrolled, "100.00", days=300)
    middle = earn(api, enrolled, "100.00", days=150)

    # When the member redeems 150 points
    response = api.redeem(enrolled, 150)

    # Then the oldest lot (expiring first) is emptied and 50 come from the next one
    assert response.status == 201
    assert response.body["points"] == 150
    assert response.body["balance"] == 150
    assert response.body["redemptionId"].startswith("led_")
    assert response.body["lots"] == [
        {"lotId": oldest["lotId"], "points": 100, "expiresAt": oldest["expiresAt"]},
        {"lotId": middle["lotId"], "points": 50, "expiresAt": middle["expiresAt"]},
    ]
    # and what is left is the rest of the middle lot and the whole newest one
    assert [(lot["lotId"], lot["remaining"]) for lot in lots_of(api, enrolled)] == [
        (middle["lotId"], 50),
        (newest["lotId"], 100),
    ]


def test_a_member_can_redeem_its_whole_balance(api: Api, enrolled: str) -> None:
    # Given a member with 42 points in one lot
    earn(api, enrolled, "42.00", days=5)

    # When it redeems exactly 42
    response = api.redeem(enrolled, 42)

    # Then its balance is zero and it has no lot left
    assert response.status == 201
    assert response.body["balance"] == 0
    balance = api.balance(enrolled).body
    assert balance["available"] == 0
    assert balance["expiring"] == []
    assert lots_of(api, enrolled) == []


def test_redeeming_more_than_the_balance_is_refused_and_changes_nothing(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given a member with 42 points
    earn(api, enrolled, "42.00", days=5)
    before = member_items(enrolled)

    # When it tries to redeem 43
    response = api.redeem(enrolled, 43)

    # Then it is refused with the balance and the request, and nothing is written
    assert response.status == 409
    assert response.error_code == "insufficient_points"
    assert response.body["error"]["available"] == 42
    assert response.body["error"]["requested"] == 43
    assert member_items(enrolled) == before


def test_redeeming_from_an_empty_wallet_is_refused(api: Api, enrolled: str) -> None:
    response = api.redeem(enrolled, 1)

    assert response.status == 409
    assert response.error_code == "insufficient_points"
    assert response.body["error"]["available"] == 0


def test_a_partner_may_redeem_for_a_member_at_the_till(api: Api, enrolled: str) -> None:
    # Given a member with 100 points
    earn(api, enrolled, "100.00", days=5)

    # When the partner redeems 30 of them for the member
    response = api.redeem(enrolled, 30, identity=PARTNER)

    # Then the points are spent, and the ledger names the partner
    assert response.status == 201
    assert response.body["balance"] == 70
    entry = ledger_of(api, enrolled)[0]
    assert entry["type"] == "redeem"
    assert entry["points"] == -30
    assert entry["actor"] == {"kind": "partner", "id": "pos-test"}


def test_the_ledger_entry_of_a_redemption_names_the_member_and_the_lots(api: Api, enrolled: str) -> None:
    # Given a member with one lot of 100 points
    occurred_at = days_ago(5)
    lot = api.earn(enrolled, amount="100.00", occurredAt=occurred_at).body

    # When it redeems 25 points itself
    response = api.redeem(enrolled, 25, key="my-key-1")
    assert response.status == 201

    # Then the newest ledger entry is the redemption, by the member, from that lot
    entry = ledger_of(api, enrolled)[0]
    assert entry["entryId"] == response.body["redemptionId"]
    assert entry["type"] == "redeem"
    assert entry["points"] == -25
    assert entry["balanceAfter"] == 75
    assert entry["actor"] == {"kind": "member", "id": enrolled}
    assert entry["lots"] == [
        {
            "lotId": lot["lotId"],
            "points": 25,
            "expiresAt": lot["expiresAt"],
            "issueMonth": f"{paris_day(occurred_at):%Y-%m}",
            "expiryMonth": f"{expiry_day(lot['expiresAt']):%Y-%m}",
        }
    ]
    assert entry["details"] == {"idempotencyKey": "my-key-1"}


def test_the_balance_in_the_response_is_the_balance_read_afterwards(api: Api, enrolled: str) -> None:
    # Given a member with points in two lots
    earn(api, enrolled, "60.00", days=40)
    earn(api, enrolled, "45.50", days=4)

    # When it redeems 70
    response = api.redeem(enrolled, 70)

    # Then the balance it is told is the balance it then reads
    assert response.status == 201
    assert response.body["balance"] == 35
    assert api.balance(enrolled).body["available"] == 35


def test_fully_used_lots_disappear_from_the_lots_and_from_the_table(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given two lots expiring in different months (so on two different lot pages)
    first = earn(api, enrolled, "20.00", days=120)
    second = earn(api, enrolled, "30.00", days=10)
    pages_before = [item["sk"] for item in member_items(enrolled) if item["sk"].startswith("WALLET#LOTS#")]
    assert len(pages_before) == 2

    # When exactly the first lot's points are redeemed
    response = api.redeem(enrolled, 20)
    assert response.status == 201
    assert response.body["lots"] == [{"lotId": first["lotId"], "points": 20, "expiresAt": first["expiresAt"]}]

    # Then only the second lot is left, and the emptied page is gone from the table
    assert [lot["lotId"] for lot in lots_of(api, enrolled)] == [second["lotId"]]
    # (pages sort by expiry month: the first lot's page is the earlier one)
    pages_after = [item for item in member_items(enrolled) if item["sk"].startswith("WALLET#LOTS#")]
    assert [page["sk"] for page in pages_after] == [pages_before[1]]
    assert list(pages_after[0]["lots"]) == [second["lotId"]]


def test_redeeming_for_an_unknown_member_is_a_404(api: Api, member_id: str) -> None:
    response = api.redeem(member_id, 10, identity=PARTNER)

    assert response.status == 404
    assert response.error_code == "member_not_found"
