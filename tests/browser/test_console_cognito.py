"""The console's AWS sign-in (Cognito's hosted pages, authorization code + PKCE) in a real Chromium,
against a stand-in for Cognito and the API on one local origin: the code exchanged with the verifier
of the challenge sent, the state checked, the access token sent to the API as a bearer token, kept
in the tab's session storage only, and dropped (with Cognito's session) on sign-out."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from devtools.console import serve_console
from devtools.dynamodb_local import free_port

expect = pytest.importorskip("playwright.sync_api").expect
CLIENT_ID = "console-client-id"
USERS = {"support": "agent@example.com", "member": "member@example.com"}


@dataclass
class FakeCognito:
    """Cognito's /oauth2/authorize, /oauth2/token and /logout, and the API's GET /claims (support
    tokens get the queue, others 403), serving the console with a `config.json` of the AWS kind."""

    base: str
    user: str = "support"
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    api_authorizations: list[str] = field(default_factory=list)
    logouts: list[dict[str, list[str]]] = field(default_factory=list)

    @property
    def config(self) -> dict[str, object]:
        cognito = {"domain": self.base, "clientId": CLIENT_ID, "redirectUri": f"{self.base}/console/"}
        return {"mode": "cognito", "apiUrl": self.base, "cognito": {**cognito, "scopes": "openid email"}}

    def authorize(self, query: dict[str, list[str]]) -> str:
        """Where the hosted sign-in sends the browser back (the user signed in as `self.user`)."""
        assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]
        assert query["code_challenge_method"] == ["S256"] and query["scope"] == ["openid email"]
        code = secrets.token_urlsafe(12)
        self.codes[code] = {
            "challenge": query["code_challenge"][0],
            "redirect": query["redirect_uri"][0],
            "user": self.user,
        }
        return f"{query['redirect_uri'][0]}?{urlencode({'code': code, 'state': query['state'][0]})}"

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("client_id") != CLIENT_ID
            or form.get("redirect_uri") != grant["redirect"]
            or challenge != grant["challenge"]
        ):
            return 400, {"error": "invalid_grant"}
        claims = base64.urlsafe_b64encode(json.dumps({"email": USERS[grant["user"]]}).encode()).decode()
        id_token = f"eyJhbGciOiJub25lIn0.{claims.rstrip('=')}.signature"
        return 200, {
            "access_token": f"access-{grant['user']}",
            "id_token": id_token,
            "expires_in": 3600,
            "token_type": "Bearer",
        }

    def claims(self, authorization: str) -> tuple[int, dict[str, Any]]:
        self.api_authorizations.append(authorization)
        if authorization == "Bearer access-support":
            return 200, {"status": "pending", "claims": [], "nextCursor": None}
        if authorization == "Bearer access-member":
            return 403, {"error": {"code": "forbidden", "message": "support only"}}
        return 401, {"message": "Unauthorized"}


def _handler(fake: FakeCognito) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: dict[str, Any]) -> None:
            self._answer(status, json.dumps(document).encode(), [("Content-Type", "application/json")])

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path.startswith("/console"):
                served = serve_console("GET", url.path, config=fake.config)
                self._answer(served.status, served.body, served.headers)
            elif url.path == "/oauth2/authorize":
                self._answer(302, b"", [("Location", fake.authorize(query))])
            elif url.path == "/logout":
                fake.logouts.append(query)
                self._answer(302, b"", [("Location", query["logout_uri"][0])])
            elif url.path == "/claims":
                self._json(*fake.claims(self.headers.get("Authorization", "")))
            else:
                self._json(404, {"message": "Not Found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlsplit(self.path).path == "/oauth2/token":
                self._json(*fake.token(form))
            else:
                self._json(404, {"message": "Not Found"})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def cognito() -> Iterator[FakeCognito]:
    port = free_port()
    fake = FakeCognito(f"http://127.0.0.1:{port}")
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser: Any, cognito: FakeCognito) -> Iterator[Any]:
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(10_000)
    errors: list[str] = []
    opened = context.new_page()
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(f"{cognito.base}/console/")
    yield opened
    context.close()
    assert errors == []


def test_a_support_agent_signs_in_through_cognito_with_pkce_and_calls_the_api_with_the_token(
    page: Any, cognito: FakeCognito
) -> None:
    page.get_by_role("button", name="Sign in with Cognito").click()

    expect(page.get_by_role("heading", name="Pending claims")).to_be_visible()
    expect(page.get_by_text("No pending claim.")).to_be_visible()
    expect(page.locator("#who")).to_have_text("Signed in as agent@example.com")
    # the code was exchanged once, with the verifier of the challenge sent (the stand-in checks it)
    (request,) = cognito.token_requests
    assert request["redirect_uri"] == f"{cognito.base}/console/"
    assert set(cognito.api_authorizations) == {"Bearer access-support"}
    # the code and state are gone from the address bar; the token is in this tab's storage only
    assert "code=" not in page.url and "state=" not in page.url
    assert "access-support" in page.evaluate("sessionStorage.getItem('console.session')")
    assert page.evaluate("localStorage.length") == 0


def test_a_user_of_the_pool_outside_the_support_group_is_refused(page: Any, cognito: FakeCognito) -> None:
    cognito.user = "member"

    page.get_by_role("button", name="Sign in with Cognito").click()

    expect(page.locator("#signin-message")).to_have_text(
        "This identity is not a support agent: the console is for support only."
    )
    assert page.evaluate("sessionStorage.getItem('console.session')") is None
    expect(page.get_by_role("navigation")).to_be_hidden()


def test_signing_out_forgets_the_token_and_ends_the_cognito_session(page: Any, cognito: FakeCognito) -> None:
    page.get_by_role("button", name="Sign in with Cognito").click()
    expect(page.get_by_role("heading", name="Pending claims")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("button", name="Sign in with Cognito")).to_be_visible()
    (logout,) = cognito.logouts
    assert logout == {"client_id": [CLIENT_ID], "logout_uri": [f"{cognito.base}/console/"]}
    assert page.evaluate("sessionStorage.getItem('console.session')") is None


def test_signing_out_after_the_token_expired_still_ends_the_cognito_session(
    page: Any, cognito: FakeCognito
) -> None:
    # Given an agent signed in whose access token expired while the page stayed open
    page.get_by_role("button", name="Sign in with Cognito").click()
    expect(page.get_by_role("heading", name="Pending claims")).to_be_visible()
    page.evaluate(
        "const s = JSON.parse(sessionStorage.getItem('console.session'));"
        "s.expiresAt = Date.now() - 1000; sessionStorage.setItem('console.session', JSON.stringify(s));"
    )

    # When the agent signs out
    page.get_by_role("button", name="Sign out").click()

    # Then Cognito's session is ended too: the next sign-in asks for the password again
    expect(page.get_by_role("button", name="Sign in with Cognito")).to_be_visible()
    assert len(cognito.logouts) == 1
    assert page.evaluate("sessionStorage.getItem('console.session')") is None


def test_a_callback_the_console_did_not_start_is_refused_without_asking_for_a_token(
    page: Any, cognito: FakeCognito
) -> None:
    # A link planted by someone else: a code of theirs, a state this tab never sent
    cognito.codes["planted"] = {"challenge": "x", "redirect": f"{cognito.base}/console/", "user": "support"}

    page.goto(f"{cognito.base}/console/?code=planted&state=forged")

    expect(page.locator("#signin-message")).to_have_text(
        "Sign-in failed: this answer does not come from a sign-in started in this tab. Sign in again."
    )
    assert cognito.token_requests == []
    assert "code=" not in page.url


def test_an_error_callback_the_console_did_not_start_shows_none_of_its_text(page: Any) -> None:
    # A planted link with an OAuth error of someone else's making (no state this tab sent)
    page.goto(page.url + "?error=access_denied&error_description=Call+0800+000+000+to+unlock&state=forged")

    expect(page.locator("#signin-message")).to_have_text(
        "Sign-in failed: this answer does not come from a sign-in started in this tab. Sign in again."
    )
    expect(page.locator("body")).not_to_contain_text("0800")


def test_a_failed_sign_in_is_told_in_the_agents_language(browser: Any, cognito: FakeCognito) -> None:
    # Given a French browser, sent back with a state this tab never sent
    context = browser.new_context(locale="fr-FR")
    try:
        page = context.new_page()
        page.goto(f"{cognito.base}/console/?code=planted&state=forged")

        # Then the refusal is in French, like the rest of the page
        expect(page.locator("#signin-message")).to_have_text(
            "La connexion a échoué : cette réponse ne vient pas d'une connexion commencée dans cet onglet. "
            "Reconnectez-vous."
        )
    finally:
        context.close()
