"""The local mode serves the support console's files at /console/ (devtools.console), and nothing
else from the disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.console import CONTENT_SECURITY_POLICY, serve_console
from devtools.local import LocalApp


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    console = tmp_path / "console"
    (console / "js").mkdir(parents=True)
    (console / "index.html").write_text("<!doctype html><title>console</title>")
    (console / "js" / "main.js").write_text("export const x = 1;")
    (console / ".env").write_text("SECRET=1")
    (console / "notes.txt").write_text("not served")
    (tmp_path / "secret.html").write_text("outside")
    return console


def test_the_page_and_its_modules_are_served_with_their_type_and_the_security_headers(folder: Path) -> None:
    page = serve_console("GET", "/console/", folder)
    module = serve_console("GET", "/console/js/main.js", folder)

    assert (page.status, page.body) == (200, b"<!doctype html><title>console</title>")
    headers = dict(page.headers)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert dict(module.headers)["Content-Type"] == "text/javascript; charset=utf-8"


def test_the_config_says_local_mode_with_the_api_on_the_same_origin(folder: Path) -> None:
    answer = serve_console("GET", "/console/config.json", folder)

    assert answer.status == 200
    assert json.loads(answer.body) == {
        "mode": "local",
        "apiUrl": "",
        "roles": ["member", "partner", "support", "finance"],
    }


@pytest.mark.parametrize(
    "path",
    [
        "/console/../secret.html",
        "/console/js/../../secret.html",
        "/console/.env",
        "/console/notes.txt",
        "/console/missing.js",
        "/console/js",
        "/console/%2e%2e/secret.html",
        "/console/..%2fsecret.html",
        "/console//etc/passwd",
        "/console/index.html\x00.js",
    ],
)
def test_nothing_outside_the_console_hidden_or_of_another_type_is_served(folder: Path, path: str) -> None:
    assert serve_console("GET", path, folder).status == 404


def test_console_without_a_slash_redirects_and_writes_are_refused(folder: Path) -> None:
    assert serve_console("GET", "/console", folder).headers == [("Location", "/console/")]
    refused = serve_console("POST", "/console/index.html", folder)
    assert (refused.status, dict(refused.headers)["Allow"]) == (405, "GET")


def test_the_local_app_routes_console_paths_to_the_files_before_the_template_routes() -> None:
    template = {"Resources": {}}
    app = LocalApp(template)
    try:
        answer = app.handle("GET", "/console/config.json")
        assert answer.status == 200 and json.loads(answer.body)["mode"] == "local"
        assert app.handle("GET", "/console/index.html").status == 200
        assert app.handle("GET", "/consoles").status == 404
    finally:
        app.close()
