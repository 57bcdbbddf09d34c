"""The local mode: the whole application on 127.0.0.1 (`python -m devtools.local`, `make run`).

The HTTP API routed as `template.yaml` declares, the same handler code run in-process,
DynamoDB Local (data kept in `.local/dynamodb`) and its table stream delivered to the functions
that read it, SES, SQS, S3 and EventBridge emulated by moto, demo data, schedules fired on demand
at any as-of time, sent emails listed and saved, and the buckets' files mirrored to `.local/reports`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import email
import email.policy
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devtools import REPO_ROOT
from devtools.background import BackgroundThreads
from devtools.buckets import BucketMirror, create_buckets
from devtools.console import CONSOLE_PREFIX, serve_console
from devtools.demo import DEMO_MEMBERS, DEMO_PARTNER, seed
from devtools.dynamodb_local import (
    DynamoDBLocal,
    DynamoDBLocalError,
    ensure_table,
    java_available,
    local_client,
)
from devtools.identity import Identity, parse_authorization, refuse_in_lambda
from devtools.lambda_pool import DEFAULT_INSTANCES, FunctionFailed, FunctionPools
from devtools.lambda_runtime import LOCAL_ACCOUNT_ID, http_event, scheduled_event, scheduler_input
from devtools.streams import StreamDeliveries
from devtools.template import (
    DYNAMODB_TABLE,
    Route,
    Schedule,
    TemplateError,
    function_code,
    function_environment,
    http_routes,
    load_template,
    schedules,
    serverless_functions,
)

__all__ = ["LocalApp", "Response", "main", "make_server", "match_route"]

log = logging.getLogger("devtools.local")

DEFAULT_PORT = 3000
TABLE_NAME = "loyalty-local"
MAIN_TABLE = "LoyaltyTable"
# The template's `UnsubscribeSecret` in the local mode, so that the unsubscribe links of the
# emails in .local/emails work on this server. Public, so good for nothing else: AWS never sees it.
DEV_UNSUBSCRIBE_SECRET = "local-development-unsubscribe-secret-never-used-in-aws"
JSON = "application/json"
# A failed SQS message is delivered again after this many seconds in the local mode (the
# template's VisibilityTimeout is minutes: right for AWS, long for a developer watching).
LOCAL_VISIBILITY_TIMEOUT = 10

# --- routing ------------------------------------------------------------------------------------


def _segments(path: str) -> list[str]:
    return path[1:].split("/") if path.startswith("/") else [path]


def _path_parameters(route_path: str, raw_path: str) -> dict[str, str] | None:
    """The parameters of `raw_path` under the route template, or None when it does not match.

    `{name}` takes one non-empty segment, a final `{name+}` one or more; values are URL-decoded.
    """
    pattern, segments = _segments(route_path), _segments(raw_path)
    parameters: dict[str, str] = {}
    for index, part in enumerate(pattern):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if not rest or not all(rest):
                return None
            parameters[part[1:-2]] = unquote("/".join(rest))
            return parameters
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            if not segments[index]:
                return None
            parameters[part[1:-1]] = unquote(segments[index])
        elif unquote(segments[index]) != part:
            return None
    return parameters if len(segments) == len(pattern) else None


def _specificity(route: Route) -> tuple[tuple[int, ...], bool]:
    # API Gateway picks the most specific route: literal segments before {parameters} before
    # {greedy+}, a named method before ANY.
    kinds = tuple(
        2 if part.endswith("+}") else 1 if part.startswith("{") else 0 for part in _segments(route.path)
    )
    return kinds, route.method == "ANY"


def match_route(routes: Sequence[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | int:
    """The route API Gateway would choose for `method path` and its path parameters,
    or 404 (no route has this path) or 405 (routes have this path, none this method).
    A `$default` route takes whatever no other route matches.
    """
    method = method.upper()
    on_path: list[tuple[Route, dict[str, str]]] = []
    for route in routes:
        if route.path == "$default":
            continue
        parameters = _path_parameters(route.path, path)
        if parameters is not None:
            on_path.append((route, parameters))
    candidates = [(route, params) for route, params in on_path if route.method in (method, "ANY")]
    if candidates:
        return min(candidates, key=lambda candidate: _specificity(candidate[0]))
    default = next((route for route in routes if route.path == "$default"), None)
    if default is not None:
        return default, {}
    return 405 if on_path else 404


def allowed_methods(routes: Iterable[Route], path: str) -> list[str]:
    return sorted({route.method for route in routes if _path_parameters(route.path, path) is not None})


# --- the application ----------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    function: str | None = None

    @classmethod
    def json(cls, status: int, document: object, *, function: str | None = None) -> Response:
        body = json.dumps(document, indent=2, default=str).encode("utf-8") + b"\n"
        return cls(status, [("Content-Type", JSON)], body, function)

    def json_body(self) -> Any:
        return json.loads(self.body) if self.body else None

    def with_header(self, name: str, value: str) -> Response:
        self.headers.append((name, value))
        return self

    def for_function(self, function: str) -> Response:
        self.function = function
        return self


def _error(status: int, code: str, message: str, **details: object) -> Response:
    return Response.json(status, {"error": {"code": code, "message": message, **details}})


def _bad_gateway() -> Response:
    # What API Gateway answers when the function fails or returns something it cannot read.
    return Response.json(502, {"message": "Internal Server Error"})


def _parse_as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    if moment.tzinfo is None:
        raise ValueError("asOf needs a time zone: end it with Z or an offset such as +01:00")
    return moment


class LocalApp:
    """Routes requests to the template's functions, run in-process as Lambda would run them.

    Each function runs in worker processes of its own, up to `instances` requests at once (as
    Lambda runs concurrent requests in separate instances), so concurrent requests race in
    DynamoDB as they do on AWS. Handlers are imported in an instance's first invocation, so the
    server starts even when a function's code does not exist yet. `close()` stops the instances.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        root: Path = REPO_ROOT,
        *,
        emails: Callable[[], list[dict[str, Any]]] | None = None,
        files: Callable[[], list[str]] | None = None,
        instances: int = DEFAULT_INSTANCES,
    ) -> None:
        self.template = template
        self.root = root
        self.routes = http_routes(template)
        self.schedules = schedules(template)
        self.emails = emails or (lambda: [])
        self.files = files or (lambda: [])
        self.functions = FunctionPools(root, instances)

    # -- invoking functions --

    def missing_handlers(self) -> list[str]:
        """Functions whose handler file is not there yet (they answer 502 until it is)."""
        missing: dict[str, str] = {}
        for item in [*self.routes, *self.schedules]:
            module = item.handler.rpartition(".")[0]
            source = (self.root / item.code_uri / Path(*module.split("."))).with_suffix(".py")
            if not source.is_file():
                missing[item.function] = str(
                    source.relative_to(self.root) if source.is_relative_to(self.root) else source
                )
        return [f"{function} ({source})" for function, source in sorted(missing.items())]

    def invoke_function(self, function: str, code_uri: str, handler: str, event: dict[str, Any]) -> Any:
        """Run the function's handler on `event` in one of its instances: its result, or
        `FileNotFoundError` (no handler file yet) or `FunctionFailed` (it raised; the traceback)."""
        return self.functions.invoke(function, code_uri, handler, event)

    def close(self) -> None:
        """Stop every function's instances."""
        self.functions.close()

    # -- HTTP --

    def handle(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        source_ip: str = "127.0.0.1",
    ) -> Response:
        """Answer one HTTP request (`target` is the request line's path and query, as sent)."""
        split = urlsplit(target)
        raw_path, raw_query = split.path or "/", split.query
        header_map: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            header_map[key] = f"{header_map[key]},{value}" if key in header_map else value
        if raw_path.startswith("/_local/"):
            return self._local_route(method.upper(), raw_path, raw_query, header_map)
        if raw_path == CONSOLE_PREFIX or raw_path.startswith(f"{CONSOLE_PREFIX}/"):
            served = serve_console(method.upper(), raw_path)
            return Response(served.status, list(served.headers), served.body)
        matched = match_route(self.routes, method, raw_path)
        if matched == 404:
            if raw_path == "/" and method.upper() in ("GET", "HEAD"):
                return Response.json(200, self.index(header_map.get("host", "127.0.0.1")))
            return _error(404, "not_found", f"no route for {method.upper()} {raw_path} in template.yaml")
        if matched == 405:
            allowed = allowed_methods(self.routes, raw_path)
            return _error(
                405,
                "method_not_allowed",
                f"{method.upper()} is not routed for {raw_path}; template.yaml routes {', '.join(allowed)}",
                allowed=allowed,
            ).with_header("Allow", ", ".join(allowed))
        assert isinstance(matched, tuple)
        route, path_parameters = matched
        return self._invoke_route(
            route, method, raw_path, raw_query, path_parameters, header_map, body, source_ip
        )

    def _invoke_route(
        self,
        route: Route,
        method: str,
        raw_path: str,
        raw_query: str,
        path_parameters: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        source_ip: str,
        identity: Identity | None = None,
    ) -> Response:
        if route.authorized:
            identity = identity or parse_authorization(headers.get("authorization"))
            if (
                identity is not None
                and route.authorization_scopes
                and not set(route.authorization_scopes) & set(identity.scopes or ())
            ):
                # API Gateway refuses a token without one of the route's scopes before any function runs.
                return Response.json(403, {"message": "Forbidden"}, function=route.function)
        else:
            identity = None
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        event = http_event(
            method,
            raw_path,
            route_key=route.route_key,
            path_parameters=path_parameters or None,
            query=query or None,
            headers=headers,
            body=body or None,
            identity=identity,
            raw_query_string=raw_query,
            source_ip=source_ip,
        )
        try:
            result = self.invoke_function(route.function, route.code_uri, route.handler, event)
        except FileNotFoundError as missing:
            log.warning("%s is not written yet: %s", route.function, missing)
            return _bad_gateway().for_function(route.function)
        except FunctionFailed as failure:
            # Any failure of the function is API Gateway's 502; the traceback goes to the console.
            log.error("%s failed on %s %s:\n%s", route.function, method, raw_path, failure)
            return _bad_gateway().for_function(route.function)
        try:
            return _http_response(result).for_function(route.function)
        except (TypeError, ValueError, binascii.Error) as problem:
            log.error("%s returned a response API Gateway cannot read: %s", route.function, problem)
            return _bad_gateway().for_function(route.function)

    def invoke(
        self, method: str, path: str, *, identity: Identity | None, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        """Call a route in-process as a client would (used by the demo seeding): (status, JSON body)."""
        matched = match_route(self.routes, method, urlsplit(path).path)
        if isinstance(matched, int):
            return matched, None
        route, parameters = matched
        payload = json.dumps(body).encode("utf-8") if body is not None else b""
        headers = {"content-type": JSON} if body is not None else {}
        split = urlsplit(path)
        response = self._invoke_route(
            route, method, split.path, split.query, parameters, headers, payload, "127.0.0.1", identity
        )
        try:
            return response.status, response.json_body()
        except ValueError:
            return response.status, response.body.decode("utf-8", errors="replace")

    # -- local-only routes --

    def _local_route(self, method: str, raw_path: str, raw_query: str, headers: dict[str, str]) -> Response:
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        if raw_path == "/_local/emails":
            if method != "GET":
                return _error(405, "method_not_allowed", "use GET /_local/emails").with_header("Allow", "GET")
            return Response.json(200, {"emails": self.emails()})
        if raw_path == "/_local/reports":
            if method != "GET":
                return _error(405, "method_not_allowed", "use GET /_local/reports").with_header(
                    "Allow", "GET"
                )
            return Response.json(200, {"files": self.files()})
        if raw_path == "/_local/schedules":
            return Response.json(
                200, {"schedules": [self._describe(schedule) for schedule in self.schedules]}
            )
        match = re.fullmatch(r"/_local/runs/([^/]+)", raw_path)
        if match:
            if method != "GET":
                return _error(405, "method_not_allowed", f"use GET {raw_path}").with_header("Allow", "GET")
            return self.run_progress(unquote(match.group(1)))
        match = re.fullmatch(r"/_local/schedules/([^/]+)", raw_path)
        if match:
            if method != "POST":
                return _error(405, "method_not_allowed", f"use POST {raw_path}?asOf=…").with_header(
                    "Allow", "POST"
                )
            return self.run_schedule(unquote(match.group(1)), query.get("asOf"), query.get("name"))
        return _error(404, "not_found", f"no local route {raw_path}: see GET /")

    @staticmethod
    def _describe(schedule: Schedule) -> dict[str, str]:
        return {
            "function": schedule.function,
            "name": schedule.name,
            "expression": schedule.expression,
            "fire": f"POST /_local/schedules/{schedule.function}?asOf=<ISO instant>&name={schedule.name}",
        }

    def run_schedule(self, function: str, as_of: str | None = None, name: str | None = None) -> Response:
        """Invoke a scheduled function with the EventBridge event of a run at `as_of` (default now)."""
        found = [s for s in self.schedules if s.function == function and (name is None or s.name == name)]
        if not found:
            return _error(
                404,
                "unknown_schedule",
                f"no schedule for {function}" + (f" named {name}" if name else "") + " in template.yaml",
                available=[self._describe(schedule) for schedule in self.schedules],
            )
        schedule = found[0]
        try:
            moment = _parse_as_of(as_of)
        except ValueError as problem:
            return _error(400, "invalid_as_of", f"asOf {as_of!r} is not an ISO 8601 instant: {problem}")
        # A ScheduleV2 with an Input sends that JSON (the runs' `{"time": …}`, their `{"check": …}`);
        # a rule, or a schedule without one, the EventBridge event.
        if schedule.input:
            event: Any = scheduler_input(schedule.input, moment)
        else:
            event = scheduled_event(moment, schedule.name)
        started = time.perf_counter()
        try:
            result = self.invoke_function(schedule.function, schedule.code_uri, schedule.handler, event)
        except (FunctionFailed, FileNotFoundError) as problem:
            # Reported to the developer who fired it, the traceback on the console.
            log.error("%s failed on its scheduled run:\n%s", function, problem)
            return Response.json(
                500,
                {"function": function, "event": event, "error": f"{type(problem).__name__}: {problem}"},
                function=function,
            )
        elapsed = round((time.perf_counter() - started) * 1000)
        return Response.json(
            200,
            {"function": function, "event": event, "result": result, "durationMs": elapsed},
            function=function,
        )

    @staticmethod
    def run_progress(run_id: str) -> Response:
        """The record of an expiry or reminder run (what `python -m devtools.local run` follows)."""
        from loyalty.store.runs import read_run  # the table is bound by then (main sets it up)

        record = read_run(run_id)
        if record is None:
            return _error(404, "unknown_run", f"no run {run_id} in the local table")
        document = dataclasses.asdict(record)
        document.update(fannedOut=record.fanned_out, complete=record.complete)
        return Response.json(200, document)

    def index(self, host: str) -> dict[str, Any]:
        base = f"http://{host}"
        member = next(iter(DEMO_MEMBERS))
        now = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
        earn = {"transactionId": "t-1", "amount": "25.00", "currency": "EUR", "occurredAt": now}
        earn["channel"] = "store"
        return {
            "service": "loyalty points, local mode",
            "links": {
                "swagger": f"{base}/swagger",
                "openapi": f"{base}/openapi.json",
                "emails": f"{base}/_local/emails",
                "reports": f"{base}/_local/reports",
                "console": f"{base}/console/",
                "schedules": f"{base}/_local/schedules",
            },
            "identities": {
                "scheme": "Authorization: Dev <member|partner|support|finance>:<id>",
                "examples": {
                    "member": f"Dev member:{member}",
                    "partner": f"Dev partner:{DEMO_PARTNER}",
                    "support": "Dev support:agent-1",
                    "finance": "Dev finance:finance-1",
                },
            },
            "try": [
                f"curl -H 'Authorization: Dev member:{member}' {base}/members/{member}/balance",
                f"curl -X POST -H 'Authorization: Dev partner:{DEMO_PARTNER}' "
                f"-H 'Content-Type: application/json' -d '{json.dumps(earn)}' {base}/members/{member}/earn",
                *[f"curl -X POST '{base}/_local/schedules/{s.function}?asOf={now}'" for s in self.schedules],
            ],
            "routes": sorted(route.route_key for route in self.routes),
        }


def _http_response(result: Any) -> Response:
    """Read a handler's answer as API Gateway does with payload format 2.0."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # No statusCode: API Gateway answers 200 with the result as a JSON body.
        return Response(200, [("Content-Type", JSON)], json.dumps(result).encode("utf-8"))
    status = result["statusCode"]
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"statusCode {status!r} is not an HTTP status")
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise TypeError(f"body must be a string, not {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body, validate=True)
    else:
        payload = body.encode("utf-8")
    return Response(status, headers, payload)


# --- the HTTP server ----------------------------------------------------------------------------


# API Gateway's HTTP API takes request bodies up to 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024


class _BadFraming(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class _RequestHandler(BaseHTTPRequestHandler):
    server: _LocalServer
    protocol_version = "HTTP/1.1"
    server_version = "loyalty-local"

    # A client that announces more bytes than it sends is answered 408, not waited for forever.
    timeout = 10

    def _dispatch(self) -> None:
        started = time.perf_counter()
        try:
            body = self._read_body()
        except _BadFraming as refused:
            self._refuse(refused.status, refused.code, str(refused))
            return
        response = self.server.app.handle(
            self.command, self.path, self.headers.items(), body, source_ip=self.client_address[0]
        )
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        elapsed = (time.perf_counter() - started) * 1000
        via = f" ({response.function})" if response.function else ""
        log.info("%s %s -> %d%s %.0f ms", self.command, self.path, response.status, via, elapsed)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes:
        """The request body, framed as HTTP/1.1 says, or `_BadFraming`: a length that is not a
        number, two framings at once (the ground of request smuggling), a body over the API's
        limit, or fewer bytes than announced. Chunked bodies are read whole, never left on the
        connection to be taken for the next request."""
        lengths = self.headers.get_all("Content-Length") or []
        encodings = self.headers.get_all("Transfer-Encoding") or []
        if encodings and lengths:
            raise _BadFraming(400, "bad_request", "Content-Length and Transfer-Encoding together")
        if encodings:
            if [value.strip().lower() for value in encodings] != ["chunked"]:
                raise _BadFraming(501, "not_implemented", "only the chunked transfer coding is supported")
            return self._read_chunked()
        if not lengths:
            return b""
        if len(set(lengths)) != 1 or not (lengths[0].isascii() and lengths[0].isdigit()):
            raise _BadFraming(400, "bad_request", "Content-Length is not one decimal number")
        length = int(lengths[0])
        if length > MAX_BODY_BYTES:
            raise _BadFraming(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        return self._read_exactly(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _BadFraming(400, "bad_request", "a chunk size is not a hexadecimal number") from None
            if size < 0 or len(body) + size > MAX_BODY_BYTES:
                raise _BadFraming(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields: not used
                return bytes(body)
            body += self._read_exactly(size)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadFraming(400, "bad_request", "a chunk does not end with CRLF")

    def _read_exactly(self, length: int) -> bytes:
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            raise _BadFraming(408, "request_timeout", "the body ended before its announced length") from None
        if len(data) != length:
            raise _BadFraming(400, "bad_request", "the body ended before its announced length")
        return data

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer a request the server cannot frame, and close: what follows on the connection
        cannot be trusted to start a request."""
        payload = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        log.info("%s %s -> %d (%s)", self.command, getattr(self, "path", ""), status, message)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the standard library refuses itself (an unknown method, a bad request line, headers
        too long) is answered in the API's JSON error shape, not an HTML page; then the connection closes."""
        status = 405 if code == 501 else code
        reason = message or self.responses.get(code, ("error",))[0]
        codes = {400: "bad_request", 405: "method_not_allowed", 408: "request_timeout", 414: "uri_too_long"}
        codes[431] = "headers_too_large"
        self._refuse(status, codes.get(status, "bad_request"), reason)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class _LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog (5) resets a client's pooled connections under a burst.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: LocalApp) -> None:
        self.app = app
        super().__init__(address, _RequestHandler)


def make_server(app: LocalApp, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A threading HTTP server for `app` (port 0 picks a free one: see `server_address`)."""
    return _LocalServer((host, port), app)


# --- emulated AWS services (moto) ---------------------------------------------------------------


def _start_moto() -> tuple[Any, str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as missing:
        raise SystemExit(
            f"moto's server cannot start ({missing}): install the dev dependencies with "
            "`pip install -e '.[dev]'` (moto[server] brings flask)"
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def sent_emails() -> list[dict[str, Any]]:
    """Every email the emulated SES (v1 and v2) has accepted, oldest first, read from moto's backend."""
    from moto.ses.models import RawMessage, ses_backends

    found: list[dict[str, Any]] = []
    for account_id, regions in list(ses_backends.items()):
        for region, backend in list(regions.items()):
            for message in list(backend.sent_messages):
                entry: dict[str, Any] = {"account": account_id, "region": region}
                entry.update(_describe_email(message, RawMessage))
                found.append(entry)
    return found


def _describe_email(message: Any, raw_message_type: type) -> dict[str, Any]:
    if isinstance(message, raw_message_type):
        parsed = email.message_from_string(message.raw_data, policy=email.policy.default)
        text = parsed.get_body(preferencelist=("plain",))
        html = parsed.get_body(preferencelist=("html",))
        return {
            "id": message.id,
            "from": message.source or str(parsed["from"] or ""),
            "to": _addresses(message.destinations),
            "subject": str(parsed["subject"] or ""),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "raw": message.raw_data,
        }
    if hasattr(message, "template"):  # templated: moto keeps the template's name and data only
        return {
            "id": getattr(message, "id", None) or ",".join(getattr(message, "ids", [])),
            "from": message.source,
            "to": message.destinations,
            "template": message.template,
            "templateData": message.template_data,
        }
    body = message.body or ""
    is_html = bool(re.search(r"<(html|body|p|div|table|br)\b", body, re.IGNORECASE))
    return {
        "id": message.id,
        "from": message.source,
        "to": [address for addresses in message.destinations.values() for address in addresses],
        "subject": message.subject,
        # moto keeps one body: the HTML part when the message had both.
        "text": None if is_html else body,
        "html": body if is_html else None,
    }


def _addresses(destinations: Iterable[str]) -> list[str]:
    """Each recipient once: moto lists a raw message's `Destination` and its `To` header both
    (`bob@example.com` and `Bob Smith <bob@example.com>`)."""
    found: list[str] = []
    for destination in destinations:
        address = parseaddr(destination)[1] or destination
        if address not in found:
            found.append(address)
    return found


class EmailOutbox:
    """Saves each email the emulated SES accepted in `directory`, as `<sent at>-<id>.json`
    (everything) and `.html`, `.txt`, `.eml` (the parts it has), and lists them."""

    def __init__(self, directory: Path, source: Callable[[], list[dict[str, Any]]] = sent_emails) -> None:
        self.directory = directory
        self.source = source
        self.files: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def collect(self) -> list[dict[str, Any]]:
        """The emails sent since the start, oldest first, each with the files it was saved in."""
        with self._lock:
            emails = self.source()
            for message in emails:
                key = str(message.get("id"))
                if key not in self.files:
                    self.files[key] = self._write(message, f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{key}")
                    recipients = ", ".join(map(str, message.get("to") or []))
                    subject = message.get("subject") or message.get("template")
                    log.info("email to %s: %r saved in %s", recipients, subject, self.files[key][0])
                message["files"] = self.files[key]
            return emails

    def _write(self, message: dict[str, Any], stem: str) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        parts = {".json": json.dumps(message, indent=2, default=str)}
        parts.update({f".{kind}": message[part] for kind, part in _PARTS if message.get(part)})
        written = []
        for suffix, content in parts.items():
            path = self.directory / f"{stem}{suffix}"
            path.write_text(content, encoding="utf-8")
            written.append(str(path))
        return written


_PARTS = (("html", "html"), ("txt", "text"), ("eml", "raw"))

_EMAIL_ADDRESS = re.compile(r"(?:[^<>\s@]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def _verify_senders(endpoint: str, region: str, environment: Mapping[str, str]) -> list[str]:
    """SES (and moto) refuse unverified senders: verify every address the functions' environment names."""
    ses = local_client(endpoint, "ses", region)
    addresses = sorted({found for value in environment.values() for found in _EMAIL_ADDRESS.findall(value)})
    for address in addresses:
        ses.verify_email_identity(EmailAddress=address)
        ses.verify_domain_identity(Domain=address.rpartition("@")[2])
    return addresses


class SqsPoller(BackgroundThreads):
    """Delivers SQS messages to the functions with an SQS event, as Lambda's event source mapping does."""

    def __init__(
        self, app: LocalApp, endpoint: str, region: str, queues: Mapping[str, dict[str, str]]
    ) -> None:
        super().__init__()
        self.app = app
        self.region = region
        self.client = local_client(endpoint, "sqs", region)
        for function, properties in serverless_functions(app.template).items():
            for name, event in (properties.get("Events") or {}).items():
                if not isinstance(event, dict) or event.get("Type") != "SQS":
                    continue
                queue = _referenced_resource((event.get("Properties") or {}).get("Queue"))
                if queue not in queues:
                    log.warning("%s event %s: queue %s is not emulated", function, name, queue)
                    continue
                self.add(
                    f"sqs-{function}-{name}",
                    self._poll,
                    function,
                    properties,
                    event.get("Properties") or {},
                    queues[queue],
                )

    def _poll(
        self,
        function: str,
        function_properties: Mapping[str, Any],
        event: Mapping[str, Any],
        queue: Mapping[str, str],
    ) -> None:
        code_uri, handler = function_code(self.app.template, function)
        batch_size = min(int(event.get("BatchSize", 10)), 10)
        partial = "ReportBatchItemFailures" in (event.get("FunctionResponseTypes") or [])
        while not self.stopping.is_set():
            try:
                received = self.client.receive_message(
                    QueueUrl=queue["url"],
                    MaxNumberOfMessages=batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if not self.stopping.is_set():
                    log.exception("polling %s failed", queue["url"])
                    time.sleep(1)
                continue
            if not received:
                continue
            records = [_sqs_record(message, queue["arn"], self.region) for message in received]
            try:
                result = self.app.invoke_function(function, code_uri, handler, {"Records": records})
            except (FunctionFailed, FileNotFoundError) as failure:
                # As in Lambda, the batch returns to the queue when its visibility timeout ends.
                log.error("%s failed on an SQS batch:\n%s", function, failure)
                continue
            failed: set[str] = set()
            if partial and isinstance(result, dict):
                failed = {item.get("itemIdentifier") for item in result.get("batchItemFailures") or []}
            done = [m for m in received if m["MessageId"] not in failed]
            if done:
                self.client.delete_message_batch(
                    QueueUrl=queue["url"],
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )


def _sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes") or {},
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _referenced_resource(value: Any) -> str | None:
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute:
            return str(attribute[0])
    return None


# --- putting it together ------------------------------------------------------------------------


def _resource_values(template: Mapping[str, Any], region: str) -> dict[str, str]:
    """What CloudFormation would give `Ref` and `Fn::GetAtt` for each resource, locally."""
    values = {
        "AWS::Region": region,
        "AWS::AccountId": LOCAL_ACCOUNT_ID,
        "AWS::StackName": "loyalty-local",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "UnsubscribeSecret": DEV_UNSUBSCRIBE_SECRET,
    }
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = str((resource or {}).get("Type", ""))
        service = kind.split("::")[1].lower() if kind.count("::") >= 2 else "local"
        name = TABLE_NAME if logical_id == MAIN_TABLE else f"loyalty-local-{logical_id}"
        values[logical_id] = name
        values[f"{logical_id}.Arn"] = f"arn:aws:{service}:{region}:{LOCAL_ACCOUNT_ID}:{name}"
        if kind == DYNAMODB_TABLE:
            values[f"{logical_id}.Arn"] = f"arn:aws:dynamodb:{region}:{LOCAL_ACCOUNT_ID}:table/{name}"
    return values


def _create_queues(
    template: Mapping[str, Any], endpoint: str, region: str, values: dict[str, str]
) -> dict[str, dict[str, str]]:
    sqs = local_client(endpoint, "sqs", region)
    queues: dict[str, dict[str, str]] = {}
    declared = {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in (template.get("Resources") or {}).items()
        if isinstance(resource, dict) and resource.get("Type") == "AWS::SQS::Queue"
    }
    # Dead-letter queues first: the others name them in their redrive policy.
    for logical_id in sorted(declared, key=lambda name: "RedrivePolicy" in declared[name]):
        properties = declared[logical_id]
        fifo = str(properties.get("FifoQueue", "false")).lower() == "true"
        name = f"loyalty-local-{logical_id}" + (".fifo" if fifo else "")
        attributes = {"FifoQueue": "true"} if fifo else {}
        if "VisibilityTimeout" in properties:
            # Capped locally: a failed message comes back within seconds, not AWS's minutes.
            visibility = min(int(properties["VisibilityTimeout"]), LOCAL_VISIBILITY_TIMEOUT)
            attributes["VisibilityTimeout"] = str(visibility)
        redrive = properties.get("RedrivePolicy") or {}
        target = _referenced_resource(redrive.get("deadLetterTargetArn"))
        if target in queues:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": queues[target]["arn"],
                    "maxReceiveCount": int(redrive.get("maxReceiveCount", 3)),
                }
            )
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{region}:{LOCAL_ACCOUNT_ID}:{name}"
        queues[logical_id] = {"url": url, "arn": arn}
        values.update(
            {
                logical_id: url,
                f"{logical_id}.Arn": arn,
                f"{logical_id}.QueueName": name,
                f"{logical_id}.QueueUrl": url,
            }
        )
    return queues


def _process_environment(template: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, str]:
    """One environment for all the in-process functions: they share one process, so a variable
    that differs between functions keeps the value of the first one (and we say so)."""
    merged: dict[str, str] = {}
    for function in serverless_functions(template):
        for name, value in function_environment(template, function, values).items():
            if name in merged and merged[name] != value:
                log.warning(
                    "%s: %s=%r differs from another function's %r; keeping the first",
                    function,
                    name,
                    value,
                    merged[name],
                )
                continue
            merged[name] = value
    return merged


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.local", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="HTTP port on 127.0.0.1 (default 3000)"
    )
    parser.add_argument("--rules", type=Path, help="program rules JSON file (default: the shipped rules)")
    parser.add_argument("--in-memory", action="store_true", help="keep no data between runs")
    parser.add_argument("--reset", action="store_true", help="wipe the kept data and emails first")
    parser.add_argument("--no-demo", action="store_true", help="do not seed the demo members")
    parser.add_argument(
        "--instances",
        type=int,
        default=DEFAULT_INSTANCES,
        help=f"concurrent instances per function, as Lambda runs them (default {DEFAULT_INSTANCES})",
    )
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    refuse_in_lambda()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        from devtools.run_command import main as run_command

        return run_command(argv[1:])
    if argv[:1] == ["report"]:
        from devtools.report_command import main as report_command

        return report_command(argv[1:])
    arguments = _parse_arguments(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S"
    )
    for chatty in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if arguments.rules is not None and not arguments.rules.is_file():
        print(f"--rules {arguments.rules}: no such file", file=sys.stderr)
        return 2
    try:
        template = load_template(arguments.template)
    except (OSError, TemplateError) as problem:
        print(f"cannot read the template: {problem}", file=sys.stderr)
        return 2

    region = os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    os.environ.setdefault("AWS_REGION", region)
    # Dummy credentials and no profile: nothing the local mode runs can reach a real AWS account.
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(variable, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_EC2_METADATA_DISABLED="true"
    )

    # Next to the template (the repository root for the real one), as SAM reads CodeUri from there.
    root = arguments.template.resolve().parent
    local_dir = root / ".local"
    data_dir = local_dir / "dynamodb"
    emails_dir = local_dir / "emails"
    streams_file = local_dir / "streams.json"  # where each stream's delivery got to
    if arguments.reset:
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(emails_dir, ignore_errors=True)
        streams_file.unlink(missing_ok=True)

    stack: list[Callable[[], None]] = []
    try:
        moto, moto_endpoint = _start_moto()
        stack.append(moto.stop)
        # Every service not named below also goes to moto, never to AWS.
        os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
        for service in ("SES", "SESV2", "SQS", "EVENTS", "SCHEDULER"):
            os.environ[f"AWS_ENDPOINT_URL_{service}"] = moto_endpoint

        if java_available():
            try:
                dynamodb = DynamoDBLocal(db_path=None if arguments.in_memory else data_dir)
            except DynamoDBLocalError as problem:
                print(problem, file=sys.stderr)
                return 1
            stack.append(dynamodb.stop)
            dynamodb_endpoint, data_note = (
                dynamodb.endpoint,
                (
                    "in memory (--in-memory): gone when you stop"
                    if arguments.in_memory
                    else f"{data_dir} (kept; --reset wipes it)"
                ),
            )
        else:
            dynamodb_endpoint = moto_endpoint
            data_note = "in memory, in moto: gone when you stop"
            log.warning(
                "Java 17+ is not installed: DynamoDB is emulated by moto instead of DynamoDB Local. "
                "Data is NOT kept between runs, and conditional writes and transactions follow moto's "
                "semantics (not safe under concurrency), not DynamoDB's. Install Java 17 for the real engine."
            )
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint

        values = _resource_values(template, region)
        dynamodb_client = local_client(dynamodb_endpoint, "dynamodb", region)
        for logical_id, resource in (template.get("Resources") or {}).items():
            if isinstance(resource, dict) and resource.get("Type") == DYNAMODB_TABLE:
                ensure_table(dynamodb_client, values[logical_id], template, logical_id)
        queues = _create_queues(template, moto_endpoint, region, values)
        s3 = local_client(moto_endpoint, "s3", region)
        mirror = BucketMirror(s3, create_buckets(template, s3, region, values), local_dir / "reports")
        try:
            environment = _process_environment(template, values)
        except TemplateError as problem:
            print(f"cannot build the functions' environment: {problem}", file=sys.stderr)
            return 2
        environment.setdefault("POWERTOOLS_SERVICE_NAME", "loyalty")
        environment.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LoyaltyLocal")
        # Metrics are CloudWatch EMF lines, noise on a console: POWERTOOLS_METRICS_DISABLED=false shows them.
        environment.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        # The developer's shell wins (`POWERTOOLS_LOG_LEVEL=DEBUG make run`), except for what
        # points the functions at the local table and rules.
        for name, value in environment.items():
            os.environ.setdefault(name, value)
        os.environ["TABLE_NAME"] = TABLE_NAME
        os.environ["RULES_SOURCE"] = f"file:{arguments.rules.resolve()}" if arguments.rules else "default"
        senders = _verify_senders(moto_endpoint, region, environment)

        outbox = EmailOutbox(emails_dir)
        if arguments.instances < 1:
            print("--instances must be at least 1", file=sys.stderr)
            return 2
        app = LocalApp(
            template, root, emails=outbox.collect, files=mirror.collect, instances=arguments.instances
        )
        stack.append(app.close)
        for missing in app.missing_handlers():
            log.warning("no handler yet for %s: its routes answer 502 until it exists", missing)
        server = make_server(app, arguments.port)
        stack.append(server.server_close)
        poller = SqsPoller(app, moto_endpoint, region, queues)
        poller.start()
        stack.append(poller.stop)
        deliveries = StreamDeliveries(
            template,
            app.invoke_function,
            dynamodb=dynamodb_client,
            streams=local_client(dynamodb_endpoint, "dynamodbstreams", region),
            table_names={
                logical_id: values[logical_id]
                for logical_id, resource in (template.get("Resources") or {}).items()
                if isinstance(resource, dict) and resource.get("Type") == DYNAMODB_TABLE
            },
            region=region,
            checkpoints=None if arguments.in_memory else streams_file,
        )
        deliveries.start()
        stack.append(deliveries.stop)
        stack.append(_start_outbox_watch(outbox))

        if not arguments.no_demo:
            report = seed(app.invoke)
            (log.warning if report.problems else log.info)("%s", report.summary())

        _print_banner(arguments.port, app, data_note, emails_dir, senders)
        _stop_on_signals()
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
        print("\nstopping…", file=sys.stderr)
        return 0
    finally:
        for stop in reversed(stack):
            try:
                stop()
            except Exception:
                log.exception("while stopping")


def _start_outbox_watch(outbox: EmailOutbox) -> Callable[[], None]:
    stopping = threading.Event()

    def watch() -> None:
        while not stopping.wait(1.0):
            try:
                outbox.collect()
            except Exception:
                log.exception("reading the emulated SES outbox failed")

    thread = threading.Thread(target=watch, name="email-outbox", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=5)

    return stop


def _stop_on_signals() -> None:
    # SIGINT too: a process started in the background of a script inherits SIGINT ignored.
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def _print_banner(port: int, app: LocalApp, data_note: str, emails_dir: Path, senders: list[str]) -> None:
    base = f"http://127.0.0.1:{port}"
    member = next(iter(DEMO_MEMBERS))
    lines = [
        "",
        f"Loyalty points, local mode: {base}   ({len(app.routes)} routes from template.yaml)",
        f"  API docs (Swagger UI)  {base}/swagger      OpenAPI: {base}/openapi.json",
        f"  Support console        {base}/console/   (sign in as support, e.g. agent-1)",
        "  Identity (stands in for Cognito, local only):",
        "      Authorization: Dev <member|partner|support|finance>:<id>",
        f"      curl -H 'Authorization: Dev member:{member}' {base}/members/{member}/balance",
        f"      curl -H 'Authorization: Dev partner:{DEMO_PARTNER}' {base}/members/demo-bob/balance",
        "  Daily runs             python -m devtools.local run expiry|reminders --at 2028-12-01T03:00:00Z",
        f"                         (or POST {base}/_local/schedules/<Function>?asOf=2027-01-01T00:00:00Z)",
        "                         "
        + (", ".join(sorted({s.function for s in app.schedules})) or "(none declared yet)"),
        f"  Emails sent            {base}/_local/emails, saved in {emails_dir}",
        "  Liability report       python -m devtools.local report [--at …]  (files, chart: .local/reports)",
        f"  Data                   {data_note}",
    ]
    if senders:
        lines.append(f"  Verified SES senders   {', '.join(senders)}")
    lines += ["  Ctrl-C to stop.", ""]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
