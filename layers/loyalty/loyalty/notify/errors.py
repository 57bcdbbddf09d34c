"""What can go wrong with an email, typed so that callers choose between "retry later" and "give up"."""

from __future__ import annotations


class EmailError(Exception):
    """Base of every error the email module raises on purpose."""


class EmailConfigurationError(EmailError, RuntimeError):
    """The environment lacks (or mangles) a setting an email needs: a deployment fault, not a member's."""


class EmailRejected(EmailError):
    """SES (or our own check before it) refused this message for good: sending it again will not help.

    `code` is SES's error code (`MessageRejected`, `AccountSuspendedException`,
    `MailFromDomainNotVerifiedException`, `BadRequestException`, …) or `InvalidRecipient`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InvalidRecipient(EmailRejected, ValueError):
    """The member's address cannot be put in a header (not an address, or control characters)."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidRecipient", message)


class EmailRetryLater(EmailError):
    """The message was not accepted now; the same message may be sent again later."""


class EmailThrottled(EmailRetryLater):
    """SES kept throttling through every attempt allowed in this call."""

    def __init__(self, code: str, attempts: int) -> None:
        super().__init__(f"SES throttled the send {attempts} times (last: {code})")
        self.code = code
        self.attempts = attempts


class EmailUnavailable(EmailRetryLater):
    """SES failed on its side (5xx) or could not be reached. Not retried in the call: after a timeout
    the message may have been accepted, so the caller's own record decides whether to send again."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
