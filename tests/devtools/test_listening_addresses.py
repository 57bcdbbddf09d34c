"""What the local mode listens on (issue #6, docs/security.md "Local mode").

The local HTTP server and moto listen on 127.0.0.1 only. DynamoDB Local has no host option and
listens on every interface: the runner keeps browsers of other origins out (`-cors`), and clients
reach it on the loopback address; docs/security.md says what remains and what to do about it.
"""

from __future__ import annotations

import inspect
import ipaddress
import socket
from pathlib import Path

import pytest

from devtools import local
from devtools.dynamodb_local import DynamoDBLocal, java_available
from devtools.local import LocalApp, make_server
from devtools.template import load_template

TEMPLATE = """\
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/fn/
      Handler: app.handler
"""


def test_the_local_server_listens_on_the_loopback_address_by_default(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    app = LocalApp(load_template(tmp_path / "template.yaml"), root=tmp_path, emails=lambda: [])
    server = make_server(app, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert server.socket.family == socket.AF_INET
    finally:
        server.server_close()
        app.close()


def test_the_command_line_offers_no_other_address() -> None:
    source = inspect.getsource(local._parse_arguments)
    assert "--host" not in source
    assert "--bind" not in source


def test_moto_listens_on_the_loopback_address() -> None:
    server, endpoint = local._start_moto()
    try:
        host = endpoint.removeprefix("http://").rsplit(":", 1)[0]
        assert ipaddress.ip_address(host).is_loopback
    finally:
        server.stop()


@pytest.mark.skipif(not java_available(), reason="DynamoDB Local needs Java")
def test_dynamodb_local_is_reached_on_loopback_and_refuses_other_web_origins() -> None:
    with DynamoDBLocal() as engine:
        assert engine.endpoint == f"http://127.0.0.1:{engine.port}"
        assert engine._process is not None
        command = list(engine._process.args)
        assert command[command.index("-cors") + 1] == "http://127.0.0.1"
