"""Reminding one member of its expiring points, at most once per (member, expiry date, window)
(SPEC §4 invariant 6, §6, §7; docs/design.md, "Reminders" and "Sending a reminder").

The per-member step of the daily reminder run: read the profile and the member's reminder state
(one BatchGetItem), then the wallet and the pages expiring within the largest window (one Query);
the pure planner (`loyalty.domain.reminders.plan_reminder`) says whether an email is due and what
it holds; the keys are recorded by one conditional write BEFORE the email is sent, then SES is
called once, then the send is confirmed. The rule when the process dies between the record and
the send is at-most-once: that reminder is lost, never duplicated (the design page says why).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pynamodb.exceptions import PynamoDBException, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from loyalty import notify
from loyalty.domain.errors import ConcurrentUpdate
from loyalty.domain.reminders import ReminderKey, ReminderPlan, plan_reminder, reminder_horizon
from loyalty.domain.rules import ProgramRules
from loyalty.domain.wallet import Snapshot, due_points_read, expiry_month
from loyalty.ids import new_id
from loyalty.notify import (
    EmailRejected,
    EmailRetryLater,
    EmailUnavailable,
    InvalidRecipient,
    Recipient,
    make_token,
    notify_config,
    points_expiring,
    unsubscribe_url,
)
from loyalty.store import keys
from loyalty.store.members import Profile
from loyalty.store.models import (
    ProfileItem,
    ReminderSendingAttribute,
    ReminderStateItem,
    TableItem,
    bind,
)
from loyalty.store.transact import aws_error_code
from loyalty.store.wallet import read_expiring_by

log = logging.getLogger(__name__)

__all__ = [
    "AddressMark",
    "ReminderOutcome",
    "ReminderState",
    "ReminderStatus",
    "SkipReason",
    "mark_address_undeliverable",
    "read_reminder_state",
    "remind_member",
]

# A lost race on the reminder state (another run recorded first) reads again; the second read
# finds the keys recorded and plans nothing. More attempts only under a storm of runs.
MAX_ATTEMPTS = 4
# SES failed on the way back: it may have accepted the message. At most once: not sent again.
OUTCOME_UNKNOWN_CODES = frozenset({"ReadTimeoutError", "ConnectionClosedError", "ResponseStreamingError"})
# A reminder recorded but not confirmed after this long was cut off between record and send.
STALE_SENDING = timedelta(minutes=15)


class ReminderStatus(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


class SkipReason(StrEnum):
    NO_MEMBER = "no_member"
    OPTED_OUT = "opted_out"
    NO_ADDRESS = "no_address"
    UNDELIVERABLE = "undeliverable"
    NOTHING_DUE = "nothing_due"


class AddressMark(StrEnum):
    """What `mark_address_undeliverable` did."""

    MARKED = "marked"
    ALREADY_MARKED = "already_marked"  # the same address was marked before (a redelivered event)
    NO_MEMBER = "no_member"
    OTHER_ADDRESS = "other_address"  # the member's address is no longer (or never was) this one


@dataclass(frozen=True)
class ReminderOutcome:
    """What `remind_member` did, for the run's summary.

    `sent`: SES accepted the email (`message_id`); `skipped`: `reason` says why nothing was sent;
    `failed`: `error` is the email module's code; `retry_later` when nothing was recorded, so a
    later run (or the batch's retry) sends it, else the keys stay recorded and it is not sent again.
    `unconfirmed`: an earlier reminder was found recorded and never confirmed sent (its process
    died between the record and the send): lost, reported, not sent again."""

    member_id: str
    status: ReminderStatus
    reason: SkipReason | None = None
    plan: ReminderPlan | None = None
    message_id: str | None = None
    error: str | None = None
    retry_later: bool = False
    unconfirmed: bool = False


@dataclass(frozen=True)
class Sending:
    """The reminder being sent: recorded with the keys, removed once SES accepted it."""

    id: str
    at: datetime
    rows: int


@dataclass(frozen=True)
class ReminderState:
    """The member's reminder state as read (`version` None: no reminder was ever recorded)."""

    version: int | None
    reminded: frozenset[ReminderKey]
    last_reminded_at: datetime | None
    sending: Sending | None
    undeliverable_address: str | None

    def refuses(self, address: str) -> bool:
        """The address bounced or was refused: no reminder goes to it until the member changes it."""
        return self.undeliverable_address is not None and _same_address(self.undeliverable_address, address)

    def unconfirmed(self, now: datetime) -> bool:
        return self.sending is not None and now - self.sending.at >= STALE_SENDING


EMPTY_STATE = ReminderState(None, frozenset(), None, None, None)


def remind_member(member_id: str, as_of: datetime, *, rules: ProgramRules, now: datetime) -> ReminderOutcome:
    """Send the member the reminder due at `as_of` (the run's instant), at most once per
    (expiry date, window) — invariant 6 — or say why not.

    Skipped: no member; opted out (`emailOptIn` false); no address; the address bounced or was
    refused (until the member changes it); nothing due (`plan_reminder`: nothing pending, or too
    soon after the last reminder). Otherwise the email (rows of the plan, balance on `as_of`,
    signed unsubscribe link and one-click headers, the member's locale) is rendered, the plan's
    keys and `lastRemindedAt` are recorded by one UpdateItem conditioned on the state's version
    read, and only then is SES called. SES throttling is retried inside `send`; still throttled or
    unavailable, the record is undone (conditioned on the version it wrote), so a later run sends
    the same reminder: neither lost nor duplicated. Refused (`EmailRejected`), the keys stay
    recorded and the failure is noted; an address that cannot be written in a header is marked
    undeliverable. A process that dies between the record and the send loses that reminder
    (at-most-once): the next run finds the keys recorded and sends nothing for them.

    DynamoDB calls for a member reminded: BatchGetItem, Query, UpdateItem (record),
    UpdateItem (confirm): 4, plus one SES `SendEmail`."""
    bind()
    config = notify_config()
    program = config.program  # configuration faults surface before anything is recorded
    secrets = config.unsubscribe_secrets
    _ = config.sender
    tz = rules.tz
    today = as_of.astimezone(tz).date()
    for _attempt in range(MAX_ATTEMPTS):
        profile, state = _read_profile_and_state(member_id)
        # Reported once: the run that finds it closes it (another run's close wins: not reported here).
        unconfirmed = state.unconfirmed(now) and _close_unconfirmed(member_id, state)
        if profile is None:
            return _skipped(member_id, SkipReason.NO_MEMBER, unconfirmed)
        if not profile.email_opt_in:
            return _skipped(member_id, SkipReason.OPTED_OUT, unconfirmed)
        address = (profile.email or "").strip()
        if not address:
            return _skipped(member_id, SkipReason.NO_ADDRESS, unconfirmed)
        if state.refuses(address):
            return _skipped(member_id, SkipReason.UNDELIVERABLE, unconfirmed)
        snapshot = _read_expiring(member_id, as_of, rules)
        if snapshot is None:
            return _skipped(member_id, SkipReason.NO_MEMBER, unconfirmed)
        plan = plan_reminder(
            as_of,
            rules,
            expiring=_expiring(snapshot),
            reminded=state.reminded,
            last_reminded_at=state.last_reminded_at,
        )
        if plan is None:
            return _skipped(member_id, SkipReason.NOTHING_DUE, unconfirmed)
        # every page that can be due at as-of was read (the horizon is later): no reading on
        balance = snapshot.wallet.available - due_points_read(snapshot, as_of)
        link = unsubscribe_url(
            program.links_base_url,
            make_token(member_id, secret=secrets, now=now, ttl=config.unsubscribe_ttl),
        )
        try:
            email = points_expiring(
                Recipient(address, profile.name, profile.locale, member_id=member_id),
                program,
                rows=[(row.expires_on, row.points) for row in plan.rows],
                balance=max(balance, 0),
                unsubscribe_url=link,
                as_of=today,
            )
        except InvalidRecipient as error:
            if not _mark_undeliverable(member_id, state, address, error.code, now):
                continue
            return ReminderOutcome(member_id, ReminderStatus.FAILED, plan=plan, error=error.code)
        sending = Sending(new_id("rem", now), now, len(plan.rows))
        version = _record(member_id, state, plan, as_of=as_of, today=today, sending=sending)
        if version is None:
            continue  # another run recorded first: read again (it finds the keys recorded)
        outcome = _send(member_id, email, plan, state, version, sending, address=address, now=now)
        return ReminderOutcome(
            member_id,
            outcome.status,
            plan=plan,
            message_id=outcome.message_id,
            error=outcome.error,
            retry_later=outcome.retry_later,
            unconfirmed=unconfirmed,
        )
    raise ConcurrentUpdate(f"member {member_id}: the reminder state kept changing under this run")


@dataclass(frozen=True)
class _Sent:
    status: ReminderStatus
    message_id: str | None = None
    error: str | None = None
    retry_later: bool = False


def _send(
    member_id: str,
    email: notify.Email,
    plan: ReminderPlan,
    state: ReminderState,
    version: int,
    sending: Sending,
    *,
    address: str,
    now: datetime,
) -> _Sent:
    # Anything not caught here (a crash, a timeout of the function) leaves the record in place:
    # the reminder is lost, never sent twice.
    try:
        message_id = notify.send(email)
    except EmailRetryLater as error:
        code = getattr(error, "code", type(error).__name__)
        if isinstance(error, EmailUnavailable) and code in OUTCOME_UNKNOWN_CODES:
            _note_failure(member_id, version, sending, code, now=now)
            return _Sent(ReminderStatus.FAILED, error=code)
        _undo(member_id, state, version, sending)
        return _Sent(ReminderStatus.FAILED, error=code, retry_later=True)
    except EmailRejected as error:
        undeliverable = address if isinstance(error, InvalidRecipient) else None
        _note_failure(member_id, version, sending, error.code, now=now, undeliverable=undeliverable)
        return _Sent(ReminderStatus.FAILED, error=error.code)
    _confirm(member_id, version, sending, message_id, now)
    return _Sent(ReminderStatus.SENT, message_id=message_id)


def mark_address_undeliverable(member_id: str, address: str, reason: str, *, now: datetime) -> AddressMark:
    """SES reported that `address` bounced for good or complained (`reason`, e.g.
    `bounce:NoEmail`, `complaint:abuse`): no reminder goes to it again until the member changes it.

    Only the member's current address is marked: a bounce of an address the member has since
    replaced changes nothing (`other_address`), so it never blocks the new one. An unknown member
    (deleted, or an email of another stack's tag) is `no_member` and nothing is written: a reminder
    state without a profile would be an orphan. An address already marked keeps its first mark
    (`already_marked`): EventBridge may deliver an event twice, and a second bounce tells nothing new.

    One BatchGetItem, strongly consistent (profile and reminder state), then one UpdateItem of the
    state conditioned on its version (`attribute_not_exists` the first time), so a reminder being
    recorded at the same instant is not overwritten: of the two, the loser reads again. A profile
    changed between the read and the write leaves a mark on the old address, which refuses nothing
    (`ReminderState.refuses` compares with the profile's address at each run)."""
    bind()
    for _attempt in range(MAX_ATTEMPTS):
        profile, state = _read_profile_and_state(member_id)
        if profile is None:
            return AddressMark.NO_MEMBER
        current = (profile.email or "").strip()
        if not current or not _same_address(current, address):
            return AddressMark.OTHER_ADDRESS
        if state.refuses(current):
            return AddressMark.ALREADY_MARKED
        if _mark_undeliverable(member_id, state, current, reason, now):
            return AddressMark.MARKED
    raise ConcurrentUpdate(f"member {member_id}: the reminder state kept changing while marking its address")


# ---- reads


def read_reminder_state(member_id: str) -> ReminderState:
    """The member's reminder state, strongly consistent (EMPTY when none was ever recorded)."""
    bind()
    try:
        item = ReminderStateItem.get(
            keys.member_pk(member_id), keys.reminder_state_sk(), consistent_read=True
        )
    except ReminderStateItem.DoesNotExist:
        return EMPTY_STATE
    return _state_of(item)


def _read_profile_and_state(member_id: str) -> tuple[Profile | None, ReminderState]:
    """Profile and reminder state in one BatchGetItem, strongly consistent (the state's version
    conditions the record)."""
    pk = keys.member_pk(member_id)
    profile: Profile | None = None
    state = EMPTY_STATE
    for item in TableItem.batch_get(
        [(pk, keys.profile_sk()), (pk, keys.reminder_state_sk())], consistent_read=True
    ):
        if isinstance(item, ProfileItem):
            profile = Profile.of(item)
        elif isinstance(item, ReminderStateItem):
            state = _state_of(item)
    return profile, state


def _read_expiring(member_id: str, as_of: datetime, rules: ProgramRules) -> Snapshot | None:
    """The wallet and the pages whose lots can expire within the largest window: one Query of the
    wallet, the last request and the dated pages through the month of `as_of` + the largest window
    (local date); the ACTIVITY pages too (a second Query) when the wallet's activity expiry falls
    in that horizon. Eventually consistent: a reminder does not need the last millisecond, and the
    record's condition is on the reminder state, not on the wallet. None: no wallet."""
    horizon = reminder_horizon(as_of, rules)
    through_month = expiry_month(horizon, rules.tz)
    assert through_month is not None
    return read_expiring_by(member_id, through_month, horizon, consistent=False)


def _expiring(snapshot: Snapshot) -> list[tuple[datetime, int]]:
    return [
        (lot.expires_at, lot.remaining)
        for lot in snapshot.lots()
        if lot.expires_at is not None and lot.remaining > 0
    ]


# ---- writes: each conditioned on the state's version


def _record(
    member_id: str,
    state: ReminderState,
    plan: ReminderPlan,
    *,
    as_of: datetime,
    today: date,
    sending: Sending,
) -> int | None:
    """Record the plan's keys, `lastRemindedAt` and the reminder being sent, if the state is still
    the one read (its version; absent when never written). Keys of dates before today are pruned:
    the planner never looks at them again. The new version, or None when another run wrote first."""
    kept = {key for key in state.reminded if key.expires_on >= today} | set(plan.keys)
    version = (state.version or 0) + 1
    actions: list[Action] = [
        ReminderStateItem.kind.set(ReminderStateItem),
        ReminderStateItem.member_id.set(member_id),
        ReminderStateItem.version.set(version),
        _set_reminded(kept),
        ReminderStateItem.last_reminded_at.set(as_of),
        ReminderStateItem.sending.set(_sending_attribute(sending)),
    ]
    return version if _update(member_id, actions, _version_is(state.version)) else None


def _undo(member_id: str, before: ReminderState, version: int, sending: Sending) -> None:
    """SES did not take the email: put back the keys and `lastRemindedAt` as they were read, so a
    later run plans the same reminder. Conditioned on the version `_record` wrote; another write
    since then (none is expected: the record holds the member) wins, and the reminder is lost."""
    actions: list[Action] = [
        ReminderStateItem.version.set(version + 1),
        _set_reminded(before.reminded),
        ReminderStateItem.sending.remove(),
        ReminderStateItem.last_reminded_at.set(before.last_reminded_at)
        if before.last_reminded_at is not None
        else ReminderStateItem.last_reminded_at.remove(),
    ]
    _update(member_id, actions, _sending_is(version, sending))


def _confirm(member_id: str, version: int, sending: Sending, message_id: str, now: datetime) -> None:
    """SES accepted the email: the reminder is no longer being sent. The email is out whatever
    this write does: a DynamoDB failure here is logged, never raised (a retry of the member would
    find the keys recorded and send nothing; the `sending` left reads as unconfirmed)."""
    actions: list[Action] = [
        ReminderStateItem.sending.remove(),
        ReminderStateItem.last_sent_at.set(now),
        ReminderStateItem.last_message_id.set(message_id),
    ]
    try:
        _update(member_id, actions, _sending_is(version, sending))
    except PynamoDBException as error:
        log.warning("reminder sent but not confirmed (%s): %s", type(error).__name__, aws_error_code(error))


def _note_failure(
    member_id: str,
    version: int,
    sending: Sending,
    code: str,
    *,
    now: datetime,
    undeliverable: str | None = None,
) -> None:
    """The email was refused (or its fate is unknown): the keys stay recorded, not sent again."""
    actions: list[Action] = [
        ReminderStateItem.sending.remove(),
        ReminderStateItem.last_failure.set(code),
    ]
    if undeliverable is not None:
        actions += _undeliverable_actions(undeliverable, code, now)
    _update(member_id, actions, _sending_is(version, sending))


def _close_unconfirmed(member_id: str, state: ReminderState) -> bool:
    """An earlier reminder recorded and never confirmed sent: the process died between the record
    and the send. Forget the `sending` (its keys stay recorded: not sent again) and note it, so
    that it is reported by one run only. False when another write got there first."""
    assert state.version is not None and state.sending is not None
    actions: list[Action] = [
        ReminderStateItem.sending.remove(),
        ReminderStateItem.last_failure.set("unconfirmed"),
    ]
    return _update(member_id, actions, _sending_is(state.version, state.sending))


def _mark_undeliverable(
    member_id: str, state: ReminderState, address: str, reason: str, now: datetime
) -> bool:
    """No reminder to `address` until the member changes it (nothing was recorded or sent)."""
    actions: list[Action] = [
        ReminderStateItem.kind.set(ReminderStateItem),
        ReminderStateItem.member_id.set(member_id),
        ReminderStateItem.version.set((state.version or 0) + 1),
        *_undeliverable_actions(address, reason, now),
    ]
    return _update(member_id, actions, _version_is(state.version))


def _undeliverable_actions(address: str, reason: str, now: datetime) -> list[Action]:
    return [
        ReminderStateItem.undeliverable_address.set(address),
        ReminderStateItem.undeliverable_at.set(now),
        ReminderStateItem.undeliverable_reason.set(reason),
    ]


def _version_is(version: int | None) -> Condition:
    condition: Condition = (
        ReminderStateItem.version.does_not_exist()
        if version is None
        else ReminderStateItem.version == version
    )
    return condition


def _sending_is(version: int, sending: Sending) -> Condition:
    same: Condition = (ReminderStateItem.version == version) & (ReminderStateItem.sending.id == sending.id)
    return same


def _update(member_id: str, actions: list[Action], condition: Condition) -> bool:
    """One UpdateItem of the member's reminder state; False when its condition failed."""
    item = ReminderStateItem(keys.member_pk(member_id), keys.reminder_state_sk())
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as error:
        if aws_error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


# ---- items <-> state


def _state_of(item: ReminderStateItem) -> ReminderState:
    sending = item.sending
    return ReminderState(
        version=int(item.version),
        reminded=frozenset(_decode_keys(str(text) for text in item.reminded or [])),
        last_reminded_at=item.last_reminded_at,
        sending=Sending(sending.id, sending.at, int(sending.rows)) if sending is not None else None,
        undeliverable_address=item.undeliverable_address,
    )


def _set_reminded(reminded: Iterable[ReminderKey]) -> Action:
    # "YYYYMMDD:<days>": ~14 bytes a key, so a daily shopper's 31 dates in 2 windows stay under 1 KB.
    attribute: Any = ReminderStateItem.reminded  # typed as a list of attributes, holds strings
    action: Action = attribute.set(sorted(f"{key.expires_on:%Y%m%d}:{key.window}" for key in reminded))
    return action


def _decode_keys(encoded: Iterable[str]) -> list[ReminderKey]:
    decoded = []
    for text in encoded:
        day, _, window = text.partition(":")
        decoded.append(ReminderKey(date(int(day[:4]), int(day[4:6]), int(day[6:8])), int(window)))
    return decoded


def _sending_attribute(sending: Sending) -> ReminderSendingAttribute:
    return ReminderSendingAttribute(id=sending.id, at=sending.at, rows=sending.rows)


def _same_address(first: str, second: str) -> bool:
    return first.strip().casefold() == second.strip().casefold()


def _skipped(member_id: str, reason: SkipReason, unconfirmed: bool) -> ReminderOutcome:
    return ReminderOutcome(member_id, ReminderStatus.SKIPPED, reason=reason, unconfirmed=unconfirmed)
