"""Returns as pure steps: which purchases can be reversed, how many points a (partial) return
takes back, and where they come from (the purchase's own lot, then the soonest-expiring lots,
then points owed)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.errors import (
    CurrencyMismatch,
    InsufficientPoints,
    PurchaseAlreadyReversed,
    PurchaseNotFound,
    ReversalExceedsPurchase,
)
from loyalty.domain.ledger import Actor, EntryType
from loyalty.domain.lots import Lot
from loyalty.domain.movements import Debit, Drop, NeedLotPage, Spend, debit_points
from loyalty.domain.reversals import (
    CreditedPurchase,
    ReversalQuote,
    check_reversible,
    quote_reversal,
    reverse_purchase,
)
from loyalty.domain.rules import ProgramRules, default_rules, default_rules_text, parse_rules
from loyalty.domain.wallet import LotPage, NeedMorePages, Snapshot, WalletState, page_key_of_lot

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PARTNER = Actor("partner", "pos-1")
RULES = default_rules()
MODES = ("floor", "nearest", "ceil")

# Lots of a member, in spend order: SOON expires first, OWN is the returned purchase's lot.
SOON = "20261201-20241201-e"
OWN = "20281020-20261020-e"
LATER = "20281124-20261124-e"


def purchase(
    amount: str = "30.00",
    points: int = 100,
    *,
    reversed_amount: str = "0",
    reversed_points: int = 0,
    lot_id: str | None = OWN,
    **fields: Any,
) -> CreditedPurchase:
    base: dict[str, Any] = {
        "transaction_id": "tx-1",
        "member_id": "m-1",
        "status": "credited",
        "currency": "EUR",
    }
    return CreditedPurchase(
        **{**base, **fields},
        amount=Decimal(amount),
        points=points,
        lot_id=lot_id,
        reversed_amount=Decimal(reversed_amount),
        reversed_points=reversed_points,
    )


def lot(lot_id: str, remaining: int, expires_at: datetime | None = None) -> Lot:
    expiry = expires_at or datetime.strptime(lot_id[:8], "%Y%m%d").replace(tzinfo=UTC)
    return Lot(lot_id, remaining, remaining, NOW - timedelta(days=30), expiry, "earn", "v1")


def wallet(**fields: Any) -> WalletState:
    base: dict[str, Any] = {
        "member_id": "m-1",
        "available": 0,
        "version": 7,
        "enrolled_at": NOW - timedelta(days=400),
        "last_activity_at": NOW - timedelta(days=10),
    }
    return WalletState(**{**base, **fields})


def snapshot(*lots: Lot, read: int | None = None, **wallet_fields: Any) -> Snapshot:
    """The member's lots; the read reached only the first `read` pages when given."""
    pages: dict[str, dict[str, Lot]] = {}
    for item in lots:
        pages.setdefault(page_key_of_lot(item.lot_id), {})[item.lot_id] = item
    directory = {key: sum(x.remaining for x in page.values()) for key, page in pages.items()}
    state = wallet(available=sum(x.remaining for x in lots), pages=directory, **wallet_fields)
    ordered = tuple(LotPage(key, pages[key]) for key in sorted(pages))
    shown = ordered if read is None else ordered[:read]
    return Snapshot(wallet=state, pages=shown, complete=len(shown) == len(ordered))


def page_of(state: Snapshot, lot_id: str, *lots: Lot) -> LotPage:
    return LotPage(page_key_of_lot(lot_id), {item.lot_id: item for item in lots})


def reverse(
    state: Snapshot,
    points: int,
    *,
    of: CreditedPurchase | None = None,
    rules: ProgramRules = RULES,
    first_page: LotPage | None = None,
) -> Debit:
    bought = of or purchase()
    quote = ReversalQuote(
        amount=bought.amount, points=points, reversed_amount=bought.amount, reversed_points=points
    )
    return reverse_purchase(
        state,
        bought,
        quote,
        rules=rules,
        actor=PARTNER,
        now=NOW,
        entry_id="led_9",
        idempotency_key="key-1",
        first_page=first_page,
    )


def taken(result: Debit) -> list[tuple[str, int]]:
    return [(take.lot_id, take.points) for take in result.takes]


# ---- which purchase can be reversed


def test_a_purchase_credited_to_the_member_can_be_reversed() -> None:
    credited = purchase()
    assert check_reversible(credited, "tx-1", "m-1") is credited


@pytest.mark.parametrize(
    "guard",
    [None, purchase(member_id="m-2"), purchase(status="claimed")],
    ids=["never-reported", "another-members", "only-claimed"],
)
def test_a_purchase_not_credited_to_the_member_is_not_found(guard: CreditedPurchase | None) -> None:
    with pytest.raises(PurchaseNotFound) as refused:
        check_reversible(guard, "tx-1", "m-1")
    assert refused.value.details == {"transactionId": "tx-1"}


def test_a_return_in_another_currency_than_the_purchase_is_refused() -> None:
    with pytest.raises(CurrencyMismatch) as refused:
        quote_reversal(purchase(), Decimal("10"), rounding="floor", currency="USD")
    assert refused.value.field == "currency"


def test_a_return_that_names_the_purchases_currency_is_accepted() -> None:
    assert quote_reversal(purchase(), Decimal("15"), rounding="floor", currency="EUR").points == 50


# ---- how many points


def test_a_full_return_reverses_every_point_the_purchase_earned() -> None:
    quote = quote_reversal(purchase("129.90", 129), None, rounding="floor")
    assert quote == ReversalQuote(Decimal("129.90"), 129, Decimal("129.90"), 129)


@pytest.mark.parametrize("mode", MODES)
def test_a_full_return_after_partial_ones_reverses_exactly_what_is_left(mode: str) -> None:
    # Given 10 of 30 EUR already returned, with 33 or 34 of 100 points reversed
    earlier = quote_reversal(purchase(), Decimal("10"), rounding=mode)
    after = purchase(reversed_amount="10", reversed_points=earlier.points)

    # When the rest is returned
    quote = quote_reversal(after, None, rounding=mode)

    # Then the rest of the amount and of the points are reversed: 100 in all
    assert quote.amount == Decimal("20.00")
    assert earlier.points + quote.points == quote.reversed_points == 100


@pytest.mark.parametrize(("mode", "points"), [("floor", 33), ("nearest", 33), ("ceil", 34)])
def test_a_partial_return_reverses_its_share_of_the_points_rounded_as_the_rules_say(
    mode: str, points: int
) -> None:
    # 10 of 30 EUR returned: a third of 100 points, 33.33…
    assert quote_reversal(purchase(), Decimal("10"), rounding=mode).points == points


@pytest.mark.parametrize(("mode", "points"), [("floor", 66), ("nearest", 67), ("ceil", 67)])
def test_nearest_rounds_a_half_point_or_more_up(mode: str, points: int) -> None:
    # 20 of 30 EUR: 66.67 points
    assert quote_reversal(purchase(), Decimal("20"), rounding=mode).points == points


@pytest.mark.parametrize(
    ("mode", "parts"),
    [("floor", [33, 33, 34]), ("nearest", [33, 34, 33]), ("ceil", [34, 33, 33])],
)
def test_cumulative_partial_returns_never_drift(mode: str, parts: list[int]) -> None:
    # Given a 30 EUR purchase that earned 100 points, returned in three parts of 10 EUR
    state = purchase()
    reversed_points = []
    for _ in range(3):
        quote = quote_reversal(state, Decimal("10"), rounding=mode)
        reversed_points.append(quote.points)
        state = replace(state, reversed_amount=quote.reversed_amount, reversed_points=quote.reversed_points)

    # Then each part takes the difference of the rounded totals, and the three make exactly 100
    # (rounding each part alone would make 99 with floor, 102 with ceil)
    assert reversed_points == parts
    assert sum(reversed_points) == state.reversed_points == 100
    assert state.reversed_amount == state.amount


@pytest.mark.parametrize("mode", MODES)
def test_many_tiny_returns_never_reverse_more_than_was_earned(mode: str) -> None:
    # Given a purchase of 30 EUR for 100 points, returned a cent at a time
    state = purchase()
    totals = []
    for _ in range(3000):
        quote = quote_reversal(state, Decimal("0.01"), rounding=mode)
        assert quote.points >= 0
        state = replace(state, reversed_amount=quote.reversed_amount, reversed_points=quote.reversed_points)
        totals.append(state.reversed_points)

    # Then the total never decreases, never exceeds 100, and ends at exactly 100
    assert totals == sorted(totals)
    assert max(totals) == totals[-1] == 100


def test_a_partial_return_of_exactly_what_is_left_reverses_every_point_left() -> None:
    state = purchase(reversed_amount="10", reversed_points=33)
    quote = quote_reversal(state, Decimal("20.00"), rounding="floor")
    assert (quote.points, quote.reversed_points) == (67, 100)


def test_a_partial_return_larger_than_what_is_left_is_refused() -> None:
    with pytest.raises(ReversalExceedsPurchase) as refused:
        quote_reversal(purchase(reversed_amount="25", reversed_points=83), Decimal("5.01"), rounding="floor")
    assert refused.value.details == {"transactionId": "tx-1", "requested": "5.01", "reversible": "5.00"}


def test_a_partial_return_larger_than_the_purchase_is_refused() -> None:
    with pytest.raises(ReversalExceedsPurchase):
        quote_reversal(purchase(), Decimal("30.01"), rounding="ceil")


@pytest.mark.parametrize("amount", [None, Decimal("0.01")])
def test_a_purchase_returned_in_full_cannot_be_returned_again(amount: Decimal | None) -> None:
    with pytest.raises(PurchaseAlreadyReversed):
        quote_reversal(purchase(reversed_amount="30.00", reversed_points=100), amount, rounding="floor")


def test_a_purchase_that_earned_nothing_reverses_nothing() -> None:
    quote = quote_reversal(purchase("0.50", 0), None, rounding="floor")
    assert (quote.amount, quote.points) == (Decimal("0.50"), 0)


# ---- where the points come from


def test_a_return_takes_the_purchases_own_lot_first_even_when_another_expires_sooner() -> None:
    state = snapshot(lot(SOON, 50), lot(OWN, 100), lot(LATER, 50))

    result = reverse(state, 60)

    assert taken(result) == [(OWN, 60)]
    changes = {change.key: change for change in result.change.pages}
    assert set(changes) == {page_key_of_lot(OWN)}
    assert changes[page_key_of_lot(OWN)].writes == (Spend(replace(lot(OWN, 100), remaining=40)),)
    assert result.change.after.pages[page_key_of_lot(OWN)] == 40
    assert result.change.after.available == 140
    assert result.owed_added == 0


def test_when_the_own_lot_holds_too_few_the_rest_comes_from_the_soonest_expiring_lots() -> None:
    state = snapshot(lot(SOON, 50), lot(OWN, 30), lot(LATER, 50))

    result = reverse(state, 100)

    assert taken(result) == [(OWN, 30), (SOON, 50), (LATER, 20)]
    assert result.change.after.available == 30
    assert result.change.entry.points == -100
    assert result.change.after.next_expiry_at == lot(LATER, 1).expires_at


def test_emptying_the_own_lots_page_deletes_it_and_leaves_the_directory() -> None:
    state = snapshot(lot(SOON, 50), lot(OWN, 30))

    result = reverse(state, 30)

    own_page = next(change for change in result.change.pages if change.key == page_key_of_lot(OWN))
    assert own_page.writes == (Drop(OWN),) and own_page.emptied
    assert page_key_of_lot(OWN) not in result.change.after.pages


def test_when_the_own_lot_is_gone_the_points_come_from_the_soonest_expiring_lots() -> None:
    state = snapshot(lot(SOON, 50), lot(LATER, 50))

    assert taken(reverse(state, 60)) == [(SOON, 50), (LATER, 10)]


def test_a_purchase_whose_points_all_paid_a_debt_has_no_lot_and_takes_the_soonest() -> None:
    state = snapshot(lot(SOON, 50), lot(LATER, 50))

    assert taken(reverse(state, 10, of=purchase(lot_id=None))) == [(SOON, 10)]


def test_an_own_lot_in_a_page_the_read_did_not_reach_asks_for_that_page() -> None:
    # Given a read that reached only the first page, and the own lot in the second
    state = snapshot(lot(SOON, 50), lot(OWN, 100), read=1)

    # When the return runs without that page, Then it asks for exactly that page
    with pytest.raises(NeedLotPage) as need:
        reverse(state, 40)
    assert need.value.key == page_key_of_lot(OWN)


def test_with_the_own_lots_page_read_the_return_takes_from_it() -> None:
    state = snapshot(lot(SOON, 50), lot(OWN, 100), read=1)
    own_page = page_of(state, OWN, lot(OWN, 100))

    result = reverse(state, 40, first_page=own_page)

    assert taken(result) == [(OWN, 40)]
    assert [change.key for change in result.change.pages] == [own_page.key]
    assert result.change.after.pages == {page_key_of_lot(SOON): 50, own_page.key: 60}
    assert result.change.after.next_expiry_at == lot(SOON, 1).expires_at


def test_a_return_that_needs_lots_beyond_the_read_reads_on() -> None:
    # Given a read of the first page only, with the rest of the points in later pages
    state = snapshot(lot(SOON, 50), lot(LATER, 100), read=1)

    with pytest.raises(NeedMorePages):
        reverse(state, 80, of=purchase(lot_id=None))


# ---- what the lots cannot cover is owed


def test_points_already_spent_become_points_owed_and_the_balance_stays_at_zero() -> None:
    # Given a member who spent 70 of the 100 points the purchase earned
    state = snapshot(lot(OWN, 30))

    # When the purchase is returned in full
    result = reverse(state, 100)

    # Then the 30 left are taken, 70 are owed, and the balance is zero
    assert taken(result) == [(OWN, 30)]
    assert result.owed_added == 70
    after = result.change.after
    assert (after.available, after.owed) == (0, 70)
    assert result.change.entry.points == -30
    assert result.change.entry.balance_after == 0


def test_a_member_with_no_points_owes_the_whole_return() -> None:
    result = reverse(snapshot(), 100)

    assert result.takes == () and result.change.pages == ()
    assert (result.change.after.available, result.change.after.owed) == (0, 100)
    assert result.change.entry.points == 0
    assert result.change.after.version == 8


def test_points_owed_add_up_over_returns() -> None:
    result = reverse(snapshot(lot(SOON, 10), owed=25), 40)

    assert (result.owed_added, result.change.after.owed) == (30, 55)


def test_lots_past_their_expiry_that_the_run_has_not_expired_are_never_taken() -> None:
    # Given the own lot and another expired yesterday (the run has not passed), and one live lot
    due_own = lot(OWN, 80, NOW - timedelta(days=1))
    due_other = lot(SOON, 20, NOW - timedelta(days=2))
    state = snapshot(due_other, due_own, lot(LATER, 30), next_expiry_at=due_other.expires_at)

    # When the purchase's 100 points are reversed
    result = reverse(state, 100)

    # Then only the live lot gives its points: 70 are owed, the due lots stay for the run
    assert taken(result) == [(LATER, 30)]
    assert result.owed_added == 70
    assert result.change.entry.balance_after == 0
    assert result.change.after.available == 100  # the due 100 points leave at the expiry run


def test_a_return_of_zero_points_moves_no_lot_but_records_the_entry() -> None:
    result = reverse(snapshot(lot(OWN, 30)), 0)

    assert result.takes == () and result.change.pages == ()
    assert result.change.entry.points == 0
    assert result.change.after.owed == 0


def test_a_return_is_not_the_members_activity() -> None:
    # Given points that expire with the member's inactivity
    document = json.loads(default_rules_text())
    document["expiry"] = {"policy": "inactivity", "months": 12}
    rules = parse_rules(document)
    activity_lot = lot("activity-20261020-e", 100, NOW + timedelta(days=300))
    state = snapshot(activity_lot, activity_expires_at=activity_lot.expires_at)

    result = reverse(state, 10, of=purchase(lot_id=activity_lot.lot_id), rules=rules)

    # Then neither the last activity nor the points' expiry move
    assert result.change.after.last_activity_at == state.wallet.last_activity_at
    assert result.change.after.activity_expires_at == state.wallet.activity_expires_at


def test_the_ledger_entry_of_a_return_says_what_was_returned_taken_and_owed() -> None:
    result = reverse(snapshot(lot(OWN, 30), owed=5), 100)

    entry = result.change.entry
    assert entry.type == EntryType.REVERSAL
    assert entry.reason == "purchase returned"
    assert entry.actor == PARTNER
    assert [movement.lot_id for movement in entry.lots] == [OWN]
    assert entry.details == {
        "transactionId": "tx-1",
        "amount": "30.00",
        "currency": "EUR",
        "pointsReversed": 100,
        "owedAdded": 70,
        "owed": 75,
        "reversedAmount": "30.00",
        "reversedPoints": 100,
        "idempotencyKey": "key-1",
    }


def test_a_redemption_still_refuses_more_than_the_balance() -> None:
    # debit_points without the return's options keeps the redemption's rule
    with pytest.raises(InsufficientPoints):
        debit_points(
            snapshot(lot(OWN, 30)),
            31,
            entry_type=EntryType.REDEEM,
            reason="redemption",
            rules=RULES,
            actor=PARTNER,
            now=NOW,
            entry_id="led_1",
        )
