"""Reminding one member (`loyalty.store.reminders.remind_member`) on DynamoDB Local, SES under moto.

The store is called directly with the rules and `now` passed in, so each test moves the clock
freely. Invariant 6: at most one reminder per (member, expiry date, window), whatever fails.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import itertools
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pynamodb.exceptions import UpdateError

from devtools.local import sent_emails
from loyalty import notify
from loyalty.domain.earning import Purchase
from loyalty.domain.ledger import Actor
from loyalty.domain.reminders import simulate_shopper
from loyalty.domain.rules import ProgramRules, parse_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.notify import EmailUnavailable, read_token
from loyalty.notify import ses as ses_module
from loyalty.notify.ses import SesSender
from loyalty.store import members, points
from loyalty.store import reminders as store
from loyalty.store.reminders import ReminderStatus, SkipReason, read_reminder_state, remind_member
from tests.integration.conftest import (
    EMAIL_LINKS,
    EMAIL_SENDER,
    PARIS,
    emails_under_moto,
    forget_email_configuration,
    ses_throttled,
)

SENDER = EMAIL_SENDER
LINKS = EMAIL_LINKS
SECRET = "reminders-test-secret-0123456789abcdefghij"
PARTNER = Actor("partner", "pos-reminders")
# Purchases of 15 June 2026 expire at the end of 15 June 2027 (rolling 12 months).
BOUGHT = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
EXPIRES_ON = date(2027, 6, 15)


def rules_with(**changes: Any) -> ProgramRules:
    document = json.loads(default_rules_text())
    document.update({"version": "test-reminders", "expiry": {"policy": "rolling", "months": 12}}, **changes)
    return parse_rules(document)


RULES = rules_with()


def paris(day: date, hour: int = 6) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=PARIS)


def days_before_expiry(days: int, hour: int = 6) -> datetime:
    return paris(EXPIRES_ON - timedelta(days=days), hour)


def enrol(member_id: str, **profile: Any) -> None:
    fields = {
        "email": f"{member_id}@example.com",
        "name": "Anne",
        "locale": "en",
        "emailOptIn": True,
        **profile,
    }
    members.enrol_or_update(member_id, fields, actor=PARTNER, now=BOUGHT - timedelta(days=400))


def earn(member_id: str, amount: str, at: datetime, rules: ProgramRules = RULES) -> None:
    purchase = Purchase(amount=Decimal(amount), currency="EUR", occurred_at=at, channel="store")
    tx = f"{member_id}-{at.timestamp()}-{amount}"
    points.earn(member_id, tx, purchase, actor=PARTNER, rules=rules, now=at)


def remind(member_id: str, as_of: datetime, rules: ProgramRules = RULES) -> store.ReminderOutcome:
    return remind_member(member_id, as_of, rules=rules, now=as_of)


class Outbox:
    """What SES (moto) accepted for one address, parsed."""

    def to(self, address: str) -> list[EmailMessage]:
        found = []
        for sent in sent_emails():
            if any(address in to for to in sent["to"]):
                parsed = email.message_from_string(sent["raw"], policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                found.append(parsed)
        return found


@pytest.fixture
def outbox(dynamodb_local: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Outbox]:
    with emails_under_moto(monkeypatch, unsubscribe_secret=SECRET):
        yield Outbox()


@pytest.fixture
def member(outbox: Outbox, member_id: str) -> str:
    """A member opted in, with 120 points bought on 15 June 2026 (expiring 15 June 2027)."""
    enrol(member_id)
    earn(member_id, "120", BOUGHT)
    return member_id


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


# ---- sent once


def test_a_member_with_points_expiring_within_30_days_gets_one_email_with_rows_balance_and_unsubscribe(
    member: str, outbox: Outbox
) -> None:
    # Given 120 points expiring on 15 June 2027, and a later purchase of 30 points expiring in 2028
    earn(member, "30", BOUGHT + timedelta(days=60))

    # When the run passes 20 days before
    outcome = remind(member, days_before_expiry(20))

    # Then one email tells about the 120 points, the date and the balance of 150
    assert outcome.status is ReminderStatus.SENT and outcome.message_id
    assert outcome.plan is not None and [(row.expires_on, row.points) for row in outcome.plan.rows] == [
        (EXPIRES_ON, 120)
    ]
    [message] = outbox.to(f"{member}@example.com")
    text = text_of(message)
    assert "120 points" in text and "15 June 2027" in text and "150 points" in text
    # with a signed unsubscribe link for this member, in the body and in the one-click headers
    header = str(message["List-Unsubscribe"])
    assert header.startswith(f"<{LINKS}/unsubscribe?token=") and header.endswith(">")
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    url = header[1:-1]
    token = parse_qs(urlsplit(url).query)["token"][0]
    assert read_token(token, secret=SECRET, now=days_before_expiry(20)) == member
    assert url in text


def test_points_past_their_expiry_not_yet_expired_leave_the_balance_and_never_stop_the_reminder(
    member: str, outbox: Outbox
) -> None:
    """Found by the program model: a lot past its expiry that no expiry run took yet, on the last
    page the reminder reads (later pages unread), made `due_points` ask for more pages."""
    # Given 120 points expiring on 15 June 2027 and 40 more of the same page expiring on 25 June,
    # and 30 points of a later page (September 2027), not read by the reminder
    earn(member, "40", BOUGHT + timedelta(days=10))
    earn(member, "30", BOUGHT + timedelta(days=90))

    # When the run passes on 20 June 2027, before any expiry run took the 120 points
    outcome = remind(member, paris(EXPIRES_ON + timedelta(days=5)))

    # Then the 40 points are reminded, and the balance shown leaves out the 120 past their date
    assert outcome.status is ReminderStatus.SENT
    assert outcome.plan is not None
    assert [(row.expires_on, row.points) for row in outcome.plan.rows] == [
        (EXPIRES_ON + timedelta(days=10), 40)
    ]
    [message] = outbox.to(f"{member}@example.com")
    assert "70 points" in " ".join(text_of(message).split())


def test_running_twice_sends_one_email(member: str, outbox: Outbox) -> None:
    first = remind(member, days_before_expiry(20))
    again = remind(member, days_before_expiry(20, hour=9))
    next_day = remind(member, days_before_expiry(19))

    assert first.status is ReminderStatus.SENT
    assert (again.status, again.reason) == (ReminderStatus.SKIPPED, SkipReason.NOTHING_DUE)
    assert (next_day.status, next_day.reason) == (ReminderStatus.SKIPPED, SkipReason.NOTHING_DUE)
    assert len(outbox.to(f"{member}@example.com")) == 1


def test_two_runs_at_once_send_one_email(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two runs that both read the member's state before either records anything
    both_read = threading.Barrier(2, timeout=5)
    record = store._record

    def record_after_both_read(*args: Any, **kwargs: Any) -> int | None:
        # The loser's second attempt plans nothing and never comes back here.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait()
        return record(*args, **kwargs)

    monkeypatch.setattr(store, "_record", record_after_both_read)
    outcomes: list[store.ReminderOutcome] = []

    def run() -> None:
        outcomes.append(remind(member, days_before_expiry(20)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then one conditional record wins: one email; the other run reads again and finds nothing due
    assert sorted(outcome.status for outcome in outcomes) == [ReminderStatus.SENT, ReminderStatus.SKIPPED]
    assert len(outbox.to(f"{member}@example.com")) == 1


def test_the_last_chance_window_reminds_the_same_date_once_more(member: str, outbox: Outbox) -> None:
    remind(member, days_before_expiry(20))
    last = remind(member, days_before_expiry(6))

    assert last.status is ReminderStatus.SENT and last.plan is not None and last.plan.window == 7
    assert len(outbox.to(f"{member}@example.com")) == 2
    assert remind(member, days_before_expiry(2)).reason is SkipReason.NOTHING_DUE


def test_under_the_inactivity_policy_the_points_expiring_with_the_last_activity_are_reminded(
    outbox: Outbox, member_id: str
) -> None:
    # Given every point expiring 12 months after the last purchase (the wallet's ACTIVITY pages)
    rules = rules_with(expiry={"policy": "inactivity", "months": 12})
    enrol(member_id)
    earn(member_id, "50", BOUGHT, rules)
    earn(member_id, "70", BOUGHT + timedelta(days=1), rules)

    # When the run passes 10 days before that date
    outcome = remind(member_id, paris(date(2027, 6, 6)), rules)

    # Then both purchases' points are in one row, on the date the last activity set
    assert outcome.status is ReminderStatus.SENT and outcome.plan is not None
    assert [(row.expires_on, row.points) for row in outcome.plan.rows] == [(date(2027, 6, 16), 120)]


def test_the_balance_leaves_out_points_past_their_expiry_that_the_expiry_run_has_not_taken_yet(
    member: str, outbox: Outbox
) -> None:
    # Given 120 points that expired yesterday (the expiry run has not passed) and 30 expiring soon
    earn(member, "30", BOUGHT + timedelta(days=20))

    # When the run passes the day after the first expiry
    outcome = remind(member, paris(EXPIRES_ON + timedelta(days=1)))

    # Then the email is about the 30 points, and the balance is 30, not 150
    assert outcome.status is ReminderStatus.SENT and outcome.plan is not None
    assert [row.points for row in outcome.plan.rows] == [30]
    [message] = outbox.to(f"{member}@example.com")
    text = " ".join(text_of(message).split())
    assert "Your balance on 16 June 2027 30 points" in text.replace(":", "")
    assert "150 points" not in text


# ---- skipped


def test_a_member_who_opted_out_gets_nothing(outbox: Outbox, member_id: str) -> None:
    enrol(member_id, emailOptIn=False)
    earn(member_id, "120", BOUGHT)

    outcome = remind(member_id, days_before_expiry(20))

    assert (outcome.status, outcome.reason) == (ReminderStatus.SKIPPED, SkipReason.OPTED_OUT)
    assert outbox.to(f"{member_id}@example.com") == []
    assert read_reminder_state(member_id).version is None  # nothing recorded


def test_a_member_with_nothing_expiring_within_the_windows_gets_nothing(member: str, outbox: Outbox) -> None:
    outcome = remind(member, days_before_expiry(31))

    assert (outcome.status, outcome.reason) == (ReminderStatus.SKIPPED, SkipReason.NOTHING_DUE)
    assert outbox.to(f"{member}@example.com") == []


def test_an_unknown_member_is_skipped(outbox: Outbox, member_id: str) -> None:
    assert remind(member_id, days_before_expiry(20)).reason is SkipReason.NO_MEMBER


def test_an_address_marked_undeliverable_gets_nothing_until_the_member_changes_it(
    outbox: Outbox, member_id: str
) -> None:
    # Given a member whose address cannot be written in a header
    enrol(member_id, email="anne at example")
    earn(member_id, "120", BOUGHT)

    # When the run tries: the address is marked undeliverable and nothing is recorded as reminded
    failed = remind(member_id, days_before_expiry(20))
    assert (failed.status, failed.error, failed.retry_later) == (
        ReminderStatus.FAILED,
        "InvalidRecipient",
        False,
    )
    state = read_reminder_state(member_id)
    assert state.undeliverable_address == "anne at example" and state.reminded == frozenset()

    # Then the next run skips it
    assert remind(member_id, days_before_expiry(19)).reason is SkipReason.UNDELIVERABLE

    # and once the member changes its address, the reminder goes to the new one
    members.enrol_or_update(
        member_id,
        {"email": f"{member_id}@example.com", "name": "Anne", "locale": "en", "emailOptIn": True},
        actor=PARTNER,
        now=days_before_expiry(18),
    )
    assert remind(member_id, days_before_expiry(18)).status is ReminderStatus.SENT
    assert len(outbox.to(f"{member_id}@example.com")) == 1


def test_an_address_that_bounced_is_skipped_whatever_its_case(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the bounce handling marked the member's address (written as bounce handling will)
    store._mark_undeliverable(
        member, read_reminder_state(member), f"{member.upper()}@EXAMPLE.COM", "Bounce", BOUGHT
    )

    assert remind(member, days_before_expiry(20)).reason is SkipReason.UNDELIVERABLE
    assert outbox.to(f"{member}@example.com") == []


# ---- the process dies between recording and sending


class Crash(BaseException):
    """The Lambda runtime killing the process (a timeout, an out-of-memory): not an Exception."""


def test_a_crash_between_record_and_send_loses_that_reminder_and_never_sends_it_twice(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run that dies after recording the reminder and before SES is called
    def crash(_: notify.Email) -> str:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(notify, "send", crash)
        with pytest.raises(Crash):
            remind(member, days_before_expiry(20))
    state = read_reminder_state(member)
    assert state.sending is not None  # recorded, never confirmed
    assert (EXPIRES_ON, 30) in state.reminded and (EXPIRES_ON, 7) not in state.reminded

    # When the run is replayed an hour later
    replay = remind(member, days_before_expiry(20, hour=7))

    # Then it sends nothing for that date and window (at most once), and reports the lost reminder
    assert (replay.status, replay.reason) == (ReminderStatus.SKIPPED, SkipReason.NOTHING_DUE)
    assert replay.unconfirmed is True
    assert outbox.to(f"{member}@example.com") == []
    # while the last-chance window still reminds the date, once
    last = remind(member, days_before_expiry(6))
    assert last.status is ReminderStatus.SENT and last.plan is not None and last.plan.window == 7
    assert len(outbox.to(f"{member}@example.com")) == 1
    assert read_reminder_state(member).sending is None


def test_a_send_whose_outcome_is_unknown_is_not_sent_again(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def timed_out(_: notify.Email) -> str:
        raise EmailUnavailable("ReadTimeoutError", "read timeout")

    with monkeypatch.context() as patch:
        patch.setattr(notify, "send", timed_out)
        outcome = remind(member, days_before_expiry(20))

    assert (outcome.status, outcome.retry_later) == (ReminderStatus.FAILED, False)
    assert remind(member, days_before_expiry(19)).reason is SkipReason.NOTHING_DUE


def test_a_reminder_sent_whose_confirmation_fails_is_still_reported_sent_and_not_sent_again(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB failing every write once SES has accepted the email
    send, update = notify.send, store._update
    accepted: list[str] = []

    def send_and_remember(message: notify.Email) -> str:
        accepted.append(send(message))
        return accepted[-1]

    def failing_after_send(*args: Any, **kwargs: Any) -> bool:
        if accepted:
            raise UpdateError("DynamoDB unavailable")
        return update(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(notify, "send", send_and_remember)
        patch.setattr(store, "_update", failing_after_send)
        outcome = remind(member, days_before_expiry(20))

    # Then the outcome is the email sent, and a retry of the member sends nothing more
    assert (outcome.status, outcome.message_id) == (ReminderStatus.SENT, accepted[0])
    assert remind(member, days_before_expiry(20, hour=7)).reason is SkipReason.NOTHING_DUE
    assert len(outbox.to(f"{member}@example.com")) == 1


# ---- SES throttling and refusals


class ThrottlingClient:
    """The moto client, throttled for the first `times` calls."""

    def __init__(self, client: Any, times: int) -> None:
        self.client = client
        self.left = times
        self.calls = 0

    def send_email(self, **request: Any) -> Any:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise ses_throttled()
        return self.client.send_email(**request)


def throttled_sender(monkeypatch: pytest.MonkeyPatch, times: int) -> tuple[ThrottlingClient, list[float]]:
    client = ThrottlingClient(ses_module.ses_client(), times)
    pauses: list[float] = []
    sender = SesSender(client, sleep=pauses.append)
    monkeypatch.setattr(ses_module, "default_sender", lambda: sender)
    return client, pauses


def test_ses_throttling_is_retried_with_backoff_then_the_email_goes_once(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        client, pauses = throttled_sender(patch, times=2)
        outcome = remind(member, days_before_expiry(20))

    assert outcome.status is ReminderStatus.SENT
    assert client.calls == 3 and len(pauses) == 2
    assert len(outbox.to(f"{member}@example.com")) == 1


def test_a_send_still_throttled_is_undone_and_the_next_run_sends_it_once(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SES throttling through every attempt of the call
    with monkeypatch.context() as patch:
        throttled_sender(patch, times=100)
        failed = remind(member, days_before_expiry(20))

    # Then nothing is left recorded: the reminder is not lost
    assert (failed.status, failed.error, failed.retry_later) == (
        ReminderStatus.FAILED,
        "TooManyRequestsException",
        True,
    )
    state = read_reminder_state(member)
    assert state.reminded == frozenset() and state.last_reminded_at is None and state.sending is None
    assert outbox.to(f"{member}@example.com") == []

    # and the next run sends the same reminder, once
    retried = remind(member, days_before_expiry(19))
    assert retried.status is ReminderStatus.SENT
    assert remind(member, days_before_expiry(19, hour=8)).reason is SkipReason.NOTHING_DUE
    assert len(outbox.to(f"{member}@example.com")) == 1


def test_a_rejected_email_is_recorded_as_failed_and_not_sent_again(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SES refusing the sender (not verified)
    monkeypatch.setenv("SENDER_ADDRESS", "someone@unverified.example.org")
    forget_email_configuration()

    outcome = remind(member, days_before_expiry(20))

    assert (outcome.status, outcome.error, outcome.retry_later) == (
        ReminderStatus.FAILED,
        "MessageRejected",
        False,
    )
    assert outbox.to(f"{member}@example.com") == []
    state = read_reminder_state(member)
    assert (EXPIRES_ON, 30) in state.reminded and state.sending is None
    assert remind(member, days_before_expiry(19)).reason is SkipReason.NOTHING_DUE


def test_a_rejected_address_is_marked_undeliverable(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_: notify.Email) -> str:
        raise notify.InvalidRecipient("the member's email address is not an address")

    with monkeypatch.context() as patch:
        patch.setattr(notify, "send", refuse)
        remind(member, days_before_expiry(20))

    assert read_reminder_state(member).undeliverable_address == f"{member}@example.com"
    assert remind(member, days_before_expiry(6)).reason is SkipReason.UNDELIVERABLE


# ---- locale and escaping


def test_the_email_is_in_the_members_locale(outbox: Outbox, member_id: str) -> None:
    enrol(member_id, locale="fr")
    earn(member_id, "1250", BOUGHT)

    remind(member_id, days_before_expiry(20))

    [message] = outbox.to(f"{member_id}@example.com")
    text = text_of(message)
    assert "1\u202f250 points" in text and "15 juin 2027" in text
    assert '<html lang="fr">' in html_of(message)


def test_a_hostile_name_is_escaped_in_the_html_and_kept_out_of_the_headers(
    outbox: Outbox, member_id: str
) -> None:
    enrol(member_id, name='<script>alert("x")</script>\r\nBcc: eve@example.com')
    earn(member_id, "120", BOUGHT)

    assert remind(member_id, days_before_expiry(20)).status is ReminderStatus.SENT

    [message] = outbox.to(f"{member_id}@example.com")
    html = html_of(message)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert message["Bcc"] is None
    assert [address.addr_spec for address in message["To"].addresses] == [f"{member_id}@example.com"]


# ---- a daily shopper over a month


def test_a_daily_shopper_reminded_every_day_for_a_month_gets_the_emails_the_planner_allows(
    outbox: Outbox, member_id: str
) -> None:
    # Given rules whose points expire a month after purchase, and a member who buys every day at
    # noon (Paris), from 40 days before the month to its end
    rules = rules_with(expiry={"policy": "rolling", "months": 1})
    start, days, history = date(2027, 3, 1), 31, 40
    enrol(member_id)
    first = start - timedelta(days=history)
    for n in range(history):
        earn(member_id, "10", paris(first + timedelta(days=n), hour=12), rules)

    # When the run passes every day at 06:00, before that day's purchase
    sent_on: list[date] = []
    for n in range(days):
        today = start + timedelta(days=n)
        if remind(member_id, paris(today), rules).status is ReminderStatus.SENT:
            sent_on.append(today)
        earn(member_id, "10", paris(today, hour=12), rules)

    # Then the member got exactly the emails of plan_reminder's rule: one a week at most
    figures = simulate_shopper(
        rules, shop_every_days=1, start=start, days=days, history_days=history, points_per_purchase=10
    )
    assert sent_on == [email.sent_on for email in figures.sent]
    assert len(sent_on) <= figures.bound == 5
    assert all((later - earlier).days >= 7 for earlier, later in itertools.pairwise(sent_on))
    assert len(outbox.to(f"{member_id}@example.com")) == len(sent_on)
    # and the state keeps only the keys of dates still to come: 31 dates in 2 windows at most
    kept = read_reminder_state(member_id).reminded
    assert kept and len(kept) <= 62
    assert min(key.expires_on for key in kept) >= sent_on[-1]
