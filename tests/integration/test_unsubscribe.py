"""GET/POST /unsubscribe?token=…: the unsubscribe link of the emails, public, on DynamoDB Local (issue #8).

The GET page changes nothing (mail scanners fetch links); the POST (RFC 8058 one-click) opts the
member out of email, idempotently; a bad token gets 400 `invalid_token`, an expired one 410
`expired_token`, and neither changes anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.identity import Identity
from loyalty.notify.unsubscribe import make_token
from tests.integration.conftest import OLD_UNSUBSCRIBE_SECRET, UNSUBSCRIBE_SECRET, Api, ApiResponse

FORM = {"content-type": "application/x-www-form-urlencoded"}
ONE_CLICK = "List-Unsubscribe=One-Click"


def token_for(member_id: str, *, secret: str = UNSUBSCRIBE_SECRET, issued: datetime | None = None) -> str:
    return make_token(member_id, secret=secret, now=issued or datetime.now(UTC) - timedelta(minutes=1))


def page(api: Api, token: str | None, headers: dict[str, str] | None = None) -> ApiResponse:
    return api.call("GET", "/unsubscribe", query=None if token is None else {"token": token}, headers=headers)


def post(api: Api, token: str | None, body: str | None = ONE_CLICK, **headers: str) -> ApiResponse:
    query = None if token is None else {"token": token}
    return api.call("POST", "/unsubscribe", query=query, body=body, headers={**FORM, **headers})


@pytest.fixture
def subscribed(api: Api, member_id: str) -> str:
    """An enrolled member who chose to receive email."""
    assert api.enrol(member_id, emailOptIn=True).status == 201
    return member_id


def profile(table: Any, member_id: str) -> dict[str, Any]:
    return dict(table.get_item(Key={"pk": f"MEMBER#{member_id}", "sk": "PROFILE"})["Item"])


def test_the_page_shows_a_form_that_posts_and_changes_nothing(
    api: Api, subscribed: str, member_items: Any
) -> None:
    # Given an subscribed member who receives email
    before = member_items(subscribed)
    token = token_for(subscribed)

    # When the link is fetched (by the member, or by a mail scanner), twice
    responses = [page(api, token), page(api, token)]

    # Then a page with a form posting the same token is shown, and nothing changed
    for response in responses:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert '<form method="post"' in response.body
        assert f'action="?token={token}"' in response.body
        assert response.headers["Cache-Control"] == "no-store"
    assert member_items(subscribed) == before


def test_one_click_post_opts_the_member_out_and_records_when_and_how(
    api: Api, subscribed: str, table: Any
) -> None:
    # Given an subscribed member who receives email
    assert profile(table, subscribed)["emailOptIn"] is True
    started = datetime.now(UTC) - timedelta(seconds=1)

    # When the mailbox provider posts the RFC 8058 one-click body
    response = post(api, token_for(subscribed))

    # Then the member no longer receives email, and the profile says when and how it opted out
    assert response.status == 200, response.body
    assert response.headers["Content-Type"].startswith("text/html")
    item = profile(table, subscribed)
    assert item["emailOptIn"] is False
    assert item["optOutSource"] == "one-click"
    assert datetime.fromisoformat(item["optedOutAt"]) >= started
    read = api.call("GET", f"/members/{subscribed}", identity=Identity.member(subscribed))
    assert read.body["emailOptIn"] is False
    # and the rest of the profile is as it was
    assert item["email"] == f"{subscribed}@example.com" and item["name"] == "Test Member"


def test_a_second_post_is_a_success_that_keeps_the_first_record(
    api: Api, subscribed: str, table: Any
) -> None:
    token = token_for(subscribed)
    assert post(api, token).status == 200
    first = profile(table, subscribed)

    again = post(api, token)

    assert again.status == 200
    assert profile(table, subscribed) == first


@pytest.mark.parametrize("body", [None, "", ONE_CLICK, "something=else"])
def test_the_body_is_not_read_an_empty_one_works_too(
    api: Api, subscribed: str, table: Any, body: str | None
) -> None:
    assert post(api, token_for(subscribed), body=body).status == 200
    assert profile(table, subscribed)["emailOptIn"] is False


def test_a_json_content_type_or_none_works_too(api: Api, subscribed: str, table: Any) -> None:
    response = api.call("POST", "/unsubscribe", query={"token": token_for(subscribed)}, body="{")
    assert response.status == 200
    assert profile(table, subscribed)["emailOptIn"] is False


def test_an_expired_token_gets_410_and_changes_nothing(api: Api, subscribed: str, member_items: Any) -> None:
    # Given a link issued 91 days ago (tokens live 90 days)
    before = member_items(subscribed)
    token = token_for(subscribed, issued=datetime.now(UTC) - timedelta(days=91))

    # When it is opened or posted, Then 410 `expired_token` (a page for a browser) and nothing changed
    for response in (page(api, token), post(api, token)):
        assert response.status == 410 and response.error_code == "expired_token"
    browser = page(api, token, headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status == 410 and browser.headers["X-Error-Code"] == "expired_token"
    assert browser.headers["Content-Type"].startswith("text/html") and "<h1>" in browser.body
    assert member_items(subscribed) == before


def _tampered(token: str) -> str:
    head, _, tag = token.rpartition(".")
    return f"{head}.{('A' if tag[0] != 'A' else 'B')}{tag[1:]}"


def _other_member(token: str, member_id: str) -> str:
    other = token_for(f"{member_id}-other")
    version, issued, expires, _, tag = token.split(".")
    return ".".join((version, issued, expires, other.split(".")[3], tag))


@pytest.mark.parametrize(
    "bad",
    [
        "tampered tag",
        "another member under the same tag",
        "another secret",
        "unsupported version",
        "truncated",
        "missing",
        "empty",
        "huge",
        "unicode",
        "html",
    ],
)
def test_a_token_that_is_not_ours_gets_400_and_changes_nothing(
    api: Api, subscribed: str, member_items: Any, bad: str
) -> None:
    # Given an subscribed member and a link that was altered, forged or mangled
    before = member_items(subscribed)
    good = token_for(subscribed)
    token: str | None = {
        "tampered tag": _tampered(good),
        "another member under the same tag": _other_member(good, subscribed),
        "another secret": token_for(subscribed, secret="an-attacker-secret-0123456789abcdef"),
        "unsupported version": "2" + good[1:],
        "truncated": good[:-3],
        "missing": None,
        "empty": "",
        "huge": "1." + "A" * 100_000,
        "unicode": "é" * 60 + "." + "🙂" * 20,
        "html": '"><script>alert(1)</script>',
    }[bad]

    # When it is opened and posted, by a client of the API and by a browser
    html = {"accept": "text/html"}
    for response in (page(api, token), post(api, token)):
        # Then 400 `invalid_token`, the same for every reason, naming no secret
        assert response.status == 400, response.body
        assert response.error_code == "invalid_token"
        assert "secret" not in response.body["error"]["message"].lower()
    for response in (page(api, token, headers=html), post(api, token, **html)):
        # the same as a page, the token never echoed
        assert response.status == 400, response.body
        assert response.headers["X-Error-Code"] == "invalid_token"
        assert response.headers["Content-Type"].startswith("text/html")
        assert "<script>" not in response.body and (not token or token not in response.body)
        assert "secret" not in response.body.lower()
    # and nothing changed
    assert member_items(subscribed) == before


def test_a_token_of_a_retired_but_still_accepted_secret_works(api: Api, subscribed: str, table: Any) -> None:
    # Given a link signed with the previous key, still listed after the new one (rotation)
    token = token_for(subscribed, secret=OLD_UNSUBSCRIBE_SECRET)

    assert page(api, token).status == 200
    assert post(api, token).status == 200
    assert profile(table, subscribed)["emailOptIn"] is False


def test_a_genuine_token_of_an_unknown_member_gets_the_same_answer_and_creates_nothing(
    api: Api, member_id: str, member_items: Any
) -> None:
    token = token_for(member_id)  # never subscribed

    assert page(api, token).status == 200
    assert post(api, token).status == 200
    assert member_items(member_id) == []


def test_the_member_can_opt_in_again_later(api: Api, subscribed: str, table: Any) -> None:
    # Given a member who unsubscribed by the link
    assert post(api, token_for(subscribed)).status == 200

    # When it opts in again from its account
    body = {"email": f"{subscribed}@example.com", "locale": "en", "emailOptIn": True}
    response = api.call("PUT", f"/members/{subscribed}", identity=Identity.member(subscribed), body=body)

    # Then it receives email again; the record of its earlier opt-out stays
    assert response.status == 200 and response.body["emailOptIn"] is True
    item = profile(table, subscribed)
    assert item["emailOptIn"] is True and item["optOutSource"] == "one-click"
    # and a later link opts it out again
    assert post(api, token_for(subscribed)).status == 200
    assert profile(table, subscribed)["emailOptIn"] is False


def test_the_page_speaks_the_members_language_else_the_browsers(api: Api, member_id: str) -> None:
    assert api.enrol(member_id, locale="fr", emailOptIn=True).status == 201
    french = page(api, token_for(member_id), headers={"accept-language": "en-GB"})
    assert '<html lang="fr">' in french.body and "Me désinscrire" in french.body

    stranger = token_for(f"{member_id}-unknown")
    assert '<html lang="fr">' in page(api, stranger, headers={"accept-language": "de, fr;q=0.8"}).body
    assert '<html lang="en">' in page(api, stranger, headers={"accept-language": "fr;q=0, en"}).body
    assert '<html lang="en">' in page(api, stranger).body
    refused = page(api, "nope", headers={"accept-language": "fr-CA", "accept": "text/html"})
    assert refused.status == 400 and '<html lang="fr">' in refused.body


def test_no_identity_is_needed_and_none_changes_the_answer(api: Api, subscribed: str) -> None:
    token = token_for(subscribed)
    for identity in (None, Identity.member(f"{subscribed}-other"), Identity.support("agent-unsub")):
        assert api.call("GET", "/unsubscribe", identity=identity, query={"token": token}).status == 200
        assert api.call("GET", "/unsubscribe", identity=identity, query={"token": "x"}).status == 400
