"""The email that tells a member how its claim ended (approved, rejected, matched).

Sent after the commit that decided the claim, by the function that committed it (the claims
function for support's decisions, the earn function for a claim its earn closed). Nothing here
turns a committed decision into an error: whatever goes wrong is logged (without the member's
address or name), counted (`ClaimEmailsSent`, `ClaimEmailsSkipped`, `ClaimEmailsFailed`) and
written on the claim (`email`: sent, skipped or failed, with the error's code and whether a later
send may work), from which a later job can send again.

The outcome of a claim the member filed is a transactional message, an answer the member asked
for: it is sent whatever `emailOptIn` says (the opt-in governs reminders and marketing), and
carries no unsubscribe link. A member without an address is skipped.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from loyalty.domain.claims import ClaimOutcome, ClaimStatus, RejectionCode
from loyalty.domain.expiry import last_day
from loyalty.http.telemetry import count_event, logger
from loyalty.notify import (
    Email,
    EmailError,
    EmailRejected,
    EmailRetryLater,
    Program,
    Recipient,
    claim_approved,
    claim_matched,
    claim_rejected,
    notify_config,
    send,
)
from loyalty.store.claims import EmailRecord, member_profile, record_email
from loyalty.store.members import Profile

# Reasons the program writes itself, in the member's language (support's own words go as written).
_REASONS: dict[RejectionCode, dict[str, str]] = {
    RejectionCode.CREDITED_TO_ANOTHER_MEMBER: {
        "en": "The store credited this purchase to another loyalty account.",
        "fr": "Le magasin a crédité cet achat sur un autre compte de fidélité.",
    },
}


def email_outcome(
    outcome: ClaimOutcome, *, tz: tzinfo, now: datetime, profile: Profile | None = None
) -> EmailRecord:
    """Email the claim's member its outcome and record on the claim whether it was sent. Never
    raises: the decision is committed whatever happens here. `profile` saves a read when the
    caller already has it."""
    kind = f"claim_{outcome.status}"
    try:
        record = _send(outcome, kind, tz=tz, now=now, profile=profile)
    except Exception:  # noqa: BLE001 - after the commit: a bug of ours fails the email, not the decision
        logger.exception("the claim outcome email failed", extra={"claimId": outcome.claim_id})
        record = EmailRecord("failed", kind, now, error="internal_error", retryable=True)
    count_event(
        {"sent": "ClaimEmailsSent", "skipped": "ClaimEmailsSkipped"}.get(record.status, "ClaimEmailsFailed")
    )
    try:
        record_email(outcome.claim_id, record)
    except Exception:  # noqa: BLE001 - after the commit, like the metrics: logged, never raised
        logger.exception("could not record the claim's email outcome", extra={"claimId": outcome.claim_id})
    return record


def _send(
    outcome: ClaimOutcome, kind: str, *, tz: tzinfo, now: datetime, profile: Profile | None
) -> EmailRecord:
    member = profile if profile is not None else member_profile(outcome.member_id)
    if member is None or not member.email:
        logger.info(
            "claim outcome not emailed: the member has no address", extra={"claimId": outcome.claim_id}
        )
        return EmailRecord("skipped", kind, now, error="no_address")
    try:
        recipient = Recipient(member.email, member.name, member.locale, member_id=outcome.member_id)
        message_id = send(render(outcome, recipient, tz))
    except EmailRetryLater as error:
        code = str(getattr(error, "code", type(error).__name__))
        logger.warning("claim outcome email not sent: retry later", extra=_problem(outcome, code))
        return EmailRecord("failed", kind, now, error=code, retryable=True)
    except EmailRejected as error:
        logger.warning("claim outcome email refused", extra=_problem(outcome, error.code))
        return EmailRecord("failed", kind, now, error=error.code, retryable=False)
    except EmailError as error:  # configuration: the deployment's fault, not the member's
        logger.error("claim outcome email not configured", extra=_problem(outcome, type(error).__name__))
        return EmailRecord("failed", kind, now, error=type(error).__name__, retryable=True)
    return EmailRecord("sent", kind, now, message_id=message_id)


def render(outcome: ClaimOutcome, recipient: Recipient, tz: tzinfo, program: Program | None = None) -> Email:
    """The email of an outcome, in the recipient's language; dates are local days in `tz`."""
    program = program or notify_config().program
    purchase_date = outcome.occurred_at.astimezone(tz).date()
    if outcome.status == ClaimStatus.APPROVED:
        return claim_approved(
            recipient,
            program,
            points=outcome.points or 0,
            purchase_reference=outcome.transaction_id,
            purchase_date=purchase_date,
            balance=outcome.balance or 0,
            expires_on=last_day(outcome.expires_at, tz) if outcome.expires_at else None,
        )
    if outcome.status == ClaimStatus.MATCHED:
        return claim_matched(
            recipient,
            program,
            purchase_reference=outcome.transaction_id,
            purchase_date=purchase_date,
            points=outcome.points,
            balance=outcome.balance,
        )
    reason = outcome.reason or ""
    if outcome.reason_code in _REASONS:
        reason = _REASONS[outcome.reason_code][recipient.language]
    return claim_rejected(recipient, program, reason=reason, purchase_reference=outcome.transaction_id)


def _problem(outcome: ClaimOutcome, code: str) -> dict[str, str]:
    return {"claimId": outcome.claim_id, "emailError": code}
