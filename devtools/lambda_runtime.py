"""What the Lambda runtime gives a handler, for running handlers in-process: the handler itself
(imported from its CodeUri as Lambda would), a context object, and the events API Gateway and
EventBridge send.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from devtools import REPO_ROOT

if TYPE_CHECKING:
    from devtools.identity import Identity

__all__ = ["LOCAL_ACCOUNT_ID", "LambdaContext", "http_event", "load_handler", "scheduled_event"]

LOCAL_ACCOUNT_ID = "123456789012"
"""The account moto and the fake events use."""
LOCAL_API_ID = "local"
DEFAULT_REGION = "eu-west-1"


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


Handler = Callable[[dict[str, Any], Any], Any]

# --- handlers -----------------------------------------------------------------------------------

_handlers: dict[tuple[Path, str], Handler] = {}
_handlers_lock = threading.Lock()
_NAME_PART = re.compile(r"[^A-Za-z0-9_]")


def _module_name(code_uri: str, module: str) -> str:
    parts = [part for part in Path(code_uri).parts if part not in (".", "")]
    if parts and parts[0] == "functions":
        parts = parts[1:]
    parts = [_NAME_PART.sub("_", part) for part in parts]
    name = ".".join(["lambda_functions", *parts, *module.split(".")])
    # Two roots (a test's tmp_path and the repository) may hold the same CodeUri.
    candidate, counter = name, 1
    while candidate in sys.modules:
        counter += 1
        candidate = f"{name}_{counter}"
    return candidate


def load_handler(code_uri: str, handler: str, root: Path = REPO_ROOT) -> Handler:
    """Import `<root>/<code_uri>/<module>.py` as Lambda would and return its handler function.

    The module gets a unique name (`lambda_functions.members.app`) so that every function's
    `app.py` is a module of its own; nothing is added to `sys.path` (a handler imports only the
    layer package and third-party packages). Each file is imported once per process: a warm start.
    """
    module_path, _, attribute = handler.rpartition(".")
    if not module_path or not attribute:
        raise ValueError(f"handler {handler!r} must look like module.function")
    source = (root / code_uri / Path(*module_path.split("."))).with_suffix(".py").resolve()
    with _handlers_lock:
        cached = _handlers.get((source, attribute))
        if cached is not None:
            return cached
        if not source.is_file():
            raise FileNotFoundError(f"handler {handler!r}: {source} does not exist")
        name = _module_name(code_uri, module_path)
        spec = importlib.util.spec_from_file_location(name, source)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {source}")
        module = importlib.util.module_from_spec(spec)
        # Registered before it runs, as a normal import would: pydantic and dataclasses look it up.
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        function = getattr(module, attribute, None)
        if not callable(function):
            raise AttributeError(f"{source} has no function {attribute!r}")
        _handlers[(source, attribute)] = function
        return function


class LambdaContext:
    """The context object the Python runtime passes, enough for Powertools and the handlers."""

    def __init__(self, function_name: str, memory_mb: int = 1024, timeout_seconds: float = 900.0) -> None:
        self.function_name = function_name
        # The local mode enforces no timeout; the handlers that watch the clock (the runs'
        # workers) see the time left counted down from Lambda's longest by default.
        self._deadline = time.monotonic() + timeout_seconds
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{_region()}:{LOCAL_ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext({self.function_name!r}, request {self.aws_request_id})"


# --- events -------------------------------------------------------------------------------------


def _request_time(moment: datetime) -> str:
    return moment.strftime("%d/%b/%Y:%H:%M:%S +0000")


def _trace_id(moment: datetime) -> str:
    return f"Root=1-{int(moment.timestamp()):08x}-{uuid.uuid4().hex[:24]}"


def http_event(
    method: str,
    path: str,
    *,
    route_key: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: str | bytes | Mapping[str, Any] | None = None,
    identity: Identity | None = None,
    raw_query_string: str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event, shaped as AWS sends it.

    `path` is the raw (percent-encoded) path; `route_key` defaults to `"<METHOD> <path>"`.
    `query` values that repeat are joined with commas by the caller, as API Gateway does;
    `raw_query_string` (the local server passes what the client sent) defaults to `query` encoded.
    A dict `body` is sent as JSON; bytes that are not UTF-8 are base64-encoded. With `identity`,
    `requestContext.authorizer.jwt` carries its claims and scopes; without, there is no authorizer.
    """
    now = datetime.now(UTC)
    method = method.upper()
    request_headers = {name.lower(): value for name, value in (headers or {}).items()}
    request_headers.setdefault("host", "localhost")
    request_headers.setdefault("x-forwarded-for", source_ip)
    request_headers.setdefault("x-forwarded-proto", "http")
    request_headers.setdefault("x-amzn-trace-id", _trace_id(now))

    encoded_body: str | None = None
    is_base64 = False
    if isinstance(body, Mapping):
        encoded_body = json.dumps(body)
        request_headers.setdefault("content-type", "application/json")
    elif isinstance(body, bytes):
        try:
            encoded_body = body.decode("utf-8")
        except UnicodeDecodeError:
            encoded_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    elif body is not None:
        encoded_body = body
    if encoded_body is not None:
        raw_length = len(base64.b64decode(encoded_body)) if is_base64 else len(encoded_body.encode("utf-8"))
        request_headers.setdefault("content-length", str(raw_length))

    # API Gateway moves the Cookie header into `cookies`.
    cookie_header = request_headers.pop("cookie", None)
    if raw_query_string is None:
        raw_query_string = urlencode(query or {}, quote_via=quote)
    route_key = route_key or f"{method} {path}"
    request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode("ascii").rstrip("=")

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query_string,
    }
    if cookie_header:
        event["cookies"] = [cookie.strip() for cookie in cookie_header.split(";") if cookie.strip()]
    event["headers"] = request_headers
    if query:
        event["queryStringParameters"] = dict(query)
    request_context: dict[str, Any] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": "localhost",
        "domainPrefix": "localhost",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": request_headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": _request_time(now),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if identity is not None:
        request_context["authorizer"] = identity.authorizer
    event["requestContext"] = request_context
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if encoded_body is not None:
        event["body"] = encoded_body
    event["isBase64Encoded"] = is_base64
    return event


SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


def scheduler_input(text: str, time: datetime) -> Any:
    """What an EventBridge Scheduler schedule with an `Input` sends: that JSON, its context
    attribute `<aws.scheduler.scheduled-time>` replaced by the scheduled instant (UTC, seconds)."""
    if time.tzinfo is None:
        raise ValueError("the scheduled time must be timezone-aware")
    return json.loads(text.replace(SCHEDULED_TIME, time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))


def scheduled_event(time: datetime, rule_name: str, *, region: str | None = None) -> dict[str, Any]:
    """The event an EventBridge schedule rule sends: `time` is the scheduled instant (whole seconds, UTC)."""
    region = region or _region()
    if time.tzinfo is None:
        raise ValueError("the scheduled time must be timezone-aware")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT_ID,
        "time": time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{LOCAL_ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }
