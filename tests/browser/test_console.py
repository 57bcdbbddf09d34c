"""The support console, end to end: a real Chromium, the real local mode, the real API."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.conftest import PARIS, PARTNER, Agents, LocalConsole, sign_in

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.dynamodb
Screenshot = Callable[[Any, str], None]


def test_an_agent_signs_in_and_sees_the_pending_claims_oldest_first(
    agents: Agents, local_console: LocalConsole, screenshot: Screenshot
) -> None:
    # Given the sign-in screen of the local mode
    page = agents.open()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "sign-in")

    # When a support agent signs in
    sign_in(page, "support", "agent-1")

    # Then the queue of pending claims shows, oldest first, as the API lists it, under the page's
    # one top-level heading (each screen's own heading is the level below)
    expect(page.get_by_role("heading", name="Pending claims")).to_be_focused()
    expect(page.get_by_role("heading", level=1)).to_have_text("Support console")
    expect(page.get_by_role("heading", name="Pending claims", level=2)).to_be_visible()
    expect(page.locator("#who")).to_have_text("Signed in as support:agent-1")
    queue = local_console.ok("GET", "/claims?status=pending&limit=20", "Dev support:auditor")["claims"]
    links = page.locator("table a[href^='#/claims/']")
    expect(links).to_have_count(len(queue))
    assert links.first.get_attribute("href") == f"#/claims/{queue[0]['claimId']}"
    screenshot(page, "claims-queue")


def test_an_agent_finds_a_member_and_reads_the_ledger_page_by_page(
    agents: Agents, local_console: LocalConsole, screenshot: Screenshot
) -> None:
    # Given a member with twelve purchases (two pages of ten movements)
    member = local_console.enrol("Chloé Durand")
    for day in range(12):
        local_console.earn(member, f"{10 + day}.00", days_ago=30 - day)
    page = agents.signed_in()

    # When the agent looks the member up
    page.get_by_label("Member id").fill(member)
    page.get_by_role("button", name="Find").click()

    # Then profile, balance, lots and the newest ten movements show
    expect(page.get_by_role("heading", name="Chloé Durand")).to_be_focused()
    expect(page.locator("#balance-available")).to_have_text(str(local_console.available(member)))
    expiring = local_console.ok("GET", f"/members/{member}/balance", "Dev support:auditor")["expiring"]
    expiries = page.locator("section[aria-labelledby='balance-title'] tbody tr")
    expect(expiries).to_have_count(len(expiring))
    expect(expiries.first).to_contain_text(str(expiring[0]["points"]))
    ledger = page.locator("section[aria-labelledby='ledger-title'] tbody tr")
    expect(ledger).to_have_count(10)
    expect(ledger.first).to_contain_text("21")  # the newest purchase: 21.00 EUR, 21 points
    expect(ledger.first).to_contain_text("partner:demo-pos")
    screenshot(page, "member")

    # and the older movements come a page at a time, and back
    page.get_by_role("button", name="Older movements").click()
    expect(page.get_by_text("Movements, newest first (page 2)")).to_be_visible()
    expect(ledger).to_have_count(2)
    expect(ledger.last).to_contain_text("10")
    expect(page.get_by_role("button", name="Older movements")).to_have_count(0)
    page.get_by_role("button", name="Newer movements").click()
    expect(page.get_by_text("Movements, newest first (page 1)")).to_be_visible()
    expect(ledger).to_have_count(10)


def test_a_member_who_spent_points_of_a_returned_purchase_shows_them_owed_apart_and_what_expires_when(
    agents: Agents, local_console: LocalConsole
) -> None:
    # Given a member who earned 50 and 30 points, spent 60, then returned the 50-point purchase
    member = local_console.enrol("Omar Owed")
    returned = local_console.earn(member, "50.00", days_ago=60)
    local_console.earn(member, "30.00", days_ago=20)
    local_console.ok(
        "POST", f"/members/{member}/redemptions", PARTNER, {"points": 60}, Idempotency_Key=f"{member}-r"
    )
    local_console.ok(
        "POST",
        f"/members/{member}/earn/{returned['transactionId']}/reversal",
        PARTNER,
        {},
        Idempotency_Key=f"{member}-x",
    )
    balance = local_console.ok("GET", f"/members/{member}/balance", "Dev support:auditor")
    assert (balance["available"], balance["owed"]) == (0, 30)

    # When an agent opens the member
    page = agents.signed_in(path=f"#/members/{member}")

    # Then the owed points show apart from the available ones, and the movements say who did what
    expect(page.locator("#balance-available")).to_have_text("0")
    expect(page.locator("#balance-owed")).to_have_text("30")
    expect(page.get_by_text("No points expire.")).to_be_visible()
    ledger = page.locator("section[aria-labelledby='ledger-title'] tbody tr")
    expect(ledger).to_have_count(4)
    expect(ledger.first).to_contain_text("partner:demo-pos")


def test_an_unknown_member_is_said_so(agents: Agents) -> None:
    page = agents.signed_in()

    page.get_by_label("Member id").fill("nobody-here")
    page.get_by_label("Member id").press("Enter")

    expect(page.get_by_role("alert")).to_have_text("No member with id nobody-here.")


def test_an_approval_credits_the_points_the_agent_set_and_the_balance_shows_them(
    agents: Agents, local_console: LocalConsole, screenshot: Screenshot
) -> None:
    # Given a member with 30 points and a pending claim the rules value at 42 points
    member = local_console.enrol("Bob Approved")
    local_console.earn(member, "30.00", days_ago=40)
    claim = local_console.file_claim(member, amount="42.50")
    page = agents.signed_in(path=f"#/claims/{claim['claimId']}")

    # When the agent opens it, edits the suggested points and approves
    points = page.get_by_label("Points to credit")
    expect(points).to_have_value("42")
    expect(page.get_by_text("The rules suggest 42 points for this purchase.")).to_be_visible()
    screenshot(page, "claim")
    points.fill("50")
    page.get_by_label("Reason for the approval").fill("receipt R-1001 checked, +8 goodwill")
    page.get_by_role("button", name="Approve").click()

    # Then the claim is approved with 50 points, and the member's balance shows them
    expect(page.get_by_role("status")).to_have_text(
        "Claim approved: 50 points credited; the member's balance is now 80."
    )
    expect(page.locator("#claim-status")).to_have_text("approved")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    page.get_by_role("link", name=f"See member {member}").click()
    expect(page.locator("#balance-available")).to_have_text("80")
    stored = local_console.claim(claim["claimId"])
    assert (stored["status"], stored["credit"]["points"], stored["decidedBy"]) == (
        "approved",
        50,
        {"kind": "agent", "id": "agent-1"},
    )
    assert local_console.available(member) == 80


def test_a_rejection_with_a_reason_closes_the_claim_and_credits_nothing(
    agents: Agents, local_console: LocalConsole
) -> None:
    member = local_console.enrol("Rita Rejected")
    claim = local_console.file_claim(member)
    page = agents.signed_in(path=f"#/claims/{claim['claimId']}")

    page.get_by_label("Reason for the rejection (shown to the member)").fill("no such receipt at this store")
    page.get_by_role("button", name="Reject").click()

    expect(page.get_by_role("status")).to_have_text("Claim rejected.")
    expect(page.locator("#claim-status")).to_have_text("rejected")
    expect(page.locator("dl.facts")).to_contain_text("no such receipt at this store")
    stored = local_console.claim(claim["claimId"])
    assert (stored["status"], stored["reason"], stored["credit"]) == (
        "rejected",
        "no such receipt at this store",
        None,
    )
    assert local_console.available(member) == 0


def test_a_decision_without_a_reason_is_not_sent(agents: Agents, local_console: LocalConsole) -> None:
    member = local_console.enrol("Nora Noreason")
    claim = local_console.file_claim(member)
    page = agents.signed_in(path=f"#/claims/{claim['claimId']}")

    page.get_by_role("button", name="Approve").click()

    # The browser's own check of the required field keeps the form from being sent
    assert page.get_by_label("Reason for the approval").evaluate("field => !field.validity.valid")
    expect(page.locator("#claim-status")).to_have_text("pending")
    assert local_console.claim(claim["claimId"])["status"] == "pending"


def test_when_two_agents_decide_the_same_claim_the_second_is_told_and_nothing_is_overwritten(
    agents: Agents, local_console: LocalConsole, screenshot: Screenshot
) -> None:
    # Given two agents with the same pending claim open
    member = local_console.enrol("Dora Double")
    claim = local_console.file_claim(member, amount="20.00")
    first = agents.signed_in("agent-1", path=f"#/claims/{claim['claimId']}")
    second = agents.signed_in("agent-2", path=f"#/claims/{claim['claimId']}")
    expect(second.get_by_role("button", name="Reject")).to_be_visible()

    # When the first approves, then the second (still seeing it pending) rejects it
    first.get_by_label("Reason for the approval").fill("receipt checked")
    first.get_by_role("button", name="Approve").click()
    expect(first.locator("#claim-status")).to_have_text("approved")
    second.get_by_label("Reason for the rejection (shown to the member)").fill("looks like a duplicate")
    second.get_by_role("button", name="Reject").click()

    # Then the second agent is told plainly, and sees the claim as it stands: nothing overwritten
    notice = second.locator("#decision-conflict")
    expect(notice).to_contain_text(
        "Another agent decided this claim first: it is now approved (by agent:agent-1"
    )
    expect(notice).to_contain_text("Your decision was not applied.")
    expect(second.locator("#claim-status")).to_have_text("approved")
    expect(second.get_by_role("button", name="Reject")).to_have_count(0)
    screenshot(second, "claim-conflict")
    stored = local_console.claim(claim["claimId"])
    assert (stored["status"], stored["decidedBy"]["id"], stored["credit"]["points"]) == (
        "approved",
        "agent-1",
        20,
    )
    assert [event["action"] for event in stored["history"]] == ["filed", "approved"]


def test_a_conflict_that_leaves_the_claim_pending_is_the_apis_refusal_not_another_agents_decision(
    agents: Agents, local_console: LocalConsole
) -> None:
    # Given a pending claim, and an API that refuses its approval with a 409 other than "already
    # decided" (a movement too large for one transaction): the claim stays pending
    member = local_console.enrol("Colette Conflict")
    claim = local_console.file_claim(member, amount="30.00")
    page = agents.signed_in(path=f"#/claims/{claim['claimId']}")
    refusal = {"error": {"code": "movement_too_large", "message": "the credit needs too many items"}}
    page.route(
        "**/decision",
        lambda route: route.fulfill(status=409, content_type="application/json", body=json.dumps(refusal)),
    )

    # When the agent approves it
    page.get_by_label("Reason for the approval").fill("receipt checked")
    page.get_by_role("button", name="Approve").click()

    # Then the API's refusal is shown, no other agent is said to have decided, and the agent may retry
    expect(page.locator("#decision-error")).to_contain_text("409: the credit needs too many items")
    expect(page.locator("#decision-conflict")).to_have_count(0)
    expect(page.locator("#claim-status")).to_have_text("pending")
    expect(page.get_by_role("button", name="Approve")).to_be_enabled()
    assert local_console.claim(claim["claimId"])["status"] == "pending"


def test_an_answer_the_page_cannot_read_is_said_not_a_blank_page(agents: Agents) -> None:
    # Given an API (or something in front of it) answering the queue with a page that is not its JSON
    page = agents.signed_in()
    expect(page.get_by_role("heading", name="Pending claims")).to_be_visible()
    page.route(
        "**/claims?*", lambda route: route.fulfill(status=200, content_type="text/html", body="<html>")
    )

    # When the agent reads the queue again
    page.get_by_role("link", name="Claims queue").click()

    # Then the page says so (and the fixture finds no unhandled error)
    expect(page.get_by_role("alert")).to_contain_text("The API's answer could not be read")


def test_an_address_edited_by_hand_with_broken_encoding_is_an_unknown_member_not_a_blank_page(
    agents: Agents,
) -> None:
    page = agents.signed_in(path="#/members/%E0%A4%A")

    # Then the API says what is wrong with the id (a 422), shown as any refusal
    expect(page.get_by_role("alert")).to_contain_text("Not accepted: memberId")


def test_a_field_the_api_refuses_is_said_once(agents: Agents) -> None:
    # Given a member id the API refuses (a 422 whose message lists its fields)
    page = agents.signed_in(path="#/members/-dash-first")

    # Then the refusal names the field and why, once
    expect(page.get_by_role("alert")).to_have_text(
        "Not accepted: memberId: must be 1 to 128 characters among A-Z a-z 0-9 . _ : - (not first)"
    )


def test_a_name_with_markup_is_shown_as_text_and_runs_nothing(
    agents: Agents, local_console: LocalConsole
) -> None:
    # Given a member whose name and claim hold markup
    name = '<img src=x onerror="window.__pwned = 1">Eve <b>Bold</b>'
    member = local_console.enrol(name)
    local_console.earn(member, "15.00", days_ago=5)
    claim = local_console.file_claim(member)
    page = agents.signed_in()

    # When an agent opens the member and the claim
    page.get_by_label("Member id").fill(member)
    page.get_by_label("Member id").press("Enter")
    heading = page.locator("#member-name")

    # Then the name shows as its characters, no element was made of it and no script ran
    expect(heading).to_have_text(name)
    assert heading.evaluate("node => node.children.length") == 0
    assert page.locator("img").count() == 0 and page.locator("b").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__violations") == []
    expect(page.locator("dl.facts")).to_contain_text(name)
    page.goto(f"{local_console.console}#/claims/{claim['claimId']}")
    expect(page.locator("#claim-status")).to_have_text("pending")
    assert page.locator("img").count() == 0
    assert page.evaluate("window.__violations") == []


@pytest.mark.parametrize(("role", "subject"), [("member", "demo-alice"), ("partner", "demo-pos")])
def test_an_identity_that_is_not_support_is_refused(agents: Agents, role: str, subject: str) -> None:
    page = agents.open()

    sign_in(page, role, subject)

    expect(page.locator("#signin-message")).to_have_text(
        "This identity is not a support agent: the console is for support only."
    )
    expect(page.get_by_role("navigation")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('console.session')") is None


def test_the_session_lives_in_the_tab_only_and_signing_out_forgets_it(agents: Agents) -> None:
    page = agents.signed_in()
    expect(page.get_by_role("heading", name="Pending claims")).to_be_visible()
    assert "support:agent-1" in page.evaluate("sessionStorage.getItem('console.session')")
    assert page.evaluate("localStorage.length") == 0

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('console.session')") is None
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_an_agent_files_a_claim_for_a_member_and_finds_it_pending(
    agents: Agents, local_console: LocalConsole
) -> None:
    # Given an agent whose browser runs on Paris time, on a member's page
    member = local_console.enrol("Fiona Filed")
    page = agents.signed_in(path=f"#/members/{member}", timezone="Europe/Paris")
    expect(page.get_by_role("heading", name="Fiona Filed")).to_be_visible()
    day = (datetime.now(PARIS) - timedelta(days=10)).date()

    # When the agent files the purchase the member describes, at 15:30 that day (Paris time)
    page.get_by_label("Purchase reference (transaction id)").fill("store-77-0042")
    page.get_by_label("Purchase date and time").fill(f"{day.isoformat()}T15:30")
    page.get_by_label("Amount").fill("19.90")
    page.get_by_label("Store (optional)").fill("Nantes")
    # (the answer goes to a live region present before it, so that screen readers read it out)
    expect(page.locator("#file-result")).to_have_attribute("aria-live", "polite")
    page.get_by_role("button", name="File the claim").click()

    # Then the claim waits in the queue, filed by the agent, for the instant the agent meant
    expect(page.locator("#file-result")).to_contain_text("Claim filed: it waits in the queue.")
    page.get_by_role("link", name="Open the claim").click()
    expect(page.get_by_role("heading", name="Claim for purchase store-77-0042")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("agent:agent-1")
    expect(page.get_by_label("Points to credit")).to_have_value("19")
    claim_id = page.url.rsplit("/", 1)[1]
    meant = datetime(day.year, day.month, day.day, 15, 30, tzinfo=PARIS).astimezone(UTC)
    assert local_console.claim(claim_id)["occurredAt"] == f"{meant:%Y-%m-%dT%H:%M:%S}.000Z"


def test_an_identity_the_api_cannot_read_is_told_the_sign_in_was_not_accepted(agents: Agents) -> None:
    page = agents.open()

    sign_in(page, "support", "agent one")  # a space: no development identity, the API answers 401

    expect(page.locator("#signin-message")).to_contain_text("The sign-in was not accepted")
    expect(page.get_by_role("navigation")).to_be_hidden()


def test_every_control_of_the_main_screens_has_a_label(agents: Agents, local_console: LocalConsole) -> None:
    member = local_console.enrol("Lea Label")
    claim = local_console.file_claim(member)
    page = agents.signed_in()
    unlabelled = """() => [...document.querySelectorAll("input, select, textarea, button")]
        .filter((control) => control.offsetParent !== null)
        .filter((control) => !(control.labels && control.labels.length) && !control.getAttribute("aria-label")
            && !(control.tagName === "BUTTON" && control.textContent.trim()))
        .map((control) => control.outerHTML)"""

    for path, heading in [
        ("#/claims", "Pending claims"),
        (f"#/members/{member}", "Lea Label"),
        (f"#/claims/{claim['claimId']}", f"Claim for purchase {claim['transactionId']}"),
    ]:
        page.goto(f"{local_console.console}{path}")
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        assert page.evaluate(unlabelled) == [], path


def test_the_claims_link_reads_the_queue_again_from_its_first_page(
    agents: Agents, local_console: LocalConsole
) -> None:
    # Given more pending claims than a page holds, and the agent on the second page
    for _ in range(21 - len(local_console.ok("GET", "/claims?limit=21", "Dev support:auditor")["claims"])):
        local_console.file_claim(local_console.enrol("Queue Filler"))
    page = agents.signed_in()
    page.get_by_role("button", name="Next page").click()
    expect(page.get_by_text("(page 2)")).to_be_visible()

    # When the agent follows the Claims queue link (the address does not change)
    page.get_by_role("link", name="Claims queue").click()

    # Then the first page shows again
    expect(page.get_by_text("(page 1)")).to_be_visible()


def tab_to(page: Any, selector: str, *, backwards: bool = False, limit: int = 60) -> list[str]:
    """Press Tab (Shift+Tab) until `selector` has the focus; the ids (or tags) focused on the way."""
    visited: list[str] = []
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        page.keyboard.press(key)
        visited.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return visited
    raise AssertionError(f"{selector} never got the focus; visited {visited}")


def test_the_main_flow_works_with_the_keyboard_only_and_the_focus_is_visible(
    agents: Agents, local_console: LocalConsole
) -> None:
    # Given a pending claim at the head of the queue's first page, and the sign-in screen
    member = local_console.enrol("Kim Keyboard")
    local_console.file_claim(member, amount="12.00")
    head = local_console.ok("GET", "/claims?status=pending&limit=1", "Dev support:auditor")["claims"][0]
    before = local_console.available(head["memberId"])
    page = agents.open()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # When the agent signs in with the keyboard (skip link, language, role, id: in that order)
    visited = tab_to(page, "#signin-id")
    assert visited == ["skip", "lang", "signin-role", "signin-id"]
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus ring is visible
    page.keyboard.type("agent-7")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Pending claims")).to_be_focused()

    # and opens the oldest claim, keeps the suggested points and approves, all by keyboard
    tab_to(page, "table a[href^='#/claims/']")
    page.keyboard.press("Enter")
    expect(page.locator("#claim-status")).to_have_text("pending")
    tab_to(page, "#approve-reason")
    page.keyboard.type("checked with the store")
    page.keyboard.press("Enter")

    # Then the claim is approved and the member's balance grew by the suggested points
    expect(page.locator("#claim-status")).to_have_text("approved")
    credited = local_console.claim(head["claimId"])["credit"]["points"]
    assert local_console.available(head["memberId"]) == before + credited
    expect(page.get_by_role("status")).to_contain_text(f"{credited} points credited")


def test_the_console_speaks_the_browsers_language_and_switches_on_demand(
    agents: Agents, local_console: LocalConsole
) -> None:
    # Given a browser that prefers French, and a member with one purchase
    member = local_console.enrol("Fanny Français")
    local_console.earn(member, "12.00", days_ago=3)
    page = agents.open(locale="fr-FR")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "fr"
    expect(page).to_have_title("Console du support fidélité")
    page.get_by_label("Identifiant", exact=True).fill("agent-fr")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Réclamations en attente")).to_be_visible()
    page.get_by_label("Identifiant du membre").fill(member)
    page.get_by_role("button", name="Chercher").click()
    ledger = page.locator("section[aria-labelledby='ledger-title'] tbody tr")
    expect(ledger.first).to_contain_text("achat")
    expect(page.get_by_role("heading", name="Relevé")).to_be_visible()

    # When the agent switches to English
    page.get_by_label("Langue").select_option("en")

    # Then the page speaks English, and keeps to it in this tab
    expect(ledger.first).to_contain_text("purchase")
    page.get_by_role("link", name="Claims queue").click()
    expect(page.get_by_role("heading", name="Pending claims")).to_be_visible()
    expect(page.get_by_role("link", name="Claims queue")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "en"
    expect(page).to_have_title("Loyalty support console")
    page.reload()
    expect(page.get_by_role("heading", name="Pending claims")).to_be_visible()
    # and an English browser gets English
    english = agents.open(locale="en-GB")
    expect(english.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_console_is_served_with_a_strict_content_security_policy(local_console: LocalConsole) -> None:
    with urllib.request.urlopen(local_console.console, timeout=10) as answer:
        policy = answer.headers["Content-Security-Policy"]
        page = answer.read().decode()
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "unsafe-inline" not in policy
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "no inline script"
    assert not re.search(r"\son[a-z]+\s*=", page), "no inline event handler"
