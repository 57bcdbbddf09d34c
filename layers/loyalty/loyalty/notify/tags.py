"""The tags an email carries through SES to its events (bounces, complaints): which member it was
sent to, and what kind of email it was.

SES publishes a message's tags with every event about it, so a bounce names the member without a
lookup by address (an address may be shared, or changed since). A tag value may hold only ASCII
letters, digits, `_` and `-`, at most 256 characters (SES v2 `MessageTag`), while member ids may
also hold `.` and `:`: the member tag is the id's UTF-8 bytes in base64url without padding, whose
alphabet is exactly the allowed one — reversible, and at most 171 characters for a 128-character
id. The same encoding as the member in an unsubscribe token.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["KIND_TAG", "MEMBER_ID", "MEMBER_TAG", "member_of_tag", "member_tag"]

KIND_TAG = "kind"
MEMBER_TAG = "member"
MAX_TAG_VALUE = 256
# The member ids the API accepts (loyalty.http.identifiers.IDENTIFIER): a decoded tag must be one.
MEMBER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def member_tag(member_id: str) -> str:
    """The member tag's value for `member_id` (base64url of its UTF-8 bytes, no padding).
    ValueError when the id is empty or too long for a tag."""
    value = base64.urlsafe_b64encode(member_id.encode("utf-8")).rstrip(b"=").decode("ascii")
    if not value or len(value) > MAX_TAG_VALUE:
        raise ValueError("a member id must be 1 to 192 bytes to ride in an SES tag")
    return value


def member_of_tag(value: str) -> str | None:
    """The member id a member tag names, or None when `value` is not the canonical encoding of a
    member id (a tag written by someone else, truncated, or tampered with)."""
    if not isinstance(value, str) or not value or len(value) > MAX_TAG_VALUE or len(value) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        member_id = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not MEMBER_ID.fullmatch(member_id) or member_tag(member_id) != value:
        return None
    return member_id
