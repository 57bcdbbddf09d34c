"""Member profiles: enrolment (profile + empty wallet, together) and profile updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from loyalty.domain.errors import MemberNotFound
from loyalty.domain.ledger import Actor
from loyalty.store import keys
from loyalty.store.models import ActorAttribute, ProfileItem, TableItem, WalletItem, bind
from loyalty.store.transact import Transaction, TransactionCancelled, aws_error_code
from loyalty.store.wallet import read_live
from loyalty.timefmt import format_instant

PROFILE_FIELDS = {"email": "email", "name": "name", "locale": "locale", "emailOptIn": "email_opt_in"}


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
    def of(cls, item: ProfileItem) -> Profile:
        return cls(
            member_id=item.member_id,
            email=item.email,
            name=item.name,
            locale=item.locale,
            email_opt_in=item.email_opt_in,
            enrolled_at=format_instant(item.enrolled_at),
            updated_at=format_instant(item.updated_at),
        )


def enrol_or_update(
    member_id: str, fields: dict[str, Any], *, actor: Actor, now: datetime
) -> tuple[Profile, bool]:
    """Enrol the member with this profile, or update the profile of an enrolled member.

    Enrolment writes the profile and an empty wallet in one transaction, so a member never
    exists without a wallet. Returns the profile and whether the member was created.
    """
    bind()
    pk = keys.member_pk(member_id)
    values = {attribute: fields.get(name) for name, attribute in PROFILE_FIELDS.items()}
    profile = ProfileItem(
        pk,
        keys.profile_sk(),
        member_id=member_id,
        enrolled_at=now,
        updated_at=now,
        enrolled_by=ActorAttribute(kind=actor.kind, id=actor.id),
        **values,  # type: ignore[arg-type]  # the request model checked each field's type
    )
    wallet = WalletItem(
        pk,
        keys.wallet_sk(),
        member_id=member_id,
        available=0,
        version=0,
        enrolled_at=now,
        last_activity_at=now,
        pages={},
        owed=0,
    )
    transaction = Transaction()
    transaction.put("profile", profile, TableItem.pk.does_not_exist())
    transaction.put("wallet", wallet, TableItem.pk.does_not_exist())
    try:
        transaction.commit()
        return Profile.of(profile), True
    except TransactionCancelled:
        return _update(member_id, values, now), False


def _update(member_id: str, values: dict[str, Any], now: datetime) -> Profile:
    """Set the profile's fields (and only those): attributes other writers own stay."""
    item = ProfileItem(keys.member_pk(member_id), keys.profile_sk())
    actions = [
        getattr(ProfileItem, attribute).remove()
        if value is None
        else getattr(ProfileItem, attribute).set(value)
        for attribute, value in values.items()
    ]
    actions.append(ProfileItem.updated_at.set(now))
    try:
        item.update(actions=actions, condition=TableItem.pk.exists())
    except UpdateError as error:
        if aws_error_code(error) == "ConditionalCheckFailedException":
            raise MemberNotFound(member_id) from None
        raise
    return Profile.of(item)


def profile_and_balance(member_id: str, now: datetime) -> tuple[Profile, int, int]:
    """The profile, the live balance and the points owed after returns (shown apart), in one Query
    (profile, wallet and lot pages are adjacent)."""
    live = read_live(member_id, now, consistent=False, with_profile=True)
    if live.read.profile is None:
        raise MemberNotFound(member_id)
    return Profile.of(live.read.profile), live.available, live.snapshot.wallet.owed


def opt_out_of_email(member_id: str, *, source: str, now: datetime) -> str | None:
    """Stop the member's emails (`emailOptIn` false) and record when (`optedOutAt`) and how
    (`optOutSource`), in one conditional update of those attributes only. Idempotent: a member
    already opted out, like one that does not exist, is left as is. Returns the member's locale
    when this call opted it out, else None (the caller does not learn which of the two it was)."""
    bind()
    item = ProfileItem(keys.member_pk(member_id), keys.profile_sk())
    actions: list[Action] = [
        ProfileItem.email_opt_in.set(False),
        ProfileItem.opted_out_at.set(now),
        ProfileItem.opt_out_source.set(source),
        ProfileItem.updated_at.set(now),
    ]
    try:
        # `== True` is the condition pynamodb writes (`emailOptIn = :true`), not a truth test.
        item.update(actions=actions, condition=ProfileItem.email_opt_in == True)  # noqa: E712
    except UpdateError as error:
        if aws_error_code(error) == "ConditionalCheckFailedException":
            return None
        raise
    return item.locale


def profile_locale(member_id: str) -> str | None:
    """The member's locale, read alone (the unsubscribe page's language); None for no such member."""
    bind()
    try:
        item = ProfileItem.get(keys.member_pk(member_id), keys.profile_sk(), attributes_to_get=["locale"])
    except ProfileItem.DoesNotExist:
        return None
    return item.locale
