"""The support console in a real Chromium against the real local mode (issue #10).

One local mode (`python -m devtools.local --in-memory`, demo data seeded) and one browser per
session; each test opens fresh browser contexts (an agent each) and seeds what it needs through
the API, as a partner or a member would. Chromium is the distribution's (`/usr/bin/chromium`,
installed by `make test` when missing): Playwright drives it, it downloads no browser.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devtools import REPO_ROOT
from tests.local_mode import running_local_mode

CHROMIUM = Path(os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium"))
# The README's screenshots (docs/console) are written by `make screenshots`; an ordinary run writes
# them under .local, so that running the tests leaves the working tree as it was.
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", REPO_ROOT / ".local" / "screenshots"))
PARIS = ZoneInfo("Europe/Paris")
PARTNER = "Dev partner:demo-pos"


@dataclass
class LocalConsole:
    """The running local mode: its base URL, and the API as a script calls it."""

    base: str
    log: Path

    @property
    def console(self) -> str:
        return f"{self.base}/console/"

    def call(
        self, method: str, path: str, auth: str, body: dict[str, Any] | None = None, **extra: str
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": auth, **({"Content-Type": "application/json"} if data else {})}
        headers.update({name.replace("_", "-"): value for name, value in extra.items()})
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=20) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as answer:
            return answer.code, json.loads(answer.read() or b"null")

    def ok(self, method: str, path: str, auth: str, body: dict[str, Any] | None = None, **extra: str) -> Any:
        status, answer = self.call(method, path, auth, body, **extra)
        assert status in (200, 201), f"{method} {path} answered {status}: {answer}"
        return answer

    # -- seeding through the API, as the partner and the members would

    def enrol(self, name: str | None = None, *, prefix: str = "m") -> str:
        member_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
        profile = {"email": f"{member_id}@example.com", "locale": "en", "emailOptIn": False}
        if name is not None:
            profile["name"] = name
        self.ok("PUT", f"/members/{member_id}", PARTNER, profile)
        return member_id

    def earn(self, member_id: str, amount: str, days_ago: int) -> dict[str, Any]:
        body = {
            "transactionId": f"tx-{uuid.uuid4().hex[:12]}",
            "amount": amount,
            "currency": "EUR",
            "occurredAt": instant(days_ago, 11),
            "channel": "store",
        }
        return dict(self.ok("POST", f"/members/{member_id}/earn", PARTNER, body))

    def file_claim(self, member_id: str, amount: str = "42.50", days_ago: int = 10) -> dict[str, Any]:
        body = {
            "transactionId": f"missing-{uuid.uuid4().hex[:10]}",
            "occurredAt": instant(days_ago, 17),
            "amount": amount,
            "currency": "EUR",
            "store": "Lyon Part-Dieu",
            "receiptRef": "R-1001",
        }
        claim = dict(self.ok("POST", f"/members/{member_id}/claims", f"Dev member:{member_id}", body))
        assert claim["status"] == "pending", claim
        return claim

    def claim(self, claim_id: str) -> dict[str, Any]:
        return dict(self.ok("GET", f"/claims/{claim_id}", "Dev support:auditor"))

    def available(self, member_id: str) -> int:
        return int(self.ok("GET", f"/members/{member_id}/balance", "Dev support:auditor")["available"])


def instant(days_ago: int, hour: int) -> str:
    day = (datetime.now(PARIS) - timedelta(days=days_ago)).date()
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=PARIS).isoformat()


@pytest.fixture(scope="session")
def local_console() -> Iterator[LocalConsole]:
    with running_local_mode("console") as (base, log):
        yield LocalConsole(base, log)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(
            f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium chromium-driver)"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


# Recorded in every page before the console's script runs: a policy violation (an inline handler
# or script blocked by the Content-Security-Policy) would mean data reached the page as markup.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@dataclass
class Agents:
    """Opens pages of the console, each in its own browser context (its own session storage),
    and fails the test on any script error the page raised."""

    browser: Any
    app: LocalConsole
    contexts: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, *, locale: str = "en-US", path: str = "", timezone: str = "UTC") -> Any:
        context = self.browser.new_context(
            locale=locale, timezone_id=timezone, viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(10_000)
        context.add_init_script(WATCH_VIOLATIONS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.goto(self.app.console + path)
        return page

    def signed_in(
        self, agent: str = "agent-1", *, locale: str = "en-US", path: str = "", timezone: str = "UTC"
    ) -> Any:
        page = self.open(locale=locale, path=path, timezone=timezone)
        sign_in(page, "support", agent)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def sign_in(page: Any, role: str, subject: str) -> None:
    page.locator("#signin-role").select_option(role)
    page.locator("#signin-id").fill(subject)
    page.locator("#signin-id").press("Enter")


@pytest.fixture
def agents(browser: Any, local_console: LocalConsole) -> Iterator[Agents]:
    opened = Agents(browser, local_console)
    yield opened
    opened.close()
    assert opened.errors == []


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Any, str], None]:
    """Saves a screen of the console as <name>.png in `SCREENSHOTS` (docs/console with `make
    screenshots`: the README shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled")

    return save


__all__ = ["PARTNER", "Agents", "LocalConsole", "sign_in"]
