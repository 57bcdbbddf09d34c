"""Identifier formats shared by the validated models and the light read path (no pydantic here)."""

from __future__ import annotations

import re

from loyalty.domain.errors import InvalidRequest

IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_IDENTIFIER = re.compile(IDENTIFIER)


def checked_member_id(member_id: str) -> str:
    """The path's member id, or a 422 naming `memberId` (as pydantic validation would)."""
    if not _IDENTIFIER.match(member_id):
        raise InvalidRequest(
            "memberId", "must be 1 to 128 characters among A-Z a-z 0-9 . _ : - (not first)", location="path"
        )
    return member_id
