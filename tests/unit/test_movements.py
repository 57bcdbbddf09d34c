"""Movements as pure steps: what a credit and a debit change, with time passed in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.earning import Purchase, quote_points
from loyalty.domain.errors import InsufficientPoints, InvalidRequest
from loyalty.domain.ledger import Actor, EntryType
from loyalty.domain.lots import Lot
from loyalty.domain.movements import (
    ClaimCredit,
    Drop,
    NewLot,
    Spend,
    TopUp,
    credit_purchase,
    debit_points,
    settle_owed,
)
from loyalty.domain.rules import ProgramRules, default_rules, default_rules_text, parse_rules
from loyalty.domain.wallet import (
    LotPage,
    NeedMorePages,
    Snapshot,
    WalletState,
    expiring_by_month,
    page_key_of_lot,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PARTNER = Actor("partner", "pos-1")
RULES = default_rules()


def rules_with(**expiry: Any) -> ProgramRules:
    document = json.loads(default_rules_text())
    document["expiry"] = expiry
    return parse_rules(document)


def wallet(**fields: Any) -> WalletState:
    base: dict[str, Any] = {
        "member_id": "m-1",
        "available": 0,
        "version": 0,
        "enrolled_at": NOW - timedelta(days=400),
        "last_activity_at": NOW - timedelta(days=400),
    }
    return WalletState(**{**base, **fields})


def purchase(amount: str = "100", at: datetime = NOW) -> Purchase:
    return Purchase(amount=Decimal(amount), currency="EUR", occurred_at=at, channel="store")


def credit(state: WalletState, bought: Purchase, rules: ProgramRules = RULES, **options: Any) -> Any:
    return credit_purchase(
        state,
        bought,
        quote_points(rules, bought),
        transaction_id="t-1",
        rules=rules,
        actor=PARTNER,
        now=NOW,
        entry_id="led_1",
        **options,
    )


def lot(lot_id: str, remaining: int, expires_at: datetime | None) -> Lot:
    return Lot(lot_id, remaining, remaining, NOW - timedelta(days=300), expires_at, "earn", "v1")


def snapshot(*lots: Lot, complete: bool = True, **wallet_fields: Any) -> Snapshot:
    pages: dict[str, dict[str, Lot]] = {}
    for item in lots:
        pages.setdefault(page_key_of_lot(item.lot_id), {})[item.lot_id] = item
    directory = {key: sum(x.remaining for x in page.values()) for key, page in pages.items()}
    state = wallet(available=sum(x.remaining for x in lots), pages=directory, **wallet_fields)
    ordered = tuple(LotPage(key, pages[key]) for key in sorted(pages))
    return Snapshot(wallet=state, pages=ordered, complete=complete)


def debit(state: Snapshot, points: int, rules: ProgramRules = RULES) -> Any:
    return debit_points(
        state,
        points,
        entry_type=EntryType.REDEEM,
        reason="redemption",
        rules=rules,
        actor=Actor("member", "m-1"),
        now=NOW,
        entry_id="led_2",
    )


# ---- credit


def test_a_first_purchase_opens_the_page_of_its_expiry_and_issue_months() -> None:
    # Given a member with no lot, When a 100 EUR purchase is credited today
    result = credit(wallet(), purchase())

    # Then its day's lot opens a new page (24 months later, issued this month)
    (page,) = result.change.pages
    assert page.key == "2028-11/2026-11"
    assert not page.exists
    assert page.writes == (NewLot(result.lot),)
    assert result.lot.lot_id == "20281124-20261124-e"
    assert result.change.after.pages == {"2028-11/2026-11": 100}
    assert result.change.after.first_days == {"2028-11/2026-11": 24}
    assert result.change.after.available == 100
    assert result.change.after.version == 1
    assert result.change.after.next_expiry_at == result.lot.expires_at


def test_a_second_purchase_the_same_day_tops_up_the_days_lot_without_reading_its_page() -> None:
    # Given a wallet whose last credit went to today's lot
    first = credit(wallet(), purchase()).change.after

    # When another purchase is credited the same day
    second = credit(first, purchase("30"))

    # Then the same lot grows: one lot per day, whatever the number of purchases
    (page,) = second.change.pages
    assert page.exists
    assert page.writes == (TopUp("20281124-20261124-e", 30),)
    assert second.change.after.pages == {"2028-11/2026-11": 130}
    assert second.change.entry.balance_after == 130


def test_a_purchase_into_an_existing_page_on_a_new_day_adds_a_new_lot() -> None:
    yesterday = credit(wallet(), purchase(at=NOW - timedelta(days=1))).change.after
    result = credit(yesterday, purchase())
    (page,) = result.change.pages
    assert page.exists
    assert page.writes == (NewLot(result.lot),)


def test_a_page_read_after_a_failed_guess_decides_between_top_up_and_new_lot() -> None:
    # Given the wallet does not know today's lot, but the page read shows it
    state = wallet(pages={"2028-11/2026-11": 50}, available=50)
    existing = lot("20281124-20261124-e", 50, NOW + timedelta(days=730))
    page = LotPage("2028-11/2026-11", {existing.lot_id: existing})

    # When the purchase is credited again with that page
    result = credit(state, purchase("10"), page=page)

    # Then it tops the lot up
    assert result.change.pages[0].writes == (TopUp(existing.lot_id, 10),)


def test_a_purchase_at_half_past_eleven_in_paris_counts_for_that_local_day() -> None:
    late = datetime(2026, 10, 31, 22, 30, tzinfo=UTC)  # 23:30 in Paris, 31 October
    result = credit(wallet(), purchase(at=late))
    assert result.lot.lot_id == "20281031-20261031-e"
    assert result.change.pages[0].key == "2028-10/2026-10"
    assert result.change.entry.lots[0].issue_month == "2026-10"
    assert result.change.entry.lots[0].expiry_month == "2028-10"


def test_a_fixed_date_policy_keeps_one_page_per_month_of_issue() -> None:
    rules = rules_with(policy="fixedDate", month=12, day=31, yearsAfter=1)
    result = credit(wallet(), purchase(), rules)
    assert result.change.pages[0].key == "2027-12/2026-11"
    assert result.lot.lot_id == "20271231-20261124-e"


def test_a_purchase_that_earns_nothing_writes_no_lot_but_records_the_entry() -> None:
    result = credit(wallet(), purchase("0.50"))
    assert result.lot is None
    assert result.change.pages == ()
    assert result.change.entry.points == 0


def test_a_purchase_from_the_future_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="future"):
        credit(wallet(), purchase(at=NOW + timedelta(minutes=6)))


def test_points_past_their_expiry_but_not_yet_run_are_not_in_the_balance_the_entry_records() -> None:
    state = wallet(available=40, pages={"2026-11/2024-11": 40})
    result = credit(state, purchase("10"), due=40)
    assert result.change.entry.balance_after == 10
    assert result.change.after.available == 50


def test_under_the_inactivity_policy_a_purchase_moves_the_wallets_activity_expiry() -> None:
    rules = rules_with(policy="inactivity", months=12)
    result = credit(wallet(), purchase(), rules)
    assert result.lot.lot_id == "activity-20261124-e"
    assert result.change.pages[0].key == "ACTIVITY/2026-11"
    assert result.change.after.activity_expires_at == result.lot.expires_at
    assert result.change.after.next_expiry_at == result.lot.expires_at


# ---- debit


def test_a_debit_takes_the_soonest_expiring_lots_first_across_pages() -> None:
    soon = lot("20261201-20241201-e", 30, datetime(2026, 12, 1, 23, tzinfo=UTC))
    later = lot("20270115-20250115-e", 50, datetime(2027, 1, 15, 23, tzinfo=UTC))
    result = debit(snapshot(later, soon), 40)

    assert [(take.lot_id, take.points) for take in result.takes] == [(soon.lot_id, 30), (later.lot_id, 10)]
    changes = {change.key: change for change in result.change.pages}
    assert changes["2026-12/2024-12"].writes == (Drop(soon.lot_id),)
    assert changes["2026-12/2024-12"].emptied
    assert changes["2027-01/2025-01"].writes == (Spend(Lot(**{**later.__dict__, "remaining": 40})),)
    assert result.change.after.pages == {"2027-01/2025-01": 40}
    assert result.change.after.first_days == {"2027-01/2025-01": 15}
    assert result.change.after.next_expiry_at == later.expires_at
    assert result.change.entry.points == -40
    assert result.change.entry.lots[0].issue_month == "2024-12"


def test_a_debit_larger_than_the_live_balance_is_refused() -> None:
    with pytest.raises(InsufficientPoints):
        debit(snapshot(lot("20261201-20241201-e", 30, NOW + timedelta(days=7))), 31)


def test_points_past_their_expiry_cannot_be_spent() -> None:
    expired = lot("20261120-20241120-e", 100, NOW - timedelta(days=3))
    live = lot("20270120-20250120-e", 10, NOW + timedelta(days=60))
    state = snapshot(expired, live, next_expiry_at=expired.expires_at)
    with pytest.raises(InsufficientPoints):
        debit(state, 11)
    assert debit(state, 10).change.entry.balance_after == 0


def cut_read(*lots: Lot, unread: dict[str, int], first_days: dict[str, int]) -> Snapshot:
    """A read that stopped after `lots`' pages; the wallet also lists `unread` pages."""
    read = snapshot(*lots)
    state = WalletState(
        **{
            **read.wallet.__dict__,
            "available": read.wallet.available + sum(unread.values()),
            "pages": {**read.wallet.pages, **unread},
            "first_days": first_days,
        }
    )
    return Snapshot(wallet=state, pages=read.pages, complete=False)


def test_a_debit_that_needs_pages_the_read_has_not_reached_asks_for_more() -> None:
    # Given a read cut inside January 2027, whose unread page (issued later) expires from the 10th
    first = lot("20261201-20241201-e", 30, datetime(2026, 12, 1, 23, tzinfo=UTC))
    second = lot("20270115-20250115-e", 50, datetime(2027, 1, 15, 23, tzinfo=UTC))
    partial = cut_read(first, second, unread={"2027-01/2025-02": 70}, first_days={"2027-01/2025-02": 10})

    # Then 20 points come from December, but 40 would need to know what expires on 10 January
    assert [take.lot_id for take in debit(partial, 20).takes] == [first.lot_id]
    with pytest.raises(NeedMorePages):
        debit(partial, 40)


def test_a_read_cut_inside_a_month_still_spends_the_lots_no_unread_page_precedes() -> None:
    # Given the unread page of January 2027 expires from the 20th only
    first = lot("20261201-20241201-e", 30, datetime(2026, 12, 1, 23, tzinfo=UTC))
    second = lot("20270115-20250115-e", 50, datetime(2027, 1, 15, 23, tzinfo=UTC))
    partial = cut_read(first, second, unread={"2027-01/2025-02": 70}, first_days={"2027-01/2025-02": 20})

    # Then the lot expiring on the 15th is known to come first, and is spent without reading on
    takes = debit(partial, 40).takes
    assert [(take.lot_id, take.points) for take in takes] == [(first.lot_id, 30), (second.lot_id, 10)]


def test_emptying_the_lot_the_last_credit_went_to_forgets_it() -> None:
    today = lot("20281124-20261124-e", 10, NOW + timedelta(days=730))
    result = debit(snapshot(today, last_lot_id=today.lot_id), 10)
    assert result.change.after.last_lot_id is None
    assert result.change.after.next_expiry_at is None
    assert result.change.after.pages == {}


# ---- points owed after a return, and claims


@pytest.mark.parametrize(
    ("owed", "points", "settled", "credited"),
    [(0, 40, 0, 40), (15, 40, 15, 25), (40, 40, 40, 0), (90, 40, 40, 0), (5, 0, 0, 0)],
)
def test_a_credit_settles_what_is_owed_first(owed: int, points: int, settled: int, credited: int) -> None:
    assert settle_owed(owed, points) == (settled, credited)


def test_an_earn_pays_back_the_points_owed_and_credits_the_rest() -> None:
    # Given a member owing 30 points after a return
    state = wallet(available=0, owed=30)

    # When a purchase earns 100
    result = credit(state, purchase("100"))

    # Then 30 settle the debt and the lot holds 70, as do the balance and the entry
    assert result.change.after.owed == 0
    assert result.change.after.available == 70
    assert result.lot is not None and result.lot.original == 70
    assert result.change.entry.points == 70
    assert result.change.entry.details["earned"] == 100
    assert result.change.entry.details["owedSettled"] == 30


def test_an_earn_smaller_than_the_debt_makes_no_lot() -> None:
    result = credit(wallet(owed=250), purchase("100"))

    assert result.lot is None
    assert result.change.pages == ()
    after = result.change.after
    assert (after.owed, after.available, result.change.entry.points) == (150, 0, 0)


def test_an_approved_claim_makes_a_claim_lot_issued_on_the_approval_day() -> None:
    # Given a purchase 100 days old, approved today
    bought = purchase("80", at=NOW - timedelta(days=100))
    claim = ClaimCredit(claim_id="clm_1", approved_at=NOW)

    result = credit(wallet(), bought, claim=claim)

    # Then the lot is a claim lot issued today, expiring 24 months after the purchase
    assert result.lot is not None
    assert result.lot.lot_id == "20280816-20261124-c"
    assert result.change.entry.type == EntryType.CLAIM_CREDIT
    assert result.change.entry.details["claimId"] == "clm_1"


def test_an_approved_claim_is_valid_at_least_thirty_days_after_the_approval() -> None:
    # Given points that expire on 31 December, and a purchase of 20 November claimed on 24 November
    rules = rules_with(policy="fixedDate", month=12, day=31, yearsAfter=0)
    bought = purchase("80", at=datetime(2026, 11, 20, 10, tzinfo=UTC))
    claim = ClaimCredit(claim_id="clm_1", approved_at=datetime(2026, 12, 10, 10, tzinfo=UTC))

    result = credit_purchase(
        wallet(),
        bought,
        quote_points(rules, bought),
        transaction_id="t-1",
        rules=rules,
        actor=PARTNER,
        now=claim.approved_at,
        entry_id="led_1",
        claim=claim,
    )

    # Then the lot expires at the end of 9 January (30 days after 10 December), not 31 December
    assert result.lot is not None
    assert result.lot.lot_id.startswith("20270109-20261210-c")


def test_points_per_expiry_month_count_activity_lots_in_the_month_of_the_activity_expiry() -> None:
    # Given an inactivity-policy wallet: 70 points following its activity (expiring on 14 March
    # 2028, Paris), 30 points of a transfer dated 31 January 2028, and 5 that never expire
    state = wallet(
        pages={"ACTIVITY/2026-11": 70, "2028-01/2026-11": 30, "NEVER/2026-10": 5},
        activity_expires_at=datetime(2028, 3, 14, 23, 0, tzinfo=UTC),
    )

    # Then each expiring point is in its month, the activity ones in March
    assert expiring_by_month(state, RULES.tz) == [("2028-01", 30), ("2028-03", 70)]
