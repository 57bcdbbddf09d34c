"""Request headers shared by the routes: the one `Idempotency-Key` of every mutating POST."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Header

IdempotencyKey = Annotated[
    str,
    Header(
        alias="idempotency-key",
        pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description="a key of the caller's choosing: a retry with the same key and body returns the "
        "original response; the same key with another body is a 409",
    ),
]
