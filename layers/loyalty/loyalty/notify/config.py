"""The email module's configuration, read once per process from the environment, at first use.
A missing required value raises `EmailConfigurationError` when it is needed, not at import.

| variable | meaning | when missing |
|---|---|---|
| `SENDER_ADDRESS` | the verified SES identity mail is sent from (`From`) | sending raises |
| `PROGRAM_NAME` | the program's display name (`From` name, greeting, signature) | `Loyalty` |
| `LINKS_BASE_URL` | absolute `https://` (or `http://`) base of every link in an email | rendering raises |
| `SES_CONFIGURATION_SET` | passed as `ConfigurationSetName` (event destinations: bounces…) | none passed |
| `SES_MAX_ATTEMPTS` | attempts per send while SES throttles (1 = no retry) | 5 |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from loyalty.notify.errors import EmailConfigurationError
from loyalty.notify.messages import Program

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
