"""A stateful model of one member's points, checked against the real API after every step.

Hypothesis drives the handlers (in-process, on DynamoDB Local) with random earns, redemptions
and retries of both, while a plain list of lots (points left, expiry) says what must happen.
After every step the balance, the lots, the wallet and the whole ledger must agree with the
model and with each other (SPEC §4 invariants 1, 4 and 7).

State is observed only through the HTTP API and `read_wallet` (domain objects), never through
raw DynamoDB attributes: how lots are laid out inside the items is the store's business.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from devtools.identity import Identity
from loyalty.store.wallet import read_wallet
from loyalty.timefmt import format_instant
from tests.integration.conftest import Api, ApiResponse, lots_of

pytestmark = pytest.mark.slow

PARIS = ZoneInfo("Europe/Paris")
PARTNER = Identity.partner("pos-model")
DAY_MS = 24 * 3600 * 1000
LEDGER_PAGE = 7
"""Small ledger pages, so that following `nextCursor` is exercised within a few steps."""
OFFSETS = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)), timezone(timedelta(hours=14))]
"""The same instant may be reported in any UTC offset; the lot's earnedAt is that instant."""


PURCHASE = st.tuples(
    st.integers(min_value=100, max_value=50_099),  # the amount in cents: 1.00 to 500.99 EUR
    st.one_of(  # how long ago, in milliseconds
        st.integers(min_value=0, max_value=700 * DAY_MS),
        st.integers(min_value=0, max_value=2 * DAY_MS),  # same-day purchases: expiries that tie
    ),
    st.sampled_from(OFFSETS),
)


def two_years_after(day: date) -> date:
    """The default rules' expiry date: the same day 24 months later (29 February: the 28th)."""
    return day.replace(year=day.year + 2, day=min(day.day, 28 if day.month == 2 else 31))


def header(response: ApiResponse, name: str) -> str | None:
    return next((value for key, value in response.headers.items() if key.lower() == name.lower()), None)


@dataclass
class ModelLot:
    """A lot as the model sees it: the points of the purchases of one Paris day that expire on
    one day. Instants are the API's fixed-width UTC strings (they sort as time); `earned_at` is
    the first credit's; months are `YYYY-MM` in Paris."""

    lot_id: str
    remaining: int
    expires_at: str
    earned_at: str
    original: int
    issue_month: str
    expiry_month: str

    def movement(self, points: int) -> dict[str, Any]:
        """How the ledger names `points` put into or taken from this lot."""
        return {
            "lotId": self.lot_id,
            "points": points,
            "expiresAt": self.expires_at,
            "issueMonth": self.issue_month,
            "expiryMonth": self.expiry_month,
        }

    def spend_key(self) -> tuple[str, str, str]:
        """Soonest expiry first; ties by earnedAt, then lotId (the documented spend order)."""
        return (self.expires_at, self.earned_at, self.lot_id)


class PointsModel(RuleBasedStateMachine):
    """One fresh member per example, and what its points must be."""

    earns = Bundle("earns")
    redemptions = Bundle("redemptions")

    def __init__(self, api: Api) -> None:
        super().__init__()
        self.api = api
        self.member_id = f"m-{uuid.uuid4().hex[:12]}"
        self.lots: list[ModelLot] = []
        self.journal: list[dict[str, Any]] = []  # expected ledger entries, oldest first
        assert api.enrol(self.member_id).status == 201

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots)

    def spend_order(self) -> list[ModelLot]:
        return sorted(self.lots, key=ModelLot.spend_key)

    # ---- earn

    @initialize(target=earns, purchases=st.lists(PURCHASE, min_size=1, max_size=6))
    def some_purchases(self, purchases: list[tuple[int, int, timezone]]) -> Any:
        """Given a member with a few purchases credited (so every example has lots to spend)."""
        return multiple(*(self.credit(*purchase) for purchase in purchases))

    @rule(target=earns, purchase=PURCHASE)
    def earn(self, purchase: tuple[int, int, timezone]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Given the member, When a partner reports a purchase of 1.00-500.99 EUR made up to 700 days
        ago, Then it earns floor(amount) points in the lot of its Paris day, which expires at the
        Paris midnight ending the same day 24 months later (a new lot, or the day's lot topped up
        when it still holds points), and the balance it reports is the model's."""
        return self.credit(*purchase)

    def credit(self, cents: int, millis_ago: int, offset: timezone) -> tuple[dict[str, Any], dict[str, Any]]:
        now = datetime.now(UTC).replace(microsecond=0)
        occurred = now - timedelta(milliseconds=millis_ago)
        body = {
            "transactionId": f"tx-{uuid.uuid4().hex}",
            "amount": f"{cents // 100}.{cents % 100:02d}",
            "currency": "EUR",
            "occurredAt": occurred.astimezone(offset).isoformat(timespec="milliseconds"),
            "channel": "store",
        }
        response = self.api.call("POST", f"/members/{self.member_id}/earn", identity=PARTNER, body=body)

        assert response.status == 201, response.body
        assert header(response, "Idempotent-Replayed") is None
        points = cents // 100
        created = response.body
        assert created["points"] == points
        assert created["balance"] == self.balance + points
        expires = datetime.fromisoformat(created["expiresAt"])
        assert expires.astimezone(PARIS).time() == datetime.min.time(), f"not a Paris midnight: {created}"
        issued_on = occurred.astimezone(PARIS).date()
        expires_on = (expires - timedelta(microseconds=1)).astimezone(PARIS).date()
        assert expires_on == two_years_after(issued_on), created
        lot_id = f"{expires_on:%Y%m%d}-{issued_on:%Y%m%d}-e"
        assert created["lotId"] == lot_id

        lot = next((lot for lot in self.lots if lot.lot_id == lot_id), None)
        if lot is None:
            lot = ModelLot(
                lot_id=lot_id,
                remaining=0,
                expires_at=created["expiresAt"],
                earned_at=format_instant(occurred.replace(microsecond=0)),  # stored to the second
                original=0,
                issue_month=f"{issued_on:%Y-%m}",
                expiry_month=f"{expires_on:%Y-%m}",
            )
            self.lots.append(lot)
        assert lot.expires_at == created["expiresAt"]
        lot.original += points
        lot.remaining += points
        self.journal.append(
            {
                "entryId": created["entryId"],
                "type": "earn",
                "points": points,
                "balanceAfter": self.balance,
                "lots": [lot.movement(points)],
            }
        )
        return body, created

    @rule(earned=earns)
    def replay_earn(self, earned: tuple[dict[str, Any], dict[str, Any]]) -> None:
        """Given a purchase already credited, When the partner sends the very same request again,
        Then it gets the original response, marked as replayed, and nothing changes."""
        body, created = earned
        response = self.api.call("POST", f"/members/{self.member_id}/earn", identity=PARTNER, body=body)

        assert response.status == 201, response.body
        assert response.body == created
        assert header(response, "Idempotent-Replayed") == "true"

    # ---- redeem

    @rule(target=redemptions, data=st.data())
    def redeem(self, data: st.DataObject) -> Any:
        """Given the member's lots, When it redeems 1..(balance + 50) points with a fresh key,
        Then within the balance the soonest-expiring lots are emptied first, exactly as in the
        model; beyond it the request is refused with 409 insufficient_points and nothing changes."""
        balance = self.balance
        anything = st.integers(min_value=1, max_value=balance + 50)
        within = [st.integers(min_value=1, max_value=balance), st.just(balance)] if balance else []
        points = data.draw(st.one_of(anything, st.just(balance + 1), *within), "points")
        key = uuid.uuid4().hex
        response = self.api.redeem(self.member_id, points, key=key)

        if points > balance:
            assert response.status == 409, response.body
            assert response.error_code == "insufficient_points"
            assert response.body["error"]["available"] == balance
            assert response.body["error"]["requested"] == points
            return multiple()

        assert response.status == 201, response.body
        assert header(response, "Idempotent-Replayed") is None
        movements = self.take(points)
        takes = [{name: move[name] for name in ("lotId", "points", "expiresAt")} for move in movements]
        assert response.body["lots"] == takes, "the lots taken are not the soonest-expiring ones"
        assert response.body["points"] == points
        assert response.body["balance"] == self.balance
        assert response.body["redemptionId"].startswith("led_")
        self.journal.append(
            {
                "entryId": response.body["redemptionId"],
                "type": "redeem",
                "points": -points,
                "balanceAfter": self.balance,
                "lots": movements,
            }
        )
        return key, points, response.body

    def take(self, points: int) -> list[dict[str, Any]]:
        """Debit the model: soonest-expiring lots first, each emptied before the next; empty lots
        leave (a later purchase of their day starts a new lot). Returns the ledger's movements."""
        takes = []
        needed = points
        for lot in self.spend_order():
            if needed == 0:
                break
            taken = min(lot.remaining, needed)
            takes.append(lot.movement(taken))
            lot.remaining -= taken
            needed -= taken
        assert needed == 0
        self.lots = [lot for lot in self.lots if lot.remaining > 0]
        return takes

    @rule(redeemed=redemptions)
    def replay_redemption(self, redeemed: tuple[str, int, dict[str, Any]]) -> None:
        """Given a redemption that succeeded, When it is retried with the same key and points,
        Then the original response comes back, marked as replayed, and nothing more is debited."""
        key, points, original = redeemed
        response = self.api.redeem(self.member_id, points, key=key)

        assert response.status == 201, response.body
        assert response.body == original
        assert header(response, "Idempotent-Replayed") == "true"

    @rule(redeemed=redemptions, data=st.data())
    def reuse_key_for_other_points(
        self, redeemed: tuple[str, int, dict[str, Any]], data: st.DataObject
    ) -> None:
        """Given a redemption that succeeded, When its key is sent again with another number of
        points, Then it is a 409 idempotency_mismatch and nothing changes."""
        key, points, _ = redeemed
        other = data.draw(
            st.integers(min_value=1, max_value=points + 50).filter(lambda n: n != points), "other points"
        )
        response = self.api.redeem(self.member_id, other, key=key)

        assert response.status == 409, response.body
        assert response.error_code == "idempotency_mismatch"

    # ---- what must hold after every step

    @invariant()
    def the_balance_is_the_model_balance(self) -> None:
        """Then GET balance shows the model's balance, never negative; its points per expiry month
        are the model's, all of them; and its points per expiry instant are the model's for the
        soonest months (whole months, at least the first: the read stops after a few pages)."""
        response = self.api.balance(self.member_id)
        assert response.status == 200, response.body
        assert response.body["available"] == self.balance >= 0
        by_month: dict[str, int] = {}
        expiring: dict[str, int] = {}
        for lot in self.lots:
            by_month[lot.expiry_month] = by_month.get(lot.expiry_month, 0) + lot.remaining
            expiring[lot.expires_at] = expiring.get(lot.expires_at, 0) + lot.remaining
        assert [(row["month"], row["points"]) for row in response.body["expiringByMonth"]] == sorted(
            by_month.items()
        )
        expected = sorted(expiring.items())
        shown = [(row["expiresAt"], row["points"]) for row in response.body["expiring"]]
        assert shown == expected[: len(shown)], "the dates shown are not the soonest ones"
        month_of = {lot.expires_at: lot.expiry_month for lot in self.lots}
        if expected:
            first = [row for row in expected if month_of[row[0]] == month_of[expected[0][0]]]
            assert shown[: len(first)] == first, "the soonest expiry month is not shown whole"
        if 0 < len(shown) < len(expected):
            assert month_of[expected[len(shown)][0]] != month_of[shown[-1][0]], "a month is cut in two"
        for row in response.body["expiring"]:  # the last Paris day the points can be used
            last_day = datetime.fromisoformat(row["expiresAt"]) - timedelta(microseconds=1)
            assert row["date"] == last_day.astimezone(PARIS).date().isoformat(), row

    @invariant()
    def the_lots_are_the_model_lots_soonest_expiry_first(self) -> None:
        """Then GET lots lists exactly the model's lots, in spend order (sorted by expiresAt),
        each with its points left, and their sum is the balance."""
        listed = lots_of(self.api, self.member_id)
        expiries = [lot["expiresAt"] for lot in listed]
        assert expiries == sorted(expiries)
        assert sum(lot["remaining"] for lot in listed) == self.balance
        assert all(lot["remaining"] > 0 for lot in listed)
        assert [
            (lot["lotId"], lot["remaining"], lot["original"], lot["expiresAt"], lot["earnedAt"])
            for lot in listed
        ] == [
            (lot.lot_id, lot.remaining, lot.original, lot.expires_at, lot.earned_at)
            for lot in self.spend_order()
        ]

    @invariant()
    def the_wallet_counter_and_its_lots_agree_with_the_model(self) -> None:
        """Then the stored wallet's counter is the model balance, its page directory gives each
        page the points its lots hold, its next expiry is the soonest of the model's lots, and its
        lots (as domain objects) are the model's lots."""
        snapshot = read_wallet(self.member_id, consistent=True)
        assert snapshot is not None
        assert snapshot.complete
        assert snapshot.wallet.available == self.balance
        assert dict(snapshot.wallet.pages) == {
            page.key: sum(lot.remaining for lot in page.lots.values()) for page in snapshot.pages
        }
        # (and, for each page, the day of month of its soonest expiry: the lot ids start with it)
        assert dict(snapshot.wallet.first_days) == {
            page.key: min(int(lot_id[6:8]) for lot_id in page.lots) for page in snapshot.pages
        }
        soonest = min((lot.expires_at for lot in self.lots), default=None)
        next_expiry = snapshot.wallet.next_expiry_at
        assert (format_instant(next_expiry) if next_expiry else None) == soonest
        stored = sorted(
            (lot.lot_id, lot.remaining, format_instant(lot.expires_at), format_instant(lot.earned_at))
            for lot in snapshot.lots()
            if lot.expires_at is not None
        )
        assert len(stored) == len(snapshot.lots())
        assert stored == sorted(
            (lot.lot_id, lot.remaining, lot.expires_at, lot.earned_at) for lot in self.lots
        )

    @invariant()
    def the_ledger_is_the_model_journal(self) -> None:
        """Then the whole ledger, page after page, is every movement newest first, and its points
        add up to the balance."""
        entries = self.whole_ledger()
        assert sum(entry["points"] for entry in entries) == self.balance
        seen = [
            {name: entry[name] for name in ("entryId", "type", "points", "balanceAfter", "lots")}
            for entry in entries
        ]
        assert seen == list(reversed(self.journal))

    def whole_ledger(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        query = {"limit": str(LEDGER_PAGE)}
        for _ in range(len(self.journal) // LEDGER_PAGE + 2):
            response = self.api.call(
                "GET",
                f"/members/{self.member_id}/ledger",
                identity=Identity.member(self.member_id),
                query=query,
            )
            assert response.status == 200, response.body
            page = response.body["entries"]
            entries.extend(page)
            cursor = response.body.get("nextCursor")
            if cursor is None:
                assert len(page) <= LEDGER_PAGE
                return entries
            assert len(page) == LEDGER_PAGE, "a page with a next cursor is a full page"
            query = {"limit": str(LEDGER_PAGE), "cursor": cursor}
        raise AssertionError(f"the ledger has more pages than {len(self.journal)} entries need")


def test_the_points_of_a_member_always_match_a_simple_model_of_its_lots(api: Api) -> None:
    """Given a fresh member per example, When random earns, redemptions and retries of both
    reach the API, Then after every step balance, lots, wallet and ledger agree with the model."""
    run_state_machine_as_test(
        lambda: PointsModel(api),
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
