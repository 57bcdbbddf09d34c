"""Member profiles: enrolment (profile + empty wallet, together) and profile updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.domain.errors import MemberNotFound
from loyalty.domain.lots import available
from loyalty.settings import settings
from loyalty.store import keys
from loyalty.store.client import dynamodb
from loyalty.store.codec import encode, from_item, to_item
from loyalty.store.records import Actor
from loyalty.store.transact import TransactionCancelled, Write, transact_write
from loyalty.store.wallet import Wallet, read_member_range, snapshot_from_items, wallet_item
from loyalty.timefmt import format_instant

PROFILE_FIELDS = ("email", "name", "locale", "emailOptIn")


@dataclass(frozen=True)
class Profile:
    member_id: str
    email: str
    name: str | None
    locale: str
    email_opt_in: bool
    enrolled_at: str
    updated_at: str

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Profile:
        return cls(
            member_id=item["memberId"],
            email=item["email"],
            name=item.get("name"),
            locale=item["locale"],
            email_opt_in=item["emailOptIn"],
            enrolled_at=item["enrolledAt"],
            updated_at=item["updatedAt"],
        )


def enrol_or_update(
    member_id: str, fields: dict[str, Any], *, actor: Actor, now: datetime
) -> tuple[Profile, bool]:
    """Enrol the member with this profile, or update the profile of an enrolled member.

    Enrolment writes the profile and an empty wallet in one transaction, so a member never
    exists without a wallet. Returns the profile and whether the member was created.
    """
    stamp = format_instant(now)
    profile = {
        **keys.profile_key(member_id),
        "memberId": member_id,
        **fields,
        "enrolledAt": stamp,
        "updatedAt": stamp,
        "enrolledBy": actor.as_dict(),
    }
    wallet = Wallet(member_id=member_id, available=0, version=0, enrolled_at=now, last_activity_at=now)
    try:
        transact_write(
            [
                Write(
                    "profile",
                    "Put",
                    {"Item": to_item(profile), "ConditionExpression": "attribute_not_exists(pk)"},
                ),
                Write(
                    "wallet",
                    "Put",
                    {"Item": wallet_item(wallet), "ConditionExpression": "attribute_not_exists(pk)"},
                ),
            ]
        )
        return Profile.from_item(profile), True
    except TransactionCancelled:
        return _update(member_id, fields, now), False


def _update(member_id: str, fields: dict[str, Any], now: datetime) -> Profile:
    names = {f"#{name}": name for name in PROFILE_FIELDS}
    values = {f":{name}": encode(fields.get(name)) for name in PROFILE_FIELDS}
    values[":updatedAt"] = encode(format_instant(now))
    assignments = ", ".join(f"#{name} = :{name}" for name in PROFILE_FIELDS)
    response = dynamodb().update_item(
        TableName=settings().table_name,
        Key=to_item(keys.profile_key(member_id)),
        UpdateExpression=f"SET {assignments}, updatedAt = :updatedAt",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
        ReturnValues="ALL_NEW",
    )
    return Profile.from_item(from_item(response["Attributes"]))


def profile_and_balance(member_id: str, now: datetime) -> tuple[Profile, int]:
    """The profile and the live balance, in one Query (profile, wallet and lot pages are adjacent)."""
    items = read_member_range(member_id, keys.PROFILE, consistent=False)
    profile = next((item for item in items if item[keys.SK] == keys.PROFILE), None)
    if profile is None:
        raise MemberNotFound(member_id)
    snapshot = snapshot_from_items(items)
    return Profile.from_item(profile), available(snapshot.lots(), now)
