"""Nothing after the commit turns a committed movement into an error (issue #6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty.http.telemetry import metrics
from tests.integration.conftest import Api, lots_of

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")


@pytest.fixture
def broken_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Metrics that cannot be published: no namespace (Powertools refuses to serialise them)."""
    monkeypatch.setattr(metrics.provider, "namespace", None)


def test_an_earn_is_answered_even_when_its_metrics_cannot_be_published(
    api: Api, enrolled: str, broken_metrics: None, member_items: Any
) -> None:
    # Given metrics that fail to publish
    # When a partner reports a purchase, then retries it
    purchase = {"transactionId": f"{enrolled}-tx", "amount": "42.00", "occurredAt": YESTERDAY}
    first = api.earn(enrolled, **purchase)
    retry = api.earn(enrolled, **purchase)

    # Then both are answered as usual, and the purchase is credited once
    assert first.status == 201
    assert retry.status == 201
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert sum(lot["remaining"] for lot in lots_of(api, enrolled)) == 42


def test_a_redemption_is_answered_even_when_its_metrics_cannot_be_published(
    api: Api, enrolled: str, broken_metrics: None
) -> None:
    assert api.earn(enrolled, amount="50.00").status == 201
    response = api.redeem(enrolled, 20, key="once")
    assert response.status == 201
    assert response.body["balance"] == 30
