"""Reading SES's bounce and complaint events (`loyalty.notify.feedback`) and the member tag that maps
them back to a member (`loyalty.notify.tags`): pure, no network."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loyalty.domain.claims import ClaimOutcome, ClaimStatus
from loyalty.http import claim_emails
from loyalty.notify import Email, Recipient, notify_config, points_expiring
from loyalty.notify.feedback import Feedback, FeedbackKind, Ignored, read_feedback
from loyalty.notify.messages import Program
from loyalty.notify.tags import MEMBER_ID, member_of_tag, member_tag
from loyalty.store.members import Profile

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "8c1e4b2a-5f3d-4e6a-9b7c-1d2e3f4a5b6c"
ADDRESS = "camille.martin@example.com"
PROGRAM = Program("Club Étoile", "https://loyalty.example.com/account")


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "email_events" / f"{name}.json").read_text())
    return event


def bounce(bounce_type: str = "Permanent", sub_type: str = "General", **changes: Any) -> dict[str, Any]:
    event = sample("ses-bounce")
    event["detail"]["bounce"].update(bounceType=bounce_type, bounceSubType=sub_type, **changes)
    return event


def complaint(**changes: Any) -> dict[str, Any]:
    event = sample("ses-complaint")
    event["detail"]["complaint"].update(changes)
    return event


# ---- the member tag


@pytest.mark.parametrize(
    "member_id",
    ["m-1", MEMBER, "shop:42.fr", "a_b", "Z" * 128, "0" + "._:-" * 31 + "abc", "x.y:z-w_v"],
)
def test_every_member_id_survives_the_tag_in_the_characters_ses_allows(member_id: str) -> None:
    value = member_tag(member_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value), "SES v2 MessageTag value"
    assert member_of_tag(value) == member_id


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64!",
        "bS0x=",  # padded: not the canonical form
        "bS1",  # "m-" with a stray trailing bit: not the canonical encoding
        member_tag("m-1") + "A",  # one character too many (length 1 mod 4)
        "LWxlYWRpbmctZGFzaA",  # "-leading-dash": not a member id
        "bWVtYmVyCg",  # "member\n"
        "_w",  # not UTF-8
        member_tag("m") * 40,  # longer than a tag
    ],
)
def test_a_tag_that_is_not_the_encoding_of_a_member_id_names_no_member(value: str) -> None:
    assert member_of_tag(value) is None


def test_an_empty_member_id_cannot_be_tagged() -> None:
    with pytest.raises(ValueError):
        member_tag("")


def test_the_tags_member_id_pattern_is_the_apis() -> None:
    from loyalty.http.identifiers import IDENTIFIER

    assert MEMBER_ID.pattern == IDENTIFIER


def test_a_reminder_carries_the_member_it_is_about() -> None:
    email = points_expiring(
        Recipient(ADDRESS, "Camille", "fr", member_id=MEMBER),
        PROGRAM,
        rows=[(datetime(2027, 1, 15, tzinfo=UTC).date(), 40)],
        balance=40,
        unsubscribe_url="https://loyalty.example.com/account/unsubscribe?token=t",
        as_of=datetime(2027, 1, 1, tzinfo=UTC).date(),
    )
    assert email.member_id == MEMBER


def test_a_claim_outcome_email_carries_the_member_it_is_about(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a claim approved for a member, its email captured instead of sent
    monkeypatch.setenv("LINKS_BASE_URL", PROGRAM.links_base_url)
    notify_config.cache_clear()
    sent: list[Email] = []
    monkeypatch.setattr(claim_emails, "send", lambda email: sent.append(email) or "m-1")
    monkeypatch.setattr(claim_emails, "record_email", lambda claim_id, record: None)
    profile = Profile(MEMBER, ADDRESS, "Camille", "fr", True, "", "")
    outcome = ClaimOutcome(
        "c-1", MEMBER, "TX-1", ClaimStatus.APPROVED, datetime(2026, 11, 1, tzinfo=UTC), points=10, balance=10
    )
    # When its outcome is emailed
    record = claim_emails.email_outcome(
        outcome, tz=UTC, now=datetime(2026, 11, 2, tzinfo=UTC), profile=profile
    )
    notify_config.cache_clear()
    # Then the email names the member (the tag SES will publish with a bounce)
    assert record.status == "sent"
    assert [email.member_id for email in sent] == [MEMBER]


# ---- bounces


def test_a_permanent_bounce_names_the_member_the_address_and_the_reason() -> None:
    feedback = read_feedback(bounce("Permanent", "NoEmail"))
    assert feedback == Feedback(
        kind=FeedbackKind.BOUNCE,
        member_id=MEMBER,
        addresses=(ADDRESS,),
        reason="bounce:NoEmail",
        message_id="0102019350e3b2c8-1e2d3c4b-5a69-4788-97a6-b5c4d3e2f1a0-000000",
        kind_of_email="points_expiring",
    )


def test_an_address_on_the_suppression_list_bounces_permanently_and_counts() -> None:
    feedback = read_feedback(bounce("Permanent", "OnAccountSuppressionList"))
    assert isinstance(feedback, Feedback) and feedback.reason == "bounce:OnAccountSuppressionList"


@pytest.mark.parametrize(
    ("bounce_type", "sub_type"),
    [("Transient", "MailboxFull"), ("Transient", "General"), ("Undetermined", "Undetermined"), ("", "")],
)
def test_a_bounce_that_is_not_permanent_marks_nothing(bounce_type: str, sub_type: str) -> None:
    feedback = read_feedback(bounce(bounce_type, sub_type))
    assert isinstance(feedback, Ignored) and feedback.reason == "transient_bounce"


def test_a_bounce_without_a_sub_type_is_a_general_one() -> None:
    event = bounce()
    del event["detail"]["bounce"]["bounceSubType"]
    feedback = read_feedback(event)
    assert isinstance(feedback, Feedback) and feedback.reason == "bounce:General"


def test_every_bounced_recipient_is_named_bare() -> None:
    feedback = read_feedback(
        bounce(
            bouncedRecipients=[
                {"emailAddress": "Camille <camille.martin@example.com>"},
                {"emailAddress": "b@x.fr"},
            ]
        )
    )
    assert isinstance(feedback, Feedback) and feedback.addresses == (ADDRESS, "b@x.fr")


def test_without_bounced_recipients_the_destination_is_the_address() -> None:
    feedback = read_feedback(bounce(bouncedRecipients=[]))
    assert isinstance(feedback, Feedback) and feedback.addresses == (ADDRESS,)


# ---- complaints


def test_a_complaint_names_the_member_the_address_and_the_feedback_type() -> None:
    feedback = read_feedback(complaint())
    assert isinstance(feedback, Feedback)
    assert (feedback.kind, feedback.member_id, feedback.addresses, feedback.reason) == (
        FeedbackKind.COMPLAINT,
        MEMBER,
        (ADDRESS,),
        "complaint:abuse",
    )


def test_a_complaint_without_a_feedback_type_still_counts() -> None:
    event = complaint()
    del event["detail"]["complaint"]["complaintFeedbackType"]
    feedback = read_feedback(event)
    assert isinstance(feedback, Feedback) and feedback.reason == "complaint:unspecified"


def test_a_reason_keeps_only_sess_vocabulary_short_and_ascii() -> None:
    feedback = read_feedback(complaint(complaintFeedbackType="<script>alert(1)</script>é" * 10))
    assert isinstance(feedback, Feedback)
    assert re.fullmatch(r"complaint:[A-Za-z0-9_.-]{1,40}", feedback.reason)


# ---- tags


def test_an_email_without_a_member_tag_is_ignored() -> None:
    event = complaint()
    del event["detail"]["mail"]["tags"]["member"]
    assert read_feedback(event) == Ignored("no_member", "complaint")


@pytest.mark.parametrize(
    "tags", [None, [], {"member": "OGMx"}, {"member": []}, {"member": [42]}, {"member": ["!!"]}]
)
def test_a_member_tag_that_cannot_be_read_is_ignored(tags: Any) -> None:
    event = bounce()
    event["detail"]["mail"]["tags"] = tags
    feedback = read_feedback(event)
    assert isinstance(feedback, Ignored) and feedback.reason == "no_member"


# ---- not ours, or not the shape SES publishes


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.update(source="aws.sns"), "not_ses"),
        (lambda e: e.update({"detail-type": "Email Delivered"}), "not_ses"),
        (lambda e: e.pop("detail-type"), "not_ses"),
        (lambda e: e.update(detail=None), "malformed"),
        (lambda e: e.update(detail="{}"), "malformed"),
        (lambda e: e["detail"].pop("mail"), "malformed"),
        (lambda e: e["detail"].update(mail=[]), "malformed"),
        (lambda e: e["detail"].pop("bounce"), "malformed"),
        (lambda e: e["detail"].update(eventType="Complaint"), "malformed"),
        (lambda e: e["detail"]["bounce"].update(bouncedRecipients="camille.martin@example.com"), "malformed"),
        (lambda e: e["detail"]["bounce"].update(bouncedRecipients=[{"emailAddress": 7}]), "malformed"),
        (lambda e: e["detail"]["bounce"].update(bouncedRecipients=[{"address": ADDRESS}]), "malformed"),
        (
            lambda e: e["detail"]["bounce"].update(bouncedRecipients=[{"emailAddress": "x@y"}] * 51),
            "malformed",
        ),
        (
            lambda e: (
                e["detail"]["bounce"].pop("bouncedRecipients"),
                e["detail"]["mail"].pop("destination"),
            ),
            "no_address",
        ),
    ],
)
def test_an_event_not_in_the_shape_ses_publishes_is_ignored_with_a_reason(change: Any, reason: str) -> None:
    event = copy.deepcopy(bounce())
    change(event)
    feedback = read_feedback(event)
    assert isinstance(feedback, Ignored) and feedback.reason == reason


@pytest.mark.parametrize("event", [None, "", 42, [], ["aws.ses"], {"source": "aws.ses"}])
def test_anything_at_all_is_ignored_rather_than_raised(event: Any) -> None:
    assert isinstance(read_feedback(event), Ignored)


def test_an_ignored_events_detail_never_holds_the_address() -> None:
    for event in (bounce("Transient"), complaint(complainedRecipients=ADDRESS)):
        feedback = read_feedback(event)
        assert isinstance(feedback, Ignored) and "@" not in feedback.detail
