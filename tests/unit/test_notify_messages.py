"""Claim-outcome emails: both locales, both parts, member data escaped and kept out of headers."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from loyalty.notify import (
    Email,
    EmailConfigurationError,
    InvalidRecipient,
    NotifyConfig,
    Program,
    Recipient,
    claim_approved,
    claim_matched,
    claim_rejected,
    format_date,
    format_number,
    format_points,
    pick_locale,
    to_mime,
)

NNBSP = "\u202f"
PROGRAM = Program(name="Club Étoile", links_base_url="https://loyalty.example.com/account")
HOSTILE_NAME = "Eve\r\nBcc: x@example.com"
SCRIPT = "<script>alert(1)</script>"


def approved(recipient: Recipient, **overrides: Any) -> Email:
    values: dict[str, Any] = {
        "points": 1250,
        "purchase_reference": "TX-42",
        "purchase_date": date(2026, 9, 3),
        "balance": 12345,
        "expires_on": date(2026, 11, 24),
    }
    return claim_approved(recipient, PROGRAM, **(values | overrides))


def parsed(message: Email, **kwargs: Any) -> EmailMessage:
    raw = to_mime(message, sender_address="no-reply@loyalty.example.com", sender_name="Club Étoile", **kwargs)
    result = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    return result


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# ---- formats


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        (1250, "en", "1,250"),
        (1250, "fr", f"1{NNBSP}250"),
        (1234567, "fr", f"1{NNBSP}234{NNBSP}567"),
        (999, "fr", "999"),
        (0, "en", "0"),
        (-1250, "en", "-1,250"),
    ],
)
def test_numbers_are_grouped_as_the_locale_writes_them(value: int, locale: Any, expected: str) -> None:
    assert format_number(value, locale) == expected


def test_points_take_the_plural_each_language_uses() -> None:
    assert [format_points(n, "en") for n in (0, 1, 2)] == ["0 points", "1 point", "2 points"]
    assert [format_points(n, "fr") for n in (0, 1, 2)] == ["0 point", "1 point", "2 points"]


def test_dates_are_written_out_in_the_members_language() -> None:
    assert format_date(date(2026, 11, 24), "en") == "24 November 2026"
    assert format_date(date(2026, 11, 24), "fr") == "24 novembre 2026"
    assert format_date(date(2027, 1, 1), "fr") == "1er janvier 2027"
    assert format_date(date(2027, 8, 1), "en") == "1 August 2027"


def test_an_instant_is_refused_where_a_calendar_date_is_expected() -> None:
    with pytest.raises(TypeError, match="timezone"):
        format_date(datetime(2026, 11, 23, 23, tzinfo=UTC), "fr")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("fr", "fr"), ("fr-CA", "fr"), ("FR_be", "fr"), ("en-GB", "en"), ("de", "en"), ("", "en"), (None, "en")],
)
def test_the_locale_falls_back_to_english(given: str | None, expected: str) -> None:
    assert pick_locale(given) == expected


# ---- the three claim outcomes, both locales, both parts


def test_an_approved_claim_in_english_states_points_purchase_balance_and_expiry() -> None:
    message = approved(Recipient("ann@example.com", "Ann", "en"))

    assert message.subject == "Your points claim was approved"
    assert message.locale == "en"
    for body in (message.text, message.html):
        for fact in ("Ann", "1,250 points", "TX-42", "3 September 2026", "12,345 points", "24 November 2026"):
            assert fact in body
        assert "https://loyalty.example.com/account/" in body
        assert "Club Étoile" in body


def test_an_approved_claim_in_french_uses_french_words_numbers_and_dates() -> None:
    message = approved(Recipient("ann@example.com", "Anne", "fr"))

    assert message.subject == "Votre réclamation de points est acceptée"
    assert message.locale == "fr"
    for body in (message.text, message.html):
        for fact in ("Bonjour Anne", f"1{NNBSP}250 points", "3 septembre 2026", f"12{NNBSP}345 points"):
            assert fact in body
        assert "24 novembre 2026" in body
    assert "Points crédités\u00a0: 1" in message.text
    assert '<html lang="fr">' in message.html


def test_a_rejected_claim_states_the_reason_and_the_purchase_in_both_languages() -> None:
    english = claim_rejected(
        Recipient("a@example.com", "Ann"), PROGRAM, reason="Already credited", purchase_reference="TX-7"
    )
    french = claim_rejected(
        Recipient("a@example.com", "Anne", "fr"),
        PROGRAM,
        reason="Achat trop ancien",
        purchase_reference="TX-7",
    )

    assert english.subject == "Your points claim was not accepted"
    assert french.subject == "Votre réclamation de points n'a pas été acceptée"
    for body in (english.text, english.html):
        assert "Already credited" in body and "TX-7" in body and "Reason" in body
    for body in (french.text, french.html):
        assert "Achat trop ancien" in body and "TX-7" in body and "Motif" in body


def test_a_matched_claim_says_the_partner_credited_the_purchase() -> None:
    english = claim_matched(Recipient("a@example.com", "Ann"), PROGRAM, purchase_reference="TX-9", points=80)
    french = claim_matched(
        Recipient("a@example.com", "Anne", "fr"),
        PROGRAM,
        purchase_reference="TX-9",
        purchase_date=date(2026, 5, 1),
    )

    assert english.subject == "Your missing points have been credited"
    assert "partner has now credited your purchase TX-9" in english.text
    assert "80 points" in english.html
    assert french.subject == "Vos points manquants ont été crédités"
    assert "1er mai 2026" in french.text and "1er mai 2026" in french.html


def test_a_member_without_a_name_is_greeted_without_one() -> None:
    message = approved(Recipient("a@example.com", None, "fr"))

    assert message.text.startswith("Bonjour,\n")


def test_the_mime_message_has_both_parts_in_utf8_and_the_headers_we_set() -> None:
    message = parsed(
        approved(Recipient("ann@example.com", "Anne", "fr")), date=datetime(2026, 9, 10, tzinfo=UTC)
    )

    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = parts(message)
    assert f"1{NNBSP}250 points" in text and f"1{NNBSP}250 points" in html
    assert message["Subject"] == "Votre réclamation de points est acceptée"
    assert message["From"].addresses[0].addr_spec == "no-reply@loyalty.example.com"
    assert message["From"].addresses[0].display_name == "Club Étoile"
    assert message["To"].addresses[0].addr_spec == "ann@example.com"
    assert message["Content-Language"] == "fr"
    assert message["Date"].datetime == datetime(2026, 9, 10, tzinfo=UTC)


def test_the_same_email_always_gives_the_same_bytes() -> None:
    message = approved(Recipient("ann@example.com", "Anne", "fr"))

    assert to_mime(message, sender_address="n@example.com", sender_name="X") == to_mime(
        message, sender_address="n@example.com", sender_name="X"
    )


def test_the_raw_message_is_seven_bit_with_crlf_lines_within_the_smtp_limit() -> None:
    raw = to_mime(
        approved(Recipient("ann@example.com", "Anne", "fr")), sender_address="n@example.com", sender_name="X"
    )

    assert raw.isascii()
    lines = raw.split(b"\r\n")
    assert all(b"\n" not in line for line in lines)
    assert max(len(line) for line in lines) <= 998


# ---- escaping and header injection


def test_a_script_in_the_name_reason_or_reference_is_inert_text_in_html() -> None:
    member = Recipient("eve@example.com", SCRIPT, "en")
    message = claim_rejected(member, PROGRAM, reason=SCRIPT + ' & "quoted"', purchase_reference="<b>TX</b>")

    assert "<script" not in message.html and "<b>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
    assert "&amp; &quot;quoted&quot;" in message.html
    assert "&lt;b&gt;TX&lt;/b&gt;" in message.html
    assert SCRIPT in message.text  # plain text shows what was written


def test_a_name_with_a_line_break_cannot_add_a_header_or_a_recipient() -> None:
    message = parsed(approved(Recipient("eve@example.com", HOSTILE_NAME, "en")))

    assert message["Bcc"] is None and message["Cc"] is None
    assert [name.lower() for name in message] == [
        "from",
        "to",
        "subject",
        "mime-version",
        "content-type",
        "content-language",
    ]
    [recipient] = message["To"].addresses
    assert recipient.addr_spec == "eve@example.com"
    assert recipient.display_name == "Eve Bcc: x@example.com"


def test_a_script_in_the_name_stays_inside_the_quoted_display_name() -> None:
    message = parsed(approved(Recipient("eve@example.com", f'{SCRIPT}, "Mallory" <m@example.com>', "en")))

    [recipient] = message["To"].addresses
    assert recipient.addr_spec == "eve@example.com"
    assert recipient.display_name == f'{SCRIPT}, "Mallory" <m@example.com>'


def test_subjects_carry_no_member_data() -> None:
    message = claim_rejected(
        Recipient("eve@example.com", "Eve Secret", "en"),
        PROGRAM,
        reason="secret",
        purchase_reference="SECRET-REF",
    )

    assert "Eve" not in message.subject and "secret" not in message.subject.lower()


@pytest.mark.parametrize(
    "address",
    [
        "not-an-address",
        "eve@example.com\r\nBcc: x@example.com",
        "eve@example.com, m@example.com",
        "é@example.com",
        "",
    ],
)
def test_an_address_that_is_not_one_address_is_refused(address: str) -> None:
    with pytest.raises(InvalidRecipient) as refused:
        approved(Recipient(address, "Eve"))

    assert refused.value.code == "InvalidRecipient"


def test_an_internationalised_domain_is_sent_in_its_ascii_form() -> None:
    assert approved(Recipient("ann@exämple.fr", "Ann")).to_address == "ann@xn--exmple-cua.fr"


# ---- extra headers (the reminders' List-Unsubscribe: tests/unit/test_notify_reminders.py)


def test_extra_headers_come_out_in_the_mime_message_unfolded() -> None:
    long_value = "campaign-" + "a" * 300
    headers = {"X-Campaign": long_value, "X-Kind": "claim"}

    message = parsed(approved(Recipient("ann@example.com", "Ann"), headers=headers))

    assert message["X-Campaign"] == long_value
    assert message["X-Kind"] == "claim"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Bcc", "x@example.com"),
        ("Subject", "other"),
        ("Content-Type", "text/plain"),
        ("X-Bad Name", "v"),
        ("X-Ok", "line\r\nBcc: x@example.com"),
        ("X-Ok", "non-ascii é"),
        ("List-Unsubscribe", "<https://loyalty.example.com/unsubscribe?token=t>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ],
)
def test_an_extra_header_that_could_change_recipients_or_structure_is_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=re.escape(name)):
        approved(Recipient("ann@example.com", "Ann"), headers={name: value})


# ---- configuration


def test_links_are_built_under_the_configured_base_with_segments_and_query_encoded() -> None:
    program = Program("P", "https://loyalty.example.com/")

    assert program.link() == "https://loyalty.example.com/"
    assert (
        program.link("unsubscribe", query={"token": "a b&c"})
        == "https://loyalty.example.com/unsubscribe?token=a+b%26c"
    )
    assert program.link("claims", "c/1") == "https://loyalty.example.com/claims/c%2F1"


def test_the_configuration_reads_every_variable() -> None:
    config = NotifyConfig.from_environment(
        {
            "SENDER_ADDRESS": "no-reply@loyalty.example.com",
            "PROGRAM_NAME": "Club Étoile",
            "LINKS_BASE_URL": "https://loyalty.example.com",
            "SES_CONFIGURATION_SET": "loyalty-events",
            "SES_MAX_ATTEMPTS": "3",
        }
    )

    assert config.sender == "no-reply@loyalty.example.com"
    assert config.program == Program("Club Étoile", "https://loyalty.example.com")
    assert config.configuration_set == "loyalty-events"
    assert config.max_attempts == 3


def test_without_a_sender_address_the_configuration_says_which_variable_is_missing() -> None:
    config = NotifyConfig.from_environment({"LINKS_BASE_URL": "https://loyalty.example.com"})

    assert config.program.name == "Loyalty"
    assert config.configuration_set is None and config.max_attempts == 5
    with pytest.raises(EmailConfigurationError, match="SENDER_ADDRESS"):
        _ = config.sender


def test_without_a_links_base_url_rendering_cannot_start() -> None:
    config = NotifyConfig.from_environment({"SENDER_ADDRESS": "a@example.com"})

    with pytest.raises(EmailConfigurationError, match="LINKS_BASE_URL"):
        _ = config.program


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LINKS_BASE_URL", "loyalty.example.com"),
        ("LINKS_BASE_URL", "javascript:alert(1)"),
        ("LINKS_BASE_URL", "https://loyalty.example.com/?x=1"),
        ("SES_MAX_ATTEMPTS", "0"),
        ("SES_MAX_ATTEMPTS", "three"),
    ],
)
def test_a_malformed_setting_is_refused_with_its_name(variable: str, value: str) -> None:
    with pytest.raises(EmailConfigurationError, match=variable):
        NotifyConfig.from_environment({variable: value})
