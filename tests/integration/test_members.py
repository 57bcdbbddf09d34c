"""PUT and GET /members/{memberId}: enrolment, profile updates, the profile with its balance."""

from __future__ import annotations

from typing import Any

from devtools.identity import Identity
from tests.integration.conftest import PARTNER, Api


def profile_item(table: Any, member_id: str) -> dict[str, Any] | None:
    return table.get_item(Key={"pk": f"MEMBER#{member_id}", "sk": "PROFILE"}).get("Item")


def wallet_item(table: Any, member_id: str) -> dict[str, Any] | None:
    return table.get_item(Key={"pk": f"MEMBER#{member_id}", "sk": "WALLET"}).get("Item")


# ---- enrolment


def test_a_partner_enrols_a_member_with_a_zero_balance(api: Api, member_id: str, table: Any) -> None:
    # Given a member id nobody has enrolled yet
    # When a partner enrols it
    response = api.enrol(member_id, email="ada@example.com", name="Ada", locale="fr", emailOptIn=True)

    # Then the member is created with the given profile and no points
    assert response.status == 201
    body = response.body
    assert body["memberId"] == member_id
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada"
    assert body["locale"] == "fr"
    assert body["emailOptIn"] is True
    assert body["enrolledAt"] == body["updatedAt"]
    assert body["enrolledAt"].endswith("Z")
    assert body["balance"] == {"available": 0, "owed": 0}
    # and the profile and an empty wallet are stored, the profile naming the partner who enrolled it
    stored = profile_item(table, member_id)
    assert stored is not None
    assert stored["email"] == "ada@example.com"
    assert stored["enrolledBy"] == {"kind": "partner", "id": "pos-test"}
    wallet = wallet_item(table, member_id)
    assert wallet is not None
    assert wallet["available"] == 0


def test_the_profile_defaults_to_english_without_email_opt_in(api: Api, member_id: str) -> None:
    # When a partner enrols a member with only an email
    response = api.call(
        "PUT", f"/members/{member_id}", identity=PARTNER, body={"email": f"{member_id}@example.com"}
    )

    # Then the profile takes the defaults
    assert response.status == 201
    assert response.body["locale"] == "en"
    assert response.body["emailOptIn"] is False
    assert response.body["name"] is None


def test_a_member_enrols_itself(api: Api, member_id: str, table: Any) -> None:
    # When the member itself enrols (its memberId is its own `sub`)
    response = api.enrol(member_id, identity=Identity.member(member_id))

    # Then it is created, and the profile says the member enrolled itself
    assert response.status == 201
    assert response.body["memberId"] == member_id
    assert response.body["balance"] == {"available": 0, "owed": 0}
    stored = profile_item(table, member_id)
    assert stored is not None
    assert stored["enrolledBy"] == {"kind": "member", "id": member_id}


# ---- updates


def test_a_second_put_updates_the_profile_and_keeps_the_enrolment_date(
    api: Api, enrolled: str, table: Any
) -> None:
    # Given an enrolled member
    before = profile_item(table, enrolled)
    assert before is not None

    # When its profile is PUT again with other values
    response = api.call(
        "PUT",
        f"/members/{enrolled}",
        identity=Identity.member(enrolled),
        body={"email": "new@example.org", "name": "New Name", "locale": "fr", "emailOptIn": True},
    )

    # Then the profile is updated (200, not 201) and the enrolment date is unchanged
    assert response.status == 200
    body = response.body
    assert body["email"] == "new@example.org"
    assert body["name"] == "New Name"
    assert body["locale"] == "fr"
    assert body["emailOptIn"] is True
    assert body["enrolledAt"] == before["enrolledAt"]
    assert body["updatedAt"] >= before["enrolledAt"]
    after = profile_item(table, enrolled)
    assert after is not None
    assert after["email"] == "new@example.org"
    assert after["locale"] == "fr"
    assert after["enrolledAt"] == before["enrolledAt"]
    assert after["enrolledBy"] == before["enrolledBy"]


def test_updating_the_profile_of_a_member_with_points_reports_its_balance(api: Api, enrolled: str) -> None:
    # Given a member with 100 points
    assert api.earn(enrolled, amount="100.00").status == 201

    # When a partner updates its profile
    response = api.enrol(enrolled, name="Renamed")

    # Then the answer carries the balance, and the points are untouched
    assert response.status == 200
    assert response.body["name"] == "Renamed"
    assert response.body["balance"] == {"available": 100, "owed": 0}
    assert api.balance(enrolled).body["available"] == 100


def test_an_update_does_not_create_a_second_wallet(api: Api, enrolled: str, member_items: Any) -> None:
    # Given an enrolled member
    sort_keys_before = [item["sk"] for item in member_items(enrolled)]

    # When its profile is PUT again
    assert api.enrol(enrolled, name="Again").status == 200

    # Then it still has exactly its profile and its wallet
    assert [item["sk"] for item in member_items(enrolled)] == sort_keys_before == ["PROFILE", "WALLET"]


# ---- reads


def test_a_member_reads_its_own_profile_and_balance(api: Api, enrolled: str) -> None:
    # Given a member who earned 42 points
    assert api.earn(enrolled, amount="42.00").status == 201

    # When it reads its profile
    response = api.call("GET", f"/members/{enrolled}", identity=Identity.member(enrolled))

    # Then it gets the profile and the balance
    assert response.status == 200
    assert response.body["memberId"] == enrolled
    assert response.body["email"] == f"{enrolled}@example.com"
    assert response.body["name"] == "Test Member"
    assert response.body["locale"] == "en"
    assert response.body["balance"] == {"available": 42, "owed": 0}


def test_a_support_agent_reads_any_member_profile(api: Api, enrolled: str) -> None:
    # Given a member who earned 7 points
    assert api.earn(enrolled, amount="7.50").status == 201

    # When a support agent reads its profile
    response = api.call("GET", f"/members/{enrolled}", identity=Identity.support("agent-1"))

    # Then the agent gets the profile and the balance
    assert response.status == 200
    assert response.body["memberId"] == enrolled
    assert response.body["balance"] == {"available": 7, "owed": 0}


def test_reading_an_unknown_member_is_a_404(api: Api, member_id: str) -> None:
    # Given a member id that was never enrolled
    # When a support agent reads it
    response = api.call("GET", f"/members/{member_id}", identity=Identity.support("agent-1"))

    # Then it is not found
    assert response.status == 404
    assert response.error_code == "member_not_found"
    assert response.body["error"]["memberId"] == member_id


def test_a_member_reading_itself_before_enrolling_gets_a_404(api: Api, member_id: str) -> None:
    response = api.call("GET", f"/members/{member_id}", identity=Identity.member(member_id))

    assert response.status == 404
    assert response.error_code == "member_not_found"
