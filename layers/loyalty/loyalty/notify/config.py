"""The email module's configuration, read once per process from the environment, at first use.
A missing required value raises `EmailConfigurationError` when it is needed, not at import.

| variable | meaning | when missing |
|---|---|---|
| `SENDER_ADDRESS` | the verified SES identity mail is sent from (`From`) | sending raises |
| `PROGRAM_NAME` | the program's display name (`From` name, greeting, signature) | `Loyalty` |
| `LINKS_BASE_URL` | absolute `https://` (or `http://`) base of every link in an email | rendering raises |
| `SES_CONFIGURATION_SET` | passed as `ConfigurationSetName` (event destinations: bounces…) | none passed |
| `SES_MAX_ATTEMPTS` | attempts per send while SES throttles (1 = no retry) | 5 |
| `UNSUBSCRIBE_SECRET` | unsubscribe token keys, comma-separated: the first signs, all verify | raises |
| `UNSUBSCRIBE_TOKEN_TTL_DAYS` | lifetime of a new unsubscribe link, in days (at least 30) | 90 |

`UNSUBSCRIBE_SECRET` must be long and random, and secret: anyone who holds it can unsubscribe any
member. Each key is at least 32 characters, e.g. `openssl rand -base64 48` (base64 and hex contain
no comma). In AWS it comes from SSM Parameter Store (SecureString) or Secrets Manager, never from
the template or the code. It is kept out of `repr`, so logging the configuration does not leak it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from urllib.parse import urlsplit

from loyalty.notify.errors import EmailConfigurationError
from loyalty.notify.messages import Program
from loyalty.notify.unsubscribe import DEFAULT_TOKEN_TTL

MIN_UNSUBSCRIBE_SECRET_LENGTH = 32
# An opt-out link must keep working for 30 days after the email is sent (US CAN-SPAM).
MIN_UNSUBSCRIBE_TTL_DAYS = 30

DEFAULT_PROGRAM_NAME = "Loyalty"


@dataclass(frozen=True)
class NotifyConfig:
    sender_address: str | None
    program_name: str
    links_base_url: str | None
    configuration_set: str | None = None
    max_attempts: int = 5
    # Full-jitter exponential backoff: the n-th retry sleeps uniform(0, min(max, base * 2**(n-1))).
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 5.0
    # Keys of the unsubscribe tokens, newest (signing) first; never in a repr or a log line.
    unsubscribe_keys: tuple[bytes, ...] = field(default=(), repr=False)
    unsubscribe_ttl: timedelta = DEFAULT_TOKEN_TTL

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> NotifyConfig:
        env: Mapping[str, str] = os.environ if environ is None else environ
        links = env.get("LINKS_BASE_URL", "").strip() or None
        if links is not None:
            _check_base_url(links)
        return cls(
            sender_address=env.get("SENDER_ADDRESS", "").strip() or None,
            program_name=env.get("PROGRAM_NAME", "").strip() or DEFAULT_PROGRAM_NAME,
            links_base_url=links,
            configuration_set=env.get("SES_CONFIGURATION_SET", "").strip() or None,
            max_attempts=_positive_int(env, "SES_MAX_ATTEMPTS", 5),
            unsubscribe_keys=_unsubscribe_keys(env.get("UNSUBSCRIBE_SECRET", "")),
            unsubscribe_ttl=timedelta(
                days=_positive_int(env, "UNSUBSCRIBE_TOKEN_TTL_DAYS", DEFAULT_TOKEN_TTL.days)
            ),
        )

    @property
    def sender(self) -> str:
        """The `From` address; a clear error when the deployment did not set it."""
        if not self.sender_address:
            raise EmailConfigurationError(
                "SENDER_ADDRESS is not set: it names the verified SES identity emails are sent from"
            )
        return self.sender_address

    @property
    def program(self) -> Program:
        """What the renderers need to know about the program: its name and where links point."""
        if not self.links_base_url:
            raise EmailConfigurationError(
                "LINKS_BASE_URL is not set: emails link to the member's space under this absolute URL"
            )
        return Program(name=self.program_name, links_base_url=self.links_base_url)

    @property
    def unsubscribe_secrets(self) -> tuple[bytes, ...]:
        """The keys for `make_token` (the first signs) and `read_token` (any verifies)."""
        if not self.unsubscribe_keys:
            raise EmailConfigurationError(
                "UNSUBSCRIBE_SECRET is not set: reminders carry unsubscribe links signed with it"
            )
        return self.unsubscribe_keys

    def __post_init__(self) -> None:
        if self.unsubscribe_ttl < timedelta(days=MIN_UNSUBSCRIBE_TTL_DAYS):
            raise EmailConfigurationError(
                f"UNSUBSCRIBE_TOKEN_TTL_DAYS must be at least {MIN_UNSUBSCRIBE_TTL_DAYS}: "
                "an unsubscribe link must keep working for 30 days after the email is sent"
            )


def _unsubscribe_keys(text: str) -> tuple[bytes, ...]:
    keys = tuple(part.strip() for part in text.split(",")) if text.strip() else ()
    if any(len(key) < MIN_UNSUBSCRIBE_SECRET_LENGTH for key in keys):
        # Never echo the value: it is a secret, and the message may end up in a log.
        raise EmailConfigurationError(
            f"UNSUBSCRIBE_SECRET: each comma-separated key must be at least "
            f"{MIN_UNSUBSCRIBE_SECRET_LENGTH} random characters (e.g. `openssl rand -base64 48`)"
        )
    return tuple(key.encode("utf-8") for key in keys)


def _check_base_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise EmailConfigurationError(
            f"LINKS_BASE_URL must be an absolute http(s) URL without query or fragment, got {url!r}"
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise EmailConfigurationError(f"{name} must be a positive integer, got {text!r}")
    return int(text)


@cache
def notify_config() -> NotifyConfig:
    """The process's configuration (tests call `notify_config.cache_clear()` after changing the env)."""
    return NotifyConfig.from_environment()
