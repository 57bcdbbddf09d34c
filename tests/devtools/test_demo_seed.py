"""devtools.demo: the demo members and purchases, written through the application's routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.demo import seed
from devtools.identity import Identity

NOW = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


class FakeApi:
    """Answers like the real routes would, and remembers every call."""

    def __init__(self, balance_status: int = 404, earn_status: int = 201, claim_status: int = 201) -> None:
        self.calls: list[tuple[str, str, Identity | None, dict[str, Any] | None]] = []
        self.balance_status = balance_status
        self.earn_status = earn_status
        self.claim_status = claim_status

    def __call__(
        self, method: str, path: str, *, identity: Identity | None, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        self.calls.append((method, path, identity, body))
        if path.endswith("/balance"):
            return self.balance_status, {}
        if method == "PUT":
            return 201, body
        if path.endswith("/claims"):
            return self.claim_status, {"status": "pending"}
        return self.earn_status, {"points": 1}

    def earns(self) -> list[dict[str, Any]]:
        return [body for _, path, _, body in self.calls if path.endswith("/earn") and body is not None]

    def claims(self) -> list[tuple[str, Identity | None, dict[str, Any]]]:
        return [(path, who, body) for _, path, who, body in self.calls if path.endswith("/claims") and body]


def test_given_an_empty_table_when_seeding_then_the_partner_enrols_both_demo_members() -> None:
    api = FakeApi()

    report = seed(api, now=lambda: NOW)

    enrolments = [(path, identity, body) for method, path, identity, body in api.calls if method == "PUT"]
    assert [path for path, _, _ in enrolments] == ["/members/demo-alice", "/members/demo-bob"]
    assert all(identity == Identity.partner("demo-pos") for _, identity, _ in enrolments)
    assert [body["locale"] for _, _, body in enrolments if body] == ["fr", "en"]
    assert set(enrolments[0][2] or {}) == {"email", "name", "locale", "emailOptIn"}
    assert report.enrolled == 2


def test_given_an_empty_table_when_seeding_then_purchases_spread_over_the_last_18_months() -> None:
    api = FakeApi()

    report = seed(api, now=lambda: NOW)

    earns = api.earns()
    assert report.credited == len(earns) >= 6
    assert [body["transactionId"] for body in earns] == [f"demo-tx-{n}" for n in range(1, len(earns) + 1)]
    moments = [datetime.fromisoformat(body["occurredAt"]) for body in earns]
    assert all(moment.utcoffset() is not None for moment in moments)
    assert all(NOW - timedelta(days=549) <= moment <= NOW for moment in moments)
    assert len({moment.strftime("%Y-%m") for moment in moments}) >= 6
    assert {body["channel"] for body in earns} == {"store", "online"}
    assert all(
        set(body) == {"transactionId", "amount", "currency", "occurredAt", "channel"} for body in earns
    )
    paths = {path for method, path, _, _ in api.calls if method == "POST" and path.endswith("/earn")}
    assert paths == {"/members/demo-alice/earn", "/members/demo-bob/earn"}


def test_given_an_empty_table_when_seeding_then_each_member_files_a_claim_for_support() -> None:
    api = FakeApi()

    report = seed(api, now=lambda: NOW)

    claims = api.claims()
    assert report.claims == len(claims) == 2
    assert [(path, who) for path, who, _ in claims] == [
        ("/members/demo-alice/claims", Identity.member("demo-alice")),
        ("/members/demo-bob/claims", Identity.member("demo-bob")),
    ]
    earned = {body["transactionId"] for body in api.earns()}
    for _, _, body in claims:
        assert body["transactionId"] not in earned  # a purchase the partner never reported
        age = NOW - datetime.fromisoformat(body["occurredAt"])
        assert timedelta(days=2) < age < timedelta(days=180)  # inside the default claim window
    assert "2 claims pending for support" in report.summary()


def test_given_the_claims_already_filed_when_seeding_again_then_they_are_counted_not_reported() -> None:
    api = FakeApi(claim_status=200)

    report = seed(api, now=lambda: NOW)

    assert report.claims == 2 and report.problems == []


def test_given_demo_data_already_present_when_seeding_then_nothing_is_written() -> None:
    api = FakeApi(balance_status=200)

    report = seed(api, now=lambda: NOW)

    assert report.skipped
    assert [method for method, *_ in api.calls] == ["GET"]


def test_given_purchases_already_credited_when_seeding_then_they_are_counted_not_reported() -> None:
    api = FakeApi(earn_status=409)

    report = seed(api, now=lambda: NOW)

    assert report.credited == 0
    assert report.already_credited == len(api.earns())
    assert report.problems == []


def test_given_routes_not_there_yet_when_seeding_then_the_problems_are_reported() -> None:
    api = FakeApi(earn_status=404)

    report = seed(api, now=lambda: NOW)

    assert report.problems
    assert "POST /members/demo-alice/earn (demo-tx-1) answered 404" in report.summary()
