"""Transfers as a pure step (loyalty.domain.transfers): the rules and their refusals, the receiver's
lots under every expiry policy, points owed, same-day top-ups and the rolling day. Time passed in.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.earning import Purchase, quote_points
from loyalty.domain.errors import (
    InsufficientPoints,
    MemberClosed,
    RecipientClosed,
    RecipientNotFound,
    TransferAboveMaximum,
    TransferBelowMinimum,
    TransferDailyLimitReached,
    TransfersDisabled,
    TransferToSelf,
)
from loyalty.domain.expiry import end_of_day
from loyalty.domain.ledger import Actor, EntryType, LotMovement
from loyalty.domain.lots import Lot
from loyalty.domain.movements import NewLot, TopUp, credit_purchase
from loyalty.domain.rules import ProgramRules, RulesError, default_rules, parse_rules
from loyalty.domain.rules_source import default_rules_text
from loyalty.domain.transfers import (
    TRANSFER_WINDOW,
    Transfer,
    TransferIds,
    check_daily_limit,
    check_request,
    credit_lots,
    send_points,
    sent_in_window,
    transfer_points,
)
from loyalty.domain.wallet import (
    LotPage,
    NeedMorePages,
    Snapshot,
    TransferSent,
    WalletState,
    due_points,
    page_key_of_lot,
)

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)  # noon in Paris
PARIS = default_rules().tz
SENDER = Actor("member", "m-s")
IDS = TransferIds("trf_1", "led_out", "led_in")
RULES = default_rules()  # rolling 24 months; transfers: 100 to 5,000, 10,000 a rolling day


def rules_with(expiry: dict[str, Any] | None = None, **transfers: Any) -> ProgramRules:
    document = json.loads(default_rules_text())
    document["transfers"] = {**document["transfers"], **transfers}
    if expiry is not None:
        document["expiry"] = expiry
    return parse_rules(document)


def wallet(member_id: str, **fields: Any) -> WalletState:
    base: dict[str, Any] = {
        "member_id": member_id,
        "available": 0,
        "version": 3,
        "enrolled_at": NOW - timedelta(days=500),
        "last_activity_at": NOW - timedelta(days=100),
    }
    return WalletState(**{**base, **fields})


def lot(lot_id: str, remaining: int, expires_at: datetime | None, kind: str = "earn") -> Lot:
    return Lot(lot_id, remaining, remaining, NOW - timedelta(days=100), expires_at, kind, "v1")


def ends(day: date) -> datetime:
    """The instant a Paris day ends: a dated lot's `expires_at`."""
    return end_of_day(day, PARIS)


def sender_with(*lots: Lot, **fields: Any) -> Snapshot:
    pages: dict[str, dict[str, Lot]] = {}
    for item in lots:
        pages.setdefault(page_key_of_lot(item.lot_id), {})[item.lot_id] = item
    directory = {key: sum(x.remaining for x in page.values()) for key, page in pages.items()}
    state = wallet("m-s", available=sum(x.remaining for x in lots), pages=directory, **fields)
    return Snapshot(state, tuple(LotPage(key, pages[key]) for key in sorted(pages)), complete=True)


def receiver(**fields: Any) -> WalletState:
    return wallet("m-r", **fields)


RICH = sender_with(lot("20280614-20260614-e", 20_000, ends(date(2028, 6, 14))))


def move(
    sender: Snapshot = RICH,
    points: int = 300,
    *,
    to: WalletState | None = None,
    to_member_id: str = "m-r",
    rules: ProgramRules = RULES,
    now: datetime = NOW,
    **options: Any,
) -> Transfer:
    return transfer_points(
        sender,
        to_member_id,
        receiver() if to is None else to,
        points,
        rules=rules,
        actor=SENDER,
        now=now,
        ids=IDS,
        **options,
    )


# ---- the rules document


def test_transfers_are_on_with_no_cap_per_transfer_when_a_document_does_not_say() -> None:
    document = json.loads(default_rules_text())
    document["transfers"] = {"minPoints": 10, "maxPointsPerDay": 500}

    transfers = parse_rules(document).transfers

    assert (transfers.enabled, transfers.max_points) == (True, None)


@pytest.mark.parametrize(
    ("transfers", "path", "reason"),
    [
        ({"maxPoints": 50}, "transfers.maxPoints", "at least minPoints (100)"),
        (
            {"maxPoints": 6000, "maxPointsPerDay": 5000},
            "transfers.maxPointsPerDay",
            "at least maxPoints (6000)",
        ),
        ({"enabled": "yes"}, "transfers.enabled", "true or false"),
        ({"maxPoints": 0}, "transfers.maxPoints", "at least 1"),
    ],
    ids=["maximum-below-minimum", "daily-below-maximum", "enabled-not-boolean", "zero-maximum"],
)
def test_inconsistent_transfer_limits_are_refused_at_load(
    transfers: dict[str, Any], path: str, reason: str
) -> None:
    document = json.loads(default_rules_text())
    document["transfers"] = {**document["transfers"], **transfers}

    with pytest.raises(RulesError) as refused:
        parse_rules(document)

    problems = dict(refused.value.problems)
    assert list(problems) == [path]
    assert reason in problems[path]


# ---- refusals that need no read


def test_a_transfer_is_refused_when_the_rules_turn_transfers_off() -> None:
    with pytest.raises(TransfersDisabled):
        check_request(rules_with(enabled=False).transfers, "m-s", "m-r", 300)


def test_a_transfer_to_oneself_is_refused_naming_to_member_id() -> None:
    with pytest.raises(TransferToSelf) as refused:
        check_request(RULES.transfers, "m-s", "m-s", 300)
    assert refused.value.details["fields"] == [
        {"field": "toMemberId", "in": "body", "reason": "is the sender itself: points go to another member"}
    ]


@pytest.mark.parametrize(("points", "allowed"), [(99, False), (100, True), (5000, True), (5001, False)])
def test_the_minimum_and_maximum_per_transfer_are_inclusive(points: int, allowed: bool) -> None:
    if allowed:
        check_request(RULES.transfers, "m-s", "m-r", points)
        return
    with pytest.raises((TransferBelowMinimum, TransferAboveMaximum)) as refused:
        check_request(RULES.transfers, "m-s", "m-r", points)
    assert refused.value.field == "points"
    assert refused.value.details.get("minPoints", refused.value.details.get("maxPoints")) in (100, 5000)


def test_without_a_maximum_per_transfer_only_the_daily_maximum_caps_a_transfer() -> None:
    check_request(rules_with(maxPoints=None).transfers, "m-s", "m-r", 10_000)


def test_disabled_transfers_are_refused_before_anything_else() -> None:
    with pytest.raises(TransfersDisabled):
        move(points=1, to_member_id="m-s", rules=rules_with(enabled=False))


# ---- the receiver and the sender's state


def test_a_transfer_to_an_unknown_member_is_refused() -> None:
    with pytest.raises(RecipientNotFound) as refused:
        transfer_points(RICH, "m-x", None, 300, rules=RULES, actor=SENDER, now=NOW, ids=IDS)
    assert refused.value.field == "toMemberId"


def test_a_transfer_to_a_closed_member_is_refused() -> None:
    with pytest.raises(RecipientClosed):
        move(to=receiver(closed_at=NOW - timedelta(days=1)))


def test_a_closed_member_sends_nothing() -> None:
    closed = sender_with(*RICH.lots(), closed_at=NOW - timedelta(days=1))
    with pytest.raises(MemberClosed):
        move(closed)


def test_a_wrong_receiver_is_told_before_the_senders_state() -> None:
    # Given a sender with too few points, When it transfers to an unknown member
    poor = sender_with(lot("20280614-20260614-e", 50, ends(date(2028, 6, 14))))

    # Then the request's own fault comes first
    with pytest.raises(RecipientNotFound):
        transfer_points(poor, "m-x", None, 300, rules=RULES, actor=SENDER, now=NOW, ids=IDS)


def test_a_transfer_of_more_than_the_live_points_is_refused() -> None:
    expired = lot("20260601-20240601-e", 500, ends(date(2026, 6, 1)))
    live = lot("20280614-20260614-e", 200, ends(date(2028, 6, 14)))
    state = sender_with(expired, live, next_expiry_at=expired.expires_at)

    with pytest.raises(InsufficientPoints) as refused:
        move(state, 300)

    assert refused.value.details == {"available": 200, "requested": 300}


def test_a_sender_whose_first_pages_do_not_hold_the_points_needs_more_pages() -> None:
    first = lot("20260801-20240801-e", 100, ends(date(2026, 8, 1)))
    partial = Snapshot(
        wallet("m-s", available=400, pages={"2026-08/2024-08": 100, "2027-01/2025-01": 300}),
        (LotPage("2026-08/2024-08", {first.lot_id: first}),),
        complete=False,
    )

    with pytest.raises(NeedMorePages):
        move(partial, 300)


# ---- the rolling day


def test_the_rolling_day_holds_the_transfers_of_the_last_24_hours_only() -> None:
    sent = (
        TransferSent(NOW - TRANSFER_WINDOW, 100),  # exactly 24 hours ago: out
        TransferSent(NOW - TRANSFER_WINDOW + timedelta(seconds=1), 200),
        TransferSent(NOW + timedelta(seconds=2), 300),  # another instance's clock a little ahead
    )

    assert [transfer.points for transfer in sent_in_window(sent, NOW)] == [200, 300]


def test_a_transfer_within_the_daily_maximum_is_kept_with_the_last_24_hours() -> None:
    state = wallet(
        "m-s",
        transfers_sent=(
            TransferSent(NOW - timedelta(hours=30), 5000),
            TransferSent(NOW - timedelta(hours=2), 4000),
        ),
    )

    kept = check_daily_limit(RULES.transfers, state, 6000, NOW)

    assert kept == (TransferSent(NOW - timedelta(hours=2), 4000), TransferSent(NOW, 6000))


def test_over_the_daily_maximum_the_refusal_says_what_is_left_and_when_the_request_fits() -> None:
    # Given 5,000 sent 20 hours ago and 4,000 two hours ago (10,000 allowed a rolling day)
    state = wallet(
        "m-s",
        transfers_sent=(
            TransferSent(NOW - timedelta(hours=20), 5000),
            TransferSent(NOW - timedelta(hours=2), 4000),
        ),
    )

    # When 1,500 more are asked for
    with pytest.raises(TransferDailyLimitReached) as refused:
        check_daily_limit(RULES.transfers, state, 1500, NOW)

    # Then 1,000 are left, and 1,500 fit once the 5,000 leave the window, 4 hours from now
    assert refused.value.details == {
        "maxPointsPerDay": 10000,
        "sentInLast24Hours": 9000,
        "remaining": 1000,
        "requested": 1500,
        "availableAt": "2026-06-15T14:00:00.000Z",
    }


def test_a_request_larger_than_the_daily_maximum_itself_never_fits() -> None:
    rules = rules_with(maxPoints=None)
    with pytest.raises(TransferDailyLimitReached) as refused:
        check_daily_limit(rules.transfers, wallet("m-s"), 10_001, NOW)
    assert "availableAt" not in refused.value.details
    assert refused.value.details["remaining"] == 10_000


def test_the_sender_wallet_keeps_the_transfer_for_its_daily_maximum() -> None:
    old = TransferSent(NOW - timedelta(days=2), 100)
    state = sender_with(*RICH.lots(), transfers_sent=(old,))

    after = move(state, 300).sent.after

    assert after.transfers_sent == (TransferSent(NOW, 300),)


# ---- the sender's side


def test_the_sender_gives_its_soonest_expiring_points_and_records_a_linked_entry() -> None:
    soon = lot("20260901-20240901-e", 100, ends(date(2026, 9, 1)))
    later = lot("20280101-20260101-e", 500, ends(date(2028, 1, 1)))

    result = move(sender_with(later, soon), 300, details={"idempotencyKey": "k-1"})

    assert [(take.lot_id, take.points) for take in result.taken] == [(soon.lot_id, 100), (later.lot_id, 200)]
    entry = result.sent.entry
    assert (entry.entry_id, entry.type, entry.points, entry.balance_after) == (
        "led_out",
        EntryType.TRANSFER_OUT,
        -300,
        300,
    )
    assert entry.details == {"transferId": "trf_1", "toMemberId": "m-r", "idempotencyKey": "k-1"}
    assert entry.actor == SENDER
    assert result.sent.after.available == 300


# ---- the receiver's lots keep the dates taken


def test_each_distinct_expiry_date_taken_becomes_one_receiver_lot_issued_today() -> None:
    soon = lot("20260901-20240901-e", 100, ends(date(2026, 9, 1)))
    same_day = lot("20260901-20240902-c", 50, ends(date(2026, 9, 1)), kind="claim")
    later = lot("20280101-20260101-e", 500, ends(date(2028, 1, 1)))

    result = move(sender_with(later, soon, same_day), 300)

    assert [(item.lot_id, item.original, item.expires_at, item.source_kind) for item in result.credited] == [
        ("20260901-20260615-t", 150, soon.expires_at, "transfer"),
        ("20280101-20260615-t", 150, later.expires_at, "transfer"),
    ]
    assert all(item.earned_at == NOW and item.rules_version == RULES.version for item in result.credited)


def test_points_that_never_expire_arrive_in_a_never_expiring_lot_after_dated_ones() -> None:
    dated = lot("20280101-20260101-e", 100, ends(date(2028, 1, 1)))
    never = lot("never-20260101-e", 500, None)

    result = move(sender_with(dated, never), 300)

    assert [(item.lot_id, item.original, item.expires_at) for item in result.credited] == [
        ("20280101-20260615-t", 100, dated.expires_at),
        ("never-20260615-t", 200, None),
    ]
    assert [change.key for change in result.received.pages] == ["2028-01/2026-06", "NEVER/2026-06"]


def test_an_activity_lot_of_the_sender_arrives_dated_by_the_senders_activity_expiry() -> None:
    # Given a sender under inactivity whose points follow its activity, expiring 15 February 2027
    rules = rules_with({"policy": "inactivity", "months": 12})
    expiry = ends(date(2027, 2, 15))
    state = sender_with(
        lot("activity-20260215-e", 500, expiry), activity_expires_at=expiry, next_expiry_at=expiry
    )

    # When it transfers 300 points
    result = move(state, 300, rules=rules)

    # Then the receiver's lot has that date of its own, in that month's page (not ACTIVITY)
    (credited,) = result.credited
    assert (credited.lot_id, credited.expires_at) == ("20270215-20260615-t", expiry)
    assert [change.key for change in result.received.pages] == ["2027-02/2026-06"]
    assert result.received.after.first_days == {"2027-02/2026-06": 15}
    # And sending was the sender's activity: its remaining points last a year from now
    assert result.sent.after.activity_expires_at == ends(date(2027, 6, 15))


def test_two_instants_of_one_date_make_one_lot_that_keeps_the_sooner() -> None:
    # (lots written under another timezone end at another hour of the same date)
    taken = [
        LotMovement("20270215-20260101-e", 100, ends(date(2027, 2, 15)), "2026-01", "2027-02"),
        LotMovement(
            "20270215-20260102-e", 50, ends(date(2027, 2, 15)) - timedelta(hours=3), "2026-01", "2027-02"
        ),
    ]

    (credited,) = credit_lots(taken, 0, rules=RULES, now=NOW)

    assert (credited.original, credited.expires_at) == (150, ends(date(2027, 2, 15)) - timedelta(hours=3))


def test_a_transfer_just_before_and_just_after_midnight_in_paris_is_issued_on_the_local_day() -> None:
    before = move(now=datetime(2026, 6, 15, 21, 30, tzinfo=UTC)).credited[0].lot_id  # 23:30 in Paris
    after = move(now=datetime(2026, 6, 15, 22, 30, tzinfo=UTC)).credited[0].lot_id  # 00:30 in Paris

    assert (before, after) == ("20280614-20260615-t", "20280614-20260616-t")


@pytest.mark.parametrize(
    ("expiry", "expiry_date"),
    [
        ({"policy": "rolling", "months": 12}, date(2026, 12, 1)),
        ({"policy": "rolling", "months": 12, "endOfMonth": True}, date(2026, 12, 31)),
        ({"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1}, date(2026, 12, 31)),
        ({"policy": "anniversary", "years": 1}, date(2026, 7, 26)),
        ({"policy": "inactivity", "months": 12}, date(2026, 12, 1)),
        ({"policy": "none"}, None),
    ],
    ids=["rolling", "rolling-end-of-month", "fixed-date", "anniversary", "inactivity", "none"],
)
def test_under_every_policy_the_receivers_lot_expires_exactly_when_the_senders_did(
    expiry: dict[str, Any], expiry_date: date | None
) -> None:
    # Given a sender enrolled 27 July 2025 whose purchase of 1 December 2025 was credited under the policy
    rules = rules_with(expiry)
    bought = datetime(2025, 12, 1, 10, 0, tzinfo=UTC)
    start = wallet("m-s", enrolled_at=datetime(2025, 7, 27, 9, tzinfo=UTC), last_activity_at=bought)
    purchase = Purchase(Decimal("400"), "EUR", bought, "store")
    credit = credit_purchase(
        start,
        purchase,
        quote_points(rules, purchase),
        transaction_id="t",
        rules=rules,
        actor=SENDER,
        now=bought,
        entry_id="led_0",
    )
    assert credit.lot is not None
    sent = credit.lot  # under inactivity, an ACTIVITY lot: its expiry is the wallet's activity expiry
    state = Snapshot(credit.change.after, (LotPage(page_key_of_lot(sent.lot_id), {sent.lot_id: sent}),), True)

    # When it transfers 300 points six months later, to a receiver enrolled and active today
    result = move(state, 300, rules=rules, to=receiver(enrolled_at=NOW, last_activity_at=NOW))

    # Then the receiver's lot expires at the sender's instant, with a date of its own when there is one
    (credited,) = result.credited
    assert credited.expires_at == sent.expires_at
    head = "never" if expiry_date is None else f"{expiry_date:%Y%m%d}"
    assert credited.lot_id == f"{head}-20260615-t"
    assert credited.expires_at == (None if expiry_date is None else ends(expiry_date))
    # And it never follows the receiver's activity: not an ACTIVITY lot, whatever the policy
    assert not credited.lot_id.startswith("activity")
    assert result.received.after.activity_expires_at is None
    assert result.received.after.next_expiry_at == credited.expires_at


# ---- the receiver's pages, balance and entry


def test_a_first_transfer_in_opens_the_receivers_page() -> None:
    result = move(points=300)

    (page,) = result.received.pages
    assert (page.key, page.exists) == ("2028-06/2026-06", False)
    assert page.writes == (NewLot(result.credited[0]),)
    assert result.received.after.pages == {"2028-06/2026-06": 300}
    assert result.received.after.first_days == {"2028-06/2026-06": 14}


def test_a_second_transfer_in_the_same_day_with_the_same_date_tops_up_the_lot_read_in_its_page() -> None:
    # Given a receiver that got 300 points of that date earlier today
    first = move(points=300)
    existing = first.credited[0]
    after_first = first.received.after
    page = LotPage("2028-06/2026-06", {existing.lot_id: existing})

    # When a second transfer brings points of the same date, its page read with the wallet
    second = move(points=200, to=after_first, receiver_pages={page.key: page})

    # Then the lot is topped up, and the directory counts both
    (change,) = second.received.pages
    assert change.exists and change.writes == (TopUp(existing.lot_id, 200),)
    assert second.received.after.pages == {"2028-06/2026-06": 500}
    assert second.received.after.available == 500


def test_a_transfer_into_an_existing_page_without_that_lot_adds_it() -> None:
    own = lot("20280610-20260610-e", 40, ends(date(2028, 6, 10)))
    state = receiver(available=40, pages={"2028-06/2026-06": 40}, first_days={"2028-06/2026-06": 10})
    page = LotPage("2028-06/2026-06", {own.lot_id: own})

    result = move(points=300, to=state, receiver_pages={page.key: page})

    (change,) = result.received.pages
    assert change.exists and change.writes == (NewLot(result.credited[0]),)
    assert result.received.after.first_days == {"2028-06/2026-06": 10}
    assert result.received.after.pages == {"2028-06/2026-06": 340}


def test_the_receivers_next_expiry_is_the_sooner_of_its_own_and_the_lots_received() -> None:
    own_next = ends(date(2027, 1, 1))
    sooner = move(to=receiver(next_expiry_at=ends(date(2029, 1, 1))))
    later = move(to=receiver(next_expiry_at=own_next))

    assert sooner.received.after.next_expiry_at == ends(date(2028, 6, 14))
    assert later.received.after.next_expiry_at == own_next


def test_receiving_is_not_the_receivers_activity_and_leaves_its_last_lot() -> None:
    state = receiver(last_lot_id="20280601-20260601-e", activity_expires_at=ends(date(2026, 9, 1)))

    after = move(to=state).received.after

    assert after.last_activity_at == state.last_activity_at
    assert after.activity_expires_at == state.activity_expires_at
    assert after.last_lot_id == state.last_lot_id


def test_the_receivers_entry_is_linked_to_the_senders_and_records_its_live_balance() -> None:
    state = receiver(available=70, version=8)

    result = move(points=300, to=state, receiver_due=20)

    entry = result.received.entry
    assert (entry.entry_id, entry.type, entry.points, entry.balance_after) == (
        "led_in",
        EntryType.TRANSFER_IN,
        300,
        350,
    )
    assert entry.details == {"transferId": "trf_1", "fromMemberId": "m-s"}
    assert entry.actor == SENDER and entry.rules_version == RULES.version
    assert [(line.lot_id, line.points, line.issue_month, line.expiry_month) for line in entry.lots] == [
        ("20280614-20260615-t", 300, "2026-06", "2028-06")
    ]
    assert (result.received.sequence, result.received.after.available) == (9, 370)


# ---- points the receiver owes


def test_points_owed_are_settled_first_from_the_soonest_expiring_points() -> None:
    soon = lot("20260901-20240901-e", 100, ends(date(2026, 9, 1)))
    later = lot("20280101-20260101-e", 500, ends(date(2028, 1, 1)))

    result = move(sender_with(soon, later), 300, to=receiver(owed=150))

    assert [(item.lot_id, item.original) for item in result.credited] == [("20280101-20260615-t", 150)]
    after = result.received.after
    assert (after.owed, after.available) == (0, 150)
    entry = result.received.entry
    assert (entry.points, entry.balance_after) == (150, 150)
    assert entry.details == {
        "transferId": "trf_1",
        "fromMemberId": "m-s",
        "transferred": 300,
        "owedSettled": 150,
    }
    # And the sender gave all 300
    assert result.sent.after.available == 300


def test_a_receiver_owing_more_than_the_transfer_gets_no_lot_and_owes_less() -> None:
    result = move(points=300, to=receiver(owed=500))

    assert result.credited == () and result.received.pages == ()
    assert (result.received.after.owed, result.received.after.available) == (200, 0)
    assert (result.received.entry.points, result.received.entry.lots) == (0, ())


def test_points_owed_exactly_equal_to_a_whole_date_remove_that_lot_only() -> None:
    soon = lot("20260901-20240901-e", 100, ends(date(2026, 9, 1)))
    later = lot("20280101-20260101-e", 500, ends(date(2028, 1, 1)))

    result = move(sender_with(soon, later), 300, to=receiver(owed=100))

    assert [(item.lot_id, item.original) for item in result.credited] == [("20280101-20260615-t", 200)]


# ---- the halves the store runs


def test_the_senders_half_names_the_receiver_pages_its_lots_go_to() -> None:
    soon = lot("20260901-20240901-e", 100, ends(date(2026, 9, 1)))
    same_month = lot("20260915-20240915-e", 100, ends(date(2026, 9, 15)))
    never = lot("never-20260101-e", 500, None)

    sending = send_points(
        sender_with(soon, same_month, never), "m-r", 300, rules=RULES, actor=SENDER, now=NOW, ids=IDS
    )

    assert sending.receiver_page_keys(RULES, NOW) == ("2026-09/2026-06", "NEVER/2026-06")


# ---- the rest of the engine, with the dated lots transfers bring to an inactivity wallet


def inactivity_receiver(*, read_activity_page: bool) -> Snapshot:
    """A wallet under inactivity: its own points expire with its activity on 1 September 2026,
    and a transferred lot dated 1 March 2027 sorts first (dated pages before ACTIVITY ones)."""
    activity = ends(date(2026, 9, 1))
    dated = lot("20270301-20260601-t", 300, ends(date(2027, 3, 1)), kind="transfer")
    own = lot("activity-20250901-e", 100, activity)
    pages = {"2027-03/2026-06": 300, "ACTIVITY/2025-09": 100}
    state = wallet(
        "m-r",
        available=400,
        pages=pages,
        first_days={"2027-03/2026-06": 1},
        activity_expires_at=activity,
        next_expiry_at=activity,
    )
    read = [LotPage("2027-03/2026-06", {dated.lot_id: dated})]
    if read_activity_page:
        read.append(LotPage("ACTIVITY/2025-09", {own.lot_id: own}))
    return Snapshot(state, tuple(read), complete=read_activity_page)


def test_a_read_that_stopped_before_the_activity_pages_knows_no_dated_lot_expiring_after_them() -> None:
    assert inactivity_receiver(read_activity_page=False).known_lots() == []
    assert [item.lot_id for item in inactivity_receiver(read_activity_page=True).known_lots()] == [
        "20270301-20260601-t",
        "activity-20250901-e",
    ]


def test_a_dated_lot_expiring_before_the_unread_activity_pages_is_known() -> None:
    state = inactivity_receiver(read_activity_page=False)
    soon = lot("20260801-20260601-t", 50, ends(date(2026, 8, 1)), kind="transfer")
    snapshot = Snapshot(state.wallet, (LotPage("2026-08/2026-06", {soon.lot_id: soon}), *state.pages), False)

    assert [item.lot_id for item in snapshot.known_lots()] == [soon.lot_id]


def test_past_the_activity_expiry_a_read_stopped_before_the_activity_pages_needs_more_pages() -> None:
    after = datetime(2026, 9, 5, 10, 0, tzinfo=UTC)

    with pytest.raises(NeedMorePages):
        due_points(inactivity_receiver(read_activity_page=False), after)
    assert due_points(inactivity_receiver(read_activity_page=True), after) == 100
    assert due_points(inactivity_receiver(read_activity_page=False), NOW) == 0


def test_a_purchase_on_an_inactivity_wallet_with_a_dated_lot_sets_the_next_expiry_to_the_soonest() -> None:
    # Given the wallet above (next expiry: its activity's, 1 September 2026)
    rules = rules_with({"policy": "inactivity", "months": 12})
    state = inactivity_receiver(read_activity_page=True).wallet
    bought = Purchase(Decimal("10"), "EUR", NOW, "store")

    # When it buys something today (activity: its own points move to 15 June 2027)
    result = credit_purchase(
        state,
        bought,
        quote_points(rules, bought),
        transaction_id="t",
        rules=rules,
        actor=SENDER,
        now=NOW,
        entry_id="led_9",
    )

    # Then its next expiry is the transferred lot's, 1 March 2027, not the old activity expiry
    assert result.change.after.activity_expires_at == ends(date(2027, 6, 15))
    assert result.change.after.next_expiry_at == ends(date(2027, 3, 1))
