"""The support console's static files, served by the local mode at `/console/` (issue #10).

The files under `console/` are served as they are (no build step), with the same strict
Content-Security-Policy CloudFront adds in AWS, so a browser test would catch an inline script
or a call to another origin. `/console/config.json` is not a file: the local server writes it,
telling the page it runs against the development identity scheme and that the API is on the
same origin (in AWS, `scripts/deploy_console.py` uploads one naming Cognito and the API).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devtools import REPO_ROOT
from devtools.identity import ROLES

__all__ = ["CONSOLE_DIR", "CONSOLE_PREFIX", "ConsoleFile", "local_config", "serve_console"]

CONSOLE_DIR = REPO_ROOT / "console"
CONSOLE_PREFIX = "/console"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# The policy CloudFront's response headers policy sets in AWS, with the API and Cognito on this
# origin: no inline script or style, nothing loaded or called anywhere else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-cache"),
)


@dataclass(frozen=True)
class ConsoleFile:
    """What the server answers for a path under `/console`: a status, headers and a body."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def local_config() -> dict[str, object]:
    """The page's `config.json` in the local mode: the development identity, the API here."""
    return {"mode": "local", "apiUrl": "", "roles": list(ROLES)}


def serve_console(
    method: str, path: str, directory: Path = CONSOLE_DIR, config: Mapping[str, object] | None = None
) -> ConsoleFile:
    """The answer to `method path` (a path starting with `/console`): a file of `directory`,
    the generated `config.json` (`config`, by default the local mode's), a redirect of `/console`
    to `/console/`, 404 or 405."""
    if method not in ("GET", "HEAD"):
        return _refused(405, "method_not_allowed", "the console's files are read with GET", ("Allow", "GET"))
    if path == CONSOLE_PREFIX:
        return ConsoleFile(302, headers=[("Location", f"{CONSOLE_PREFIX}/")])
    relative = path[len(CONSOLE_PREFIX) + 1 :] or "index.html"
    if relative == "config.json":
        body = json.dumps(local_config() if config is None else dict(config), indent=2).encode("utf-8")
        return ConsoleFile(200, body, [("Content-Type", CONTENT_TYPES[".json"]), *SECURITY_HEADERS])
    root = directory.resolve()
    try:
        target = (root / relative).resolve()
    except (OSError, ValueError):  # a NUL byte, a name too long: no such file
        return _refused(404, "not_found", f"no console file {path}")
    # Nothing outside the folder (`..`, symlinks), no hidden files, only the types listed above.
    if (
        not target.is_relative_to(root)
        or any(part.startswith(".") for part in target.relative_to(root).parts)
        or target.suffix not in CONTENT_TYPES
        or not target.is_file()
    ):
        return _refused(404, "not_found", f"no console file {path}")
    headers = [("Content-Type", CONTENT_TYPES[target.suffix]), *SECURITY_HEADERS]
    return ConsoleFile(200, target.read_bytes(), headers)


def _refused(status: int, code: str, message: str, *extra: tuple[str, str]) -> ConsoleFile:
    body = json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")
    return ConsoleFile(status, body, [("Content-Type", "application/json"), *extra])
