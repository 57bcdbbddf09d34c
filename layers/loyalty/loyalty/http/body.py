"""The request body, checked before any route sees it (SPEC §5): JSON in UTF-8, one object, sane.

Powertools' validation parses bodies leniently (the last duplicate key wins, a top-level array
is taken apart, deep nesting and huge integers raise inside it). Every body goes through
`checked_body` first, and leaves it as a plain JSON object re-serialised, or as a `BadBody`
with the status and reason a caller can act on.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
MAX_INTEGER_DIGITS = 20


class BadBody(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def has_body(event: Mapping[str, Any]) -> bool:
    return event.get("body") not in (None, "")


def checked_body(event: Mapping[str, Any]) -> str:
    """The event's body as JSON text of one object; `BadBody` (400, 415 or 422) otherwise."""
    _require_json_media_type(event)
    text = _decoded_text(event)
    try:
        document = json.loads(
            text,
            object_pairs_hook=_without_duplicate_keys,
            parse_int=_bounded_integer,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise BadBody(400, "invalid_json", "the request body nests too deeply") from None
    except ValueError as error:
        raise BadBody(400, "invalid_json", f"the request body is not valid JSON: {error}") from None
    if _depth(document) > MAX_DEPTH:
        raise BadBody(400, "invalid_json", f"the request body nests more than {MAX_DEPTH} levels")
    if not isinstance(document, dict):
        raise BadBody(422, "validation_error", "body: must be a JSON object")
    return json.dumps(document, ensure_ascii=False)


def _require_json_media_type(event: Mapping[str, Any]) -> None:
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    media_type, _, parameters = headers.get("content-type", "").partition(";")
    if media_type.strip().lower() != "application/json":
        raise BadBody(415, "unsupported_media_type", "the request body must be sent as application/json")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise BadBody(415, "unsupported_media_type", "the request body must be encoded in UTF-8")


def _decoded_text(event: Mapping[str, Any]) -> str:
    body = str(event["body"])
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadBody(400, "invalid_body", "the request body is not valid base64") from None
    else:
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8
            raise BadBody(400, "invalid_encoding", "the request body is not valid UTF-8") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody(400, "invalid_encoding", "the request body is not valid UTF-8") from None


def _without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"the key {key!r} appears twice")
        document[key] = value
    return document


def _bounded_integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(document: Any) -> int:
    """How deeply lists and objects nest (iteratively: no recursion on hostile input)."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest
