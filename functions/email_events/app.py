"""Lambda handler: SES bounces and complaints (EventBridge rule on the stack's configuration set)
mark the member's address undeliverable; no reminder goes to it until the member changes it."""

from aws_lambda_powertools.logging import correlation_paths

from loyalty.clock import utcnow
from loyalty.http.telemetry import count_event, logger, publish_metrics
from loyalty.notify.feedback import FeedbackKind, Ignored, read_feedback
from loyalty.store.reminders import mark_address_undeliverable

METRICS = {FeedbackKind.BOUNCE: "RemindersBounced", FeedbackKind.COMPLAINT: "EmailComplaints"}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False)
@publish_metrics
def lambda_handler(event: dict, context: object) -> dict:
    feedback = read_feedback(event)
    if isinstance(feedback, Ignored):
        # Logged and acknowledged, never raised: a retry would read the same event the same way.
        logger.info("SES event ignored", extra={"ignored": feedback.reason, "detail": feedback.detail})
        return {"ignored": feedback.reason}
    count_event(METRICS[feedback.kind])
    marks = [
        mark_address_undeliverable(feedback.member_id, address, feedback.reason, now=utcnow())
        for address in feedback.addresses
    ]
    # The member id and SES's reason only: never the address (docs/security.md).
    summary = {"memberId": feedback.member_id, "reason": feedback.reason, "marks": [str(m) for m in marks]}
    logger.info("SES feedback recorded", extra={**summary, "emailKind": feedback.kind_of_email})
    return summary
