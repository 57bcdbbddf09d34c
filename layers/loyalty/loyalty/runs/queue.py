"""Where a run's member batches go: an SQS queue (`SqsQueue`), or anything with `send`.

The SQS client is created at first use; its endpoint comes from botocore's own configuration
(`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL`, the region's default), never from this code.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Protocol

# SendMessageBatch takes at most 10 messages.
MAX_BATCH = 10


class MessageQueue(Protocol):
    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue up to `MAX_BATCH` message bodies, all or raise."""


class QueueUnavailable(Exception):
    """Messages could not be enqueued after every attempt: the run stops (and is run again)."""


@cache
def sqs_client() -> Any:
    import boto3

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    return boto3.client("sqs", region_name=region)


class SqsQueue:
    """SendMessageBatch of up to 10 bodies; entries SQS reports failed are sent again (with
    full-jitter backoff) up to `attempts` times, then `QueueUnavailable`."""

    def __init__(
        self,
        url: str,
        *,
        client: Any | None = None,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self._client = client
        self.attempts = attempts
        self.sleep = sleep

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else sqs_client()

    def send(self, bodies: Sequence[str]) -> None:
        if len(bodies) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} messages per batch, got {len(bodies)}")
        pending = {str(index): body for index, body in enumerate(bodies)}
        for attempt in range(1, self.attempts + 1):
            if not pending:
                return
            response = self.client.send_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": key, "MessageBody": body} for key, body in pending.items()],
            )
            for done in response.get("Successful") or []:
                pending.pop(str(done["Id"]), None)
            if pending and attempt < self.attempts:
                self.sleep(min(5.0, 0.1 * 2**attempt) * random.random())
        if pending:
            raise QueueUnavailable(f"{len(pending)} message(s) not accepted by {self.url}")
