"""Demo data for the local mode, written through the real handlers (never item by item).

Two members enrolled by the partner `demo-pos`, with purchases spread over the last 18 months
so that their lots have various expiry dates, and each a pending claim for a purchase the partner
never reported (the support queue has something to decide). Earn is idempotent on
`transactionId` and a member has one claim per purchase: a second seeding finds the purchases
already credited (`409`, as the dates moved) and the claims already filed, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from devtools.identity import Identity

__all__ = [
    "DEMO_MEMBERS",
    "DEMO_PARTNER",
    "DemoClaim",
    "DemoPurchase",
    "Invoke",
    "SeedReport",
    "demo_claims",
    "demo_purchases",
    "seed",
]

DEMO_PARTNER = "demo-pos"
DEMO_TIMEZONE = ZoneInfo("Europe/Paris")
DEMO_MEMBERS: dict[str, dict[str, object]] = {
    "demo-alice": {"email": "alice@example.com", "name": "Alice Martin", "locale": "fr", "emailOptIn": True},
    "demo-bob": {"email": "bob@example.com", "name": "Bob Smith", "locale": "en", "emailOptIn": True},
}


class Invoke(Protocol):
    """Calls a route of the application as an HTTP client would: returns (status, decoded JSON body)."""

    def __call__(
        self, method: str, path: str, *, identity: Identity | None, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]: ...


@dataclass(frozen=True)
class DemoPurchase:
    member_id: str
    transaction_id: str
    days_ago: int
    amount: str
    currency: str
    channel: str

    def body(self, now: datetime) -> dict[str, Any]:
        # At 11:00 local time, so that the purchase date does not depend on when the seeding runs.
        day = (now.astimezone(DEMO_TIMEZONE) - timedelta(days=self.days_ago)).date()
        occurred_at = datetime(day.year, day.month, day.day, 11, 0, tzinfo=DEMO_TIMEZONE)
        return {
            "transactionId": self.transaction_id,
            "amount": self.amount,
            "currency": self.currency,
            "occurredAt": occurred_at.isoformat(),
            "channel": self.channel,
        }


def demo_purchases() -> list[DemoPurchase]:
    """Purchases from 540 days ago (the oldest lot expires first) to 3 days ago."""
    plan = [
        ("demo-alice", 540, "42.50", "EUR", "store"),
        ("demo-alice", 400, "120.00", "EUR", "online"),
        ("demo-alice", 250, "18.90", "EUR", "store"),
        ("demo-alice", 120, "65.00", "EUR", "online"),
        ("demo-alice", 3, "230.40", "EUR", "store"),
        ("demo-bob", 510, "75.00", "GBP", "store"),
        ("demo-bob", 330, "12.99", "GBP", "online"),
        ("demo-bob", 150, "310.00", "GBP", "store"),
        ("demo-bob", 30, "54.20", "GBP", "online"),
    ]
    return [
        DemoPurchase(member, f"demo-tx-{number}", days_ago, amount, currency, channel)
        for number, (member, days_ago, amount, currency, channel) in enumerate(plan, start=1)
    ]


@dataclass(frozen=True)
class DemoClaim:
    """A purchase its member says was never credited: filed by the member, pending for support."""

    member_id: str
    transaction_id: str
    days_ago: int
    amount: str
    currency: str
    store: str | None
    receipt_ref: str

    def body(self, now: datetime) -> dict[str, Any]:
        day = (now.astimezone(DEMO_TIMEZONE) - timedelta(days=self.days_ago)).date()
        occurred_at = datetime(day.year, day.month, day.day, 17, 30, tzinfo=DEMO_TIMEZONE)
        body: dict[str, Any] = {
            "transactionId": self.transaction_id,
            "occurredAt": occurred_at.isoformat(),
            "amount": self.amount,
            "currency": self.currency,
            "receiptRef": self.receipt_ref,
        }
        if self.store:
            body["store"] = self.store
        return body


def demo_claims() -> list[DemoClaim]:
    """Two pending claims, inside the default claim window (2 to 180 days old)."""
    return [
        DemoClaim("demo-alice", "demo-missing-1", 12, "35.90", "EUR", "Paris Opéra", "R-2231"),
        DemoClaim("demo-bob", "demo-missing-2", 25, "48.00", "GBP", None, "WEB-77812"),
    ]


@dataclass
class SeedReport:
    enrolled: int = 0
    credited: int = 0
    already_credited: int = 0
    claims: int = 0
    skipped: bool = False
    problems: list[str] | None = None

    def summary(self) -> str:
        if self.skipped:
            return "demo data already present (demo-alice has a balance): not seeded again"
        text = f"demo data: {self.enrolled} members enrolled, {self.credited} purchases credited"
        if self.already_credited:
            text += f", {self.already_credited} already credited"
        if self.claims:
            text += f", {self.claims} claims pending for support"
        if self.problems:
            text += "; problems:\n  " + "\n  ".join(self.problems)
        return text


def seed(invoke: Invoke, now: Callable[[], datetime] | None = None) -> SeedReport:
    """Enrol the demo members and credit their purchases, through the application's routes."""
    moment = (now or (lambda: datetime.now(DEMO_TIMEZONE)))()
    partner = Identity.partner(DEMO_PARTNER)
    report = SeedReport(problems=[])
    status, _ = invoke("GET", "/members/demo-alice/balance", identity=partner)
    if status == 200:
        report.skipped = True
        return report
    for member_id, profile in DEMO_MEMBERS.items():
        status, answer = invoke("PUT", f"/members/{member_id}", identity=partner, body=dict(profile))
        if status in (200, 201):
            report.enrolled += 1
        else:
            report.problems.append(f"PUT /members/{member_id} answered {status}: {answer}")
    for purchase in demo_purchases():
        path = f"/members/{purchase.member_id}/earn"
        status, answer = invoke("POST", path, identity=partner, body=purchase.body(moment))
        if status in (200, 201):
            report.credited += 1
        elif status == 409:
            report.already_credited += 1
        else:
            report.problems.append(f"POST {path} ({purchase.transaction_id}) answered {status}: {answer}")
    for claim in demo_claims():
        path = f"/members/{claim.member_id}/claims"
        member = Identity.member(claim.member_id)
        status, answer = invoke("POST", path, identity=member, body=claim.body(moment))
        if status in (200, 201):
            report.claims += 1
        else:
            report.problems.append(f"POST {path} ({claim.transaction_id}) answered {status}: {answer}")
    return report
