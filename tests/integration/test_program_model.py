"""A stateful model of a handful of members, checked against the real API after every step.

Hypothesis mixes earns, redemptions, transfers, returns (reversals), claims and their decisions
across three members, with retries and refusals, while plain counters say what each member
holds and owes. After every step (SPEC §4):

- each member's balance, lots and ledger agree with the model and with each other, and what it
  owes is the model's (invariant 1: the ledger adds up to the balance, owed is shown apart);
- points are conserved: what the ledgers credited, less what was spent, transferred and taken
  back, is the sum of the balances; what returns made owed, less what credits settled, is the
  sum of what is owed;
- every movement answered `201` is in its member's ledger exactly once (invariant 7);
- a purchase is credited at most once, whether by earn or by an approved claim (invariant 2).

`test_points_model.py` checks one member's lots in detail; this one checks how the movements
between members and purchases compose.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from devtools.identity import Identity
from tests.integration.conftest import Api, ApiResponse, lots_of

pytestmark = pytest.mark.slow

PARTNER = Identity.partner("pos-program")
AGENT = Identity.support("agent-program")
MEMBERS = 3
MIN_TRANSFER, MAX_TRANSFER, MAX_PER_DAY = 100, 5_000, 10_000  # the default rules
MAX_OPEN_CLAIMS = 5
CREDITS = {"earn", "claim-credit", "transfer-in"}


@dataclass
class Holder:
    """What one member holds, as the model sees it."""

    member_id: str
    balance: int = 0
    owed: int = 0
    sent_today: int = 0
    movements: list[str] = field(default_factory=list)  # ids answered 201, each a ledger entry

    def credit(self, points: int) -> int:
        """A credit of any kind settles what is owed first; returns what the balance gained."""
        settled = min(self.owed, points)
        self.owed -= settled
        self.balance += points - settled
        return points - settled


@dataclass
class Purchase:
    transaction_id: str
    member: int
    cents: int
    occurred_at: str
    state: str  # credited, claimed, free (a rejected claim's purchase, never credited)
    points: int = 0  # what its credit earned (gross)
    reversed_cents: int = 0
    reversed_points: int = 0


@dataclass
class Claim:
    claim_id: str
    purchase: Purchase
    status: str = "pending"


def header(response: ApiResponse, name: str) -> str | None:
    return next((value for key, value in response.headers.items() if key.lower() == name.lower()), None)


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class ProgramModel(RuleBasedStateMachine):
    def __init__(self, api: Api) -> None:
        super().__init__()
        self.api = api
        run = uuid.uuid4().hex[:8]
        self.holders = [Holder(f"pm-{run}-{index}") for index in range(MEMBERS)]
        self.purchases: list[Purchase] = []
        self.claims: list[Claim] = []
        for holder in self.holders:
            assert api.enrol(holder.member_id).status == 201

    # ---- helpers

    def purchase_body(self, purchase: Purchase) -> dict[str, Any]:
        return {
            "transactionId": purchase.transaction_id,
            "amount": money(purchase.cents),
            "currency": "EUR",
            "occurredAt": purchase.occurred_at,
            "channel": "store",
        }

    def new_purchase(self, member: int, cents: int, days_ago: int) -> Purchase:
        occurred = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago, hours=1)
        return Purchase(f"tx-{uuid.uuid4().hex}", member, cents, occurred.isoformat(), state="free")

    def report(self, purchase: Purchase) -> ApiResponse:
        holder = self.holders[purchase.member]
        return self.api.call(
            "POST", f"/members/{holder.member_id}/earn", identity=PARTNER, body=self.purchase_body(purchase)
        )

    def credited(self, purchase: Purchase, points: int, entry_id: str) -> None:
        purchase.state, purchase.points = "credited", points
        holder = self.holders[purchase.member]
        holder.credit(points)
        holder.movements.append(entry_id)

    # ---- earn

    @initialize(cents=st.lists(st.integers(200, 40_000), min_size=MEMBERS, max_size=MEMBERS))
    def everyone_shops(self, cents: list[int]) -> None:
        """Given three members with a purchase credited each."""
        for member, amount in enumerate(cents):
            self.earn(member, amount, 1)

    @rule(member=st.integers(0, MEMBERS - 1), cents=st.integers(100, 60_000), days_ago=st.integers(0, 300))
    def earn(self, member: int, cents: int, days_ago: int) -> None:
        """When a partner reports a new purchase, Then it earns floor(amount) points, owed first."""
        purchase = self.new_purchase(member, cents, days_ago)
        self.purchases.append(purchase)
        response = self.report(purchase)

        assert response.status == 201, response.body
        assert response.body["points"] == cents // 100
        self.credited(purchase, cents // 100, response.body["entryId"])
        assert response.body["balance"] == self.holders[member].balance

    @rule(data=st.data())
    def report_again(self, data: st.DataObject) -> None:
        """When a partner reports a credited purchase again, Then it is replayed, nothing more."""
        credited = [purchase for purchase in self.purchases if purchase.state == "credited"]
        if not credited:
            return
        purchase = data.draw(st.sampled_from(credited), "purchase")
        response = self.report(purchase)

        if response.status == 409:  # credited by an approved claim, not by this request
            assert response.error_code == "transaction_already_credited"
            return
        assert response.status == 201, response.body
        assert header(response, "Idempotent-Replayed") == "true"

    # ---- redeem

    @rule(member=st.integers(0, MEMBERS - 1), data=st.data())
    def redeem(self, member: int, data: st.DataObject) -> None:
        """When a member redeems up to its balance and beyond, Then within it the balance drops by
        exactly that; beyond it, 409 insufficient_points and nothing changes."""
        holder = self.holders[member]
        points = data.draw(st.integers(1, holder.balance + 20), "points")
        response = self.api.redeem(holder.member_id, points)

        if points > holder.balance:
            assert (response.status, response.error_code) == (409, "insufficient_points"), response.body
            return
        assert response.status == 201, response.body
        holder.balance -= points
        holder.movements.append(response.body["redemptionId"])
        assert response.body["balance"] == holder.balance

    # ---- transfer

    @rule(sender=st.integers(0, MEMBERS - 1), step=st.integers(1, MEMBERS - 1), data=st.data())
    def transfer(self, sender: int, step: int, data: st.DataObject) -> None:
        """When a member sends points to another, Then the rules refuse in their order (minimum,
        maximum, the rolling day's maximum, the balance), and otherwise the sender loses exactly
        the points and the receiver gains them, owed first."""
        source, target = self.holders[sender], self.holders[(sender + step) % MEMBERS]
        points = data.draw(
            st.one_of(
                st.integers(1, MAX_TRANSFER + 500), st.integers(MIN_TRANSFER, max(source.balance, 100))
            ),
            "points",
        )
        key = uuid.uuid4().hex
        response = self.api.call(
            "POST",
            f"/members/{source.member_id}/transfers",
            identity=Identity.member(source.member_id),
            body={"toMemberId": target.member_id, "points": points},
            headers={"idempotency-key": key},
        )

        refusal = (
            (422, "transfer_below_minimum")
            if points < MIN_TRANSFER
            else (422, "transfer_above_maximum")
            if points > MAX_TRANSFER
            else (409, "transfer_daily_limit_reached")
            if source.sent_today + points > MAX_PER_DAY
            else (409, "insufficient_points")
            if points > source.balance
            else None
        )
        if refusal is not None:
            assert (response.status, response.error_code) == refusal, response.body
            return
        assert response.status == 201, response.body
        source.balance -= points
        source.sent_today += points
        source.movements.append(response.body["transferId"])
        target.credit(points)
        assert response.body["balance"] == source.balance

    # ---- returns

    @rule(data=st.data(), partial=st.booleans())
    def reverse(self, data: st.DataObject, partial: bool) -> None:
        """When a partner takes back a credited purchase (in part or whole), Then its points go back
        proportionally (floor of the cumulative share), never beyond what was earned; what the lots
        cannot cover (already spent) is owed."""
        credited = [purchase for purchase in self.purchases if purchase.state == "credited"]
        if not credited:
            return
        purchase = data.draw(st.sampled_from(credited), "purchase")
        holder = self.holders[purchase.member]
        left = purchase.cents - purchase.reversed_cents
        cents = data.draw(st.integers(1, left + 100), "cents") if partial else left
        body = {"amount": money(cents)} if partial else {}
        response = self.api.call(
            "POST",
            f"/members/{holder.member_id}/earn/{purchase.transaction_id}/reversal",
            identity=PARTNER,
            body=body,
            headers={"idempotency-key": uuid.uuid4().hex},
        )

        if left == 0:
            assert (response.status, response.error_code) == (409, "purchase_already_reversed"), response.body
            return
        if cents > left:
            assert (response.status, response.error_code) == (409, "reversal_exceeds_purchase"), response.body
            return
        assert response.status == 201, response.body
        total = purchase.points * (purchase.reversed_cents + cents) // purchase.cents
        points = total - purchase.reversed_points
        taken = min(points, holder.balance)
        purchase.reversed_cents += cents
        purchase.reversed_points = total
        holder.balance -= taken
        holder.owed += points - taken
        holder.movements.append(response.body["reversalId"])
        assert (response.body["points"], response.body["taken"], response.body["owedAdded"]) == (
            points,
            taken,
            points - taken,
        )
        assert (response.body["balance"], response.body["owed"]) == (holder.balance, holder.owed)

    # ---- claims

    @rule(member=st.integers(0, MEMBERS - 1), cents=st.integers(100, 30_000), days_ago=st.integers(3, 170))
    def claim(self, member: int, cents: int, days_ago: int) -> None:
        """When a member claims a purchase never reported, Then the claim waits for support, up to
        the limit of open claims."""
        purchase = self.new_purchase(member, cents, days_ago)
        holder = self.holders[member]
        body = {key: value for key, value in self.purchase_body(purchase).items() if key != "channel"}
        response = self.api.call(
            "POST",
            f"/members/{holder.member_id}/claims",
            identity=Identity.member(holder.member_id),
            body=body,
        )

        open_claims = sum(
            1 for claim in self.claims if claim.status == "pending" and claim.purchase.member == member
        )
        if open_claims >= MAX_OPEN_CLAIMS:
            assert (response.status, response.error_code) == (409, "too_many_open_claims"), response.body
            return
        assert response.status == 201, response.body
        assert response.body["status"] == "pending"
        purchase.state = "claimed"
        self.purchases.append(purchase)
        self.claims.append(Claim(response.body["claimId"], purchase))

    @rule(member=st.integers(0, MEMBERS - 1), data=st.data())
    def claim_a_credited_purchase(self, member: int, data: st.DataObject) -> None:
        """When a member claims a purchase already credited, Then it is rejected at once."""
        credited = [p for p in self.purchases if p.state == "credited" and p.member == member]
        if not credited:
            return
        purchase = data.draw(st.sampled_from(credited), "purchase")
        holder = self.holders[member]
        body = {key: value for key, value in self.purchase_body(purchase).items() if key != "channel"}
        response = self.api.call(
            "POST",
            f"/members/{holder.member_id}/claims",
            identity=Identity.member(holder.member_id),
            body=body,
        )

        assert response.status in (200, 201), response.body
        assert response.body["status"] in ("rejected", "approved", "matched"), response.body

    @precondition(lambda self: any(claim.status == "pending" for claim in self.claims))
    @rule(data=st.data(), approve=st.booleans(), override=st.one_of(st.none(), st.integers(0, 400)))
    def decide(self, data: st.DataObject, approve: bool, override: int | None) -> None:
        """When support decides a pending claim, Then an approval credits the purchase's points (or
        the agent's) once, owed first; a rejection frees the purchase."""
        claim = data.draw(
            st.sampled_from([claim for claim in self.claims if claim.status == "pending"]), "claim"
        )
        body: dict[str, Any] = {
            "decision": "approve" if approve else "reject",
            "reason": "checked the receipt",
        }
        if approve and override is not None:
            body["points"] = override
        response = self.api.call("POST", f"/claims/{claim.claim_id}/decision", identity=AGENT, body=body)

        assert response.status == 200, response.body
        if not approve:
            assert response.body["status"] == "rejected"
            claim.status, claim.purchase.state = "rejected", "free"
            return
        assert response.body["status"] == "approved"
        points = claim.purchase.cents // 100 if override is None else override
        credit = response.body["credit"]
        assert credit["points"] == points
        claim.status = "approved"
        self.credited(claim.purchase, points, credit["entryId"])
        assert credit["balance"] == self.holders[claim.purchase.member].balance

    @precondition(lambda self: any(claim.status != "pending" for claim in self.claims))
    @rule(data=st.data())
    def decide_again(self, data: st.DataObject) -> None:
        """When support decides a decided claim otherwise, Then 409 claim_already_decided."""
        claim = data.draw(
            st.sampled_from([claim for claim in self.claims if claim.status != "pending"]), "claim"
        )
        decision = "reject" if claim.status == "approved" else "approve"
        response = self.api.call(
            "POST",
            f"/claims/{claim.claim_id}/decision",
            identity=AGENT,
            body={"decision": decision, "reason": "again"},
        )

        assert (response.status, response.error_code) == (409, "claim_already_decided"), response.body

    @precondition(lambda self: any(claim.status == "pending" for claim in self.claims))
    @rule(data=st.data())
    def partner_reports_a_claimed_purchase(self, data: st.DataObject) -> None:
        """When the partner's earn of a pending claim's purchase arrives, Then it credits normally
        and the claim closes as matched."""
        claim = data.draw(
            st.sampled_from([claim for claim in self.claims if claim.status == "pending"]), "claim"
        )
        response = self.report(claim.purchase)

        assert response.status == 201, response.body
        claim.status = "matched"
        self.credited(claim.purchase, claim.purchase.cents // 100, response.body["entryId"])
        shown = self.api.call("GET", f"/claims/{claim.claim_id}", identity=AGENT)
        assert shown.body["status"] == "matched", shown.body

    # ---- what must hold after every step

    def ledger(self, holder: Holder) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        query = {"limit": "100"}
        while True:
            response = self.api.call(
                "GET",
                f"/members/{holder.member_id}/ledger",
                identity=Identity.member(holder.member_id),
                query=query,
            )
            assert response.status == 200, response.body
            entries += response.body["entries"]
            if not response.body.get("nextCursor"):
                return entries
            query = {"limit": "100", "cursor": response.body["nextCursor"]}

    @invariant()
    def every_member_agrees_with_the_model_and_points_are_conserved(self) -> None:
        credited = spent = owed_added = owed_settled = 0
        by_purchase: Counter[str] = Counter()
        for holder in self.holders:
            balance = self.api.balance(holder.member_id)
            assert balance.status == 200, balance.body
            assert (balance.body["available"], balance.body["owed"]) == (holder.balance, holder.owed)
            assert sum(lot["remaining"] for lot in lots_of(self.api, holder.member_id)) == holder.balance
            entries = self.ledger(holder)
            assert sum(entry["points"] for entry in entries) == holder.balance >= 0
            ids = Counter(
                entry["details"].get("transferId") if entry["type"] == "transfer-out" else entry["entryId"]
                for entry in entries
            )
            assert all(ids[movement] == 1 for movement in holder.movements), "a 201 is not in the ledger once"
            for entry in entries:
                details = entry.get("details") or {}
                if entry["type"] in CREDITS:
                    credited += entry["points"]
                else:
                    spent -= entry["points"]
                owed_added += int(details.get("owedAdded", 0))
                owed_settled += int(details.get("owedSettled", 0))
                if entry["type"] in ("earn", "claim-credit"):
                    by_purchase[details["transactionId"]] += 1
        assert credited - spent == sum(holder.balance for holder in self.holders)
        assert owed_added - owed_settled == sum(holder.owed for holder in self.holders)
        assert all(count == 1 for count in by_purchase.values()), "a purchase was credited twice"


def test_movements_between_members_conserve_points_and_credit_each_purchase_once(api: Api) -> None:
    """Given three members, When random earns, redemptions, transfers, returns, claims and
    decisions reach the API, Then after every step each member agrees with the model, points
    are conserved, every 201 is in the ledger once and no purchase is credited twice."""
    run_state_machine_as_test(
        lambda: ProgramModel(api),
        settings=settings(
            max_examples=12,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
