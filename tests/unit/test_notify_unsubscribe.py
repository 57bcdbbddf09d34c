"""Unsubscribe tokens: they name the member they were made for, until they expire, and nothing forged,
altered, retired or garbled gets past `read_token` as anything but `InvalidUnsubscribeToken`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.notify import (
    EmailConfigurationError,
    ExpiredToken,
    InvalidUnsubscribeToken,
    MalformedToken,
    NotifyConfig,
    TamperedToken,
    TokenProblem,
    UnsupportedTokenVersion,
    make_token,
    read_token,
    unsubscribe_url,
)
from loyalty.notify.unsubscribe import MAX_TOKEN_LENGTH

SECRET = "k" * 32 + "-current-unsubscribe-key-for-tests"
OLD_SECRET = "o" * 32 + "-previous-unsubscribe-key-for-tests"
OTHER_SECRET = "x" * 32 + "-someone-else's-key-for-tests"
MEMBER = "mem_01JD3V8Q5QZ4G7H2K9M3N6P8R0"
ISSUED = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
TTL = timedelta(days=90)


def token_for(member: str = MEMBER, **overrides: Any) -> str:
    return make_token(member, **({"secret": SECRET, "now": ISSUED, "ttl": TTL} | overrides))


def read(token: object, **overrides: Any) -> str:
    return read_token(token, **({"secret": SECRET, "now": ISSUED + timedelta(days=1)} | overrides))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed_by(secret: str, signed: str) -> str:
    """A token written the way `make_token` writes one, with fields of our choosing."""
    tag = hmac.new(secret.encode(), b"loyalty.unsubscribe\0" + signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{b64(tag)}"


# ---- the round trip


def test_a_token_names_the_member_it_was_made_for() -> None:
    assert read(token_for()) == MEMBER


def test_a_token_is_url_safe_and_compact() -> None:
    token = token_for()

    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(token) < 120


def test_a_token_carries_version_issue_and_expiry_times_and_the_member() -> None:
    version, issued, expires, member, tag = token_for().split(".")

    assert version == "1"
    assert int(issued) == int(ISSUED.timestamp())
    assert int(expires) == int((ISSUED + TTL).timestamp())
    assert base64.urlsafe_b64decode(member + "=" * (-len(member) % 4)).decode() == MEMBER
    assert len(tag) == 43  # 32 bytes of HMAC-SHA256, base64url without padding


def test_a_non_ascii_member_id_makes_the_round_trip() -> None:
    assert read(token_for("mém_Ünïcödé_会员")) == "mém_Ünïcödé_会员"


def test_tokens_for_different_members_differ() -> None:
    assert token_for("mem_A") != token_for("mem_B")


@settings(max_examples=200, deadline=None)
@given(
    member=st.text(min_size=1, max_size=128).filter(lambda m: m.isprintable() and m.strip() == m),
    seconds=st.integers(min_value=1, max_value=10 * 365 * 86400),
)
def test_any_printable_member_id_and_lifetime_make_the_round_trip(member: str, seconds: int) -> None:
    token = token_for(member, ttl=timedelta(seconds=seconds))

    assert len(token) <= MAX_TOKEN_LENGTH
    assert read_token(token, secret=SECRET, now=ISSUED + timedelta(seconds=seconds - 1)) == member


# ---- lifetime


def test_a_token_is_good_until_the_last_second_of_its_lifetime() -> None:
    assert read(token_for(), now=ISSUED + TTL - timedelta(seconds=1)) == MEMBER


def test_a_token_expires_at_the_end_of_its_lifetime() -> None:
    with pytest.raises(ExpiredToken) as refused:
        read(token_for(), now=ISSUED + TTL)

    assert refused.value.reason is TokenProblem.EXPIRED


def test_a_token_read_long_after_its_lifetime_is_expired() -> None:
    with pytest.raises(ExpiredToken):
        read(token_for(), now=ISSUED + timedelta(days=3650))


def test_the_default_lifetime_is_ninety_days() -> None:
    token = make_token(MEMBER, secret=SECRET, now=ISSUED)

    assert read(token, now=ISSUED + timedelta(days=90) - timedelta(seconds=1)) == MEMBER
    with pytest.raises(ExpiredToken):
        read(token, now=ISSUED + timedelta(days=90))


def test_a_signer_clock_a_few_minutes_ahead_does_not_break_fresh_links() -> None:
    assert read(token_for(), now=ISSUED - timedelta(minutes=4)) == MEMBER


def test_a_token_issued_well_in_the_future_is_refused() -> None:
    with pytest.raises(MalformedToken, match="future"):
        read(token_for(), now=ISSUED - timedelta(hours=1))


def test_an_expiry_before_the_issue_time_is_refused_even_when_signed() -> None:
    issued = int(ISSUED.timestamp())
    token = signed_by(SECRET, f"1.{issued}.{issued}.{b64(MEMBER.encode())}")

    with pytest.raises(MalformedToken):
        read(token)


# ---- tampering, part by part


def replace_field(token: str, index: int, value: str) -> str:
    fields = token.split(".")
    fields[index] = value
    return ".".join(fields)


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (1, str(int(ISSUED.timestamp()) + 1)),  # issued one second later
        (2, str(int((ISSUED + TTL * 10).timestamp()))),  # a longer life
        (3, b64(b"mem_SOMEONE_ELSE")),  # another member
    ],
    ids=["issued", "expires", "member"],
)
def test_changing_any_signed_field_breaks_the_signature(index: int, value: str) -> None:
    with pytest.raises(TamperedToken) as refused:
        read(replace_field(token_for(), index, value))

    assert refused.value.reason is TokenProblem.TAMPERED


def test_changing_the_version_is_refused_as_a_version_this_code_does_not_read() -> None:
    with pytest.raises(UnsupportedTokenVersion) as refused:
        read(replace_field(token_for(), 0, "2"))

    assert refused.value.reason is TokenProblem.UNSUPPORTED_VERSION


def test_a_different_tag_of_the_right_length_is_refused() -> None:
    with pytest.raises(TamperedToken):
        read(replace_field(token_for(), 4, b64(bytes(32))))


@pytest.mark.parametrize("position", range(0, 43, 6))
def test_flipping_one_character_of_the_tag_is_refused(position: int) -> None:
    token = token_for()
    head, _, tag = token.rpartition(".")
    flipped = tag[:position] + ("A" if tag[position] != "A" else "B") + tag[position + 1 :]

    with pytest.raises(InvalidUnsubscribeToken) as refused:
        read(f"{head}.{flipped}")

    # The last character holds 2 padding bits: flipping it may make a non-canonical encoding.
    assert refused.value.reason in (TokenProblem.TAMPERED, TokenProblem.MALFORMED)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(TamperedToken):
        read(token_for(secret=OTHER_SECRET))


def test_a_tag_made_for_another_purpose_with_the_same_secret_is_refused() -> None:
    issued = int(ISSUED.timestamp())
    signed = f"1.{issued}.{issued + 3600}.{b64(MEMBER.encode())}"
    bare_tag = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest()

    with pytest.raises(TamperedToken):
        read(f"{signed}.{b64(bare_tag)}")


def test_the_error_message_does_not_repeat_the_token() -> None:
    token = replace_field(token_for(), 3, b64(b"mem_SOMEONE_ELSE"))

    with pytest.raises(TamperedToken) as refused:
        read(token)

    assert token not in str(refused.value) and b64(b"mem_SOMEONE_ELSE") not in str(refused.value)


# ---- rotation


def test_the_first_secret_signs_and_every_secret_verifies() -> None:
    token = token_for(secret=[SECRET, OLD_SECRET])

    assert read(token, secret=[SECRET]) == MEMBER
    with pytest.raises(TamperedToken):
        read(token, secret=[OLD_SECRET])


def test_during_a_rotation_tokens_signed_with_the_previous_secret_still_work() -> None:
    before_rotation = token_for(secret=OLD_SECRET)

    assert read(before_rotation, secret=[SECRET, OLD_SECRET]) == MEMBER


def test_retiring_a_secret_revokes_the_tokens_it_signed() -> None:
    before_rotation = token_for(secret=OLD_SECRET)

    with pytest.raises(TamperedToken):
        read(before_rotation, secret=[SECRET])


def test_secrets_may_be_bytes() -> None:
    token = token_for(secret=[SECRET.encode()])

    assert read(token, secret=SECRET) == MEMBER


@pytest.mark.parametrize("secret", ["", b"", [], ["", SECRET], ()])
def test_a_missing_secret_is_a_configuration_error_not_a_token_error(secret: Any) -> None:
    with pytest.raises(EmailConfigurationError, match="UNSUBSCRIBE_SECRET"):
        make_token(MEMBER, secret=secret, now=ISSUED)
    with pytest.raises(EmailConfigurationError, match="UNSUBSCRIBE_SECRET"):
        read_token("anything", secret=secret, now=ISSUED)


# ---- malformed input: only the typed error comes out


MALFORMED = [
    "",
    ".",
    "....",
    "1",
    "1.2.3.4",
    "1.2.3.4.5.6",
    "not a token",
    "1.1795000000.1797592000.bWVt.",
    "1.1795000000.1797592000..AAAA",
    "1.+1795000000.1797592000.bWVt." + "A" * 43,
    "1.1795000000.1797592000.bWVt=." + "A" * 43,
    "1.1795000000.1797592000.bW+t." + "A" * 43,
    "1.1795000000.1797592000.bWVt." + "A" * 42,  # 31.5 bytes
    "1.1795000000.1797592000.bWVt." + "A" * 44,  # 33 bytes
    "1.1795000000.1797592000.bWVt." + "A" * 41,  # a length base64 cannot have
    "1.1795000000.1797592000.bWVt." + "A" * 42 + "B",  # non-canonical: padding bits set
    "1.١٧٩٥٠٠٠٠٠٠.1797592000.bWVt." + "A" * 43,  # Arabic-Indic digits
    "1.1795000000.1797592000.bWVt.\u00c5" + "A" * 42,
    "1.1795000000.1797592000.bWVt." + "A" * 43 + "\n",
    " 1.1795000000.1797592000.bWVt." + "A" * 43,
    "1.1795000000.1797592000.bWVt." + "A" * 43 + "\x00",
    "\ud800",  # a lone surrogate
    "🙂" * 50,
    "1." + "9" * 13 + ".1.bWVt." + "A" * 43,
    "A" * (MAX_TOKEN_LENGTH + 1),
    "1.1.2." + "A" * 10_000_000 + "." + "A" * 43,
]


@pytest.mark.parametrize("token", MALFORMED, ids=lambda token: repr(token)[:40])
def test_a_malformed_token_is_refused_as_malformed(token: str) -> None:
    with pytest.raises(MalformedToken) as refused:
        read(token)

    assert refused.value.reason is TokenProblem.MALFORMED


@pytest.mark.parametrize("token", [None, 42, b"1.2.3.4.5", ["1", "2"], object()])
def test_a_value_that_is_not_text_is_refused_as_malformed(token: object) -> None:
    with pytest.raises(MalformedToken):
        read(token)


@pytest.mark.parametrize(
    "member_bytes",
    [b"", b"\xff\xfe", b"mem\nBcc", b" mem", "m" * 129],
    ids=["empty", "not-utf8", "control", "leading-space", "too-long"],
)
def test_a_signed_token_whose_member_field_make_token_would_never_write_is_refused(
    member_bytes: bytes | str,
) -> None:
    raw = member_bytes.encode() if isinstance(member_bytes, str) else member_bytes
    issued = int(ISSUED.timestamp())
    token = signed_by(SECRET, f"1.{issued}.{issued + 3600}.{b64(raw)}")

    with pytest.raises(InvalidUnsubscribeToken):
        read(token)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda raw: b64(raw)))
def test_arbitrary_text_never_raises_anything_but_the_typed_error(token: str) -> None:
    with pytest.raises(InvalidUnsubscribeToken):
        read(token)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_character_change_to_a_token_is_refused(data: st.DataObject) -> None:
    token = token_for()
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.characters().filter(lambda char: char != token[position]))

    with pytest.raises(InvalidUnsubscribeToken):
        read(token[:position] + replacement + token[position + 1 :])


# ---- making tokens


@pytest.mark.parametrize("member", ["", " mem", "mem\r\nX", "m" * 129, 42])
def test_a_token_is_made_only_for_a_plausible_member_id(member: Any) -> None:
    with pytest.raises(ValueError):
        make_token(member, secret=SECRET, now=ISSUED)


def test_a_lifetime_under_one_second_is_refused() -> None:
    with pytest.raises(ValueError):
        token_for(ttl=timedelta(milliseconds=500))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(TypeError):
        make_token(MEMBER, secret=SECRET, now=datetime(2026, 11, 25))
    with pytest.raises(TypeError):
        read_token(token_for(), secret=SECRET, now=datetime(2026, 11, 25))


# ---- the link


def test_the_link_is_the_unsubscribe_page_under_the_links_base_with_the_token() -> None:
    token = token_for()

    assert unsubscribe_url("https://loyalty.example.com/account/", token) == (
        f"https://loyalty.example.com/account/unsubscribe?token={token}"
    )
    assert unsubscribe_url("http://localhost:3000", token) == (
        f"http://localhost:3000/unsubscribe?token={token}"
    )


@pytest.mark.parametrize("base", ["loyalty.example.com", "javascript:alert(1)", "https://"])
def test_the_link_needs_an_absolute_http_base(base: str) -> None:
    with pytest.raises(ValueError):
        unsubscribe_url(base, token_for())


# ---- configuration


def test_the_configuration_reads_the_secrets_newest_first_and_the_lifetime() -> None:
    config = NotifyConfig.from_environment(
        {"UNSUBSCRIBE_SECRET": f" {SECRET} , {OLD_SECRET}", "UNSUBSCRIBE_TOKEN_TTL_DAYS": "45"}
    )

    assert config.unsubscribe_secrets == (SECRET.encode(), OLD_SECRET.encode())
    assert config.unsubscribe_ttl == timedelta(days=45)
    token = make_token(MEMBER, secret=config.unsubscribe_secrets, now=ISSUED, ttl=config.unsubscribe_ttl)
    assert read(token, secret=SECRET) == MEMBER


def test_without_a_secret_reminders_cannot_be_signed() -> None:
    config = NotifyConfig.from_environment({})

    assert config.unsubscribe_ttl == timedelta(days=90)
    with pytest.raises(EmailConfigurationError, match="UNSUBSCRIBE_SECRET"):
        _ = config.unsubscribe_secrets


def test_a_short_secret_is_refused_without_being_repeated() -> None:
    with pytest.raises(EmailConfigurationError, match="UNSUBSCRIBE_SECRET") as refused:
        NotifyConfig.from_environment({"UNSUBSCRIBE_SECRET": f"{SECRET},hunter2"})

    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("days", ["0", "29", "ninety"])
def test_a_lifetime_under_thirty_days_is_refused(days: str) -> None:
    with pytest.raises(EmailConfigurationError, match="UNSUBSCRIBE_TOKEN_TTL_DAYS"):
        NotifyConfig.from_environment({"UNSUBSCRIBE_TOKEN_TTL_DAYS": days})


def test_the_secret_never_appears_in_the_configurations_repr() -> None:
    config = NotifyConfig.from_environment({"UNSUBSCRIBE_SECRET": SECRET})

    assert SECRET not in repr(config)
