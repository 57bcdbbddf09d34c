"""SES bounces and complaints (EventBridge → EmailEventsFunction) mark the member's address
undeliverable: no reminder goes to it again until the member changes it (SPEC §6, §7). On DynamoDB
Local, SES under moto; the events are the samples of events/email_events/, retagged per test.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from devtools.lambda_runtime import LambdaContext, load_handler
from devtools.template import function_code
from loyalty import notify
from loyalty.http.telemetry import logger
from loyalty.notify.tags import member_tag
from loyalty.store import members
from loyalty.store import reminders as store
from loyalty.store.reminders import (
    AddressMark,
    ReminderStatus,
    SkipReason,
    mark_address_undeliverable,
    read_reminder_state,
)
from tests.integration.conftest import ROOT, emails_under_moto
from tests.integration.test_reminders_store import (
    BOUGHT,
    PARTNER,
    SECRET,
    Outbox,
    days_before_expiry,
    earn,
    enrol,
    remind,
)

SAMPLES = ROOT / "events" / "email_events"
AS_OF = days_before_expiry(20)  # a reminder is due: 120 points expire in 20 days


def address_of(member_id: str) -> str:
    return f"{member_id}@example.com"  # the address `enrol` gives


def ses_event(name: str, member_id: str, address: str, **changes: Any) -> dict[str, Any]:
    """The sample event as SES would publish it for an email to `address` tagged with `member_id`."""
    event: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text())
    detail = event["detail"]
    detail["mail"]["tags"]["member"] = [member_tag(member_id)]
    detail["mail"]["destination"] = [address]
    recipients = "bouncedRecipients" if "bounce" in detail else "complainedRecipients"
    kind = "bounce" if "bounce" in detail else "complaint"
    detail[kind][recipients] = [{**detail[kind][recipients][0], "emailAddress": address}]
    detail[kind].update(changes)
    return event


@pytest.fixture
def outbox(dynamodb_local: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Outbox]:
    """SES under moto, the email settings of a function that sends (as test_reminders_store's)."""
    with emails_under_moto(monkeypatch, unsubscribe_secret=SECRET):
        yield Outbox()


@pytest.fixture
def member(outbox: Outbox, member_id: str) -> str:
    """A member opted in, with 120 points bought on 15 June 2026 (expiring 15 June 2027)."""
    enrol(member_id)
    earn(member_id, "120", BOUGHT)
    return member_id


@pytest.fixture(scope="module")
def handler(template: dict[str, Any]) -> Any:
    code_uri, name = function_code(template, "EmailEventsFunction")
    return load_handler(code_uri, name, root=ROOT)


def handle(handler: Any, event: Any) -> dict[str, Any]:
    result: dict[str, Any] = handler(event, LambdaContext("EmailEventsFunction"))
    return result


class SesCalls:
    """Every call to SES, counted where it happens (whatever moto records)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.emails: list[notify.Email] = []
        send = notify.send

        def counting(email: notify.Email) -> str:
            self.emails.append(email)
            return send(email)

        monkeypatch.setattr(notify, "send", counting)


@pytest.fixture
def ses_calls(outbox: Outbox, monkeypatch: pytest.MonkeyPatch) -> SesCalls:
    return SesCalls(monkeypatch)


def change_address(member_id: str, address: str) -> None:
    profile = {"email": address, "name": "Anne", "locale": "en", "emailOptIn": True}
    members.enrol_or_update(member_id, profile, actor=PARTNER, now=BOUGHT + timedelta(days=1))


# ---- a permanent bounce


def test_a_permanent_bounce_marks_the_address_and_the_next_reminder_skips_it_without_calling_ses(
    handler: Any, member: str, outbox: Outbox, ses_calls: SesCalls
) -> None:
    # Given SES reports that the member's address bounced for good
    result = handle(handler, ses_event("ses-bounce", member, address_of(member), bounceSubType="NoEmail"))

    # Then the address is marked undeliverable, with SES's reason
    assert result == {"memberId": member, "reason": "bounce:NoEmail", "marks": ["marked"]}
    assert read_reminder_state(member).refuses(address_of(member).upper())

    # When the reminder run passes while points are due
    outcome = remind(member, AS_OF)

    # Then the member is skipped as undeliverable, and SES is never called
    assert (outcome.status, outcome.reason) == (ReminderStatus.SKIPPED, SkipReason.UNDELIVERABLE)
    assert ses_calls.emails == [] and outbox.to(address_of(member)) == []


def test_after_the_member_changes_its_address_it_is_reminded_again_at_the_new_one(
    handler: Any, member: str, outbox: Outbox, ses_calls: SesCalls
) -> None:
    # Given the old address bounced, then the member gave a new one
    handle(handler, ses_event("ses-bounce", member, address_of(member)))
    change_address(member, f"new.{member}@example.org")

    # When the reminder run passes
    outcome = remind(member, AS_OF)

    # Then the reminder goes to the new address, tagged with the member
    assert outcome.status is ReminderStatus.SENT
    assert len(outbox.to(f"new.{member}@example.org")) == 1 and outbox.to(address_of(member)) == []
    assert [email.member_id for email in ses_calls.emails] == [member]


def test_a_complaint_marks_the_address_too(
    handler: Any, member: str, outbox: Outbox, ses_calls: SesCalls
) -> None:
    result = handle(handler, ses_event("ses-complaint", member, address_of(member)))

    assert result["marks"] == ["marked"] and result["reason"] == "complaint:abuse"
    assert remind(member, AS_OF).reason is SkipReason.UNDELIVERABLE
    assert ses_calls.emails == []


# ---- what changes nothing


@pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
def test_a_bounce_that_is_not_permanent_changes_nothing(
    handler: Any, member: str, outbox: Outbox, ses_calls: SesCalls, bounce_type: str
) -> None:
    # Given a full mailbox (or a bounce SES could not classify)
    before = read_reminder_state(member)
    result = handle(handler, ses_event("ses-bounce", member, address_of(member), bounceType=bounce_type))

    # Then nothing is written, and the reminder goes out
    assert result == {"ignored": "transient_bounce"}
    assert read_reminder_state(member) == before
    assert remind(member, AS_OF).status is ReminderStatus.SENT
    assert len(ses_calls.emails) == 1


def test_a_bounce_of_an_address_the_member_no_longer_has_changes_nothing(
    handler: Any, member: str, outbox: Outbox, ses_calls: SesCalls
) -> None:
    # Given a reminder sent to the old address, then the member changed it before SES's bounce arrived
    old = address_of(member)
    change_address(member, f"new.{member}@example.org")
    before = read_reminder_state(member)

    # When the old address's bounce arrives
    result = handle(handler, ses_event("ses-bounce", member, old))

    # Then it does not block the new address
    assert result["marks"] == ["other_address"]
    assert read_reminder_state(member) == before
    assert remind(member, AS_OF).status is ReminderStatus.SENT
    assert len(outbox.to(f"new.{member}@example.org")) == 1


def test_a_bounce_for_an_unknown_member_writes_nothing(
    handler: Any, outbox: Outbox, member_id: str, member_items: Any
) -> None:
    result = handle(handler, ses_event("ses-bounce", member_id, address_of(member_id)))

    assert result["marks"] == ["no_member"]
    assert member_items(member_id) == []


def test_an_event_delivered_twice_keeps_the_first_mark(
    handler: Any, member: str, outbox: Outbox, ses_calls: SesCalls
) -> None:
    event = ses_event("ses-bounce", member, address_of(member))
    handle(handler, event)
    first = read_reminder_state(member)

    again = handle(handler, copy.deepcopy(event))

    assert again["marks"] == ["already_marked"]
    assert read_reminder_state(member) == first


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"source": "aws.ses", "detail-type": "Email Bounced", "detail": {"mail": "?"}},
        {"source": "aws.ses", "detail-type": "Email Delivered", "detail": {}},
        {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
    ],
)
def test_an_event_that_is_not_a_bounce_or_a_complaint_is_acknowledged_not_raised(
    handler: Any, outbox: Outbox, event: dict[str, Any]
) -> None:
    assert "ignored" in handle(handler, event)


def test_an_email_without_a_member_tag_is_acknowledged_and_marks_nothing(
    handler: Any, member: str, outbox: Outbox
) -> None:
    event = ses_event("ses-bounce", member, address_of(member))
    del event["detail"]["mail"]["tags"]["member"]

    assert handle(handler, event) == {"ignored": "no_member"}
    assert read_reminder_state(member).undeliverable_address is None


# ---- races on the reminder state


def test_a_mark_that_loses_a_race_on_the_state_reads_again_and_marks(
    member: str, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a reminder sent (the state exists), and another write landing between the mark's read
    # and its conditional write
    assert remind(member, AS_OF).status is ReminderStatus.SENT
    read = store._read_profile_and_state
    calls = []

    def read_then_someone_writes(member_id: str) -> Any:
        profile, state = read(member_id)
        calls.append(state.version)
        if len(calls) == 1:
            assert store._update(
                member_id,
                [store.ReminderStateItem.version.set((state.version or 0) + 1)],
                store._version_is(state.version),
            )
        return profile, state

    monkeypatch.setattr(store, "_read_profile_and_state", read_then_someone_writes)

    # When the mark is written
    mark = mark_address_undeliverable(member, address_of(member), "bounce:General", now=AS_OF)

    # Then its first write failed on the version, the second read saw the other write, and it marked
    assert mark is AddressMark.MARKED
    assert calls[1] == calls[0] + 1
    state = read_reminder_state(member)
    assert state.version == calls[0] + 2 and state.refuses(address_of(member))
    # the keys the reminder recorded are kept
    assert state.reminded and state.last_reminded_at is not None


# ---- logs


def test_the_logs_name_the_member_and_the_reason_never_the_address(
    handler: Any, member: str, outbox: Outbox
) -> None:
    # Given the function's logger at its most verbose, its lines captured as CloudWatch gets them
    level, stream = logger.log_level, io.StringIO()
    logger.setLevel("DEBUG")
    previous = logger.registered_handler.setStream(stream)
    try:
        # When it records a bounce, and ignores a transient one
        handle(handler, ses_event("ses-bounce", member, address_of(member)))
        handle(handler, ses_event("ses-bounce", member, address_of(member), bounceType="Transient"))
    finally:
        logger.registered_handler.setStream(previous)
        logger.setLevel(level)

    # Then the lines say who and why, and no address
    printed = stream.getvalue()
    lines = [json.loads(line) for line in printed.splitlines()]
    assert [line["message"] for line in lines] == ["SES feedback recorded", "SES event ignored"]
    assert lines[0]["memberId"] == member and lines[0]["reason"] == "bounce:General"
    assert address_of(member) not in printed and "example.com" not in printed
