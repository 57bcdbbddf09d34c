"""Every success response has exactly the shape its OpenAPI model documents (models forbid
unknown fields), including the light balance routes that build their JSON without pydantic."""

from __future__ import annotations

from devtools.identity import Identity
from loyalty.http.models import (
    BalanceResponse,
    EarnResponse,
    LedgerResponse,
    LotsResponse,
    MemberResponse,
    RedeemResponse,
)
from tests.integration.conftest import Api


def test_every_success_response_matches_its_documented_model(api: Api, member_id: str) -> None:
    # Given a member with two purchases and a redemption
    enrolled = api.enrol(member_id)
    earned = api.earn(member_id, amount="80")
    api.earn(member_id, amount="20")
    redeemed = api.redeem(member_id, 50)
    me = Identity.member(member_id)

    # When each route answers, then its body validates against the documented model
    MemberResponse.model_validate(enrolled.body)
    EarnResponse.model_validate(earned.body)
    RedeemResponse.model_validate(redeemed.body)
    MemberResponse.model_validate(api.call("GET", f"/members/{member_id}", identity=me).body)
    balance = BalanceResponse.model_validate(api.balance(member_id).body)
    lots = LotsResponse.model_validate(api.call("GET", f"/members/{member_id}/lots", identity=me).body)
    ledger = LedgerResponse.model_validate(api.call("GET", f"/members/{member_id}/ledger", identity=me).body)

    assert balance.available == 50 == sum(lot.remaining for lot in lots.lots)
    assert [entry.type for entry in ledger.entries] == ["redeem", "earn", "earn"]


def test_a_malformed_member_id_on_the_light_balance_route_is_a_422_naming_it(api: Api) -> None:
    response = api.call("GET", "/members/bad!id/balance", identity=Identity.member("bad!id"))
    assert response.status == 422
    (problem,) = response.body["error"]["fields"]
    assert (problem["field"], problem["in"]) == ("memberId", "path")
