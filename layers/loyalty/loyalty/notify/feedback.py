"""Bounces and complaints, as SES publishes them to EventBridge through the stack's configuration
set (SPEC §7: "bounces and complaints are honoured"; docs/design.md, "Bounces and complaints").

Pure: `read_feedback(event)` takes the EventBridge event (`source` `aws.ses`, `detail-type`
`Email Bounced` or `Email Complaint Received`, the SES event record in `detail`) and says which
member, which addresses, and why — or why the event is ignored. Only what makes an address
undeliverable counts: a permanent bounce (`bounceType` `Permanent`: the address does not exist, or
SES suppresses it) or a complaint (the member marked an email as spam). A transient bounce (a full
mailbox, a message too large) or an undetermined one says nothing lasting about the address.

The member comes from the email's `member` tag (`loyalty.notify.tags`), never from the address: an
address may be shared by two members, or changed since. An event without that tag (sent by
someone else through the configuration set, or before the tag existed) is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from loyalty.notify.tags import KIND_TAG, MEMBER_TAG, member_of_tag

__all__ = [
    "BOUNCED",
    "COMPLAINED",
    "Feedback",
    "FeedbackKind",
    "Ignored",
    "read_feedback",
]

SES_SOURCE = "aws.ses"
BOUNCED = "Email Bounced"
COMPLAINED = "Email Complaint Received"
MAX_ADDRESSES = 50  # SES's own limit of recipients per message; ours have one
_REASON_PART = re.compile(r"[^A-Za-z0-9_.-]")


class FeedbackKind(StrEnum):
    BOUNCE = "bounce"
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class Feedback:
    """A permanent bounce or a complaint about an email sent to `member_id`: the `addresses` SES
    names (the bounced or complaining recipients), and a short `reason` to record
    (`bounce:<bounceSubType>`, `complaint:<complaintFeedbackType>`, ASCII, at most 64 characters).
    `kind_of_email` is the email's `kind` tag (`points_expiring`, `claim_approved`, …) when present."""

    kind: FeedbackKind
    member_id: str
    addresses: tuple[str, ...]
    reason: str
    message_id: str | None = None
    kind_of_email: str | None = None


@dataclass(frozen=True)
class Ignored:
    """Why an event marks nothing: `not_ses` (another source or detail-type), `malformed` (not the
    shape SES publishes), `transient_bounce` (a bounce that is not permanent), `no_member` (no
    readable member tag), `no_address` (no recipient named). `detail` is a short, safe word or two
    for the log (never an address)."""

    reason: str
    detail: str = ""


def read_feedback(event: Any) -> Feedback | Ignored:
    """The bounce or complaint `event` reports, or why it is ignored. Never raises: whatever the
    event holds, the answer is a value (a Lambda that raised on a malformed event would be retried
    for nothing)."""
    if not isinstance(event, Mapping):
        return Ignored("malformed", "not an object")
    detail_type = event.get("detail-type")
    if event.get("source") != SES_SOURCE or detail_type not in (BOUNCED, COMPLAINED):
        return Ignored("not_ses", _safe(detail_type) if isinstance(detail_type, str) else "")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return Ignored("malformed", "no detail")
    event_type = detail.get("eventType", detail.get("notificationType"))
    mail = detail.get("mail")
    if not isinstance(mail, Mapping):
        return Ignored("malformed", "no mail")
    if detail_type == BOUNCED:
        if event_type != "Bounce" or not isinstance(detail.get("bounce"), Mapping):
            return Ignored("malformed", "no bounce")
        bounce: Mapping[str, Any] = detail["bounce"]
        if bounce.get("bounceType") != "Permanent":
            return Ignored("transient_bounce", _safe(bounce.get("bounceType")))
        kind = FeedbackKind.BOUNCE
        reason = f"bounce:{_safe(bounce.get('bounceSubType')) or 'General'}"
        recipients = bounce.get("bouncedRecipients")
    else:
        if event_type != "Complaint" or not isinstance(detail.get("complaint"), Mapping):
            return Ignored("malformed", "no complaint")
        complaint: Mapping[str, Any] = detail["complaint"]
        kind = FeedbackKind.COMPLAINT
        reason = f"complaint:{_safe(complaint.get('complaintFeedbackType')) or 'unspecified'}"
        recipients = complaint.get("complainedRecipients")
    tags = mail.get("tags")
    member_id = _first_tag(tags, MEMBER_TAG)
    member = member_of_tag(member_id) if member_id is not None else None
    if member is None:
        return Ignored("no_member", kind.value)
    addresses = _addresses(recipients)
    if addresses is None:
        return Ignored("malformed", "bad recipients")
    if not addresses:
        # Our emails have one recipient: SES names it in `mail.destination` too.
        addresses = _addresses([{"emailAddress": a} for a in _list(mail.get("destination"))]) or ()
    if not addresses:
        return Ignored("no_address", kind.value)
    message_id = mail.get("messageId")
    return Feedback(
        kind=kind,
        member_id=member,
        addresses=addresses,
        reason=reason[:64],
        message_id=message_id if isinstance(message_id, str) else None,
        kind_of_email=_safe(_first_tag(tags, KIND_TAG)) or None,
    )


def _first_tag(tags: Any, name: str) -> str | None:
    """SES publishes tags as `{"name": ["value"]}`."""
    if not isinstance(tags, Mapping):
        return None
    values = tags.get(name)
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return None


def _addresses(recipients: Any) -> tuple[str, ...] | None:
    """The recipients' addresses (`[{"emailAddress": …}, …]`), or None when that is not the shape."""
    if recipients is None:
        return ()
    if not isinstance(recipients, list) or len(recipients) > MAX_ADDRESSES:
        return None
    found: list[str] = []
    for recipient in recipients:
        address = recipient.get("emailAddress") if isinstance(recipient, Mapping) else None
        if not isinstance(address, str) or "@" not in address or len(address) > 320:
            return None
        found.append(_bare(address))
    return tuple(found)


def _bare(address: str) -> str:
    """`Name <a@b>` → `a@b` (SES usually gives the bare address; be lenient)."""
    text = address.strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1]
    return text.strip()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _safe(value: Any) -> str:
    """A short ASCII word for a reason or a log line (SES's own vocabulary; anything else dropped)."""
    return _REASON_PART.sub("", value)[:40] if isinstance(value, str) else ""
