"""Claims for missing points, the pure rules: the window (local days, program timezone), the
decision taken at once, the points an approval credits, decide-once, and the outcome emails."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loyalty.domain.claims import (
    CLAIM_ID_PATTERN,
    ClaimedPurchase,
    ClaimOutcome,
    ClaimStatus,
    Decision,
    GuardState,
    RejectionCode,
    StoredDecision,
    check_claimable,
    claim_id_for,
    claim_quote,
    claimable_from,
    closing_by_earn,
    filing_verdict,
    last_claimable_day,
    may_refile,
    purchase_age_days,
    same_decision_again,
    window_rejection,
)
from loyalty.domain.errors import (
    ClaimAlreadyDecided,
    InvalidRequest,
    PurchaseClaimedByAnother,
    UnknownCurrency,
)
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import ProgramRules, RulesError, default_rules, parse_rules
from loyalty.http.claim_emails import render
from loyalty.notify import Program, Recipient

PARIS = ZoneInfo("Europe/Paris")
RULES = default_rules()
AGENT = Actor("agent", "agent-1")
PROGRAM = Program("Club Étoile", "https://loyalty.example.com/account")


def paris(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=PARIS)  # type: ignore[misc]


def purchase(occurred_at: datetime, **fields: Any) -> ClaimedPurchase:
    values: dict[str, Any] = {"amount": Decimal("42.50"), "currency": "EUR", "transaction_id": "tx-1"}
    return ClaimedPurchase(occurred_at=occurred_at, **(values | fields))


def rules_with(**claims: Any) -> ProgramRules:
    document = copy.deepcopy(RULES.model_dump(by_alias=True, mode="json"))
    document["claims"].update(claims)
    return parse_rules(document)


# ---- the rules document


def test_the_shipped_rules_accept_purchases_2_to_180_days_old_and_5_pending_claims() -> None:
    claims = RULES.claims
    assert (claims.min_age_days, claims.window_days, claims.max_open_claims) == (2, 180, 5)


def test_a_document_written_before_the_minimum_age_and_the_limit_still_loads_with_their_defaults() -> None:
    document = copy.deepcopy(RULES.model_dump(by_alias=True, mode="json"))
    document["claims"] = {"windowDays": 90}

    claims = parse_rules(document).claims

    assert (claims.min_age_days, claims.window_days, claims.max_open_claims) == (2, 90, 5)


@pytest.mark.parametrize(
    ("claims", "field", "reason"),
    [
        ({"minAgeDays": 10, "windowDays": 9}, "claims.windowDays", "must be at least minAgeDays (10)"),
        ({"minAgeDays": -1}, "claims.minAgeDays", "must be at least 0"),
        ({"minAgeDays": 366}, "claims.minAgeDays", "must be at most 365"),
        ({"maxOpenClaims": 0}, "claims.maxOpenClaims", "must be at least 1"),
        ({"maxOpenClaims": 1001}, "claims.maxOpenClaims", "must be at most 1000"),
        ({"maxOpenClaims": "5"}, "claims.maxOpenClaims", "must be an integer"),
        ({"windowDays": 0}, "claims.windowDays", "must be at least 1"),
    ],
)
def test_a_bad_claims_section_is_refused_naming_the_field(
    claims: dict[str, Any], field: str, reason: str
) -> None:
    document = copy.deepcopy(RULES.model_dump(by_alias=True, mode="json"))
    document["claims"].update(claims)

    with pytest.raises(RulesError) as refused:
        parse_rules(document)

    assert dict(refused.value.problems)[field] == reason


def test_a_window_as_long_as_the_minimum_age_is_one_day_wide() -> None:
    rules = rules_with(minAgeDays=3, windowDays=3)
    bought = paris(2026, 5, 1, 12)

    assert window_rejection(rules, bought, paris(2026, 5, 4, 9)) is None
    assert window_rejection(rules, bought, paris(2026, 5, 3, 23, 59)) is not None
    assert window_rejection(rules, bought, paris(2026, 5, 5, 0, 0)) is not None


# ---- the window, in local days of the program timezone


@pytest.mark.parametrize(
    ("bought", "now", "expected"),
    [
        # the same local day, and the next
        (paris(2026, 6, 10, 8), paris(2026, 6, 10, 23, 59), None),
        (paris(2026, 6, 10, 23, 59), paris(2026, 6, 11, 0, 1), None),
        # 2 days: claimable from the first minute of the day, whatever the hour of the purchase
        (paris(2026, 6, 10, 23, 59), paris(2026, 6, 12, 0, 0), 2),
        (paris(2026, 6, 10, 0, 0), paris(2026, 6, 12, 23, 59), 2),
        # Paris days, not UTC days: 23:30 Paris on the 10th (21:30Z) to 00:30 Paris on the 12th
        # (22:30Z on the 11th) is 2 local days, though only 1 UTC day
        (paris(2026, 6, 10, 23, 30), paris(2026, 6, 12, 0, 30), 2),
        # across the spring DST change (29 March 2026): 23:30 on the 28th to 00:10 on the 30th
        (paris(2026, 3, 28, 23, 30), paris(2026, 3, 30, 0, 10), 2),
        # and the autumn one (25 October 2026)
        (paris(2026, 10, 24, 0, 30), paris(2026, 10, 26, 0, 0), 2),
    ],
)
def test_a_purchase_is_as_old_as_the_local_days_between_its_day_and_today(
    bought: datetime, now: datetime, expected: int | None
) -> None:
    age = purchase_age_days(RULES, bought.astimezone(UTC), now.astimezone(UTC))

    assert age == (expected if expected is not None else (now.date() - bought.date()).days)


def test_a_purchase_of_yesterday_is_too_recent_and_the_member_is_told_from_which_day_to_claim() -> None:
    bought = paris(2026, 6, 10, 18)

    rejection = window_rejection(RULES, bought, paris(2026, 6, 11, 23, 59))

    assert rejection is not None and rejection.code == RejectionCode.TOO_RECENT
    assert "claim again from 2026-06-12" in rejection.reason
    assert claimable_from(RULES, bought).isoformat() == "2026-06-12"


def test_a_purchase_is_claimable_from_the_first_minute_of_its_second_day() -> None:
    bought = paris(2026, 6, 10, 23, 59)

    assert window_rejection(RULES, bought, paris(2026, 6, 11, 23, 59, 59)) is not None
    assert window_rejection(RULES, bought, paris(2026, 6, 12, 0, 0)) is None


def test_the_window_is_in_paris_days_not_utc_days() -> None:
    # Given a purchase at 23:30 Paris (21:30 UTC) and a claim at 00:30 Paris two days later (still
    # the day before in UTC)
    bought, now = paris(2026, 6, 10, 23, 30), paris(2026, 6, 12, 0, 30)
    assert (now.astimezone(UTC).date() - bought.astimezone(UTC).date()).days == 1

    # Then it is 2 local days old: claimable
    assert window_rejection(RULES, bought.astimezone(UTC), now.astimezone(UTC)) is None


def test_a_purchase_180_days_old_is_claimable_to_the_last_minute_of_that_day_and_not_after() -> None:
    bought = paris(2026, 1, 1, 12)
    assert last_claimable_day(RULES, bought).isoformat() == "2026-06-30"

    assert window_rejection(RULES, bought, paris(2026, 6, 30, 23, 59, 59)) is None
    too_old = window_rejection(RULES, bought, paris(2026, 7, 1, 0, 0))

    assert too_old is not None and too_old.code == RejectionCode.TOO_OLD
    assert "more than 180 days old" in too_old.reason


def test_the_window_follows_the_rules_document() -> None:
    rules = rules_with(minAgeDays=0, windowDays=30)
    bought = paris(2026, 6, 10, 8)

    assert window_rejection(rules, bought, paris(2026, 6, 10, 9)) is None
    assert window_rejection(rules, bought, paris(2026, 7, 10, 23)) is None
    assert window_rejection(rules, bought, paris(2026, 7, 11, 0)) is not None


# ---- what is refused before anything is read


@pytest.mark.parametrize("amount", ["0", "0.00", "-1", "NaN", "Infinity"])
def test_an_amount_that_is_not_positive_is_refused(amount: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_claimable(RULES, purchase(paris(2026, 6, 1), amount=Decimal(amount)), paris(2026, 6, 10))

    assert refused.value.field == "amount"


def test_a_currency_the_program_does_not_earn_in_is_refused() -> None:
    with pytest.raises(UnknownCurrency):
        check_claimable(RULES, purchase(paris(2026, 6, 1), currency="JPY"), paris(2026, 6, 10))


def test_a_purchase_from_the_future_is_refused_but_clock_skew_is_not() -> None:
    now = paris(2026, 6, 10, 12)

    check_claimable(RULES, purchase(now + timedelta(minutes=4)), now)
    with pytest.raises(InvalidRequest) as refused:
        check_claimable(RULES, purchase(now + timedelta(minutes=6)), now)

    assert refused.value.field == "occurredAt"


# ---- the decision taken at once


def test_a_purchase_without_guard_inside_the_window_waits_for_support() -> None:
    assert filing_verdict(RULES, purchase(paris(2026, 6, 1)), None, paris(2026, 6, 10)) is None


@pytest.mark.parametrize("owner", ["m-1", "m-someone-else"])
def test_a_purchase_already_credited_to_anyone_is_rejected_without_saying_to_whom(owner: str) -> None:
    guard = GuardState(member_id=owner, status="credited")

    rejection = filing_verdict(RULES, purchase(paris(2026, 6, 1)), guard, paris(2026, 6, 10))

    assert rejection is not None and rejection.code == RejectionCode.ALREADY_CREDITED
    assert owner not in rejection.reason


def test_already_credited_wins_over_the_window() -> None:
    guard = GuardState(member_id="m-1", status="credited")

    rejection = filing_verdict(RULES, purchase(paris(2025, 1, 1)), guard, paris(2026, 6, 10))

    assert rejection is not None and rejection.code == RejectionCode.ALREADY_CREDITED


def test_a_purchase_another_claim_waits_on_is_refused_not_rejected() -> None:
    guard = GuardState(member_id="m-2", status="claimed", claim_id="clm_X")

    with pytest.raises(PurchaseClaimedByAnother):
        filing_verdict(RULES, purchase(paris(2026, 6, 1)), guard, paris(2026, 6, 10))


@pytest.mark.parametrize(
    ("status", "code", "again"),
    [
        (ClaimStatus.REJECTED, RejectionCode.TOO_RECENT, True),
        (ClaimStatus.REJECTED, RejectionCode.TOO_OLD, False),
        (ClaimStatus.REJECTED, RejectionCode.ALREADY_CREDITED, False),
        (ClaimStatus.REJECTED, RejectionCode.SUPPORT_DECISION, False),
        (ClaimStatus.PENDING, None, False),
        (ClaimStatus.APPROVED, None, False),
        (ClaimStatus.MATCHED, None, False),
    ],
)
def test_only_a_claim_turned_away_as_too_recent_is_examined_again(
    status: ClaimStatus, code: RejectionCode | None, again: bool
) -> None:
    assert may_refile(status, code) is again


# ---- one claim per member and purchase


def test_a_claim_id_derives_from_the_member_and_the_purchase() -> None:
    first = claim_id_for("m-1", "tx-1")

    assert first == claim_id_for("m-1", "tx-1")
    assert re.fullmatch(CLAIM_ID_PATTERN, first)
    assert len({first, claim_id_for("m-2", "tx-1"), claim_id_for("m-1", "tx-2")}) == 3
    assert claim_id_for("m-1", "0tx") != claim_id_for("m-10", "tx")


# ---- the points of an approval


def test_by_default_an_approval_credits_what_the_rules_give_the_amount() -> None:
    quote = claim_quote(RULES, purchase(paris(2026, 6, 1), amount=Decimal("42.99")))

    assert quote.points == 42
    assert quote.rules_version == RULES.version


def test_a_claim_naming_a_store_is_a_store_purchase_for_the_campaigns() -> None:
    document = RULES.model_dump(by_alias=True, mode="json")
    document["earning"]["campaigns"] = [
        {
            "id": "in-store",
            "startsOn": "2026-06-01",
            "endsOn": "2026-06-30",
            "channels": ["store"],
            "bonusPoints": 10,
        }
    ]
    rules = parse_rules(document)
    bought = paris(2026, 6, 5, 12)

    in_store = claim_quote(rules, purchase(bought, store="Paris Opéra"))
    online = claim_quote(rules, purchase(bought))

    assert (in_store.points, in_store.campaigns) == (52, ("in-store",))
    assert (online.points, online.campaigns) == (42, ())


@pytest.mark.parametrize("points", [0, 1, 250])
def test_support_may_set_the_points_of_an_approval(points: int) -> None:
    quote = claim_quote(RULES, purchase(paris(2026, 6, 1)), points)

    assert quote.points == points
    assert (quote.multiplier, quote.bonus_points, quote.campaigns) == (1, 0, ())
    assert quote.rules_version == RULES.version


def test_negative_points_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        claim_quote(RULES, purchase(paris(2026, 6, 1)), -1)


# ---- decided exactly once


def approved_by(agent: Actor, reason: str = "receipt checked", points: int = 42) -> StoredDecision:
    return StoredDecision(status=ClaimStatus.APPROVED, decided_by=agent, reason=reason, points=points)


def test_the_same_decision_by_the_same_agent_again_is_the_stored_one() -> None:
    stored = approved_by(AGENT)

    same_decision_again(
        "clm_1", stored, decision=Decision.APPROVE, actor=AGENT, reason="receipt checked", points=None
    )
    same_decision_again(
        "clm_1", stored, decision=Decision.APPROVE, actor=AGENT, reason="receipt checked", points=42
    )


@pytest.mark.parametrize(
    ("decision", "actor", "reason", "points"),
    [
        (Decision.REJECT, AGENT, "receipt checked", None),  # the other decision
        (Decision.APPROVE, Actor("agent", "agent-2"), "receipt checked", None),  # another agent
        (Decision.APPROVE, AGENT, "another reason", None),  # another request
        (Decision.APPROVE, AGENT, "receipt checked", 43),  # other points
    ],
    ids=["other decision", "other agent", "other reason", "other points"],
)
def test_any_other_decision_on_a_decided_claim_is_a_conflict_saying_its_status(
    decision: Decision, actor: Actor, reason: str, points: int | None
) -> None:
    with pytest.raises(ClaimAlreadyDecided) as refused:
        same_decision_again(
            "clm_1", approved_by(AGENT), decision=decision, actor=actor, reason=reason, points=points
        )

    assert refused.value.details == {"claimId": "clm_1", "claimStatus": "approved"}


@pytest.mark.parametrize("decision", list(Decision))
def test_a_claim_closed_by_the_partners_earn_cannot_be_decided(decision: Decision) -> None:
    stored = StoredDecision(ClaimStatus.MATCHED, Actor("partner", "pos-1"), None, 42)

    with pytest.raises(ClaimAlreadyDecided) as refused:
        same_decision_again("clm_1", stored, decision=decision, actor=AGENT, reason="x", points=None)

    assert refused.value.details["claimStatus"] == "matched"


def test_a_claim_rejected_at_once_by_the_rules_cannot_be_decided_by_support() -> None:
    stored = StoredDecision(ClaimStatus.REJECTED, Actor("system", "claim-rules"), "too old", None)

    with pytest.raises(ClaimAlreadyDecided):
        same_decision_again(
            "clm_1", stored, decision=Decision.REJECT, actor=AGENT, reason="too old", points=None
        )


# ---- an earn closes a pending claim


def test_an_earn_for_the_claims_member_matches_the_claim() -> None:
    assert closing_by_earn("m-1", "m-1") == (ClaimStatus.MATCHED, None)


def test_an_earn_for_another_member_rejects_the_claim() -> None:
    status, rejection = closing_by_earn("m-1", "m-2")

    assert status == ClaimStatus.REJECTED
    assert rejection is not None and rejection.code == RejectionCode.CREDITED_TO_ANOTHER_MEMBER
    assert "m-2" not in rejection.reason


# ---- the outcome emails


def outcome(status: ClaimStatus, **fields: Any) -> ClaimOutcome:
    values: dict[str, Any] = {
        "claim_id": "clm_1",
        "member_id": "m-1",
        "transaction_id": "TX-42",
        "status": status,
        "occurred_at": datetime(2026, 9, 2, 22, 30, tzinfo=UTC),  # 3 September in Paris
    }
    return ClaimOutcome(**(values | fields))


def test_an_approval_tells_the_points_the_purchase_the_balance_and_the_expiry_in_french() -> None:
    approved = outcome(
        ClaimStatus.APPROVED, points=1250, balance=12345, expires_at=datetime(2028, 9, 3, 22, tzinfo=UTC)
    )

    email = render(approved, Recipient("anne@example.com", "Anne", "fr"), PARIS, PROGRAM)

    assert email.subject == "Votre réclamation de points est acceptée"
    assert "1\u202f250 points" in email.text and "TX-42" in email.text
    assert "3 septembre 2026" in email.text  # the purchase's Paris day
    assert "3 septembre 2028" in email.text  # the last day the points can be used
    assert "12\u202f345 points" in email.text


def test_an_approval_whose_points_never_expire_says_no_expiry() -> None:
    approved = outcome(ClaimStatus.APPROVED, points=10, balance=10, expires_at=None)

    email = render(approved, Recipient("ann@example.com", "Ann", "en"), PARIS, PROGRAM)

    assert email.subject == "Your points claim was approved"
    assert "expire" not in email.text.lower()


def test_a_match_tells_the_points_the_partner_credited() -> None:
    matched = outcome(ClaimStatus.MATCHED, points=42, balance=142)

    email = render(matched, Recipient("ann@example.com", "Ann", "en"), PARIS, PROGRAM)

    assert email.subject == "Your missing points have been credited"
    assert "42 points" in email.text and "142 points" in email.text and "3 September 2026" in email.text


def test_a_rejection_shows_supports_reason_as_text_in_the_html() -> None:
    rejected = outcome(ClaimStatus.REJECTED, reason="<script>alert(1)</script> no receipt")

    email = render(rejected, Recipient("ann@example.com", "<b>Ann</b> & co", "en"), PARIS, PROGRAM)

    assert email.subject == "Your points claim was not accepted"
    assert "<script>" not in email.html and "&lt;script&gt;alert(1)&lt;/script&gt; no receipt" in email.html
    assert "<b>Ann</b>" not in email.html and "&lt;b&gt;Ann&lt;/b&gt; &amp; co" in email.html
    assert "<script>alert(1)</script> no receipt" in email.text


def test_a_rejection_by_the_partners_earn_is_explained_in_the_members_language() -> None:
    rejected = outcome(
        ClaimStatus.REJECTED,
        reason="the store credited this purchase to another account",
        reason_code=RejectionCode.CREDITED_TO_ANOTHER_MEMBER,
    )

    email = render(rejected, Recipient("anne@example.com", "Anne", "fr"), PARIS, PROGRAM)

    assert "Le magasin a crédité cet achat sur un autre compte de fidélité." in email.text
