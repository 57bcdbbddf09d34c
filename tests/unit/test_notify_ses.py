"""Sending through SES v2: the raw message SES records, throttling retried with backoff, refusals typed."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ThrottledRetryableChecker
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from devtools.local import sent_emails
from loyalty.notify import (
    Email,
    EmailConfigurationError,
    EmailRejected,
    EmailThrottled,
    EmailUnavailable,
    NotifyConfig,
    Program,
    Recipient,
    claim_approved,
    notify_config,
)
from loyalty.notify import ses as ses_module
from loyalty.notify.ses import THROTTLING_CODES, SesSender, send, ses_client
from loyalty.notify.tags import member_of_tag

REGION = "eu-west-1"
SENDER = "no-reply@loyalty.example.com"
PROGRAM = Program("Club Étoile", "https://loyalty.example.com/account")
CONFIG = NotifyConfig(
    sender_address=SENDER, program_name="Club Étoile", links_base_url=PROGRAM.links_base_url
)
NOW = datetime(2026, 9, 10, 8, 30, tzinfo=UTC)


def approved(locale: str = "fr", name: str = "Anne") -> Email:
    return claim_approved(
        Recipient("anne@example.com", name, locale),
        PROGRAM,
        points=1250,
        purchase_reference="TX-42",
        purchase_date=date(2026, 9, 3),
        balance=12345,
        expires_on=date(2026, 11, 24),
    )


def reset_process_state() -> None:
    notify_config.cache_clear()
    ses_client.cache_clear()
    ses_module.default_sender.cache_clear()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The variables the template sets on a function that sends email."""
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("SENDER_ADDRESS", SENDER)
    monkeypatch.setenv("PROGRAM_NAME", "Club Étoile")
    monkeypatch.setenv("LINKS_BASE_URL", PROGRAM.links_base_url)
    monkeypatch.delenv("SES_CONFIGURATION_SET", raising=False)
    monkeypatch.delenv("SES_MAX_ATTEMPTS", raising=False)
    reset_process_state()
    yield
    reset_process_state()


@pytest.fixture
def moto_ses(environment: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("sesv2", region_name=REGION)
        client.create_email_identity(EmailIdentity=SENDER)
        yield client


def recorded() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


class Recorder:
    """Stands in for `time.sleep`: remembers the pauses instead of taking them."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


def stubbed(config: NotifyConfig = CONFIG, fraction: float = 1.0) -> tuple[SesSender, Stubber, Recorder]:
    client = boto3.client("sesv2", region_name=REGION)
    sleep = Recorder()
    return (
        SesSender(client, config, sleep=sleep, random=lambda: fraction, clock=lambda: NOW),
        Stubber(client),
        sleep,
    )


def throttle(stubber: Stubber, code: str = "TooManyRequestsException", status: int = 429) -> None:
    stubber.add_client_error(
        "send_email", service_error_code=code, service_message="slow down", http_status_code=status
    )


# ---- through moto: what SES records


def test_a_sent_email_is_recorded_by_ses_with_its_headers_and_both_parts(moto_ses: Any) -> None:
    message_id = send(approved())

    [message] = recorded()
    assert message.id == message_id
    assert message.source == SENDER
    assert "anne@example.com" in message.destinations
    parsed = email.message_from_string(message.raw_data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["From"].addresses[0].addr_spec == SENDER
    assert parsed["From"].addresses[0].display_name == "Club Étoile"
    assert [address.addr_spec for address in parsed["To"].addresses] == ["anne@example.com"]
    assert parsed["Subject"] == "Votre réclamation de points est acceptée"
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None
    assert "1\u202f250 points" in text.get_content()
    assert "<title>Votre réclamation de points est acceptée</title>" in html.get_content()


def test_a_hostile_name_reaches_ses_as_one_quoted_display_name(moto_ses: Any) -> None:
    send(approved(name="Eve\r\nBcc: x@example.com"))

    [message] = recorded()
    parsed = email.message_from_string(message.raw_data, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert {parseaddr(destination)[1] for destination in message.destinations} == {"anne@example.com"}


def test_an_unverified_sender_is_rejected_by_ses_and_not_retried(
    moto_ses: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDER_ADDRESS", "someone@unverified.example.org")
    reset_process_state()

    with pytest.raises(EmailRejected) as rejected:
        send(approved())

    assert rejected.value.code == "MessageRejected"
    assert recorded() == []


def test_the_local_mode_outbox_shows_subject_text_and_html_of_what_was_sent(moto_ses: Any) -> None:
    send(approved(locale="en", name="Ann"))

    [listed] = sent_emails()

    assert listed["from"] == SENDER
    assert listed["subject"] == "Your points claim was approved"
    assert "Hello Ann," in listed["text"] and "1,250 points" in listed["text"]
    assert '<html lang="en">' in listed["html"] and "24 November 2026" in listed["html"]


def test_without_a_sender_address_nothing_is_sent_and_the_error_names_the_variable(
    moto_ses: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENDER_ADDRESS")
    reset_process_state()

    with pytest.raises(EmailConfigurationError, match="SENDER_ADDRESS"):
        send(approved())

    assert recorded() == []


def test_the_process_client_is_created_once_and_follows_botocores_endpoint_setting(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", "http://127.0.0.1:4566")

    client = ses_client()

    assert client is ses_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
    assert client.meta.region_name == REGION


# ---- the request, with botocore's Stubber


def test_the_request_carries_sender_recipient_raw_content_and_the_configuration_set() -> None:
    config = NotifyConfig(SENDER, "Club Étoile", PROGRAM.links_base_url, configuration_set="loyalty-events")
    sender, stubber, _ = stubbed(config)
    message = approved()
    stubber.add_response(
        "send_email",
        {"MessageId": "m-1"},
        {
            "FromEmailAddress": SENDER,
            "Destination": {"ToAddresses": ["anne@example.com"]},
            "Content": {
                "Raw": {
                    "Data": ses_module.to_mime(
                        message, sender_address=SENDER, sender_name="Club Étoile", date=NOW
                    )
                }
            },
            "EmailTags": [{"Name": "kind", "Value": "claim_approved"}],
            "ConfigurationSetName": "loyalty-events",
        },
    )

    with stubber:
        assert sender.send(message) == "m-1"
    stubber.assert_no_pending_responses()


def test_an_email_about_a_member_is_tagged_with_the_member_so_its_bounces_name_it() -> None:
    # Given a claim email to member "shop:42.fr" (a '.' and a ':', which SES tag values refuse)
    sender, stubber, _ = stubbed()
    message = claim_approved(
        Recipient("anne@example.com", "Anne", "fr", member_id="shop:42.fr"),
        PROGRAM,
        points=10,
        purchase_reference="TX-1",
        purchase_date=date(2026, 9, 3),
        balance=10,
        expires_on=None,
    )
    stubber.add_response(
        "send_email",
        {"MessageId": "m-2"},
        {
            "FromEmailAddress": SENDER,
            "Destination": {"ToAddresses": ["anne@example.com"]},
            "Content": {
                "Raw": {
                    "Data": ses_module.to_mime(
                        message, sender_address=SENDER, sender_name="Club Étoile", date=NOW
                    )
                }
            },
            # Then the member rides as a tag, reversibly encoded in the characters SES allows
            "EmailTags": [
                {"Name": "kind", "Value": "claim_approved"},
                {"Name": "member", "Value": "c2hvcDo0Mi5mcg"},
            ],
        },
    )

    # When it is sent
    with stubber:
        assert sender.send(message) == "m-2"
    stubber.assert_no_pending_responses()
    assert member_of_tag("c2hvcDo0Mi5mcg") == "shop:42.fr"
    assert "c2hvcDo0Mi5mcg" not in ses_module.to_mime(
        message, sender_address=SENDER, sender_name="Club Étoile", date=NOW
    ).decode("ascii"), "a tag, not a header of the email"


# ---- throttling and refusals


def test_throttling_is_retried_with_growing_pauses_until_ses_accepts() -> None:
    sender, stubber, sleep = stubbed(fraction=1.0)
    throttle(stubber)
    throttle(stubber, "Throttling", 400)
    throttle(stubber, "LimitExceededException", 400)
    stubber.add_response("send_email", {"MessageId": "m-4"})

    with stubber:
        assert sender.send(approved()) == "m-4"

    assert sleep.pauses == [0.2, 0.4, 0.8]
    stubber.assert_no_pending_responses()


def test_the_pauses_are_jittered_below_their_cap() -> None:
    sender, stubber, sleep = stubbed(fraction=0.25)
    throttle(stubber)
    throttle(stubber)
    stubber.add_response("send_email", {"MessageId": "m-3"})

    with stubber:
        sender.send(approved())

    assert sleep.pauses == [0.05, 0.1]


def test_a_send_still_throttled_after_the_configured_attempts_raises_email_throttled() -> None:
    config = NotifyConfig(SENDER, "P", PROGRAM.links_base_url, max_attempts=4, max_delay_seconds=0.5)
    sender, stubber, sleep = stubbed(config)
    for _ in range(4):
        throttle(stubber)

    with stubber, pytest.raises(EmailThrottled) as throttled:
        sender.send(approved())

    assert (throttled.value.attempts, throttled.value.code) == (4, "TooManyRequestsException")
    assert sleep.pauses == [0.2, 0.4, 0.5]  # capped at max_delay_seconds; no pause after the last
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "code",
    [
        "MessageRejected",
        "AccountSuspendedException",
        "MailFromDomainNotVerifiedException",
        "BadRequestException",
    ],
)
def test_a_refusal_is_email_rejected_with_its_code_and_is_not_retried(code: str) -> None:
    sender, stubber, sleep = stubbed()
    stubber.add_client_error(
        "send_email", service_error_code=code, service_message="no", http_status_code=400
    )
    stubber.add_response("send_email", {"MessageId": "never"})

    with stubber, pytest.raises(EmailRejected) as rejected:
        sender.send(approved())

    assert rejected.value.code == code
    assert sleep.pauses == []


def test_a_failure_on_ses_side_is_email_unavailable_and_is_not_retried_in_the_call() -> None:
    sender, stubber, sleep = stubbed()
    stubber.add_client_error("send_email", service_error_code="InternalFailure", http_status_code=500)

    with stubber, pytest.raises(EmailUnavailable) as unavailable:
        sender.send(approved())

    assert unavailable.value.code == "InternalFailure"
    assert sleep.pauses == []


def test_every_code_botocore_treats_as_throttling_is_retried() -> None:
    assert set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES) <= THROTTLING_CODES


# ---- the real client's wire path: botocore's own retries stay off, attempts are ours


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def test_the_process_client_makes_exactly_the_configured_number_of_http_attempts(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SES_MAX_ATTEMPTS", "3")
    reset_process_state()
    attempts: list[str] = []

    def throttled(request: Any, **_: Any) -> AWSResponse:
        attempts.append(request.url)
        body = json.dumps({"message": "Maximum sending rate exceeded."}).encode()
        headers = {"x-amzn-ErrorType": "TooManyRequestsException", "Content-Type": "application/json"}
        return AWSResponse(request.url, 429, headers, _Body(body))

    ses_client().meta.events.register("before-send.sesv2.SendEmail", throttled)
    sleep = Recorder()

    with pytest.raises(EmailThrottled):
        SesSender(sleep=sleep, random=lambda: 1.0).send(approved())

    assert len(attempts) == 3
    assert sleep.pauses == [0.2, 0.4]
    assert attempts[0].endswith("/v2/email/outbound-emails")
