"""POST /members/{memberId}/earn: a partner reports a purchase and it becomes a lot of points."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty.domain.rules import default_rules
from tests.integration.conftest import PARIS, Api, earn_lot_id, expiry_day, ledger_of, lots_of, paris_day

RULES_VERSION = default_rules().version


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_ago(days: int) -> str:
    return instant(datetime.now(UTC) - timedelta(days=days))


def latest_past(month: int, day: int) -> int:
    """The year of the latest `month`/`day` at least two days ago (never drifts into the future)."""
    today = datetime.now(UTC).date() - timedelta(days=2)
    return today.year if (month, day) <= (today.month, today.day) else today.year - 1


def tx() -> str:
    return f"tx-{uuid.uuid4().hex}"


# ---- points


def test_a_purchase_earns_one_point_per_whole_euro_rounded_down(api: Api, enrolled: str) -> None:
    # Given an enrolled member and the default rules (1 point per EUR, floor)
    occurred_at = days_ago(1)

    # When a partner reports a purchase of 42.99 EUR
    response = api.earn(enrolled, amount="42.99", currency="EUR", occurredAt=occurred_at)

    # Then it earns 42 points, in the lot of its day and expiry, under the rules in force
    assert response.status == 201
    body = response.body
    assert body["points"] == 42
    assert body["balance"] == 42
    assert body["lotId"] == earn_lot_id(occurred_at, body["expiresAt"])
    assert body["entryId"].startswith("led_")
    assert body["rulesVersion"] == RULES_VERSION
    # and the lot is stored with all its points remaining
    (lot,) = lots_of(api, enrolled)
    assert lot["lotId"] == body["lotId"]
    assert lot["original"] == lot["remaining"] == 42
    assert lot["expiresAt"] == body["expiresAt"]
    assert lot["issueMonth"] == f"{paris_day(occurred_at):%Y-%m}"
    assert lot["source"] == {"kind": "earn"}
    assert lot["rulesVersion"] == RULES_VERSION
    # and the purchase it came from is named by the ledger entry
    (entry,) = ledger_of(api, enrolled)
    assert entry["details"]["transactionId"] == body["transactionId"]


def test_other_program_currencies_earn_at_their_own_rate(api: Api, enrolled: str) -> None:
    response = api.earn(enrolled, amount="19.90", currency="USD")

    assert response.status == 201
    assert response.body["points"] == 19


def test_the_lot_expires_at_the_end_of_the_local_day_24_months_after_the_purchase(
    api: Api, enrolled: str
) -> None:
    # Given a purchase at 22:30 UTC on 31 January: 23:30 in Paris (UTC+1), still the 31st locally
    year = latest_past(1, 31)

    # When it is credited
    response = api.earn(enrolled, occurredAt=f"{year}-01-31T22:30:00Z")

    # Then its points can be used through 31 January two years later, Paris time:
    # they expire at local midnight, 23:00 UTC
    assert response.status == 201
    assert response.body["expiresAt"] == f"{year + 2}-01-31T23:00:00.000Z"
    (lot,) = lots_of(api, enrolled)
    assert lot["expiresAt"] == f"{year + 2}-01-31T23:00:00.000Z"
    assert lot["earnedAt"] == f"{year}-01-31T22:30:00.000Z"


def test_a_purchase_just_after_local_midnight_counts_for_the_next_local_day(api: Api, enrolled: str) -> None:
    # Given a purchase at 22:30 UTC on 31 July: 00:30 on 1 August in Paris (UTC+2, summer time)
    year = latest_past(7, 31)

    # When it is credited
    response = api.earn(enrolled, occurredAt=f"{year}-07-31T22:30:00Z")

    # Then it is a purchase of 1 August: valid through 1 August two years later, ending 22:00 UTC
    assert response.status == 201
    assert response.body["expiresAt"] == f"{year + 2}-08-01T22:00:00.000Z"


def paris_time_days_ago(days: int, hour: int) -> datetime:
    """`hour` o'clock in Paris, `days` Paris days before today."""
    day = datetime.now(PARIS).date() - timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)


def test_the_response_balance_accumulates_across_purchases(api: Api, enrolled: str) -> None:
    # Given an enrolled member
    # When three purchases of one local day are credited one after the other
    moments = [instant(paris_time_days_ago(2, hour)) for hour in (9, 12, 15)]
    responses = [
        api.earn(enrolled, amount=amount, occurredAt=moment)
        for amount, moment in zip(("10.00", "20.50", "30.99"), moments, strict=True)
    ]

    # Then each answer carries the balance after that purchase
    assert [response.body["balance"] for response in responses] == [10, 30, 60]
    assert api.balance(enrolled).body["available"] == 60
    # and, expiring the same day, they share one lot, dated by the first credit
    assert len({response.body["lotId"] for response in responses}) == 1
    (lot,) = lots_of(api, enrolled)
    assert lot["lotId"] == responses[0].body["lotId"] == earn_lot_id(moments[0], lot["expiresAt"])
    assert lot["original"] == lot["remaining"] == 60
    assert lot["earnedAt"] == moments[0].replace("Z", ".000Z")
    # while the ledger keeps one entry per purchase, each with its own points in that lot
    entries = ledger_of(api, enrolled)
    assert [(entry["points"], [move["lotId"] for move in entry["lots"]]) for entry in entries] == [
        (30, [lot["lotId"]]),
        (20, [lot["lotId"]]),
        (10, [lot["lotId"]]),
    ]


def test_purchases_on_two_local_days_go_to_two_lots_even_on_one_utc_day(api: Api, enrolled: str) -> None:
    # Given two purchases an hour apart on one UTC day: 23:30 and 00:30 in Paris (summer time)
    year = latest_past(7, 31)
    evening, after_midnight = f"{year}-07-30T21:30:00Z", f"{year}-07-30T22:30:00Z"

    # When both are credited
    first = api.earn(enrolled, amount="10.00", occurredAt=evening).body
    second = api.earn(enrolled, amount="20.00", occurredAt=after_midnight).body

    # Then each is a lot of its own local day, expiring on its own day two years later
    assert first["lotId"] == f"{year + 2}0730-{year}0730-e"
    assert second["lotId"] == f"{year + 2}0731-{year}0731-e"
    assert [(lot["lotId"], lot["remaining"]) for lot in lots_of(api, enrolled)] == [
        (first["lotId"], 10),
        (second["lotId"], 20),
    ]


# ---- refusals


def test_a_currency_the_program_does_not_earn_in_is_refused(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given an enrolled member
    transaction_id = tx()
    before = member_items(enrolled, (transaction_id,))

    # When a partner reports a purchase in yen
    response = api.earn(enrolled, transactionId=transaction_id, currency="JPY")

    # Then it is refused, naming the currency, and nothing is written
    assert response.status == 422
    assert response.error_code == "unknown_currency"
    assert [problem["field"] for problem in response.body["error"]["fields"]] == ["currency"]
    assert member_items(enrolled, (transaction_id,)) == before


def test_a_purchase_in_the_future_is_refused(api: Api, enrolled: str, member_items: Any) -> None:
    # Given an enrolled member
    transaction_id = tx()
    before = member_items(enrolled, (transaction_id,))

    # When a partner reports a purchase dated tomorrow
    response = api.earn(enrolled, transactionId=transaction_id, occurredAt=days_ago(-1))

    # Then it is refused, naming occurredAt, and nothing is written
    assert response.status == 422
    assert response.body["error"]["fields"][0]["field"] == "occurredAt"
    assert "future" in response.body["error"]["fields"][0]["reason"]
    assert member_items(enrolled, (transaction_id,)) == before


def test_a_purchase_a_minute_ahead_of_our_clock_is_clock_skew_and_is_credited(
    api: Api, enrolled: str
) -> None:
    response = api.earn(enrolled, occurredAt=instant(datetime.now(UTC) + timedelta(minutes=1)))

    assert response.status == 201
    assert response.body["points"] == 100


def test_a_purchase_whose_points_would_already_have_expired_is_refused(
    api: Api, enrolled: str, member_items: Any
) -> None:
    # Given an enrolled member and the default 24-month expiry
    transaction_id = tx()
    before = member_items(enrolled, (transaction_id,))

    # When a partner reports a purchase 25 months old
    response = api.earn(enrolled, transactionId=transaction_id, occurredAt=days_ago(25 * 31))

    # Then it is refused, naming occurredAt, and nothing is written
    assert response.status == 422
    assert response.body["error"]["fields"][0]["field"] == "occurredAt"
    assert member_items(enrolled, (transaction_id,)) == before


def paris_noon_two_years_before(days_earlier: int) -> datetime:
    """Noon in Paris, on today's Paris date two years ago, minus `days_earlier` days."""
    today = datetime.now(PARIS).date()
    if (today.month, today.day) == (2, 29):
        pytest.skip("no 29 February two years ago")
    day = today.replace(year=today.year - 2) - timedelta(days=days_earlier)
    return datetime(day.year, day.month, day.day, 12, tzinfo=PARIS)


def test_a_purchase_made_two_years_ago_today_is_credited_and_expires_tonight(api: Api, enrolled: str) -> None:
    # Given a purchase made on this Paris date two years ago: its points are valid until tonight
    occurred_at = paris_noon_two_years_before(days_earlier=0)

    # When it is reported
    response = api.earn(enrolled, occurredAt=instant(occurred_at))

    # Then it is credited, expiring at the coming Paris midnight
    assert response.status == 201
    tonight = datetime.combine(datetime.now(PARIS).date() + timedelta(days=1), datetime.min.time(), PARIS)
    assert response.body["expiresAt"] == tonight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_a_purchase_made_two_years_and_one_day_ago_is_refused(api: Api, enrolled: str) -> None:
    occurred_at = paris_noon_two_years_before(days_earlier=1)

    response = api.earn(enrolled, occurredAt=instant(occurred_at))

    assert response.status == 422
    assert response.body["error"]["fields"][0]["field"] == "occurredAt"


def test_earning_for_an_unknown_member_is_a_404(api: Api, member_id: str, table: Any) -> None:
    # Given a member id that was never enrolled
    transaction_id = tx()

    # When a partner reports a purchase for it
    response = api.earn(member_id, transactionId=transaction_id)

    # Then it is not found, and the purchase is not marked as credited
    assert response.status == 404
    assert response.error_code == "member_not_found"
    assert "Item" not in table.get_item(Key={"pk": f"PURCHASE#{transaction_id}", "sk": "PURCHASE"})


# ---- small purchases


def test_a_purchase_below_one_currency_unit_earns_nothing_and_creates_no_lot(api: Api, enrolled: str) -> None:
    # Given an enrolled member
    # When a partner reports a purchase of 0.99 EUR
    response = api.earn(enrolled, amount="0.99")

    # Then it is accepted with 0 points and no lot (the purchase is recorded, nothing to spend)
    assert response.status == 201
    assert response.body["points"] == 0
    assert response.body["lotId"] is None
    assert response.body["expiresAt"] is None
    assert response.body["balance"] == 0
    assert lots_of(api, enrolled) == []
    (entry,) = ledger_of(api, enrolled)
    assert entry["type"] == "earn"
    assert entry["points"] == 0
    assert entry["lots"] == []


# ---- the ledger


def test_the_ledger_entry_of_an_earn_records_the_partner_and_the_purchase(api: Api, enrolled: str) -> None:
    # Given an enrolled member
    transaction_id = tx()
    occurred_at = days_ago(30)

    # When the partner "pos-test" reports a purchase
    response = api.earn(
        enrolled,
        transactionId=transaction_id,
        amount="42.99",
        currency="EUR",
        occurredAt=occurred_at,
        channel="online",
        category="books",
    )
    assert response.status == 201

    # Then the ledger holds one earn entry saying who, what, when and under which rules
    (entry,) = ledger_of(api, enrolled)
    assert entry["entryId"] == response.body["entryId"]
    assert entry["type"] == "earn"
    assert entry["points"] == 42
    assert entry["balanceAfter"] == 42
    assert entry["occurredAt"] == occurred_at.replace("Z", ".000Z")
    assert entry["actor"] == {"kind": "partner", "id": "pos-test"}
    assert entry["rulesVersion"] == RULES_VERSION
    expires_at = response.body["expiresAt"]
    assert entry["lots"] == [
        {
            "lotId": response.body["lotId"],
            "points": 42,
            "expiresAt": expires_at,
            "issueMonth": f"{paris_day(occurred_at):%Y-%m}",
            "expiryMonth": f"{expiry_day(expires_at):%Y-%m}",
        }
    ]
    details = entry["details"]
    assert details["transactionId"] == transaction_id
    assert details["amount"] == "42.99"
    assert details["currency"] == "EUR"
    assert details["channel"] == "online"
    assert details["category"] == "books"
