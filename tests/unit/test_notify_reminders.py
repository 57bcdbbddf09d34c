"""The expiry reminder: both locales, both parts, the dates sorted, member data escaped, and the
one-click unsubscribe headers (RFC 8058) on reminders and on nothing else."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from loyalty.notify import (
    Email,
    Program,
    Recipient,
    claim_approved,
    claim_matched,
    claim_rejected,
    compose,
    format_date,
    make_token,
    points_expiring,
    read_token,
    to_mime,
    unsubscribe_url,
)
from loyalty.notify.messages import Paragraph

NNBSP = "\u202f"
NBSP = "\u00a0"
PROGRAM = Program(name="Club Étoile", links_base_url="https://loyalty.example.com/account")
SECRET = "s" * 48
MEMBER = "mem_01JD3V8Q5QZ4G7H2K9M3N6P8R0"
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
TOKEN = make_token(MEMBER, secret=SECRET, now=NOW)
URL = unsubscribe_url(PROGRAM.links_base_url, TOKEN)
AS_OF = date(2026, 11, 25)
SCRIPT = "<script>alert(1)</script>"
ONE_CLICK = "List-Unsubscribe=One-Click"


def reminder(recipient: Recipient, **overrides: Any) -> Email:
    values: dict[str, Any] = {
        "rows": [(date(2026, 12, 31), 300), (date(2026, 11, 30), 1250)],
        "balance": 12345,
        "unsubscribe_url": URL,
        "as_of": AS_OF,
    }
    return points_expiring(recipient, PROGRAM, **(values | overrides))


def raw_of(message: Email) -> bytes:
    return to_mime(
        message,
        sender_address="no-reply@loyalty.example.com",
        sender_name="Club Étoile",
        date=NOW,
    )


def parsed(message: Email) -> EmailMessage:
    result = email.message_from_bytes(raw_of(message), policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    return result


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# ---- content, in both languages


def test_an_english_reminder_lists_points_by_date_with_the_total_and_the_balance() -> None:
    message = reminder(Recipient("ann@example.com", "Ann", "en"))

    assert message.kind == "points_expiring"
    assert message.subject == "Some of your points will expire soon"
    assert message.text.startswith("Hello Ann,\n\nSome points on your Club Étoile account will expire soon.")
    assert (
        "Until 30 November 2026: 1,250 points\nUntil 31 December 2026: 300 points\nIn all: 1,550 points"
        in message.text
    )
    assert "Your balance on 25 November 2026: 12,345 points" in message.text
    assert f"Use my points: {PROGRAM.link()}" in message.text


def test_a_french_reminder_uses_french_words_numbers_dates_and_punctuation() -> None:
    message = reminder(
        Recipient("anne@example.com", "Anne", "fr-CA"),
        rows=[(date(2027, 1, 1), 1), (date(2026, 12, 1), 1250)],
    )

    assert message.locale == "fr"
    assert message.subject == "Une partie de vos points va bientôt expirer"
    assert message.text.startswith("Bonjour Anne,\n\nCertains points de votre compte Club Étoile")
    assert f"Jusqu'au 1er décembre 2026{NBSP}: 1{NNBSP}250 points" in message.text
    assert f"Jusqu'au 1er janvier 2027{NBSP}: 1 point\n" in message.text
    assert f"Au total{NBSP}: 1{NNBSP}251 points" in message.text
    assert f"Votre solde au 25 novembre 2026{NBSP}: 12{NNBSP}345 points" in message.text
    assert "Jusqu&#x27;au 1er décembre 2026" in message.html
    assert '<html lang="fr">' in message.html


def test_dates_are_listed_in_order_whatever_order_the_rows_come_in() -> None:
    days = [date(2026, 12, 15), date(2026, 11, 26), date(2027, 2, 1), date(2026, 12, 1)]
    message = reminder(Recipient("ann@example.com", "Ann", "en"), rows=[(day, 10) for day in days])

    for rendered in (message.text, message.html):
        positions = [rendered.index(f"Until {format_date(day, 'en')}") for day in sorted(days)]
        assert positions == sorted(positions)


def test_points_of_the_same_day_are_added_up_into_one_line() -> None:
    message = reminder(
        Recipient("ann@example.com", "Ann", "en"),
        rows=[(date(2026, 11, 30), 100), (date(2026, 11, 30), 50)],
    )

    assert message.text.count("Until 30 November 2026") == 1
    assert "Until 30 November 2026: 150 points" in message.text
    assert "In all" not in message.text  # one date: the line is the total


def test_points_expiring_today_can_still_be_reminded() -> None:
    message = reminder(Recipient("ann@example.com", "Ann", "en"), rows=[(AS_OF, 5)])

    assert "Until 25 November 2026: 5 points" in message.text


def test_both_parts_say_the_same_things() -> None:
    message = reminder(Recipient("ann@example.com", "Ann", "en"))

    for fact in ("Until 30 November 2026", "1,250 points", "1,550 points", "12,345 points", "Use my points"):
        assert fact in message.text and fact in message.html


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([], ValueError),
        ([(date(2026, 11, 30), 0)], ValueError),
        ([(date(2026, 11, 30), -5)], ValueError),
        ([(date(2026, 11, 30), True)], ValueError),
        ([(date(2026, 11, 24), 10)], ValueError),  # already past
        ([(datetime(2026, 11, 30, tzinfo=UTC), 10)], TypeError),
    ],
)
def test_a_reminder_with_nothing_to_remind_or_a_wrong_row_is_refused(
    rows: list[tuple[date, int]], problem: type[Exception]
) -> None:
    with pytest.raises(problem):
        reminder(Recipient("ann@example.com", "Ann", "en"), rows=rows)


def test_the_as_of_date_is_a_calendar_date() -> None:
    with pytest.raises(TypeError):
        reminder(Recipient("ann@example.com", "Ann", "en"), as_of=NOW)


# ---- escaping


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_a_hostile_name_is_inert_text_in_html_and_cannot_add_a_header(locale: str) -> None:
    hostile = f'{SCRIPT}\r\nBcc: x@example.com "<img src=x onerror=alert(1)>"'
    message = reminder(Recipient("eve@example.com", hostile, locale))

    assert "<script" not in message.html and "<img" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in message.html
    mime = parsed(message)
    assert mime["Bcc"] is None and mime["Cc"] is None
    [recipient] = mime["To"].addresses
    assert recipient.addr_spec == "eve@example.com"
    assert "Bcc" not in message.subject and "script" not in message.subject


def test_a_hostile_program_name_is_escaped_too() -> None:
    program = Program(name=SCRIPT, links_base_url=PROGRAM.links_base_url)
    message = points_expiring(
        Recipient("ann@example.com", "Ann", "en"),
        program,
        rows=[(AS_OF, 1)],
        balance=1,
        unsubscribe_url=URL,
        as_of=AS_OF,
    )

    assert "<script" not in message.html


# ---- the unsubscribe link and the one-click headers


def test_the_body_links_to_the_unsubscribe_page_in_both_parts() -> None:
    english = reminder(Recipient("ann@example.com", "Ann", "en"))
    french = reminder(Recipient("anne@example.com", "Anne", "fr"))

    assert f"To stop receiving reminders about expiring points, unsubscribe: {URL}" in english.text
    assert f'<a href="{URL}" style="color:#666">unsubscribe</a>.' in english.html
    assert f"désabonnez-vous{NBSP}: {URL}" in french.text
    assert f'<a href="{URL}" style="color:#666">désabonnez-vous</a>.' in french.html


def test_a_reminder_carries_both_one_click_headers_that_parse_back() -> None:
    message = parsed(reminder(Recipient("ann@example.com", "Ann", "fr")))

    assert message["List-Unsubscribe"] == f"<{URL}>"
    assert message["List-Unsubscribe-Post"] == ONE_CLICK
    assert message.get_all("List-Unsubscribe") == [f"<{URL}>"]
    assert message.get_all("List-Unsubscribe-Post") == [ONE_CLICK]
    assert message["Subject"] == "Une partie de vos points va bientôt expirer"
    text, html = parts(message)
    assert URL in text and URL in html


def test_the_token_in_the_header_names_the_member() -> None:
    message = parsed(reminder(Recipient("ann@example.com", "Ann", "en")))

    link = str(message["List-Unsubscribe"]).strip("<>")
    token = link.split("?token=", 1)[1]
    assert link.startswith("https://loyalty.example.com/account/unsubscribe?token=")
    assert read_token(token, secret=SECRET, now=NOW + timedelta(days=30)) == MEMBER


def test_a_long_unsubscribe_url_stays_on_one_unencoded_header_line() -> None:
    long_member = "m" * 128
    token = make_token(long_member, secret=SECRET, now=NOW)
    url = unsubscribe_url("https://loyalty.example.com/" + "a" * 60, token)
    raw = raw_of(reminder(Recipient("ann@example.com", "Ann", "en"), unsubscribe_url=url))

    [line] = [line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:")]
    assert line == f"List-Unsubscribe: <{url}>".encode()
    assert b"=?" not in line
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_the_raw_reminder_is_seven_bit_with_crlf_lines() -> None:
    raw = raw_of(reminder(Recipient("anne@example.com", "Anne", "fr")))

    assert raw.isascii()
    assert all(b"\n" not in line for line in raw.split(b"\r\n"))


@pytest.mark.parametrize(
    "build",
    [
        lambda who: claim_approved(
            who,
            PROGRAM,
            points=10,
            purchase_reference="TX",
            purchase_date=AS_OF,
            balance=10,
            expires_on=None,
        ),
        lambda who: claim_rejected(who, PROGRAM, reason="r", purchase_reference="TX"),
        lambda who: claim_matched(who, PROGRAM, purchase_reference="TX"),
    ],
    ids=["approved", "rejected", "matched"],
)
def test_transactional_claim_emails_carry_no_unsubscribe_header_or_link(build: Any) -> None:
    message: Email = build(Recipient("ann@example.com", "Ann", "en"))
    mime = parsed(message)

    assert message.unsubscribe_url is None
    assert mime["List-Unsubscribe"] is None and mime["List-Unsubscribe-Post"] is None
    assert "unsubscribe" not in message.text.lower() and "unsubscribe" not in message.html.lower()


@pytest.mark.parametrize(
    "url",
    [
        "https://loyalty.example.com/unsubscribe?token=t\r\nBcc: x@example.com",
        "https://loyalty.example.com/unsubscribe?token=t\nX: y",
        "https://loyalty.example.com/unsubscribe?token=t>, <mailto:x@example.com",
        "https://loyalty.example.com/unsubscribe?token=a b",
        'https://loyalty.example.com/"onmouseover="alert(1)',
        "https://loyalty.exämple.com/unsubscribe",
        "javascript:alert(1)",
        "mailto:unsubscribe@example.com",
        "/unsubscribe?token=t",
        "https:///unsubscribe",
        "https://[::1/unsubscribe",
        "https://loyalty.example.com/" + "a" * 900,
    ],
)
def test_an_unsubscribe_url_that_could_inject_or_is_not_absolute_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        reminder(Recipient("ann@example.com", "Ann", "en"), unsubscribe_url=url)
    with pytest.raises(ValueError):
        Email(
            kind="k",
            to_address="ann@example.com",
            to_name="Ann",
            subject="s",
            text="t",
            html="h",
            locale="en",
            unsubscribe_url=url,
        )


def test_a_local_mode_http_link_is_accepted() -> None:
    url = unsubscribe_url("http://localhost:3000", TOKEN)
    message = parsed(reminder(Recipient("ann@example.com", "Ann", "en"), unsubscribe_url=url))

    assert message["List-Unsubscribe"] == f"<{url}>"


def test_any_composed_email_given_an_unsubscribe_url_gets_the_link_and_the_headers_together() -> None:
    message = compose(
        "newsletter",
        Recipient("ann@example.com", "Ann", "en"),
        PROGRAM,
        subject="News",
        blocks=[Paragraph("Hi")],
        unsubscribe_url=URL,
    )

    assert URL in message.text and URL in message.html
    assert parsed(message)["List-Unsubscribe-Post"] == ONE_CLICK
