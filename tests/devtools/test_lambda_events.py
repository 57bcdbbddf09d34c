"""devtools.lambda_runtime: handlers loaded as Lambda does, the context, and realistic events."""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from devtools.identity import Identity
from devtools.lambda_runtime import LambdaContext, http_event, load_handler, scheduled_event, scheduler_input


def test_given_a_request_when_building_the_event_then_it_has_the_http_api_v2_shape() -> None:
    event = http_event(
        "post",
        "/members/m1/earn",
        route_key="POST /members/{memberId}/earn",
        path_parameters={"memberId": "m1"},
        query={"dryRun": "true"},
        headers={"User-Agent": "curl/8", "X-Custom": "1"},
        body={"points": 5},
        identity=Identity.partner("pos-1"),
    )

    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /members/{memberId}/earn"
    assert event["rawPath"] == "/members/m1/earn"
    assert event["rawQueryString"] == "dryRun=true"
    assert "cookies" not in event
    assert event["headers"]["user-agent"] == "curl/8"
    assert event["headers"]["x-custom"] == "1"
    assert event["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in event["headers"])
    assert event["queryStringParameters"] == {"dryRun": "true"}
    assert event["pathParameters"] == {"memberId": "m1"}
    assert json.loads(event["body"]) == {"points": 5}
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/members/m1/earn",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8",
    }
    assert (context["routeKey"], context["stage"], context["domainName"]) == (
        "POST /members/{memberId}/earn",
        "$default",
        "localhost",
    )
    assert {"accountId", "apiId", "requestId", "time", "timeEpoch"} <= set(context)
    assert context["authorizer"] == {
        "jwt": {"claims": Identity.partner("pos-1").claims, "scopes": ["loyalty/partner"]}
    }


def test_given_no_identity_when_building_the_event_then_there_is_no_authorizer() -> None:
    event = http_event("GET", "/swagger")

    assert "authorizer" not in event["requestContext"]
    assert event["routeKey"] == "GET /swagger"
    assert "body" not in event
    assert "pathParameters" not in event
    assert "queryStringParameters" not in event


def test_given_binary_bytes_when_building_the_event_then_the_body_is_base64() -> None:
    event = http_event("POST", "/upload", body=b"\xff\x00\xfe")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00\xfe"


def test_given_a_cookie_header_when_building_the_event_then_cookies_move_out_of_the_headers() -> None:
    event = http_event("GET", "/", headers={"Cookie": "a=1; b=2"})

    assert event["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in event["headers"]


def test_given_an_instant_when_building_a_scheduled_event_then_time_is_that_instant_in_utc() -> None:
    instant = datetime(2027, 3, 1, 1, 30, 15, 999_000, tzinfo=timezone(timedelta(hours=1)))

    event = scheduled_event(instant, "expiry-daily")

    assert event["time"] == "2027-03-01T00:30:15Z"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"][0].endswith(":rule/expiry-daily")
    assert event["detail"] == {}


def test_given_a_naive_instant_when_building_a_scheduled_event_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduled_event(datetime(2027, 3, 1), "expiry-daily")


def test_given_a_scheduler_input_when_fired_then_it_is_sent_with_the_scheduled_time_in_utc() -> None:
    # Given the runs' check schedule's Input (template.yaml), fired at 04:05 in Paris
    instant = datetime(2028, 12, 1, 4, 5, tzinfo=timezone(timedelta(hours=1)))

    event = scheduler_input('{"check": "<aws.scheduler.scheduled-time>"}', instant)

    # Then the function gets that JSON, as EventBridge Scheduler sends it
    assert event == {"check": "2028-12-01T03:05:00Z"}
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduler_input('{"time": "<aws.scheduler.scheduled-time>"}', datetime(2027, 3, 1))


def test_given_a_context_when_asked_then_it_answers_like_the_lambda_runtime() -> None:
    first, second = LambdaContext("EarnFunction"), LambdaContext("EarnFunction", memory_mb=256)

    assert first.function_name == "EarnFunction"
    assert first.function_version == "$LATEST"
    assert first.invoked_function_arn.endswith(":function:EarnFunction")
    assert (first.memory_limit_in_mb, second.memory_limit_in_mb) == (1024, 256)
    assert first.aws_request_id != second.aws_request_id
    assert first.log_group_name == "/aws/lambda/EarnFunction"
    assert first.log_stream_name
    assert 890_000 < first.get_remaining_time_in_millis() <= 900_000  # Lambda's longest, counting down


def test_given_a_function_folder_when_loading_its_handler_then_it_runs_without_touching_sys_path(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "functions" / "greeter"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class Greeting:\n"
        "    name: str\n"
        "def lambda_handler(event, context):\n"
        "    return {'hello': Greeting(event['name']).name, 'module': __name__}\n",
        encoding="utf-8",
    )
    path_before = list(sys.path)

    handler = load_handler("functions/greeter", "app.lambda_handler", root=tmp_path)
    answer = handler({"name": "Ada"}, LambdaContext("Greeter"))

    assert answer["hello"] == "Ada"
    assert answer["module"].startswith("lambda_functions.greeter.app")
    assert load_handler("functions/greeter/", "app.lambda_handler", root=tmp_path) is handler
    assert sys.path == path_before


def test_given_a_missing_function_folder_when_loading_then_the_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"functions/absent/app\.py"):
        load_handler("functions/absent", "app.lambda_handler", root=tmp_path)
