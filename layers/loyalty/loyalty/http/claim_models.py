"""Request and response bodies of the claims routes (JSON, camelCase), beside `loyalty.http.models`."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import AwareDatetime, BeforeValidator, Field, StrictInt

from loyalty.domain.claims import CLAIM_ID_PATTERN
from loyalty.http.identifiers import IDENTIFIER
from loyalty.http.models import (
    PLAIN_TEXT_SCHEMA,
    Body,
    Currency,
    Instant,
    Money,
    PlainText,
    _integral,
    _iso_text,
)

ClaimIdPath = Annotated[
    str, Path(alias="claimId", pattern=CLAIM_ID_PATTERN, description="the claim's id (`clm_…`)")
]
ClaimStatusName = Literal["pending", "approved", "rejected", "matched"]
ReasonCode = Literal[
    "already_credited", "too_recent", "too_old", "credited_to_another_member", "support_decision"
]

# Member-entered text: NFC, no control or bidirectional characters (the constraints come first
# so that the document keeps them; see ProfileRequest).
ShortText = Annotated[
    str, Field(min_length=1, max_length=100, json_schema_extra=PLAIN_TEXT_SCHEMA), PlainText
]


class ClaimRequest(Body):
    """A purchase the member says was never credited, as it remembers it."""

    transaction_id: Annotated[
        str,
        Field(
            pattern=IDENTIFIER, description="the purchase's reference (on the receipt), unique program-wide"
        ),
    ]
    occurred_at: Annotated[AwareDatetime, BeforeValidator(_iso_text)]
    amount: Money
    currency: Currency
    store: ShortText | None = Field(default=None, description="where it was bought (a store purchase)")
    receipt_ref: ShortText | None = Field(default=None, description="a receipt number, for support to check")


class DecisionRequest(Body):
    decision: Literal["approve", "reject"]
    reason: Annotated[
        str,
        Field(min_length=1, max_length=500, json_schema_extra=PLAIN_TEXT_SCHEMA),
        PlainText,
    ] = Field(description="why: shown in the claim's history, and to the member when rejected")
    points: Annotated[StrictInt, Field(ge=0, le=100_000_000), BeforeValidator(_integral)] | None = Field(
        default=None,
        description="approve only: the points to credit; by default what the rules give the purchase",
    )


class ClaimActor(Body):
    kind: Literal["member", "partner", "agent", "system"]
    id: str


class ClaimEvent(Body):
    at: Instant
    actor: ClaimActor
    action: Literal["filed", "refiled", "approved", "rejected", "matched"]
    status: ClaimStatusName = Field(description="the claim's status after this event")
    reason: str | None = None
    points: int | None = None


class ClaimCredit(Body):
    """What crediting the purchase did: the claim lot of an approval, or the partner's earn."""

    points: int
    entry_id: str
    lot_id: str | None
    expires_at: Instant | None
    balance: int = Field(description="the member's balance right after")


class ClaimEmail(Body):
    status: Literal["sent", "skipped", "failed"]
    kind: str
    at: Instant
    message_id: str | None = None
    error: str | None = None
    retryable: bool | None = None


class ClaimSummary(Body):
    claim_id: str
    member_id: str
    transaction_id: str
    status: ClaimStatusName
    reason_code: ReasonCode | None = None
    reason: str | None = None
    occurred_at: Instant
    amount: str
    currency: str
    store: str | None = None
    receipt_ref: str | None = None
    created_at: Instant
    filed_by: ClaimActor
    decided_at: Instant | None = None
    decided_by: ClaimActor | None = None


class ClaimResponse(ClaimSummary):
    suggested_points: int | None = Field(
        default=None,
        description="pending only: the points an approval without `points` credits (what the rules in "
        "force give the purchase's amount and date); null once decided",
    )
    credit: ClaimCredit | None = None
    email: ClaimEmail | None = Field(
        default=None, description="whether the member was emailed the outcome (none while pending)"
    )
    history: list[ClaimEvent]


class ClaimsPageResponse(Body):
    status: ClaimStatusName
    claims: list[ClaimSummary] = Field(description="oldest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at the end")
