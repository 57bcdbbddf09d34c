"""The sample events under events/ (also for `sam local invoke -e`) drive the real handlers:
a partner enrols a member, reports a purchase, the member redeems and reads its points, then
gives points to a friend. SES's bounce and complaint events mark a member's address."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.lambda_runtime import LambdaContext, load_handler
from devtools.local import DEV_UNSUBSCRIBE_SECRET
from devtools.template import function_code, http_routes
from loyalty.notify.tags import member_tag
from loyalty.notify.unsubscribe import make_token, read_token
from loyalty.store.reminders import read_reminder_state
from tests.integration.conftest import ROOT, UNSUBSCRIBE_SECRET, Api

# In this order: each step relies on the ones before it.
SCENARIO = [
    ("members/put-member-by-partner.json", 201),
    ("members/get-member-self.json", 200),
    ("earn/earn-store-purchase.json", 201),
    ("earn/earn-store-purchase.json", 201),  # a retry: the original response again
    ("earn/earn-by-member-forbidden.json", 403),
    ("earn/earn-without-identity.json", 401),
    ("redeem/redeem-self.json", 201),
    ("redeem/redeem-more-than-balance.json", 409),
    ("balance/get-balance-self.json", 200),
    ("balance/get-lots-support.json", 200),
    ("ledger/get-ledger-self.json", 200),
    ("earn/reverse-partial-return.json", 201),  # 50 of the 129.90 EUR returned: the points are spent
    ("earn/reverse-partial-return.json", 201),  # a retry: the original response again
    ("members/put-friend-by-partner.json", 201),
    ("earn/earn-online-purchase.json", 201),  # 140 points: the 20 owed are settled first
    ("transfer/transfer-to-friend.json", 201),  # 100 points to the friend
    ("transfer/transfer-to-friend.json", 201),  # a retry: the original response again
    ("transfer/transfer-below-minimum.json", 422),  # the 20 left: below the minimum transfer
    ("claims/file-claim-self.json", 201),  # a purchase of 10 days ago never reported: pending
    ("claims/file-claim-self.json", 200),  # the same claim again: the first, as it stands
    ("claims/list-pending-support.json", 200),
    ("claims/get-claim-self.json", 200),
    ("claims/decide-claim-by-member-forbidden.json", 403),
    ("claims/approve-claim-support.json", 200),  # 42 points credited in a claim lot
    ("claims/approve-claim-support.json", 200),  # the same decision again: the stored one
    ("reports/get-liability-finance.json", 200),  # finance: the liability as of 1 November
    ("openapi/get-openapi-json.json", 200),
    ("unsubscribe/get-unsubscribe-page.json", 200),  # the email's link: a page, nothing changes
    ("unsubscribe/post-one-click-unsubscribe.json", 200),  # RFC 8058 one-click: no more email
    ("unsubscribe/post-one-click-unsubscribe.json", 200),  # again: still a success
]
# SES's events through the stack's configuration set (EventBridge), and the reason each records.
SES_FEEDBACK = {
    "email_events/ses-bounce.json": "bounce:General",
    "email_events/ses-complaint.json": "complaint:abuse",
}

# The daily runs' schedules, worker batches and checks: test_run_sample_events.py drives them.
RUN_SAMPLES = {
    "expiry/check.json",
    "reminders/check.json",
    "expiry/schedule.json",
    "expiry/shard-task.json",
    "expiry/worker-batch.json",
    "reminders/schedule.json",
    "reminders/shard-task.json",
    "reminders/worker-batch.json",
}

# The table's stream and the monthly export of the liability report: test_liability.py drives them.
REPORT_SAMPLES = {"reports/ledger-stream-batch.json", "reports/monthly-export.json"}

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
# A claim is for a purchase the partner did not report within 2 days (the default claim window).
TEN_DAYS_AGO = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0).isoformat()


def _purchase_made_yesterday(event: dict[str, Any]) -> dict[str, Any]:
    """Purchases older than the expiry horizon are refused: keep the samples' purchases recent."""
    if not event.get("body") or "occurredAt" not in event["body"]:
        return event
    when = TEN_DAYS_AGO if event["routeKey"] == "POST /members/{memberId}/claims" else YESTERDAY
    return {**event, "body": json.dumps({**json.loads(event["body"]), "occurredAt": when})}


def _signed_for_this_run(event: dict[str, Any]) -> dict[str, Any]:
    """The samples' unsubscribe token is signed with the local mode's public secret (for `make run`
    and `sam local invoke`): check it is genuine, and sign the same member's link with the key of
    the functions under test."""
    token = (event.get("queryStringParameters") or {}).get("token")
    if token is None:
        return event
    member = read_token(token, secret=DEV_UNSUBSCRIBE_SECRET, now=datetime.now(UTC))
    fresh = make_token(member, secret=UNSUBSCRIBE_SECRET, now=datetime.now(UTC) - timedelta(minutes=1))
    return {**event, "queryStringParameters": {"token": fresh}, "rawQueryString": f"token={fresh}"}


def test_every_sample_event_is_used_by_the_scenario() -> None:
    on_disk = {path.relative_to(ROOT / "events").as_posix() for path in (ROOT / "events").rglob("*.json")}
    assert on_disk == {name for name, _ in SCENARIO} | set(SES_FEEDBACK) | RUN_SAMPLES | REPORT_SAMPLES


def test_the_sample_events_tell_the_story_of_a_member(api: Api, template: dict[str, Any]) -> None:
    routes = {(route.method, route.path): route for route in http_routes(template)}
    bodies = {}
    for name, expected in SCENARIO:
        # Given a sample event, as API Gateway would send it
        event = json.loads((ROOT / "events" / name).read_text())
        event = _signed_for_this_run(_purchase_made_yesterday(event))
        method, path = event["routeKey"].split(" ", 1)
        # When the function the template routes it to handles it
        response = api.invoke(routes[(method, path)], event)
        # Then it answers as the scenario says
        assert response.status == expected, (name, response.body)
        bodies.setdefault(name, []).append(response.body)

    earned = bodies["earn/earn-store-purchase.json"]
    assert earned[0] == earned[1] and earned[0]["points"] == 129
    assert bodies["redeem/redeem-self.json"][0]["balance"] == 29
    assert bodies["balance/get-balance-self.json"][0]["available"] == 29
    assert [entry["type"] for entry in bodies["ledger/get-ledger-self.json"][0]["entries"]] == [
        "redeem",
        "earn",
    ]
    returned = bodies["earn/reverse-partial-return.json"]
    assert returned[0] == returned[1]
    first = returned[0]
    # floor(129 * 50 / 129.90) = 49 points: the 29 left are taken, 20 are owed
    assert (first["points"], first["taken"], first["owed"], first["balance"]) == (49, 29, 20, 0)
    assert bodies["earn/earn-online-purchase.json"][0]["balance"] == 120
    given = bodies["transfer/transfer-to-friend.json"]
    assert given[0] == given[1] and (given[0]["points"], given[0]["balance"]) == (100, 20)
    assert bodies["transfer/transfer-below-minimum.json"][0]["error"]["code"] == "transfer_below_minimum"
    filed = bodies["claims/file-claim-self.json"]
    assert (filed[0]["status"], filed[1]["claimId"]) == ("pending", filed[0]["claimId"])
    queue = bodies["claims/list-pending-support.json"][0]  # the oldest pending claims of the table
    assert queue["status"] == "pending" and all(claim["status"] == "pending" for claim in queue["claims"])
    approved = bodies["claims/approve-claim-support.json"]
    assert approved[0]["status"] == "approved" and approved[0]["credit"]["points"] == 42
    assert approved[1]["credit"] == approved[0]["credit"]
    liability = bodies["reports/get-liability-finance.json"][0]
    assert liability["asOf"] == "2026-10-31T23:00:00.000Z" and liability["outstanding"] >= 0
    page = bodies["unsubscribe/get-unsubscribe-page.json"][0]
    assert '<html lang="fr">' in page and '<form method="post"' in page


@pytest.mark.parametrize(("name", "reason"), sorted(SES_FEEDBACK.items()))
def test_the_ses_samples_mark_the_address_of_the_member_they_were_sent_to(
    api: Api, template: dict[str, Any], member_id: str, name: str, reason: str
) -> None:
    # Given a member enrolled with the sample's address, and the sample retagged for that member
    event = json.loads((ROOT / "events" / name).read_text())
    (address,) = event["detail"]["mail"]["destination"]
    assert api.enrol(member_id, email=address).status == 201
    event["detail"]["mail"]["tags"]["member"] = [member_tag(member_id)]
    # When the function the template names handles it
    code_uri, handler = function_code(template, "EmailEventsFunction")
    result = load_handler(code_uri, handler, root=ROOT)(event, LambdaContext("EmailEventsFunction"))
    # Then the address is undeliverable, for SES's reason
    assert result == {"memberId": member_id, "reason": reason, "marks": ["marked"]}
    state = read_reminder_state(member_id)
    assert state.refuses(address) and not state.refuses(f"new.{address}")
