"""devtools.local: the local HTTP server, end to end, against a tiny template and fake functions."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devtools.identity import DEV_ISSUER
from devtools.lambda_pool import DEFAULT_INSTANCES
from devtools.local import LocalApp, _LocalServer, _RequestHandler, make_server
from devtools.template import load_template

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Handler: app.handler
  HttpApi:
    Auth:
      DefaultAuthorizer: Cognito
Resources:
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo/
      Events:
        Member:
          Type: HttpApi
          Properties: {Method: get, Path: "/members/{memberId}"}
        Earn:
          Type: HttpApi
          Properties:
            Method: post
            Path: "/members/{memberId}/earn"
            Auth: {AuthorizationScopes: [loyalty/partner]}
        Public:
          Type: HttpApi
          Properties:
            Method: get
            Path: /public
            Auth: {Authorizer: NONE}
  BinaryFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/binary
      Events:
        Logo:
          Type: HttpApi
          Properties: {Method: get, Path: /logo.png, Auth: {Authorizer: NONE}}
  BrokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/broken
      Events:
        Broken:
          Type: HttpApi
          Properties: {Method: get, Path: /broken}
  NotWrittenYetFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/later
      Events:
        Later:
          Type: HttpApi
          Properties: {Method: get, Path: /later}
  RendezvousFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/rendezvous
      Events:
        Meet:
          Type: HttpApi
          Properties: {Method: get, Path: /rendezvous, Auth: {Authorizer: NONE}}
  CrashFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/crash
      Events:
        Crash:
          Type: HttpApi
          Properties: {Method: get, Path: /crash, Auth: {Authorizer: NONE}}
  ClockFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/clock
      Events:
        Daily:
          Type: Schedule
          Properties: {Schedule: "cron(0 1 * * ? *)", Name: clock-daily}
  CheckFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/given
      Events:
        Check:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: "cron(5 4 * * ? *)"
            Input: '{"check": "<aws.scheduler.scheduled-time>"}'
"""

FUNCTIONS = {
    "echo": (
        "import json\n"
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'headers': {'Content-Type': 'application/json',\n"
        "            'X-Function': context.function_name}, 'body': json.dumps(event)}\n"
    ),
    "binary": (
        "import base64\n"
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'headers': {'content-type': 'image/png'},\n"
        "            'body': base64.b64encode(b'\\x89PNG').decode(), 'isBase64Encoded': True}\n"
    ),
    "broken": "def handler(event, context):\n    raise RuntimeError('boom')\n",
    # Each request leaves a mark in a folder, then waits (up to `wait` s) for `n` marks: requests
    # that run at the same time all meet; requests run one after another never do.
    "rendezvous": (
        "import json, os, pathlib, time, uuid\n"
        "def handler(event, context):\n"
        "    query = event['queryStringParameters']\n"
        "    folder, expected = pathlib.Path(query['dir']), int(query['n'])\n"
        "    (folder / uuid.uuid4().hex).touch()\n"
        "    deadline = time.monotonic() + float(query['wait'])\n"
        "    while len(list(folder.iterdir())) < expected and time.monotonic() < deadline:\n"
        "        time.sleep(0.02)\n"
        "    met = len(list(folder.iterdir())) >= expected\n"
        "    return {'statusCode': 200, 'body': json.dumps({'pid': os.getpid(), 'met': met})}\n"
    ),
    "crash": "import os\ndef handler(event, context):\n    os._exit(3)\n",
    "clock": (
        "def handler(event, context):\n    return {'asOf': event['time'], 'rule': event['resources'][0]}\n"
    ),
    "given": "def handler(event, context):\n    return event\n",
}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("app")
    (root / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    for name, source in FUNCTIONS.items():
        folder = root / "functions" / name
        folder.mkdir(parents=True)
        (folder / "app.py").write_text(source, encoding="utf-8")
    app = LocalApp(load_template(root / "template.yaml"), root=root, emails=lambda: [{"id": "e-1"}])
    server = make_server(app, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    app.close()


def request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    call = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as answer:
        return answer.code, dict(answer.headers.items()), answer.read()


def echoed(url: str, **kwargs: Any) -> dict[str, Any]:
    status, headers, body = request(url, **kwargs)
    assert status == 200, body
    assert headers["X-Function"] == "EchoFunction"
    return json.loads(body)


def test_given_a_dev_member_header_when_calling_then_the_handler_gets_the_member_jwt_claims(
    base_url: str,
) -> None:
    event = echoed(f"{base_url}/members/m1?view=full", headers={"Authorization": "Dev member:m1"})

    jwt = event["requestContext"]["authorizer"]["jwt"]
    assert jwt["claims"]["sub"] == "m1"
    assert jwt["claims"]["iss"] == DEV_ISSUER
    assert "cognito:groups" not in jwt["claims"]
    assert event["routeKey"] == "GET /members/{memberId}"
    assert event["pathParameters"] == {"memberId": "m1"}
    assert (event["rawQueryString"], event["queryStringParameters"]) == ("view=full", {"view": "full"})
    assert event["headers"]["authorization"] == "Dev member:m1"


def test_given_no_identity_when_calling_then_the_handler_gets_no_authorizer_block(base_url: str) -> None:
    event = echoed(f"{base_url}/members/m1")

    assert "authorizer" not in event["requestContext"]


def test_given_junk_in_authorization_when_calling_then_the_handler_gets_no_authorizer_block(
    base_url: str,
) -> None:
    event = echoed(f"{base_url}/members/m1", headers={"Authorization": "Bearer abc.def.ghi"})

    assert "authorizer" not in event["requestContext"]


def test_given_a_route_without_authorizer_when_calling_with_an_identity_then_none_is_passed(
    base_url: str,
) -> None:
    event = echoed(f"{base_url}/public", headers={"Authorization": "Dev support:a1"})

    assert "authorizer" not in event["requestContext"]


def test_given_a_json_body_when_posting_then_the_handler_gets_it_as_a_string(base_url: str) -> None:
    body = json.dumps({"transactionId": "t-1", "amount": "12.50"}).encode()

    event = echoed(
        f"{base_url}/members/m1/earn",
        method="POST",
        headers={"Authorization": "Dev partner:pos-1", "Content-Type": "application/json"},
        body=body,
    )

    assert json.loads(event["body"]) == {"transactionId": "t-1", "amount": "12.50"}
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["authorizer"]["jwt"]["scopes"] == ["loyalty/partner"]


def test_given_a_token_without_the_route_scope_when_posting_then_api_gateway_forbids_it(
    base_url: str,
) -> None:
    status, _, body = request(
        f"{base_url}/members/m1/earn", method="POST", headers={"Authorization": "Dev member:m1"}, body=b"{}"
    )

    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})


def test_given_a_base64_response_when_calling_then_the_client_gets_the_bytes(base_url: str) -> None:
    status, headers, body = request(f"{base_url}/logo.png")

    assert (status, headers["content-type"], body) == (200, "image/png", b"\x89PNG")


def test_given_an_unknown_path_when_calling_then_it_is_a_json_404(base_url: str) -> None:
    status, _, body = request(f"{base_url}/nowhere")

    assert status == 404
    assert json.loads(body)["error"]["code"] == "not_found"


def test_given_a_known_path_and_another_method_when_calling_then_it_is_a_json_405(base_url: str) -> None:
    status, headers, body = request(f"{base_url}/members/m1", method="DELETE")

    assert status == 405
    assert headers["Allow"] == "GET"
    assert json.loads(body)["error"]["code"] == "method_not_allowed"


def test_given_a_failing_handler_when_calling_then_it_is_a_502_as_from_api_gateway(base_url: str) -> None:
    status, _, body = request(f"{base_url}/broken")

    assert (status, json.loads(body)) == (502, {"message": "Internal Server Error"})


def test_given_a_function_not_written_yet_when_calling_then_it_is_a_502_and_the_server_lives(
    base_url: str,
) -> None:
    status, _, _ = request(f"{base_url}/later")

    assert status == 502
    assert request(f"{base_url}/public")[0] == 200


def test_given_a_schedule_when_fired_at_an_instant_then_the_function_gets_that_time(base_url: str) -> None:
    status, _, body = request(
        f"{base_url}/_local/schedules/ClockFunction?asOf=2027-01-31T23:00:00%2B01:00", "POST"
    )

    assert status == 200
    result = json.loads(body)["result"]
    assert result["asOf"] == "2027-01-31T22:00:00Z"
    assert result["rule"].endswith("rule/clock-daily")


def test_given_a_schedule_with_an_input_when_fired_then_the_function_gets_that_input_at_that_time(
    base_url: str,
) -> None:
    # Given a ScheduleV2 whose Input is the runs' check (template.yaml), fired at 04:05 in Paris
    status, _, body = request(
        f"{base_url}/_local/schedules/CheckFunction?asOf=2028-12-01T04:05:00%2B01:00", "POST"
    )

    # Then the function got that JSON, as EventBridge Scheduler sends it, not an EventBridge event
    assert status == 200
    assert json.loads(body)["result"] == {"check": "2028-12-01T03:05:00Z"}


def test_given_an_unknown_schedule_when_fired_then_it_is_404_listing_the_schedules(base_url: str) -> None:
    status, _, body = request(f"{base_url}/_local/schedules/NopeFunction", "POST")

    assert status == 404
    assert [s["function"] for s in json.loads(body)["error"]["available"]] == [
        "ClockFunction",
        "CheckFunction",
    ]


def test_given_an_as_of_without_time_zone_when_fired_then_it_is_400(base_url: str) -> None:
    status, _, body = request(f"{base_url}/_local/schedules/ClockFunction?asOf=2027-01-31T23:00:00", "POST")

    assert status == 400
    assert json.loads(body)["error"]["code"] == "invalid_as_of"


def test_given_emails_were_sent_when_listing_them_then_they_are_returned(base_url: str) -> None:
    status, _, body = request(f"{base_url}/_local/emails")

    assert (status, json.loads(body)) == (200, {"emails": [{"id": "e-1"}]})


def test_given_the_root_when_calling_then_an_index_with_links_and_identities_is_returned(
    base_url: str,
) -> None:
    status, _, body = request(f"{base_url}/")

    index = json.loads(body)
    assert status == 200
    assert index["links"]["swagger"].endswith("/swagger")
    assert index["identities"]["examples"]["partner"] == "Dev partner:demo-pos"
    assert "GET /members/{memberId}" in index["routes"]


def test_given_missing_handler_files_when_starting_then_they_are_reported(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE, encoding="utf-8")

    missing = LocalApp(load_template(tmp_path / "template.yaml"), root=tmp_path).missing_handlers()

    assert len(missing) == len(FUNCTIONS) + 1  # every function, and the one not written yet
    assert missing[0].startswith("BinaryFunction (functions/binary/app.py)")


# ---- request framing: what a hostile client sends on the wire (issue #6)


def raw_exchange(base_url: str, data: bytes, *, read_for: float = 5.0) -> bytes:
    """Send `data` on one connection and return everything the server answers until it closes
    the connection or stays silent for a moment."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_for) as connection:
        connection.sendall(data)
        received = b""
        with contextlib.suppress(TimeoutError):
            while chunk := connection.recv(65536):
                received += chunk
        return received


def statuses(answer: bytes) -> list[int]:
    """The status of every response in `answer` (a response may follow a body without a newline)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


POST_HEAD = b"POST /members/m1/earn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
GET_PUBLIC = b"GET /public HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_a_chunked_body_is_read_whole_and_the_next_request_stays_a_request(base_url: str) -> None:
    # Given a chunked POST, followed on the same connection by a GET
    chunked = b'Transfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
    answer = raw_exchange(base_url, POST_HEAD + chunked + GET_PUBLIC, read_for=2)

    # Then the function got the whole body, and the GET was answered as a request of its own
    assert statuses(answer) == [200, 200]
    first = answer.split(b"\r\n\r\n", 1)[1]
    assert b'"body": "{\\"a\\":1}"' in first


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (b"Content-Length: -1\r\n", 400),
        (b"Content-Length: abc\r\n", 400),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        (b"Content-Length: 7\r\nTransfer-Encoding: chunked\r\n", 400),
        (b"Transfer-Encoding: gzip\r\n", 501),
        (b"Content-Length: 20000000\r\n", 413),
    ],
    ids=["negative-length", "non-numeric-length", "two-lengths", "length-and-chunked", "gzip", "too-large"],
)
def test_a_body_the_server_cannot_frame_is_refused_and_the_connection_closed(
    base_url: str, headers: bytes, status: int
) -> None:
    # When the framing is bad, and another request follows on the connection
    answer = raw_exchange(base_url, POST_HEAD + headers + b'\r\n{"a":1}' + GET_PUBLIC)

    # Then only the refusal comes back: nothing after it is taken for a request
    assert statuses(answer) == [status]
    assert b"Connection: close" in answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"]


def test_a_body_shorter_than_announced_is_answered_408_not_waited_for(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_RequestHandler, "timeout", 1)
    answer = raw_exchange(base_url, POST_HEAD + b'Content-Length: 100\r\n\r\n{"a":1}', read_for=5)
    assert statuses(answer) == [408]


def test_an_unknown_method_is_answered_in_json_not_an_html_page(base_url: str) -> None:
    answer = raw_exchange(base_url, b"BREW /public HTTP/1.1\r\nHost: x\r\n\r\n" + GET_PUBLIC)
    assert statuses(answer) == [405]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "method_not_allowed"


def test_the_listen_backlog_takes_a_burst_of_connections() -> None:
    assert _LocalServer.request_queue_size >= 128


# ---- concurrency: several instances of a function, as Lambda runs them (issue #6)


def meet(base_url: str, folder: Path, expected: int, wait: float) -> dict[str, Any]:
    query = urllib.parse.urlencode({"dir": str(folder), "n": expected, "wait": wait})
    status, _, body = request(f"{base_url}/rendezvous?{query}")
    assert status == 200, body
    return dict(json.loads(body))


def test_concurrent_requests_to_one_function_run_at_once_in_instances_of_their_own(
    base_url: str, tmp_path: Path
) -> None:
    # When as many requests as a function has instances arrive together
    with ThreadPoolExecutor(DEFAULT_INSTANCES) as pool:
        answers = list(pool.map(lambda _: meet(base_url, tmp_path, DEFAULT_INSTANCES, 20), range(4)))

    # Then they all ran at the same time, each in a process of its own
    assert all(answer["met"] for answer in answers)
    assert len({answer["pid"] for answer in answers}) == DEFAULT_INSTANCES


def test_beyond_its_instances_a_request_waits_for_a_warm_one(tmp_path: Path) -> None:
    # Given a function limited to one instance
    root = tmp_path / "app"
    (root / "functions" / "rendezvous").mkdir(parents=True)
    (root / "functions" / "rendezvous" / "app.py").write_text(FUNCTIONS["rendezvous"], encoding="utf-8")
    (root / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    app = LocalApp(load_template(root / "template.yaml"), root=root, instances=1)
    marks = tmp_path / "marks"
    marks.mkdir()
    query = urllib.parse.urlencode({"dir": str(marks), "n": 2, "wait": 0.5})
    try:
        # When two requests arrive together
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: app.handle("GET", f"/rendezvous?{query}"), range(2)))
    finally:
        app.close()

    # Then both are served, one after the other, by the same warm instance
    bodies = [answer.json_body() for answer in answers]
    assert [answer.status for answer in answers] == [200, 200]
    assert sorted(body["met"] for body in bodies) == [False, True]
    assert bodies[0]["pid"] == bodies[1]["pid"]


def test_an_instance_that_dies_is_a_502_and_the_next_request_gets_a_new_one(base_url: str) -> None:
    assert request(f"{base_url}/crash")[0] == 502
    assert request(f"{base_url}/crash")[0] == 502
    assert request(f"{base_url}/public")[0] == 200
