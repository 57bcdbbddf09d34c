"""devtools.local.match_route: requests routed as API Gateway routes them, from the template's routes."""

from __future__ import annotations

import pytest

from devtools.local import match_route
from devtools.template import Route


def route(method: str, path: str, function: str = "Fn") -> Route:
    return Route(method, path, function, "functions/x", "app.lambda_handler", True)


ROUTES = [
    route("PUT", "/members/{memberId}", "Enrol"),
    route("GET", "/members/{memberId}", "Profile"),
    route("GET", "/members/{memberId}/balance", "Balance"),
    route("POST", "/members/{memberId}/earn", "Earn"),
    route("POST", "/members/{memberId}/earn/{transactionId}/reversal", "Reversal"),
    route("GET", "/members/me", "Me"),
    route("GET", "/swagger", "Docs"),
    route("ANY", "/static/{proxy+}", "Static"),
    route("GET", "/static/logo.svg", "Logo"),
]


def test_given_a_parameter_route_when_matching_then_the_segment_is_the_parameter() -> None:
    matched = match_route(ROUTES, "POST", "/members/m-1/earn")

    assert matched == (ROUTES[3], {"memberId": "m-1"})


def test_given_two_parameters_when_matching_then_both_are_returned() -> None:
    matched = match_route(ROUTES, "POST", "/members/m1/earn/tx%2F9/reversal")

    assert matched == (ROUTES[4], {"memberId": "m1", "transactionId": "tx/9"})


def test_given_a_method_in_lower_case_when_matching_then_it_is_routed() -> None:
    assert match_route(ROUTES, "get", "/swagger") == (ROUTES[6], {})


def test_given_a_literal_and_a_parameter_route_when_matching_then_the_literal_wins() -> None:
    assert match_route(ROUTES, "GET", "/members/me") == (ROUTES[5], {})
    assert match_route(ROUTES, "GET", "/members/you") == (ROUTES[1], {"memberId": "you"})


def test_given_a_greedy_route_when_matching_then_it_takes_the_rest_of_the_path_for_any_method() -> None:
    assert match_route(ROUTES, "DELETE", "/static/css/site.css") == (ROUTES[7], {"proxy": "css/site.css"})
    assert match_route(ROUTES, "GET", "/static/logo.svg") == (ROUTES[8], {})


def test_given_a_greedy_route_when_nothing_follows_then_it_does_not_match() -> None:
    assert match_route(ROUTES, "GET", "/static/") == 404


@pytest.mark.parametrize(
    "path", ["/nope", "/members", "/members/", "/members/m1/", "/members//earn", "/swagger/x"]
)
def test_given_an_unknown_path_when_matching_then_it_is_404(path: str) -> None:
    assert match_route(ROUTES, "GET", path) == 404


def test_given_a_known_path_and_another_method_when_matching_then_it_is_405() -> None:
    assert match_route(ROUTES, "DELETE", "/members/m1") == 405
    assert match_route(ROUTES, "GET", "/members/m1/earn") == 405


def test_given_a_default_route_when_nothing_else_matches_then_it_takes_the_request() -> None:
    default = route("ANY", "$default", "Fallback")

    assert match_route([*ROUTES, default], "GET", "/anything/else") == (default, {})
    assert match_route([*ROUTES, default], "GET", "/swagger") == (ROUTES[6], {})
