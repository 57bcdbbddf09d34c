"""The expiry index finds members by their next expiry, including one due exactly at the as-of instant."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.domain.earning import Purchase
from loyalty.domain.expiry import end_of_day
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import parse_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.settings import settings
from loyalty.store import keys, members, points
from loyalty.store.due import members_due
from loyalty.store.wallet import read_wallet

PARTNER = Actor("partner", "pos-due")
RULES = parse_rules({**json.loads(default_rules_text()), "version": "due-test"})


def member_with_a_purchase(member_id: str, at: datetime) -> datetime:
    """Enrol `member_id`, credit one purchase at `at`; returns the lot's expiry."""
    profile = {"email": f"{member_id}@example.com", "name": None, "locale": "en", "emailOptIn": False}
    members.enrol_or_update(member_id, profile, actor=PARTNER, now=at)
    purchase = Purchase(Decimal("10"), "EUR", at, "store")
    result = points.earn(member_id, f"{member_id}-tx", purchase, actor=PARTNER, rules=RULES, now=at)
    assert result.expires_at is not None
    return datetime.fromisoformat(result.expires_at)


def shard_of(member_id: str) -> int:
    return int(keys.expiry_shard(member_id, settings().expiry_shards).removeprefix("EXPIRY#"))


def test_a_member_due_exactly_at_the_as_of_instant_is_found_and_one_due_later_is_not(
    dynamodb_local: str, member_id: str
) -> None:
    # Given a member whose only lot expires at a known instant
    expiry = member_with_a_purchase(member_id, datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    assert expiry == end_of_day(datetime(2028, 3, 10).date(), RULES.tz)
    snapshot = read_wallet(member_id)
    assert snapshot is not None and snapshot.wallet.next_expiry_at == expiry

    # When the due members of its shard are listed as of that very instant, and a millisecond before
    due_now = list(members_due(expiry, shard_of(member_id)))
    due_before = list(members_due(expiry - timedelta(milliseconds=1), shard_of(member_id)))

    # Then it is due exactly at its expiry, not before
    assert member_id in due_now
    assert member_id not in due_before


def test_a_member_spent_to_zero_leaves_the_index(dynamodb_local: str, member_id: str, table: Any) -> None:
    at = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    expiry = member_with_a_purchase(member_id, at)
    member = Actor("member", member_id)
    points.redeem(
        member_id, 10, idempotency_key="all", actor=member, rules=RULES, now=at + timedelta(hours=1)
    )
    assert member_id not in list(members_due(expiry + timedelta(days=1), shard_of(member_id)))
    wallet = table.get_item(Key={"pk": f"MEMBER#{member_id}", "sk": "WALLET"})["Item"]
    assert "gsi1pk" not in wallet and "gsi1sk" not in wallet and "nextExpiryAt" not in wallet
