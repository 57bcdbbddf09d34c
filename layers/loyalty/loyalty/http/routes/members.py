"""PUT/GET /members/{memberId}: enrol or update a profile; read the profile and balance."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from loyalty.clock import utcnow
from loyalty.http.identity import Rights, Role, route_rights
from loyalty.http.models import BalanceSummary, MemberIdPath, MemberResponse, ProfileRequest
from loyalty.http.resolver import current_caller, errors, json_response, success
from loyalty.store import members
from loyalty.store.members import Profile

router = APIGatewayHttpRouter()
ENROL_RIGHTS = route_rights("PUT /members/{memberId}", Rights((Role.PARTNER,)))


def member_body(profile: Profile, available: int, owed: int = 0) -> dict[str, Any]:
    return MemberResponse(
        member_id=profile.member_id,
        email=profile.email,
        name=profile.name,
        locale=profile.locale,
        email_opt_in=profile.email_opt_in,
        enrolled_at=profile.enrolled_at,
        updated_at=profile.updated_at,
        balance=BalanceSummary(available=available, owed=owed),
    ).model_dump(mode="json", by_alias=True)


@router.put(
    "/members/<memberId>",
    summary="Enrol a member, or update its profile",
    description="Members enrol themselves (memberId = their `sub`); partners enrol anyone. "
    "201 when the member was created, 200 when an existing profile was updated.",
    responses={
        **success(200, "profile updated", MemberResponse),
        **success(201, "member enrolled", MemberResponse),
        **errors(400, 401, 403, 415, 422),
    },
    tags=["members"],
)
def put_member(member_id: MemberIdPath, body: ProfileRequest) -> Response[Any]:
    caller = current_caller(router)
    ENROL_RIGHTS.check(caller, member_id)
    now = utcnow()
    fields = body.model_dump(by_alias=True)
    profile, created = members.enrol_or_update(member_id, fields, actor=caller.acting_as(member_id), now=now)
    available, owed = (0, 0) if created else members.profile_and_balance(member_id, now)[1:]
    return json_response(201 if created else 200, member_body(profile, available, owed))


@router.get(
    "/members/<memberId>",
    summary="A member's profile and balance",
    responses={
        **success(200, "the member", MemberResponse),
        **errors(401, 403, 404, 422),
    },
    tags=["members"],
)
def get_member(member_id: MemberIdPath) -> Response[Any]:
    current_caller(router).require(member_id, Role.SUPPORT)
    profile, available, owed = members.profile_and_balance(member_id, utcnow())
    return json_response(200, member_body(profile, available, owed))
