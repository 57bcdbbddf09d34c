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

Between the movements, the scheduled runs go at as-of instants moving forward (issue #8), run end
to end in-process (`start_run` onto a list, then `process_message` for each message) on a table of
the test's own, since a run pages every shard of the due-date index:

- an expiry run takes from each member exactly the points of its lots due at the as-of instant
  (`expiresAt` at or before it, points remaining), in one `expiry` ledger entry, and visits only
  the members with points due; run again at the same instant, it finds nobody and changes nothing.
  The movements use the wall clock while the runs are ahead of it, so a lot earned after a run can
  already be due at the next one: the model follows the lots, not the calendar;
- a reminder run (SES under moto) emails exactly the members the reminder rule says, with the rows
  and balance it says, and over the whole history no member is told twice of one (expiry date,
  window), a member opted out gets nothing, and two emails to one member are `minDaysBetween`
  local days apart unless the later one brings a date new to the last-chance window (and then
  at least that window apart).

Between steps too, the liability figures (issue #9): the table's stream is delivered to the real
aggregator in batches of a drawn size, some delivered twice, and the report as of instants drawn
around the movements must equal every figure rebuilt here from the full ledger (by its own
reading of each entry: the lots' `issueMonth`, and an expiry at its dated lot's `expiresAt`);
as of the end, what is outstanding is the sum of the balances and what is owed the sum owed.

`test_points_model.py` checks one member's lots in detail; this one checks how the movements
between members and purchases compose.
"""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from moto import mock_aws

from devtools.identity import Identity
from devtools.local import sent_emails
from devtools.streams import StreamPoller
from loyalty.domain.liability import minute_end, report_instant
from loyalty.domain.rules import ProgramRules, load_rules
from loyalty.notify import notify_config
from loyalty.notify import ses as ses_module
from loyalty.reports.handlers import aggregate
from loyalty.reports.liability import document, liability_report
from loyalty.runs.fanout import RunMessage, start_run
from loyalty.runs.jobs import RunKind
from loyalty.runs.worker import process_message
from loyalty.settings import settings as loyalty_settings
from loyalty.store.runs import RunRecord, read_run
from tests.integration.conftest import Api, ApiResponse, expiry_day, lots_of

pytestmark = pytest.mark.slow

PARTNER = Identity.partner("pos-program")
AGENT = Identity.support("agent-program")
MEMBERS = 3
MIN_TRANSFER, MAX_TRANSFER, MAX_PER_DAY = 100, 5_000, 10_000  # the default rules
MAX_OPEN_CLAIMS = 5
CREDITS = {"earn", "claim-credit", "transfer-in"}
SENDER = "no-reply@program-model.example.com"
REMINDER_SUBJECT = "Some of your points will expire soon"  # the English reminder's fixed subject
MINUTES_A_DAY = 24 * 60
# How long before a lot's expiry a run may go (plus up to a day): about the edges of the default
# windows (30 and 7 days); 31 first, so that the daily runs that follow cross both.
BEFORE_EXPIRY_DAYS = [31, 30, 24, 14, 8, 7, 6, 1, 0]
SHARDS = 4  # of the due-date index (EXPIRY_SHARDS)
MEMBERS_PER_MESSAGE = 2  # so that a run's three members come in more than one message


@dataclass(frozen=True)
class ReminderEmail:
    """A reminder as the member reads it: the local day of its run, the points per expiry date
    (the last day they can be used) and the balance it shows."""

    sent_on: date
    rows: dict[date, int]
    balance: int


@dataclass
class Holder:
    """What one member holds, as the model sees it."""

    member_id: str
    balance: int = 0
    owed: int = 0
    sent_today: int = 0
    movements: list[str] = field(default_factory=list)  # ids answered 201, each a ledger entry
    expired: int = 0  # what the expiry runs took
    opted_in: bool = False  # `emailOptIn`: the enrolment's default is no reminders
    reminded: set[tuple[date, int]] = field(default_factory=set)  # (expiry date, window) told
    last_reminded_on: date | None = None  # the local day of the last reminder run that emailed it
    reminders: list[ReminderEmail] = field(default_factory=list)  # every reminder received, in order

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


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


class ListQueue:
    """The run's queue, in memory: the bodies `start_run` sends, to be processed one by one."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: Sequence[str]) -> None:
        self.bodies.extend(bodies)


# The English reminder's lines (`loyalty.notify.messages.points_expiring`), e.g.
# "Until 15 June 2027: 1,200 points" and "Your balance on 1 June 2027: 5,000 points".
ROW = re.compile(r"^Until (\d{1,2} [A-Z][a-z]+ \d{4}): ([\d,]+) points?$", re.MULTILINE)
BALANCE = re.compile(r"^Your balance on (\d{1,2} [A-Z][a-z]+ \d{4}): ([\d,]+) points?$", re.MULTILINE)


def english_date(text: str) -> date:
    return datetime.strptime(text, "%d %B %Y").date()


def reminders_sent() -> dict[str, list[ReminderEmail]]:
    """Every reminder SES (moto) accepted, by address, oldest first, read from its text part."""
    found: dict[str, list[ReminderEmail]] = {}
    for sent in sent_emails():
        if sent["subject"] != REMINDER_SUBJECT:
            continue
        parsed = email.message_from_string(sent["raw"], policy=email.policy.default)
        assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        text = str(sent["text"]).replace("\r\n", "\n")  # as sent: CRLF line ends
        rows = {english_date(day): int(points.replace(",", "")) for day, points in ROW.findall(text)}
        balances = BALANCE.findall(text)
        assert rows and len(balances) == 1, text
        [(day, balance)] = balances
        mail = ReminderEmail(english_date(day), rows, int(balance.replace(",", "")))
        for address in sent["to"]:
            found.setdefault(address, []).append(mail)
    return found


def forget_email_configuration() -> None:
    notify_config.cache_clear()
    ses_module.ses_client.cache_clear()
    ses_module.default_sender.cache_clear()


class ProgramModel(RuleBasedStateMachine):
    def __init__(self, api: Api, table: Any, stream: StreamPoller) -> None:
        super().__init__()
        self.api = api
        self.stream = stream
        stream.drain()  # the last example's records, before its items (and figures) go
        empty(table)  # a run visits every member of the table: only this example's
        self.rules: ProgramRules = load_rules(loyalty_settings().rules_source)
        run = uuid.uuid4().hex[:8]
        self.holders = [Holder(f"pm-{run}-{index}") for index in range(MEMBERS)]
        self.purchases: list[Purchase] = []
        self.claims: list[Claim] = []
        self.clock = datetime.now(UTC)  # the last run's as-of instant: runs move forward from now
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

    @initialize(
        cents=st.lists(st.integers(200, 40_000), min_size=MEMBERS, max_size=MEMBERS),
        days_ago=st.lists(st.integers(0, 300), min_size=MEMBERS, max_size=MEMBERS),
        opted_out=st.lists(st.booleans(), min_size=MEMBERS, max_size=MEMBERS),
    )
    def everyone_shops(self, cents: list[int], days_ago: list[int], opted_out: list[bool]) -> None:
        """Given three members with a purchase credited each, most of them wanting reminders."""
        for member, amount in enumerate(cents):
            self.earn(member, amount, days_ago[member])
            if not opted_out[member]:
                self.change_opt_in(member, True)

    @rule(member=st.integers(0, MEMBERS - 1), opted_out=st.booleans())
    def opt_in_or_out(self, member: int, opted_out: bool) -> None:
        """When a member's profile is updated with or without `emailOptIn`, Then it says so."""
        self.change_opt_in(member, not opted_out)

    def change_opt_in(self, member: int, opted_in: bool) -> None:
        holder = self.holders[member]
        response = self.api.enrol(holder.member_id, emailOptIn=opted_in)

        assert response.status == 200, response.body
        assert response.body["emailOptIn"] is opted_in
        holder.opted_in = opted_in

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

    # ---- the scheduled runs, at as-of instants moving forward

    def later(self, data: st.DataObject, lots: dict[str, list[dict[str, Any]]], aim: str) -> datetime:
        """The next run's as-of instant, strictly after the last one's: up to 10 or 60 days later,
        exactly when a lot expires, or up to 35 days before (in its reminder windows). The lots
        of the movements expire 14 to 24 months from now: the aimed steps reach them, and small
        steps keep the clock among them rather than past them all. `aim` comes first: Hypothesis
        draws the first choices most."""
        expiries = {instant(lot["expiresAt"]) for held in lots.values() for lot in held if lot["expiresAt"]}
        # The soonest three: a jump to the last lot would leave the clock past every lot, and
        # the runs that follow with nothing to do.
        ahead = sorted(moment for moment in expiries if moment > self.clock)[:3]
        targets = ["at an expiry", "before an expiry"] if ahead else []
        choices = [*([aim] if aim in targets else []), "days", *(t for t in targets if t != aim), "months"]
        how = data.draw(st.sampled_from(choices), "how much later")
        if how in ("days", "months"):
            most = 10 if how == "days" else 60
            as_of = self.clock + timedelta(minutes=data.draw(st.integers(1, most * MINUTES_A_DAY), "minutes"))
        else:
            target = data.draw(st.sampled_from(ahead), "a lot's expiry")
            before = timedelta(0)
            if how == "before an expiry":  # days about the windows' edges, first the likeliest drawn
                days = data.draw(st.sampled_from(BEFORE_EXPIRY_DAYS), "days before")
                before = timedelta(days=days, minutes=data.draw(st.integers(0, MINUTES_A_DAY - 1), "minutes"))
            as_of = max(target - before, self.clock + timedelta(minutes=1))
        event(f"run: {how}")
        self.clock = as_of
        return as_of

    def run(self, kind: RunKind, as_of: datetime) -> RunRecord:
        """A run end to end, in-process: the start onto a list, then each message by the worker."""
        queue = ListQueue()
        started = start_run(
            kind,
            as_of,
            rules=self.rules,
            queue=queue,
            shards=loyalty_settings().expiry_shards,
            now=datetime.now(UTC),
            members_per_message=MEMBERS_PER_MESSAGE,
        )
        for body in queue.bodies:
            process_message(RunMessage.from_json(body), rules=self.rules)
        record = read_run(started.run_id)
        assert record is not None and record.complete, record
        assert record.member_failures == 0, record
        return record

    def all_lots(self) -> dict[str, list[dict[str, Any]]]:
        return {holder.member_id: lots_of(self.api, holder.member_id) for holder in self.holders}

    @rule(data=st.data())
    def expiry_run(self, data: st.DataObject) -> None:
        """When the expiry run goes at a later instant, Then each member loses exactly the points
        of its lots due then (expiring at or before it, points remaining), recorded in one
        `expiry` entry; only members with points due are visited; run again at the same instant,
        it finds nobody and changes nothing."""
        lots = self.all_lots()
        as_of = self.later(data, lots, aim="at an expiry")
        due = {
            member_id: [
                lot
                for lot in held
                if lot["expiresAt"] and instant(lot["expiresAt"]) <= as_of and lot["remaining"] > 0
            ]
            for member_id, held in lots.items()
        }
        before = {holder.member_id: self.ledger(holder) for holder in self.holders}

        record = self.run(RunKind.EXPIRY, as_of)

        for holder in self.holders:
            points = sum(lot["remaining"] for lot in due[holder.member_id])
            known = {entry["entryId"] for entry in before[holder.member_id]}
            new = [entry for entry in self.ledger(holder) if entry["entryId"] not in known]
            if not points:
                assert new == [], new
                continue
            assert [(entry["type"], entry["points"]) for entry in new] == [("expiry", -points)], new
            entry = new[0]
            holder.balance -= points
            holder.expired += points
            holder.movements.append(entry["entryId"])
            left = lots_of(self.api, holder.member_id)
            assert {lot["lotId"] for lot in left}.isdisjoint(lot["lotId"] for lot in due[holder.member_id])
        members = sum(1 for held in due.values() if held)
        event(f"expiry run: {members} member(s) with points due")
        assert record.members_queued == members, (record, due)
        assert record.counts.get("membersExpired", 0) == members, record
        assert record.counts.get("lotsExpired", 0) == sum(len(held) for held in due.values()), record
        assert record.counts.get("pointsExpired", 0) == sum(
            lot["remaining"] for held in due.values() for lot in held
        ), record

        after = {holder.member_id: self.ledger(holder) for holder in self.holders}
        again = self.run(RunKind.EXPIRY, as_of)
        assert again.members_queued == 0 and not again.counts.get("pointsExpired"), again
        assert {holder.member_id: self.ledger(holder) for holder in self.holders} == after

    def planned_reminder(
        self, holder: Holder, lots: list[dict[str, Any]], as_of: datetime
    ) -> ReminderEmail | None:
        """The reminder the member must get at `as_of` (docs/design.md, "Reminders"): every date
        with live points inside a window, not yet told in the narrowest window holding it; none
        when opted out, or within `minDaysBetween` local days of the last one unless a date is
        new to the last-chance window and that window's days have passed."""
        windows = self.rules.reminders.days_before  # largest first
        today = as_of.astimezone(self.rules.tz).date()
        live: Counter[date] = Counter()
        due = 0
        for lot in lots:
            if not lot["expiresAt"] or not lot["remaining"]:
                continue
            if instant(lot["expiresAt"]) <= as_of:
                due += lot["remaining"]  # expired already, whether or not a run took it yet
            else:
                live[expiry_day(lot["expiresAt"])] += lot["remaining"]
        rows: dict[date, int] = {}
        last_chance = False
        for day, points in sorted(live.items()):
            holding = [window for window in windows if (day - today).days <= window]
            if holding and (day, holding[-1]) not in holder.reminded:
                rows[day] = points
                last_chance = last_chance or holding[-1] == windows[-1]
        if not rows:
            return None
        if not holder.opted_in:
            event("reminder run: a member opted out has dates to be told")
            return None
        if holder.last_reminded_on is not None:
            elapsed = (today - holder.last_reminded_on).days
            if elapsed < self.rules.reminders.min_days_between and not (
                last_chance and elapsed >= windows[-1]
            ):
                event("reminder run: a member's dates wait for the spacing")
                return None
        event(f"reminder run: an email{' with a last-chance date' if last_chance else ''}")
        return ReminderEmail(today, rows, max(holder.balance - due, 0))

    @rule(data=st.data(), days=st.sampled_from([8, 1, 3]), again=st.booleans())
    def reminder_runs(self, data: st.DataObject, days: int, again: bool) -> None:
        """When the daily reminder run goes on a few days in a row from a later instant, Then
        each day exactly the members the rule names get one email each, with the rows and balance
        it says (and a second run at the first instant sends nothing); over the whole history, no
        member is told twice of one (expiry date, window), a member opted out gets nothing, and
        reminders keep their spacing."""
        lots = self.all_lots()  # reminders change no lot: one read serves every day
        first = self.later(data, lots, aim="before an expiry")
        for day in range(days):
            self.clock = first + timedelta(days=day)
            self.remind(self.clock, lots, again=again and day == 0)

    def remind(self, as_of: datetime, lots: dict[str, list[dict[str, Any]]], *, again: bool) -> None:
        planned = {
            holder.member_id: self.planned_reminder(holder, lots[holder.member_id], as_of)
            for holder in self.holders
        }
        seen = reminders_sent()

        record = self.run(RunKind.REMINDERS, as_of)
        if again:
            self.run(RunKind.REMINDERS, as_of)

        windows = self.rules.reminders.days_before
        sent = reminders_sent()
        for holder in self.holders:
            address = self.address(holder)
            new = sent.get(address, [])[len(seen.get(address, [])) :]
            if not holder.opted_in:
                assert new == [], "a member opted out got a reminder"
            expected = planned[holder.member_id]
            assert new == ([expected] if expected else []), (new, expected)
            if expected is None:
                continue
            holder.reminders.append(expected)
            holder.reminded |= {
                (day, window)
                for day in expected.rows
                for window in windows
                if (day - expected.sent_on).days <= window
            }
            holder.last_reminded_on = expected.sent_on
            self.check_reminder_history(holder)
        assert record.counts.get("emailsSent", 0) == sum(1 for plan in planned.values() if plan), record

    def check_reminder_history(self, holder: Holder) -> None:
        """From the emails alone: each row is told in the narrowest window holding its date on the
        email's day, never twice in one window; two emails are `minDaysBetween` local days apart,
        or at least the last-chance window apart when the later one tells a date in it."""
        windows, spacing = self.rules.reminders.days_before, self.rules.reminders.min_days_between
        told: set[tuple[date, int]] = set()
        previous: date | None = None
        for mail in holder.reminders:
            keys = set()
            for day in mail.rows:
                holding = [window for window in windows if 0 <= (day - mail.sent_on).days <= window]
                assert holding, f"{day} is in no window on {mail.sent_on}"
                keys.add((day, holding[-1]))
            assert told.isdisjoint(keys), f"told twice: {told & keys}"
            told |= keys
            if previous is not None:
                elapsed = (mail.sent_on - previous).days
                if elapsed < spacing:
                    assert elapsed >= windows[-1], f"emails {elapsed} days apart"
                    assert any(window == windows[-1] for _, window in keys), f"emails {elapsed} days apart"
            previous = mail.sent_on

    @staticmethod
    def address(holder: Holder) -> str:
        return f"{holder.member_id}@example.com"

    # ---- liability and breakage, rebuilt from the ledger

    @rule(data=st.data())
    def liability_agrees_with_the_ledger(self, data: st.DataObject) -> None:
        self.stream.batch_size = data.draw(st.integers(1, 60), "stream batch size")
        twice = data.draw(st.booleans(), "each batch delivered twice")
        deliver = self.stream.deliver
        if twice:
            self.stream.deliver = lambda event: [aggregate(event), aggregate(event)][1]
        try:
            self.stream.drain()
        finally:
            self.stream.deliver = deliver
        entries = [entry for holder in self.holders for entry in self.ledger(holder)]
        moments = sorted({moment for entry in entries for moment in effective_instants(entry)})
        end = minute_end(max([self.clock, datetime.now(UTC), *moments]))
        instants = [end]
        for moment in data.draw(st.lists(st.sampled_from(moments), max_size=3), "as of") if moments else []:
            instants.append(
                report_instant(moment + timedelta(minutes=data.draw(st.integers(-1, 1), "shift")))
            )
        for as_of in instants:
            report = document(liability_report(as_of, self.rules))
            assert report == rebuilt(entries, as_of, report["value"]), as_of
        final = document(liability_report(end, self.rules))
        assert final["outstanding"] == sum(holder.balance for holder in self.holders)
        assert final["owed"] == sum(holder.owed for holder in self.holders)
        expired = sum(month["expired"] for month in final["byIssueMonth"])
        assert expired == sum(holder.expired for holder in self.holders)

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
        credited = spent = expired = owed_added = owed_settled = 0
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
                elif entry["type"] == "expiry":
                    expired -= entry["points"]
                else:
                    spent -= entry["points"]
                owed_added += int(details.get("owedAdded", 0))
                owed_settled += int(details.get("owedSettled", 0))
                if entry["type"] in ("earn", "claim-credit"):
                    by_purchase[details["transactionId"]] += 1
        assert expired == sum(holder.expired for holder in self.holders)
        assert credited - spent - expired == sum(holder.balance for holder in self.holders)
        assert owed_added - owed_settled == sum(holder.owed for holder in self.holders)
        assert all(count == 1 for count in by_purchase.values()), "a purchase was credited twice"


CREDIT_TYPES = {"earn", "claim-credit", "transfer-in"}
DEBIT_FIGURES = {
    "redeem": "redeemed",
    "transfer-out": "transferred",
    "reversal": "reversed",
    "expiry": "expired",
}


def undated(lot: dict[str, Any]) -> bool:
    return str(lot["lotId"]).startswith(("activity-", "never-"))


def effective_instants(entry: dict[str, Any]) -> list[datetime]:
    """When each lot movement of a ledger entry counts: a dated lot's expiry at its `expiresAt`,
    anything else when recorded (an undated lot's expiry when the run found it: `occurredAt`)."""
    moments = []
    for lot in entry["lots"]:
        if entry["type"] == "expiry":
            moments.append(instant(entry["occurredAt"] if undated(lot) else lot["expiresAt"]))
        else:
            moments.append(instant(entry["recordedAt"]))
    return moments


def rebuilt(entries: list[dict[str, Any]], as_of: datetime, value: Any) -> dict[str, Any]:
    """The liability report as of `as_of`, from the full ledger alone."""
    months: dict[str, Counter[str]] = {}
    buckets: Counter[str] = Counter()
    owed = 0
    for entry in entries:
        details = entry.get("details") or {}
        if instant(entry["recordedAt"]) <= as_of:
            owed += int(details.get("owedAdded", 0)) - int(details.get("owedSettled", 0))
        for lot, moment in zip(entry["lots"], effective_instants(entry), strict=True):
            if moment > as_of or not lot["points"]:
                continue
            bucket = str(lot["lotId"]).split("-")[0].upper() if undated(lot) else lot["expiryMonth"]
            figures = months.setdefault(lot["issueMonth"], Counter())
            points = abs(lot["points"])
            if entry["type"] in CREDIT_TYPES:
                buckets[bucket] += points
                figures["issued"] += points
                figures["received"] += points if entry["type"] == "transfer-in" else 0
            else:
                buckets[bucket] -= points
                figures[DEBIT_FIGURES[entry["type"]]] += points
    names = ("issued", "received", "redeemed", "transferred", "reversed", "expired", "adjusted")
    by_issue_month = []
    for month, figures in sorted(months.items()):
        row: dict[str, Any] = {"month": month, **{name: figures[name] for name in names}}
        if not any(row[name] for name in names):
            continue
        row["outstanding"] = row["issued"] - sum(row[n] for n in names[2:])
        row["breakageRate"] = round(row["expired"] / row["issued"], 4) if row["issued"] else None
        by_issue_month.append(row)
    return {
        "asOf": as_of.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outstanding": sum(buckets.values()),
        "byExpiryMonth": [
            {"month": bucket, "points": points}
            for bucket, points in sorted(buckets.items())
            if points and bucket not in ("ACTIVITY", "NEVER")
        ],
        "expiresOnInactivity": buckets["ACTIVITY"],
        "neverExpires": buckets["NEVER"],
        "owed": owed,
        "byIssueMonth": by_issue_month,
        "value": value,
    }


def empty(table: Any) -> None:
    """Delete every item of the test's own table."""
    scan: dict[str, Any] = {"ProjectionExpression": "pk, sk"}
    with table.batch_writer() as batch:
        while True:
            page = table.scan(**scan)
            for item in page["Items"]:
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
            if "LastEvaluatedKey" not in page:
                return
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def run_environment(own_table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The runs' configuration on the test's own table, and SES under moto with the email
    configuration the reminders need. Four shards of the due-date index, as in `test_runs.py`:
    every run pages each of them, and 64 would make the runs most of the test's time."""
    monkeypatch.setenv("EXPIRY_SHARDS", str(SHARDS))
    loyalty_settings.cache_clear()
    monkeypatch.setenv("SENDER_ADDRESS", SENDER)
    monkeypatch.setenv("PROGRAM_NAME", "Club Modèle")
    monkeypatch.setenv("LINKS_BASE_URL", "https://loyalty.example.com/account")
    monkeypatch.delenv("SES_CONFIGURATION_SET", raising=False)
    forget_email_configuration()
    with mock_aws():
        boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER)
        yield
    forget_email_configuration()


@pytest.fixture
def stream(own_table: Any, dynamodb_local: str) -> StreamPoller:
    """The test's own table's stream, delivered to the liability aggregator."""
    arn = boto3.client("dynamodb", endpoint_url=dynamodb_local).describe_table(TableName=own_table.name)
    client = boto3.client("dynamodbstreams", endpoint_url=dynamodb_local)
    return StreamPoller(client, arn["Table"]["LatestStreamArn"], aggregate)


def test_movements_and_runs_conserve_points_expire_each_lot_once_and_remind_by_the_rule(
    api: Api, own_table: Any, run_environment: None, stream: StreamPoller
) -> None:
    """Given three members, When random earns, redemptions, transfers, returns, claims,
    decisions and profile changes reach the API, and expiry and reminder runs go at instants
    moving forward, Then after every step each member agrees with the model, points are
    conserved (expired ones included), every 201 is in the ledger once, no purchase is credited
    twice, each run expires exactly the points due and reminds exactly whom the rule says, and the
    liability report as of any instant equals its figures rebuilt from the full ledger."""
    run_state_machine_as_test(
        lambda: ProgramModel(api, own_table, stream),
        settings=settings(
            max_examples=12,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
