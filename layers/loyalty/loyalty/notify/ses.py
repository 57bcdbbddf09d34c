"""Sending through Amazon SES v2 (`SendEmail` with raw MIME content), throttling retried with backoff.

One client per process, created at first use; its endpoint comes from botocore's own configuration
(`AWS_ENDPOINT_URL_SESV2`, `AWS_ENDPOINT_URL`, the region's default), never from this code.
botocore's own retries are off: this module owns the retry policy, so the attempts are counted once.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from loyalty.clock import utcnow
from loyalty.notify.config import NotifyConfig, notify_config
from loyalty.notify.errors import EmailRejected, EmailThrottled, EmailUnavailable
from loyalty.notify.messages import Email, to_mime
from loyalty.notify.tags import KIND_TAG, MEMBER_TAG, member_tag

log = logging.getLogger(__name__)

# SES v2's throttling errors (TooManyRequestsException: the sending rate; LimitExceededException:
# a quota) and every code botocore's standard retry mode treats as throttling.
THROTTLING_CODES = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)


@cache
def ses_client() -> Any:
    """The process's SES v2 client (botocore resolves region, credentials and endpoint)."""
    import boto3
    from botocore.config import Config

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10)
    return boto3.client("sesv2", region_name=region, config=config)


class SesSender:
    """Sends `Email` values. Everything it touches can be replaced: tests pass a stubbed client,
    a configuration, a `sleep` that records and a `random` that returns a fixed fraction."""

    def __init__(
        self,
        client: Any | None = None,
        config: NotifyConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._client = client
        self._config = config
        self.sleep = sleep
        self.random = random
        self.clock = clock

    @property
    def config(self) -> NotifyConfig:
        return self._config if self._config is not None else notify_config()

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else ses_client()

    def send(self, email: Email) -> str:
        """Send `email`; SES's `MessageId` when accepted.

        Throttling is retried up to `max_attempts` attempts in all, sleeping a full-jitter
        exponential pause before each retry; then `EmailThrottled`. Any other refusal is
        `EmailRejected` (with SES's code), not retried; a failure on SES's side or on the way
        (5xx, no connection, timeout) is `EmailUnavailable`, not retried here either: after a
        timeout SES may have accepted the message, and only the caller knows whether a second
        copy is acceptable."""
        from botocore.exceptions import BotoCoreError, ClientError

        config = self.config
        sender = config.sender  # a clear error before any work when SENDER_ADDRESS is missing
        request: dict[str, Any] = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [email.to_address]},
            "Content": {
                "Raw": {
                    "Data": to_mime(
                        email, sender_address=sender, sender_name=config.program_name, date=self.clock()
                    )
                }
            },
            "EmailTags": _tags(email),
        }
        if config.configuration_set:
            request["ConfigurationSetName"] = config.configuration_set
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.client.send_email(**request)
            except ClientError as error:
                details = error.response.get("Error", {})
                code = str(details.get("Code", "Unknown"))
                status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
                if code in THROTTLING_CODES:
                    if attempt >= config.max_attempts:
                        raise EmailThrottled(code, attempt) from error
                    pause = self._pause(attempt, config)
                    log.warning("SES throttled a %s email (%s): retry in %.2fs", email.kind, code, pause)
                    self.sleep(pause)
                    continue
                if status >= 500:
                    raise EmailUnavailable(code, str(details.get("Message", ""))) from error
                raise EmailRejected(code, str(details.get("Message", ""))) from error
            except BotoCoreError as error:  # no connection, timeouts: the outcome is unknown
                raise EmailUnavailable(type(error).__name__, str(error)) from error
            return str(response["MessageId"])

    def _pause(self, attempt: int, config: NotifyConfig) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt - 1))] before retry `attempt`."""
        cap = min(config.max_delay_seconds, config.base_delay_seconds * 2.0 ** (attempt - 1))
        return cap * self.random()


def _tags(email: Email) -> list[dict[str, str]]:
    """The message's tags, published with its events: the kind and, when known, the member (so
    that a bounce or a complaint can be mapped back to it: `loyalty.notify.feedback`)."""
    tags = [{"Name": KIND_TAG, "Value": email.kind}]
    if email.member_id is not None:
        tags.append({"Name": MEMBER_TAG, "Value": member_tag(email.member_id)})
    return tags


@cache
def default_sender() -> SesSender:
    return SesSender()


def send(email: Email) -> str:
    """Send with the process's client and configuration (see `SesSender.send`)."""
    return default_sender().send(email)
