"""Claims for missing points through the claims and earn handlers, on DynamoDB Local, with SES
emulated by moto: filing (decided at once where the rules allow), the support queue, a claim and
its history, the decision taken exactly once, an earn that closes a pending claim, the race of an
approval and a late earn, and the member's email of the outcome."""

from __future__ import annotations

import email
import email.policy
import multiprocessing
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools.identity import Identity
from devtools.local import sent_emails
from loyalty.domain.claims import ClaimedPurchase, claim_id_for
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import default_rules
from loyalty.http.routes import claims as claims_routes
from loyalty.notify import notify_config
from loyalty.notify import ses as ses_module
from loyalty.store import claims as claims_store
from tests.integration.conftest import PARIS, ROOT, Api, ApiResponse, ledger_of, lots_of

SENDER = "no-reply@loyalty.example.com"
AGENT = Identity.support("agent-1")
RULES = default_rules()


def days_ago(days: float, hour: int = 12) -> str:
    """An instant `days` local days ago, at `hour` Paris time (a window edge is a local day)."""
    day = (datetime.now(PARIS) - timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).isoformat()


def tx() -> str:
    return f"tx-{uuid.uuid4().hex}"


class Outbox:
    """The emails SES (moto) accepted, parsed."""

    def to(self, address: str) -> list[EmailMessage]:
        found = []
        for sent in sent_emails():
            if address in {parseaddr(to)[1] for to in sent["to"]}:
                parsed = email.message_from_string(sent["raw"], policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                found.append(parsed)
        return found


def forget_email_configuration() -> None:
    notify_config.cache_clear()
    ses_module.ses_client.cache_clear()
    ses_module.default_sender.cache_clear()


@pytest.fixture(autouse=True)
def outbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outbox]:
    """The email settings the template gives the functions, and SES emulated with the sender
    verified (DynamoDB calls go on to DynamoDB Local: moto does not know its endpoint)."""
    monkeypatch.setenv("SENDER_ADDRESS", SENDER)
    monkeypatch.setenv("PROGRAM_NAME", "Club Étoile")
    monkeypatch.setenv("LINKS_BASE_URL", "https://loyalty.example.com/account")
    monkeypatch.delenv("SES_CONFIGURATION_SET", raising=False)
    forget_email_configuration()
    with mock_aws():
        boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER)
        yield Outbox()
    forget_email_configuration()


def file(api: Api, member_id: str, identity: Identity | None = None, **fields: Any) -> ApiResponse:
    body = {"transactionId": tx(), "occurredAt": days_ago(10), "amount": "42.50", "currency": "EUR", **fields}
    return api.call(
        "POST", f"/members/{member_id}/claims", identity=identity or Identity.member(member_id), body=body
    )


def filed(api: Api, member_id: str, **fields: Any) -> dict[str, Any]:
    response = file(api, member_id, **fields)
    assert response.status == 201, response.body
    return dict(response.body)


def decide(
    api: Api, claim_id: str, decision: str = "approve", identity: Identity = AGENT, **fields: Any
) -> ApiResponse:
    body = {"decision": decision, "reason": "receipt checked", **fields}
    return api.call("POST", f"/claims/{claim_id}/decision", identity=identity, body=body)


def read(api: Api, claim_id: str, identity: Identity = AGENT) -> ApiResponse:
    return api.call("GET", f"/claims/{claim_id}", identity=identity)


def queue(api: Api, **query: str) -> ApiResponse:
    return api.call("GET", "/claims", identity=AGENT, query=query)


def whole_queue(api: Api, status: str = "pending", limit: int = 100) -> list[dict[str, Any]]:
    claims, cursor = [], None
    while True:
        query = {"status": status, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        page = queue(api, **query)
        assert page.status == 200, page.body
        claims += page.body["claims"]
        cursor = page.body["nextCursor"]
        if cursor is None:
            return claims


@pytest.fixture
def everything(table: Any, member_items: Any) -> Any:
    """Every item of a member, its purchases' guards and its claims for them (nothing changed?)."""

    def read_all(member_id: str, *transaction_ids: str) -> list[Any]:
        claims = [
            table.get_item(Key={"pk": f"CLAIM#{claim_id_for(member_id, t)}", "sk": "CLAIM"}).get("Item")
            for t in transaction_ids
        ]
        return [*member_items(member_id, transaction_ids), *(claim for claim in claims if claim)]

    return read_all


def open_claims(table: Any, member_id: str) -> int:
    item = table.get_item(Key={"pk": f"MEMBER#{member_id}", "sk": "CLAIMS"}, ConsistentRead=True).get("Item")
    return int(item["open"]) if item else 0


def guard(table: Any, transaction_id: str) -> dict[str, Any] | None:
    key = {"pk": f"PURCHASE#{transaction_id}", "sk": "PURCHASE"}
    item: dict[str, Any] | None = table.get_item(Key=key, ConsistentRead=True).get("Item")
    return item


# ---------------------------------------------------------------- filing


def test_a_member_files_a_claim_that_waits_for_support(api: Api, enrolled: str, table: Any) -> None:
    # Given a purchase 10 days ago that no partner reported
    purchase = {"transactionId": tx(), "amount": "42.50", "store": "Paris Opéra", "receiptRef": "R-2231"}

    # When the member claims it
    response = file(api, enrolled, **purchase)

    # Then the claim waits for support, with its purchase and who filed it
    assert response.status == 201, response.body
    body = response.body
    assert body["claimId"] == claim_id_for(enrolled, purchase["transactionId"])
    assert (body["status"], body["reasonCode"], body["reason"]) == ("pending", None, None)
    assert (body["amount"], body["currency"], body["store"], body["receiptRef"]) == (
        "42.50",
        "EUR",
        "Paris Opéra",
        "R-2231",
    )
    assert body["filedBy"] == {"kind": "member", "id": enrolled}
    assert [(e["action"], e["status"], e["actor"]) for e in body["history"]] == [
        ("filed", "pending", {"kind": "member", "id": enrolled})
    ]
    # and the purchase is held for it, counted among the member's pending claims
    held = guard(table, purchase["transactionId"])
    assert held is not None and (held["status"], held["claimId"]) == ("claimed", body["claimId"])
    assert open_claims(table, enrolled) == 1
    assert response.headers.get("Idempotent-Replayed") is None


def test_support_files_a_claim_on_behalf_of_a_member(api: Api, enrolled: str) -> None:
    response = file(api, enrolled, identity=AGENT)

    assert response.status == 201
    assert response.body["filedBy"] == {"kind": "agent", "id": "agent-1"}
    assert read(api, response.body["claimId"], Identity.member(enrolled)).status == 200


def test_a_purchase_already_credited_to_the_member_is_rejected_at_once(
    api: Api, enrolled: str, table: Any
) -> None:
    # Given a purchase the partner reported
    earned = api.earn(enrolled, amount="30.00")
    before = guard(table, earned.body["transactionId"])

    # When the member claims it anyway
    response = file(api, enrolled, transactionId=earned.body["transactionId"])

    # Then the claim is rejected at once with its reason, and the purchase's guard is untouched
    assert response.status == 201
    body = response.body
    assert (body["status"], body["reasonCode"]) == ("rejected", "already_credited")
    assert body["reason"] == "the purchase was already credited"
    assert body["decidedBy"] == {"kind": "system", "id": "claim-rules"}
    assert [(e["action"], e["actor"]["kind"]) for e in body["history"]] == [
        ("filed", "member"),
        ("rejected", "system"),
    ]
    assert guard(table, earned.body["transactionId"]) == before
    assert open_claims(table, enrolled) == 0


def test_a_purchase_credited_to_another_member_is_rejected_without_saying_to_whom(
    api: Api, enrolled: str
) -> None:
    other = f"{enrolled}-o"
    assert api.enrol(other).status == 201
    earned = api.earn(other, amount="30.00")

    response = file(api, enrolled, transactionId=earned.body["transactionId"])

    assert (response.status, response.body["reasonCode"]) == (201, "already_credited")
    assert other not in str(response.body)


def test_a_purchase_older_than_180_local_days_is_rejected_at_once_and_one_of_180_days_waits(
    api: Api, enrolled: str, table: Any
) -> None:
    too_old = file(api, enrolled, occurredAt=days_ago(181))
    oldest = file(api, enrolled, occurredAt=days_ago(180, hour=0))

    assert (too_old.status, too_old.body["status"], too_old.body["reasonCode"]) == (
        201,
        "rejected",
        "too_old",
    )
    assert "more than 180 days old" in too_old.body["reason"]
    assert guard(table, too_old.body["transactionId"]) is None
    assert (oldest.status, oldest.body["status"]) == (201, "pending")


def test_a_purchase_of_yesterday_is_too_recent_and_its_claim_is_examined_again_once_claimable(
    api: Api, enrolled: str, table: Any
) -> None:
    # Given a purchase 3 days ago, claimed (directly through the store) when it was a day old
    occurred = datetime.fromisoformat(days_ago(3))
    purchase = ClaimedPurchase(tx(), occurred, Decimal("20.00"), "EUR")
    early = claims_store.file_claim(
        enrolled, purchase, actor=Actor("member", enrolled), rules=RULES, now=occurred + timedelta(days=1)
    )
    assert (early.claim.status, str(early.claim.reason_code)) == ("rejected", "too_recent")
    assert "claim again from" in (early.claim.reason or "")

    # When the member claims it again, now that it is 3 days old
    body = {"transactionId": purchase.transaction_id, "occurredAt": occurred.isoformat()}
    response = api.call(
        "POST",
        f"/members/{enrolled}/claims",
        identity=Identity.member(enrolled),
        body={**body, "amount": "20.00", "currency": "EUR"},
    )

    # Then the same claim is examined again: pending, its earlier history kept
    assert response.status == 201, response.body
    assert response.body["claimId"] == early.claim.claim_id
    assert (response.body["status"], response.body["reasonCode"]) == ("pending", None)
    assert [e["action"] for e in response.body["history"]] == ["filed", "rejected", "refiled"]
    assert open_claims(table, enrolled) == 1


def test_a_second_claim_for_the_same_purchase_returns_the_first_and_changes_nothing(
    api: Api, enrolled: str, everything: Any
) -> None:
    first = filed(api, enrolled)
    before = everything(enrolled, first["transactionId"])

    again = file(api, enrolled, transactionId=first["transactionId"], amount="99.00")

    assert again.status == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.body == first
    assert everything(enrolled, first["transactionId"]) == before


def test_a_claim_filed_again_after_its_decision_answers_it_as_it_stands(api: Api, enrolled: str) -> None:
    first = filed(api, enrolled)
    assert decide(api, first["claimId"]).status == 200

    again = file(api, enrolled, transactionId=first["transactionId"])

    assert (again.status, again.body["status"], again.body["claimId"]) == (200, "approved", first["claimId"])


def test_another_member_cannot_claim_a_purchase_a_pending_claim_waits_on(
    api: Api, enrolled: str, everything: Any
) -> None:
    first = filed(api, enrolled)
    other = f"{enrolled}-o"
    assert api.enrol(other).status == 201
    before = everything(other, first["transactionId"]) + everything(enrolled, first["transactionId"])

    response = file(api, other, transactionId=first["transactionId"])

    assert (response.status, response.error_code) == (409, "purchase_claimed_by_another_member")
    assert everything(other, first["transactionId"]) + everything(enrolled, first["transactionId"]) == before


def test_a_member_may_claim_a_purchase_again_once_anothers_claim_on_it_was_rejected(
    api: Api, enrolled: str
) -> None:
    first = filed(api, enrolled)
    assert decide(api, first["claimId"], "reject", reason="not this member's receipt").status == 200
    other = f"{enrolled}-o"
    assert api.enrol(other).status == 201

    response = file(api, other, transactionId=first["transactionId"])

    assert (response.status, response.body["status"]) == (201, "pending")
    assert response.body["claimId"] != first["claimId"]


def test_a_member_has_at_most_five_pending_claims(
    api: Api, enrolled: str, table: Any, everything: Any
) -> None:
    # Given 5 pending claims
    pending = [filed(api, enrolled) for _ in range(5)]
    assert open_claims(table, enrolled) == 5
    sixth = tx()
    before = everything(enrolled, sixth)

    # When a sixth is filed, Then it is refused and nothing is written
    refused = file(api, enrolled, transactionId=sixth)
    assert (refused.status, refused.error_code) == (409, "too_many_open_claims")
    assert refused.body["error"]["maxOpenClaims"] == 5
    assert everything(enrolled, sixth) == before and guard(table, sixth) is None

    # And once one is decided, another may be filed
    assert decide(api, pending[0]["claimId"], "reject", reason="duplicate").status == 200
    assert open_claims(table, enrolled) == 4
    assert file(api, enrolled, transactionId=sixth).status == 201


def test_claims_rejected_at_once_do_not_count_against_the_limit(api: Api, enrolled: str, table: Any) -> None:
    for _ in range(6):
        assert file(api, enrolled, occurredAt=days_ago(200)).body["status"] == "rejected"

    assert open_claims(table, enrolled) == 0
    assert file(api, enrolled).body["status"] == "pending"


def test_a_claim_for_an_unknown_member_is_a_404_and_writes_nothing(
    api: Api, table: Any, everything: Any
) -> None:
    stranger, purchase = f"m-never-{uuid.uuid4().hex[:8]}", tx()

    response = file(api, stranger, identity=AGENT, transactionId=purchase)

    assert (response.status, response.error_code) == (404, "member_not_found")
    assert everything(stranger, purchase) == [] and guard(table, purchase) is None


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"currency": "JPY"}, 422, "unknown_currency", "currency"),
        (
            {"occurredAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
            422,
            "invalid_request",
            "occurredAt",
        ),
        ({"occurredAt": "2026-11-01"}, 422, "validation_error", "occurredAt"),
        ({"amount": "0.00"}, 422, "validation_error", "amount"),
        ({"amount": "١٢"}, 422, "validation_error", "amount"),
        ({"amount": 12.5}, 422, "validation_error", "amount"),
        ({"transactionId": "no spaces"}, 422, "validation_error", "transactionId"),
        ({"store": "Paris\r\nBcc: x@example.com"}, 422, "validation_error", "store"),
        ({"receiptRef": "x" * 101}, 422, "validation_error", "receiptRef"),
        ({"points": 10}, 422, "validation_error", "points"),
    ],
    ids=[
        "unknown currency",
        "future",
        "a date",
        "zero",
        "arabic digits",
        "number",
        "bad id",
        "control characters",
        "long ref",
        "unknown field",
    ],
)
def test_an_invalid_claim_is_refused_naming_the_field_and_writes_nothing(
    api: Api, enrolled: str, everything: Any, fields: dict[str, Any], status: int, code: str, field: str
) -> None:
    purchase = tx()
    response = file(api, enrolled, **{"transactionId": purchase, **fields})

    assert (response.status, response.error_code) == (status, code), response.body
    assert field in {problem["field"] for problem in response.body["error"]["fields"]}
    assert everything(enrolled, purchase) == everything(enrolled)


# ---------------------------------------------------------------- the queue


def test_the_queue_lists_pending_claims_oldest_first_across_pages(api: Api, enrolled: str) -> None:
    # Given three pending claims filed one after the other (and others' claims in the queue)
    mine = [filed(api, enrolled)["claimId"] for _ in range(3)]

    # When support walks the whole queue two claims a page
    listed = whole_queue(api, limit=2)

    # Then every claim is listed once, oldest first, mine in the order they were filed
    ids = [claim["claimId"] for claim in listed]
    assert len(ids) == len(set(ids))
    assert [claim_id for claim_id in ids if claim_id in mine] == mine
    created = [(claim["createdAt"], claim["claimId"]) for claim in listed]
    assert created == sorted(created)
    assert all(claim["status"] == "pending" for claim in listed)
    assert "history" not in listed[0]


def test_a_decided_claim_leaves_the_queue_for_its_status_list(api: Api, enrolled: str) -> None:
    claim = filed(api, enrolled)
    assert decide(api, claim["claimId"]).status == 200

    pending = {c["claimId"] for c in whole_queue(api)}
    approved = {c["claimId"] for c in whole_queue(api, "approved")}

    assert claim["claimId"] not in pending and claim["claimId"] in approved


def test_a_page_says_its_status_and_ends_with_no_cursor(api: Api, enrolled: str) -> None:
    filed(api, enrolled)

    page = queue(api, status="pending", limit="100")

    assert page.status == 200 and page.body["status"] == "pending"
    assert len(page.body["claims"]) <= 100


def cursor_of(status: str, key: str) -> str:
    return claims_store.encode_claims_cursor(status, key)


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "e30",  # {}
        cursor_of("approved", "2026-11-01T10:00:00.000Z#clm_00000000000000000000000000"),  # another status
        cursor_of("pending", "2026-11-01T10:00:00.000Z"),  # not a key this index holds
        cursor_of("pending", "2026-11-01T10:00:00.000Z#clm_0000000000000000000000000\u0000"),
        cursor_of("pending", "~"),
    ],
    ids=["garbage", "empty object", "other status", "no id", "control character", "beyond every key"],
)
def test_a_cursor_the_api_did_not_issue_is_a_422_naming_it(api: Api, cursor: str) -> None:
    response = queue(api, status="pending", cursor=cursor)

    assert (response.status, response.error_code) == (422, "invalid_request")
    assert response.body["error"]["fields"] == [
        {"field": "cursor", "in": "query", "reason": response.body["error"]["fields"][0]["reason"]}
    ]


def test_a_well_formed_cursor_reads_on_from_its_place(api: Api, enrolled: str) -> None:
    claim = filed(api, enrolled)
    key = f"{claim['createdAt']}#{claim['claimId']}"

    page = queue(api, status="pending", cursor=cursor_of("pending", key))

    assert page.status == 200
    assert all(
        (c["createdAt"], c["claimId"]) > (claim["createdAt"], claim["claimId"]) for c in page.body["claims"]
    )


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "101"}, {"status": "lost"}])
def test_a_bad_page_request_is_a_422(api: Api, query: dict[str, str]) -> None:
    assert queue(api, **query).status == 422


# ---------------------------------------------------------------- a claim and its history


def test_the_claims_member_reads_it_and_another_member_cannot_tell_it_exists(api: Api, enrolled: str) -> None:
    claim = filed(api, enrolled)
    unknown = claim_id_for(enrolled, tx())

    mine = read(api, claim["claimId"], Identity.member(enrolled))
    theirs = read(api, claim["claimId"], Identity.member(f"{enrolled}-o"))
    nothing = read(api, unknown, Identity.member(f"{enrolled}-o"))

    assert mine.status == 200 and mine.body == claim
    assert (theirs.status, theirs.error_code) == (404, "claim_not_found")
    assert (nothing.status, nothing.error_code) == (404, "claim_not_found")
    assert (
        theirs.body["error"]["message"].replace(claim["claimId"], unknown) == nothing.body["error"]["message"]
    )


def test_a_claim_id_that_cannot_be_one_is_a_422(api: Api) -> None:
    assert read(api, "clm_lowercase").status == 422
    assert read(api, "not-a-claim").status == 422


def test_the_history_says_who_did_what_when_and_why(api: Api, enrolled: str) -> None:
    claim = filed(api, enrolled)
    assert decide(api, claim["claimId"], "reject", reason="the receipt is from another shop").status == 200

    history = read(api, claim["claimId"]).body["history"]

    assert [(e["actor"], e["action"], e["status"], e["reason"]) for e in history] == [
        ({"kind": "member", "id": enrolled}, "filed", "pending", None),
        ({"kind": "agent", "id": "agent-1"}, "rejected", "rejected", "the receipt is from another shop"),
    ]
    assert history[0]["at"] <= history[1]["at"]


# ---------------------------------------------------------------- the decision


def test_an_approval_credits_a_claim_lot_once_and_closes_the_claim(
    api: Api, enrolled: str, table: Any, outbox: Outbox
) -> None:
    # Given a pending claim for a purchase of 42.50 EUR made 10 days ago
    claim = filed(api, enrolled, amount="42.50", occurredAt=days_ago(10))

    # When support approves it
    response = decide(api, claim["claimId"], reason="receipt R-2231 checked")

    # Then the rules' points (42) are credited in a claim lot issued today, dated from the purchase
    assert response.status == 200, response.body
    body = response.body
    assert (body["status"], body["reason"], body["reasonCode"]) == (
        "approved",
        "receipt R-2231 checked",
        None,
    )
    assert body["decidedBy"] == {"kind": "agent", "id": "agent-1"}
    credit = body["credit"]
    assert (credit["points"], credit["balance"]) == (42, 42)
    today = datetime.now(PARIS).date()
    assert credit["lotId"].endswith(f"-{today:%Y%m%d}-c")
    purchase_day = datetime.fromisoformat(claim["occurredAt"]).astimezone(PARIS).date()
    assert credit["lotId"].startswith(f"{purchase_day.replace(year=purchase_day.year + 2):%Y%m%d}")
    (lot,) = lots_of(api, enrolled)
    assert (lot["lotId"], lot["source"], lot["remaining"]) == (credit["lotId"], {"kind": "claim"}, 42)
    (entry,) = ledger_of(api, enrolled)
    assert (entry["type"], entry["points"], entry["entryId"]) == ("claim-credit", 42, credit["entryId"])
    assert entry["actor"] == {"kind": "agent", "id": "agent-1"}
    assert entry["details"]["claimId"] == claim["claimId"]
    assert entry["details"]["transactionId"] == claim["transactionId"]
    # and the purchase is credited by the claim, the claim no longer pending
    held = guard(table, claim["transactionId"])
    assert held is not None
    assert (held["status"], held["creditedBy"], held["claimId"]) == ("credited", "claim", claim["claimId"])
    assert int(held["points"]) == 42 and held["entryId"] == credit["entryId"]
    assert open_claims(table, enrolled) == 0
    assert [e["action"] for e in body["history"]] == ["filed", "approved"]
    assert body["history"][1]["points"] == 42
    # and the member is emailed, which the claim records
    assert body["email"]["status"] == "sent" and body["email"]["messageId"]
    (message,) = outbox.to(f"{enrolled}@example.com")
    assert message["Subject"] == "Your points claim was approved"
    assert read(api, claim["claimId"]).body["email"] == body["email"]


def test_a_pending_claim_suggests_the_points_an_approval_would_credit_and_a_decided_one_none(
    api: Api, enrolled: str
) -> None:
    # Given a pending claim for a purchase of 42.50 EUR (the rules give it 42 points)
    claim = filed(api, enrolled, amount="42.50", occurredAt=days_ago(10))

    # When support reads it, then approves it without setting the points
    suggested = read(api, claim["claimId"]).body["suggestedPoints"]
    decided = decide(api, claim["claimId"]).body

    # Then the suggestion is what the approval credited, and a decided claim suggests nothing
    assert claim["suggestedPoints"] == suggested == decided["credit"]["points"] == 42
    assert decided["suggestedPoints"] is None
    assert read(api, claim["claimId"]).body["suggestedPoints"] is None


def test_support_may_set_the_points_of_an_approval(api: Api, enrolled: str) -> None:
    claim = filed(api, enrolled, amount="42.50")

    response = decide(api, claim["claimId"], points=100, reason="goodwill: receipt and loyalty card photo")

    assert (response.status, response.body["credit"]["points"]) == (200, 100)
    assert api.balance(enrolled).body["available"] == 100


def test_an_approval_of_zero_points_closes_the_claim_without_a_lot(api: Api, enrolled: str) -> None:
    claim = filed(api, enrolled)

    response = decide(api, claim["claimId"], points=0)

    assert (response.status, response.body["credit"]["points"], response.body["credit"]["lotId"]) == (
        200,
        0,
        None,
    )
    assert lots_of(api, enrolled) == []


def test_a_rejection_frees_the_purchase_for_a_later_earn(
    api: Api, enrolled: str, table: Any, outbox: Outbox
) -> None:
    claim = filed(api, enrolled)

    response = decide(api, claim["claimId"], "reject", reason="no such purchase at this store")

    assert response.status == 200
    assert (response.body["status"], response.body["reasonCode"]) == ("rejected", "support_decision")
    assert response.body["reason"] == "no such purchase at this store" and response.body["credit"] is None
    assert guard(table, claim["transactionId"]) is None and open_claims(table, enrolled) == 0
    assert api.balance(enrolled).body["available"] == 0
    # the partner's earn of that purchase, if it ever comes, credits normally
    assert api.earn(enrolled, transactionId=claim["transactionId"], amount="42.50").status == 201
    (message,) = outbox.to(f"{enrolled}@example.com")
    assert message["Subject"] == "Your points claim was not accepted"
    assert "no such purchase at this store" in message.get_body(("plain",)).get_content()


def test_a_claim_is_decided_exactly_once(api: Api, enrolled: str, everything: Any, outbox: Outbox) -> None:
    # Given an approved claim
    claim = filed(api, enrolled)
    first = decide(api, claim["claimId"])
    assert first.status == 200
    before = everything(enrolled, claim["transactionId"])

    # When another decision comes: the other decision, another agent's, another reason
    others = [
        decide(api, claim["claimId"], "reject", reason="receipt checked"),
        decide(api, claim["claimId"], identity=Identity.support("agent-2")),
        decide(api, claim["claimId"], reason="checked again"),
        decide(api, claim["claimId"], points=43),
    ]

    # Then each is a 409 saying the status, and nothing changed, nothing emailed again
    for refused in others:
        assert (refused.status, refused.error_code) == (409, "claim_already_decided")
        assert refused.body["error"]["claimStatus"] == "approved"
    assert everything(enrolled, claim["transactionId"]) == before
    assert len(outbox.to(f"{enrolled}@example.com")) == 1


def test_the_same_decision_sent_again_by_the_same_agent_answers_the_stored_one(
    api: Api, enrolled: str, everything: Any, outbox: Outbox
) -> None:
    claim = filed(api, enrolled)
    first = decide(api, claim["claimId"])
    before = everything(enrolled, claim["transactionId"])

    again = decide(api, claim["claimId"])

    assert again.status == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.body == first.body
    assert everything(enrolled, claim["transactionId"]) == before
    assert len(outbox.to(f"{enrolled}@example.com")) == 1


def test_a_claim_rejected_at_once_cannot_be_decided(api: Api, enrolled: str) -> None:
    claim = file(api, enrolled, occurredAt=days_ago(200)).body

    response = decide(api, claim["claimId"])

    assert (response.status, response.body["error"]["claimStatus"]) == (409, "rejected")


def test_points_with_a_rejection_are_refused_and_change_nothing(
    api: Api, enrolled: str, everything: Any
) -> None:
    claim = filed(api, enrolled)
    before = everything(enrolled, claim["transactionId"])

    response = decide(api, claim["claimId"], "reject", points=10)

    assert (response.status, response.error_code) == (422, "invalid_request")
    assert response.body["error"]["fields"][0]["field"] == "points"
    assert everything(enrolled, claim["transactionId"]) == before


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "approve"},
        {"decision": "approve", "reason": ""},
        {"decision": "maybe", "reason": "x"},
        {"decision": "approve", "reason": "x", "points": -1},
        {"decision": "approve", "reason": "x", "points": 1.5},
        {"decision": "approve", "reason": "x\u202e"},
    ],
    ids=["no reason", "empty reason", "unknown decision", "negative points", "fraction", "bidi"],
)
def test_an_invalid_decision_is_a_422(api: Api, enrolled: str, body: dict[str, Any]) -> None:
    claim = filed(api, enrolled)

    response = api.call("POST", f"/claims/{claim['claimId']}/decision", identity=AGENT, body=body)

    assert (response.status, response.error_code) == (422, "validation_error")
    assert read(api, claim["claimId"]).body["status"] == "pending"


def test_a_decision_on_an_unknown_claim_is_a_404(api: Api) -> None:
    response = decide(api, claim_id_for("m-nobody", tx()))

    assert (response.status, response.error_code) == (404, "claim_not_found")


def test_a_late_earn_of_an_approved_claims_purchase_is_refused_and_credits_nothing(
    api: Api, enrolled: str
) -> None:
    claim = filed(api, enrolled)
    assert decide(api, claim["claimId"]).status == 200

    late = api.earn(enrolled, transactionId=claim["transactionId"], amount="42.50")

    assert (late.status, late.error_code) == (409, "transaction_already_credited")
    assert api.balance(enrolled).body["available"] == 42


def test_an_approval_settles_points_owed_first(api: Api, enrolled: str, table: Any) -> None:
    # Given a member owing 10 points after a return
    table.update_item(
        Key={"pk": f"MEMBER#{enrolled}", "sk": "WALLET"},
        UpdateExpression="SET owed = :o",
        ExpressionAttributeValues={":o": 10},
    )
    claim = filed(api, enrolled, amount="42.50")

    response = decide(api, claim["claimId"])

    assert response.body["credit"]["points"] == 42 and response.body["credit"]["balance"] == 32
    assert api.balance(enrolled).body["available"] == 32


# ---------------------------------------------------------------- the earn of a pending claim's purchase


def test_an_earn_of_a_pending_claims_purchase_credits_normally_and_matches_the_claim(
    api: Api, enrolled: str, table: Any, outbox: Outbox
) -> None:
    # Given a pending claim
    claim = filed(api, enrolled, amount="42.50")

    # When the partner reports the purchase after all
    earned = api.earn(enrolled, transactionId=claim["transactionId"], amount="42.50")

    # Then it is credited as any earn, and the claim closed itself as matched in the same transaction
    assert earned.status == 201, earned.body
    assert (earned.body["points"], earned.body["balance"]) == (42, 42)
    closed = read(api, claim["claimId"]).body
    assert closed["status"] == "matched"
    assert closed["decidedBy"] == {"kind": "partner", "id": "pos-test"}
    assert closed["credit"] == {
        "points": 42,
        "entryId": earned.body["entryId"],
        "lotId": earned.body["lotId"],
        "expiresAt": earned.body["expiresAt"],
        "balance": 42,
    }
    assert [(e["action"], e["actor"]["kind"]) for e in closed["history"]] == [
        ("filed", "member"),
        ("matched", "partner"),
    ]
    held = guard(table, claim["transactionId"])
    assert held is not None
    assert (held["status"], held["creditedBy"], held["claimId"]) == ("credited", "earn", claim["claimId"])
    assert open_claims(table, enrolled) == 0
    # and the member is emailed the match, which the claim records
    (message,) = outbox.to(f"{enrolled}@example.com")
    assert message["Subject"] == "Your missing points have been credited"
    assert closed["email"]["status"] == "sent"
    # and support can no longer decide it
    assert decide(api, claim["claimId"]).body["error"]["claimStatus"] == "matched"


def test_an_earn_replayed_after_closing_a_claim_sends_nothing_again(
    api: Api, enrolled: str, outbox: Outbox
) -> None:
    claim = filed(api, enrolled)
    purchase = {"transactionId": claim["transactionId"], "amount": "42.50", "occurredAt": claim["occurredAt"]}
    first = api.earn(enrolled, **purchase)

    again = api.earn(enrolled, **purchase)

    assert again.status == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.body == first.body
    assert len(outbox.to(f"{enrolled}@example.com")) == 1


def test_an_earn_of_the_purchase_for_another_member_rejects_the_pending_claim(
    api: Api, enrolled: str, table: Any, outbox: Outbox
) -> None:
    # Given a French member's pending claim
    claimant = f"m-fr-{uuid.uuid4().hex[:10]}"
    assert api.enrol(claimant, locale="fr", name="Zoé").status == 201
    claim = filed(api, claimant)

    # When the partner credits that purchase to another member
    earned = api.earn(enrolled, transactionId=claim["transactionId"])

    # Then the other member is credited, and the claim is rejected, its member told in French
    assert earned.status == 201
    closed = read(api, claim["claimId"]).body
    assert (closed["status"], closed["reasonCode"]) == ("rejected", "credited_to_another_member")
    assert closed["credit"] is None and enrolled not in str(closed)
    assert open_claims(table, claimant) == 0 and api.balance(claimant).body["available"] == 0
    (message,) = outbox.to(f"{claimant}@example.com")
    assert message["Subject"] == "Votre réclamation de points n'a pas été acceptée"
    assert "autre compte de fidélité" in message.get_body(("plain",)).get_content()


def test_a_pending_claims_purchase_earned_while_another_transaction_moves_the_wallet_is_credited_once(
    api: Api, enrolled: str
) -> None:
    # Given a pending claim and a redemption racing the earn on the same wallet (sequentially here)
    assert api.earn(enrolled, amount="10.00").status == 201
    claim = filed(api, enrolled)
    assert api.redeem(enrolled, 5).status == 201

    earned = api.earn(enrolled, transactionId=claim["transactionId"], amount="42.50")

    assert earned.status == 201 and earned.body["balance"] == 47
    assert read(api, claim["claimId"]).body["status"] == "matched"


# ---------------------------------------------------------------- the race: approval against a late earn


def _racer(
    environment: dict[str, str], kind: str, rounds: list[dict[str, str]], barrier: Any, results: Any
) -> None:
    """Runs in a fresh interpreter: the earn (partner) or the claims function (support approves),
    one request per round, each released with the other process's by the barrier."""
    os.environ.update(environment)
    from devtools.identity import Identity
    from devtools.lambda_runtime import LambdaContext, http_event, load_handler

    if kind == "earn":
        handler = load_handler("functions/earn", "app.lambda_handler", root=Path(ROOT))
    else:
        handler = load_handler("functions/claims", "app.lambda_handler", root=Path(ROOT))
    for round_ in rounds:
        if kind == "earn":
            event = http_event(
                "POST",
                f"/members/{round_['member']}/earn",
                route_key="POST /members/{memberId}/earn",
                path_parameters={"memberId": round_["member"]},
                headers={"content-type": "application/json"},
                body={
                    "transactionId": round_["tx"],
                    "amount": "42.50",
                    "currency": "EUR",
                    "occurredAt": round_["occurredAt"],
                    "channel": "store",
                },
                identity=Identity.partner("pos-race"),
            )
        else:
            event = http_event(
                "POST",
                f"/claims/{round_['claim']}/decision",
                route_key="POST /claims/{claimId}/decision",
                path_parameters={"claimId": round_["claim"]},
                headers={"content-type": "application/json"},
                body={"decision": "approve", "reason": "race"},
                identity=Identity.support("agent-race"),
            )
        barrier.wait(timeout=60)
        response = handler(event, LambdaContext("EarnFunction" if kind == "earn" else "ClaimsFunction"))
        results.put((round_["claim"], kind, int(response["statusCode"]), response["body"]))


def _environment() -> dict[str, str]:
    names = ("AWS_ENDPOINT_URL_DYNAMODB", "TABLE_NAME", "RULES_SOURCE", "AWS_ACCESS_KEY_ID")
    names += ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "POWERTOOLS_LOG_LEVEL")
    # No email settings: the outcome emails fail there (recorded on the claim), never the decision.
    return {name: os.environ[name] for name in names if name in os.environ}


@pytest.mark.slow
def test_an_approval_and_a_late_earn_of_the_same_purchase_at_the_same_moment_credit_it_once(
    api: Api, table: Any
) -> None:
    # Given pending claims, each of a member of its own
    rounds = []
    for _ in range(8):
        member = f"m-race-{uuid.uuid4().hex[:10]}"
        assert api.enrol(member).status == 201
        claim = filed(api, member)
        rounds.append(
            {
                "member": member,
                "tx": claim["transactionId"],
                "claim": claim["claimId"],
                "occurredAt": claim["occurredAt"],
            }
        )

    # When, for each, support approves the claim and the partner reports the purchase at once
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    racers = [
        context.Process(target=_racer, args=(_environment(), kind, rounds, barrier, results))
        for kind in ("earn", "approve")
    ]
    for racer in racers:
        racer.start()
    outcomes: dict[str, dict[str, tuple[int, str]]] = {}
    for _ in range(2 * len(rounds)):
        claim_id, kind, status, body = results.get(timeout=180)
        outcomes.setdefault(claim_id, {})[kind] = (status, body)
    for racer in racers:
        racer.join(timeout=60)

    # Then, every time, exactly one of them credited the purchase, and the other was told why
    winners = []
    for round_ in rounds:
        earn_status, earn_body = outcomes[round_["claim"]]["earn"]
        approve_status, approve_body = outcomes[round_["claim"]]["approve"]
        assert {earn_status, approve_status} in ({201, 409}, {200, 409}), (earn_status, approve_status)
        winner = "earn" if earn_status == 201 else "approve"
        winners.append(winner)
        if winner == "earn":
            assert '"claim_already_decided"' in approve_body and '"matched"' in approve_body
        else:
            assert earn_status == 409 and '"transaction_already_credited"' in earn_body
        entries = ledger_of(api, round_["member"])
        credits = [e for e in entries if e["details"].get("transactionId") == round_["tx"]]
        assert len(credits) == 1 and credits[0]["type"] == ("earn" if winner == "earn" else "claim-credit")
        assert api.balance(round_["member"]).body["available"] == 42
        claim = read(api, round_["claim"]).body
        assert claim["status"] == ("matched" if winner == "earn" else "approved")
        assert open_claims(table, round_["member"]) == 0
    print(f"race winners: {winners.count('earn')} earn, {winners.count('approve')} approval")


# ---------------------------------------------------------------- the email of the outcome


def test_the_email_is_in_the_members_language_with_its_name_escaped(
    api: Api, enrolled: str, outbox: Outbox
) -> None:
    member = f"{enrolled}-fr"
    assert api.enrol(member, locale="fr", name="<b>Zoé</b> & Cie").status == 201
    claim = filed(api, member, amount="1250.00")

    assert decide(api, claim["claimId"]).status == 200

    (message,) = outbox.to(f"{member}@example.com")
    assert message["Subject"] == "Votre réclamation de points est acceptée"
    assert message["Content-Language"] == "fr"
    assert message["To"].addresses[0].display_name == "<b>Zoé</b> & Cie"
    html = message.get_body(("html",)).get_content()
    assert "<b>Zoé</b>" not in html and "&lt;b&gt;Zoé&lt;/b&gt; &amp; Cie" in html
    assert "1\u202f250 points" in message.get_body(("plain",)).get_content()


def test_a_member_who_opted_out_of_email_still_gets_the_answer_to_its_claim(
    api: Api, enrolled: str, outbox: Outbox
) -> None:
    member = f"{enrolled}-quiet"
    assert api.enrol(member, emailOptIn=False).status == 201
    claim = filed(api, member)

    response = decide(api, claim["claimId"], "reject", reason="duplicate")

    assert response.body["email"]["status"] == "sent"
    assert len(outbox.to(f"{member}@example.com")) == 1


def test_a_member_without_an_address_is_not_emailed_and_the_claim_says_so(
    api: Api, enrolled: str, table: Any, outbox: Outbox
) -> None:
    claim = filed(api, enrolled)
    table.update_item(Key={"pk": f"MEMBER#{enrolled}", "sk": "PROFILE"}, UpdateExpression="REMOVE email")

    response = decide(api, claim["claimId"])

    assert response.status == 200
    assert (response.body["email"]["status"], response.body["email"]["error"]) == ("skipped", "no_address")
    assert sent_emails() == []


def test_an_email_ses_refuses_leaves_the_decision_made_and_says_so_on_the_claim(
    api: Api, enrolled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a sender SES does not know
    monkeypatch.setenv("SENDER_ADDRESS", "someone@unverified.example.org")
    forget_email_configuration()
    claim = filed(api, enrolled)

    # When support approves the claim
    response = decide(api, claim["claimId"])

    # Then the claim is approved all the same, and records the email's failure
    assert response.status == 200 and response.body["status"] == "approved"
    email_record = read(api, claim["claimId"]).body["email"]
    assert (email_record["status"], email_record["error"], email_record["retryable"]) == (
        "failed",
        "MessageRejected",
        False,
    )
    assert api.balance(enrolled).body["available"] == 42


def test_an_email_that_cannot_be_recorded_still_leaves_the_decision_answered(
    api: Api, enrolled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = filed(api, enrolled)

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the table is gone")

    monkeypatch.setattr("loyalty.http.claim_emails.record_email", broken)
    response = decide(api, claim["claimId"])

    assert response.status == 200 and response.body["email"]["status"] == "sent"


# ---------------------------------------------------------------- metrics


def test_filing_and_deciding_are_counted(api: Api, enrolled: str, monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[tuple[str, int]] = []
    monkeypatch.setattr(claims_routes, "count_event", lambda name, value=1: counted.append((name, value)))

    claim = filed(api, enrolled)
    file(api, enrolled, occurredAt=days_ago(300))
    decide(api, claim["claimId"])

    assert counted == [
        ("ClaimsOpened", 1),
        ("ClaimsRejectedAtOnce", 1),
        ("ClaimsApproved", 1),
        ("ClaimPointsCredited", 42),
    ]
