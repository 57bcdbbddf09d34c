"""devtools.local: the emails sent to the emulated SES, listed and saved in files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from devtools.local import EmailOutbox, sent_emails


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("sesv2", region_name="eu-west-1")
        client.create_email_identity(EmailIdentity="loyalty@example.com")
        yield client


def test_given_a_simple_email_when_listing_then_its_subject_and_body_are_shown(ses: object) -> None:
    ses.send_email(  # type: ignore[attr-defined]
        FromEmailAddress="loyalty@example.com",
        Destination={"ToAddresses": ["alice@example.com"]},
        Content={"Simple": {"Subject": {"Data": "Vos points"}, "Body": {"Text": {"Data": "120 points"}}}},
    )

    [message] = sent_emails()

    assert message["from"] == "loyalty@example.com"
    assert message["to"] == ["alice@example.com"]
    assert (message["subject"], message["text"], message["html"]) == ("Vos points", "120 points", None)


def test_given_a_raw_mime_email_when_listing_then_both_parts_are_shown(ses: object) -> None:
    mime = EmailMessage()
    mime["From"], mime["To"], mime["Subject"] = (
        "loyalty@example.com",
        "Bob <bob@example.com>",
        "Points expiring",
    )
    mime.set_content("50 points expire on 1 March")
    mime.add_alternative("<p>50 points expire on 1 March</p>", subtype="html")
    ses.send_email(  # type: ignore[attr-defined]
        FromEmailAddress="loyalty@example.com",
        Destination={"ToAddresses": ["bob@example.com"]},
        Content={"Raw": {"Data": mime.as_bytes()}},
    )

    [message] = sent_emails()

    assert message["to"] == ["bob@example.com"]  # moto lists the destination and the To header
    assert message["subject"] == "Points expiring"
    assert message["text"].strip() == "50 points expire on 1 March"
    assert message["html"].strip() == "<p>50 points expire on 1 March</p>"


def test_given_sent_emails_when_collected_twice_then_each_is_saved_once(ses: object, tmp_path: Path) -> None:
    ses.send_email(  # type: ignore[attr-defined]
        FromEmailAddress="loyalty@example.com",
        Destination={"ToAddresses": ["alice@example.com"]},
        Content={"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Html": {"Data": "<p>Hi &amp; bye</p>"}}}},
    )
    outbox = EmailOutbox(tmp_path / "emails")

    first = outbox.collect()
    second = outbox.collect()

    assert first[0]["files"] == second[0]["files"]
    files = sorted(Path(name).suffix for name in first[0]["files"])
    assert files == [".html", ".json"]
    saved = json.loads(Path(first[0]["files"][0]).read_text(encoding="utf-8"))
    assert saved["subject"] == "Hi"
    assert len(list((tmp_path / "emails").iterdir())) == 2
