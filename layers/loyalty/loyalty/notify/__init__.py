"""Emails to members: rendering (`messages`, pure), configuration (`config`), sending (`ses`).

    from loyalty.notify import Recipient, claim_approved, notify_config, send

    member = Recipient(profile.email, profile.name, profile.locale, member_id=member_id)
    email = claim_approved(member, notify_config().program, points=..., ...)
    message_id = send(email)  # EmailRetryLater (throttled, unavailable): later; EmailRejected: give up

`loyalty.notify.ses` (boto3) is imported on first `send`, so rendering costs no boto3 import.
"""

from __future__ import annotations

from loyalty.notify.config import NotifyConfig, notify_config
from loyalty.notify.errors import (
    EmailConfigurationError,
    EmailError,
    EmailRejected,
    EmailRetryLater,
    EmailThrottled,
    EmailUnavailable,
    InvalidRecipient,
)
from loyalty.notify.formats import Locale, format_date, format_number, format_points, pick_locale
from loyalty.notify.messages import (
    Action,
    Block,
    Email,
    Facts,
    Paragraph,
    Program,
    Recipient,
    claim_approved,
    claim_matched,
    claim_rejected,
    compose,
    points_expiring,
    to_mime,
)
from loyalty.notify.unsubscribe import (
    ExpiredToken,
    InvalidUnsubscribeToken,
    MalformedToken,
    TamperedToken,
    TokenProblem,
    UnsupportedTokenVersion,
    make_token,
    read_token,
    unsubscribe_url,
)

__all__ = [
    "Action",
    "Block",
    "Email",
    "EmailConfigurationError",
    "EmailError",
    "EmailRejected",
    "EmailRetryLater",
    "EmailThrottled",
    "EmailUnavailable",
    "ExpiredToken",
    "Facts",
    "InvalidRecipient",
    "InvalidUnsubscribeToken",
    "Locale",
    "MalformedToken",
    "NotifyConfig",
    "Paragraph",
    "Program",
    "Recipient",
    "TamperedToken",
    "TokenProblem",
    "UnsupportedTokenVersion",
    "claim_approved",
    "claim_matched",
    "claim_rejected",
    "compose",
    "format_date",
    "format_number",
    "format_points",
    "make_token",
    "notify_config",
    "pick_locale",
    "points_expiring",
    "read_token",
    "send",
    "to_mime",
    "unsubscribe_url",
]


def send(email: Email) -> str:
    """Send through SES v2 with the process's client and configuration; returns SES's message id."""
    from loyalty.notify import ses  # boto3 only when an email is actually sent

    return ses.send(email)
