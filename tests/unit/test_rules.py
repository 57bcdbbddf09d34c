"""The program rules document: the shipped default, validation messages, and where rules load from."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from loyalty.domain.rules import (
    AnniversaryExpiry,
    FixedDateExpiry,
    InactivityExpiry,
    NoExpiry,
    ProgramRules,
    RollingExpiry,
    RulesError,
    default_rules,
    load_rules,
    parse_rules,
)

_DELETE = object()


def default_document() -> dict[str, Any]:
    return default_rules().model_dump(by_alias=True, mode="json")


def document_with(**changes: Any) -> dict[str, Any]:
    """The default document with `a__b__c=value` changes applied (`_DELETE` removes the key)."""
    document = copy.deepcopy(default_document())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = document
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return document


def campaign(**fields: Any) -> dict[str, Any]:
    return {"id": "double", "startsOn": "2026-12-01", "endsOn": "2026-12-31", "multiplier": "2"} | fields


def problems_of(document: Any) -> dict[str, str]:
    with pytest.raises(RulesError) as caught:
        parse_rules(document)
    return dict(caught.value.problems)


# --- the shipped default ------------------------------------------------------------------------


def test_the_shipped_default_loads_with_the_documented_values() -> None:
    rules = default_rules()

    assert rules.version == "2026-11-default"
    assert rules.timezone == "Europe/Paris"
    assert set(rules.earning.currencies) == {"EUR", "USD", "GBP", "CHF"}
    assert rules.earning.currencies["EUR"].points_per_unit == Decimal(1)
    assert rules.earning.rounding == "floor"
    assert rules.expiry == RollingExpiry(policy="rolling", months=24, end_of_month=False)
    assert rules.reminders.days_before == (30, 7)
    assert rules.reminders.min_days_between == 7
    assert (rules.claims.min_age_days, rules.claims.window_days, rules.claims.max_open_claims) == (2, 180, 5)
    transfers = rules.transfers
    assert (transfers.enabled, transfers.min_points, transfers.max_points, transfers.max_points_per_day) == (
        True,
        100,
        5000,
        10000,
    )


def test_the_default_is_loaded_once_and_shared() -> None:
    assert default_rules() is default_rules()


def test_the_program_timezone_is_exposed_as_a_zoneinfo() -> None:
    assert default_rules().tz == ZoneInfo("Europe/Paris")


def test_a_dumped_document_parses_back_to_equal_rules() -> None:
    rules = parse_rules(
        document_with(
            earning__campaigns=[campaign(channels=["store"], categories=["toys"], bonusPoints=50)],
            earning__categoryMultipliers={"toys": "1.5"},
        )
    )

    assert parse_rules(json.dumps(rules.model_dump(by_alias=True, mode="json"))) == rules


def test_the_json_document_uses_camel_case_keys() -> None:
    assert set(default_document()["transfers"]) == {"enabled", "minPoints", "maxPoints", "maxPointsPerDay"}


def test_rules_can_be_built_with_snake_case_names_in_python() -> None:
    document = document_with(transfers={"min_points": 5, "max_points_per_day": 50})

    assert parse_rules(document).transfers.max_points_per_day == 50


def test_rules_are_immutable() -> None:
    with pytest.raises(ValidationError):
        default_rules().version = "changed"


# --- accepted variations ------------------------------------------------------------------------


def test_a_json_number_rate_is_read_exactly_as_a_decimal() -> None:
    text = json.dumps(document_with(earning__currencies={"EUR": {"pointsPerUnit": 0}})).replace(
        '"pointsPerUnit": 0', '"pointsPerUnit": 1.1'
    )

    assert parse_rules(text).earning.currencies["EUR"].points_per_unit == Decimal("1.1")


def test_a_json_document_may_be_given_as_bytes() -> None:
    assert parse_rules(json.dumps(default_document()).encode()) == default_rules()


def test_reminder_days_are_stored_largest_first() -> None:
    rules = parse_rules(document_with(reminders={"daysBefore": [1, 30, 7]}))

    assert rules.reminders.days_before == (30, 7, 1)


def test_a_document_written_before_the_reminder_spacing_loads_with_7_days() -> None:
    rules = parse_rules(document_with(reminders={"daysBefore": [30, 7]}))

    assert rules.reminders.min_days_between == 7


def test_the_reminder_spacing_may_be_set() -> None:
    rules = parse_rules(document_with(reminders__minDaysBetween=14))

    assert rules.reminders.min_days_between == 14


def test_no_reminder_windows_is_allowed() -> None:
    assert parse_rules(document_with(reminders={"daysBefore": []})).reminders.days_before == ()


def test_a_campaign_defaults_to_no_multiplier_and_no_bonus() -> None:
    rules = parse_rules(
        document_with(earning__campaigns=[{"id": "c", "startsOn": "2026-01-01", "endsOn": "2026-01-01"}])
    )

    (only,) = rules.earning.campaigns
    assert (only.multiplier, only.bonus_points, only.channels, only.categories) == (Decimal(1), 0, None, None)


@pytest.mark.parametrize(
    ("expiry", "expected"),
    [
        ({"policy": "rolling", "months": 84, "endOfMonth": True}, RollingExpiry),
        ({"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 1}, FixedDateExpiry),
        ({"policy": "fixedDate", "month": 2, "day": 28, "yearsAfter": 6}, FixedDateExpiry),
        ({"policy": "anniversary", "years": 7}, AnniversaryExpiry),
        ({"policy": "inactivity", "months": 36}, InactivityExpiry),
        ({"policy": "none"}, NoExpiry),
    ],
)
def test_every_expiry_policy_is_accepted(expiry: dict[str, Any], expected: type) -> None:
    assert isinstance(parse_rules(document_with(expiry=expiry)).expiry, expected)


# --- refused documents --------------------------------------------------------------------------

BAD_DOCUMENTS = [
    pytest.param({"version": ""}, "version", "1 to 64 characters", id="empty version"),
    pytest.param({"version": "a" * 65}, "version", "1 to 64 characters", id="long version"),
    pytest.param({"version": "v 1"}, "version", "1 to 64 characters", id="version with a space"),
    pytest.param({"version": _DELETE}, "version", "is required", id="missing version"),
    pytest.param({"timezone": "Mars/Olympus"}, "timezone", "IANA time zone", id="unknown zone"),
    pytest.param({"timezone": "localtime"}, "timezone", "IANA time zone", id="host zone"),
    pytest.param({"timezone": "../etc/passwd"}, "timezone", "IANA time zone", id="path as zone"),
    pytest.param({"colour": "blue"}, "colour", "not a known field", id="unknown top-level field"),
    pytest.param({"earning__currencies": {}}, "earning.currencies", "at least 1", id="no currency"),
    pytest.param(
        {"earning__currencies": {"eur": {"pointsPerUnit": "1"}}},
        "earning.currencies.eur (key)",
        "ISO 4217",
        id="lower-case currency",
    ),
    pytest.param(
        {"earning__currencies": {"EURO": {"pointsPerUnit": "1"}}},
        "earning.currencies.EURO (key)",
        "ISO 4217",
        id="four-letter currency",
    ),
    pytest.param(
        {"earning__currencies": {"EUR": {"pointsPerUnit": "0"}}},
        "earning.currencies.EUR.pointsPerUnit",
        "greater than 0",
        id="zero rate",
    ),
    pytest.param(
        {"earning__currencies": {"EUR": {"pointsPerUnit": "-1"}}},
        "earning.currencies.EUR.pointsPerUnit",
        "greater than 0",
        id="negative rate",
    ),
    pytest.param(
        {"earning__currencies": {"EUR": {"pointsPerUnit": "lots"}}},
        "earning.currencies.EUR.pointsPerUnit",
        "decimal number",
        id="rate not a number",
    ),
    pytest.param(
        {"earning__currencies": {"EUR": {"pointsPerUnit": "Infinity"}}},
        "earning.currencies.EUR.pointsPerUnit",
        "finite",
        id="infinite rate",
    ),
    pytest.param(
        {"earning__currencies": {"EUR": {"pointsPerUnit": True}}},
        "earning.currencies.EUR.pointsPerUnit",
        "decimal number",
        id="boolean rate",
    ),
    pytest.param(
        {"earning__currencies": {"EUR": {"pointsPerUnit": "1", "rate": "1"}}},
        "earning.currencies.EUR.rate",
        "not a known field",
        id="unknown rate field",
    ),
    pytest.param({"earning__rounding": "bankers"}, "earning.rounding", "'floor'", id="unknown rounding"),
    pytest.param(
        {"earning__categoryMultipliers": {"toys": "0"}},
        "earning.categoryMultipliers.toys",
        "greater than 0",
        id="zero category multiplier",
    ),
    pytest.param(
        {"earning__categoryMultipliers": {"": "2"}},
        "earning.categoryMultipliers. (key)",
        "1 to 64 characters",
        id="empty category",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(endsOn="2026-11-30")]},
        "earning.campaigns[0].endsOn",
        "on or after startsOn",
        id="campaign ending before it starts",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(startsOn="December")]},
        "earning.campaigns[0].startsOn",
        "YYYY-MM-DD",
        id="campaign start not a date",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(multiplier="0.5")]},
        "earning.campaigns[0].multiplier",
        "at least 1",
        id="campaign multiplier below one",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(bonusPoints=-5)]},
        "earning.campaigns[0].bonusPoints",
        "at least 0",
        id="negative bonus",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(bonusPoints=2.5)]},
        "earning.campaigns[0].bonusPoints",
        "integer",
        id="fractional bonus",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(channels=["phone"])]},
        "earning.campaigns[0].channels[0]",
        "'store'",
        id="unknown channel",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(channels=[])]},
        "earning.campaigns[0].channels",
        "must not be empty",
        id="empty channel filter",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(categories=[])]},
        "earning.campaigns[0].categories",
        "must not be empty",
        id="empty category filter",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(id="")]},
        "earning.campaigns[0].id",
        "1 to 64 characters",
        id="empty campaign id",
    ),
    pytest.param(
        {"earning__campaigns": [campaign(), campaign()]},
        "earning.campaigns",
        "double appears twice",
        id="duplicate campaign ids",
    ),
    pytest.param({"expiry__policy": "sometimes"}, "expiry", "'sometimes'", id="unknown policy"),
    pytest.param({"expiry__policy": _DELETE}, "expiry", "policy is required", id="missing policy"),
    pytest.param({"expiry__months": 85}, "expiry.months", "at most 84 months", id="rolling past horizon"),
    pytest.param({"expiry__months": 0}, "expiry.months", "at least 1", id="rolling of zero months"),
    pytest.param({"expiry__months": "24"}, "expiry.months", "integer", id="months as a string"),
    pytest.param({"expiry__endOfMonth": "yes"}, "expiry.endOfMonth", "true or false", id="end of month"),
    pytest.param({"expiry__years": 2}, "expiry.years", "not a known field", id="field of another policy"),
    pytest.param(
        {"expiry": {"policy": "fixedDate", "month": 2, "day": 29, "yearsAfter": 1}},
        "expiry.day",
        "at most 28 days",
        id="fixed date on 29 February",
    ),
    pytest.param(
        {"expiry": {"policy": "fixedDate", "month": 4, "day": 31, "yearsAfter": 1}},
        "expiry.day",
        "at most 30 days",
        id="fixed date on 31 April",
    ),
    pytest.param(
        {"expiry": {"policy": "fixedDate", "month": 13, "day": 1, "yearsAfter": 1}},
        "expiry.month",
        "at most 12",
        id="fixed date in month 13",
    ),
    pytest.param(
        {"expiry": {"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": 7}},
        "expiry.yearsAfter",
        "at most 6 years",
        id="fixed date past horizon",
    ),
    pytest.param(
        {"expiry": {"policy": "fixedDate", "month": 12, "day": 31, "yearsAfter": -1}},
        "expiry.yearsAfter",
        "at least 0",
        id="fixed date in the past",
    ),
    pytest.param(
        {"expiry": {"policy": "anniversary", "years": 8}},
        "expiry.years",
        "at most 7 years",
        id="anniversary past horizon",
    ),
    pytest.param(
        {"expiry": {"policy": "anniversary", "years": 0}},
        "expiry.years",
        "at least 1",
        id="anniversary of zero years",
    ),
    pytest.param(
        {"expiry": {"policy": "inactivity", "months": 120}},
        "expiry.months",
        "at most 84 months",
        id="inactivity past horizon",
    ),
    pytest.param(
        {"expiry": {"policy": "none", "months": 1}}, "expiry.months", "not a known field", id="none"
    ),
    pytest.param({"reminders__daysBefore": [7, 7]}, "reminders.daysBefore", "same day twice", id="repeat"),
    pytest.param(
        {"reminders__daysBefore": [1, 2, 3, 4, 5, 6]}, "reminders.daysBefore", "at most 5", id="six windows"
    ),
    pytest.param({"reminders__daysBefore": [0]}, "reminders.daysBefore[0]", "at least 1", id="day zero"),
    pytest.param({"reminders__daysBefore": [366]}, "reminders.daysBefore[0]", "at most 365", id="day 366"),
    pytest.param(
        {"reminders__minDaysBetween": 0}, "reminders.minDaysBetween", "at least 1", id="no reminder spacing"
    ),
    pytest.param(
        {"reminders__minDaysBetween": 366}, "reminders.minDaysBetween", "at most 365", id="reminder spacing"
    ),
    pytest.param(
        {"reminders__minDaysBetween": "7"},
        "reminders.minDaysBetween",
        "must be an integer",
        id="spacing text",
    ),
    pytest.param({"claims__windowDays": 0}, "claims.windowDays", "at least 1", id="no claim window"),
    pytest.param({"claims__windowDays": 3651}, "claims.windowDays", "at most 3650", id="claim window"),
    pytest.param({"transfers__minPoints": 0}, "transfers.minPoints", "at least 1", id="zero minimum"),
    pytest.param(
        {"transfers__maxPointsPerDay": 99},
        "transfers.maxPointsPerDay",
        "at least minPoints (100)",
        id="daily limit below minimum",
    ),
    pytest.param({"transfers": _DELETE}, "transfers", "is required", id="missing section"),
]


@pytest.mark.parametrize(("changes", "path", "reason"), BAD_DOCUMENTS)
def test_an_invalid_field_is_the_one_problem_reported_with_its_path_and_reason(
    changes: dict[str, Any], path: str, reason: str
) -> None:
    problems = problems_of(document_with(**changes))

    assert list(problems) == [path]
    assert reason in problems[path]


@pytest.mark.parametrize(("changes", "path", "reason"), BAD_DOCUMENTS)
def test_an_invalid_field_is_refused_from_json_text_as_well(
    changes: dict[str, Any], path: str, reason: str
) -> None:
    problems = problems_of(json.dumps(document_with(**changes)))

    assert reason in problems[path]


def test_a_bad_item_in_a_campaign_filter_is_reported_once() -> None:
    problems = problems_of(document_with(earning__campaigns=[campaign(channels=["phone"])]))

    assert list(problems) == ["earning.campaigns[0].channels[0]"]


def test_the_horizon_cap_message_points_to_the_design_document() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(document_with(expiry__months=85))

    assert str(caught.value).startswith(
        "program rules are invalid: expiry.months: must be at most 84 months ("
    )
    assert "docs/design.md" in str(caught.value)


def test_every_problem_is_reported_on_a_line_of_its_own() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(document_with(version="", claims__windowDays=0, transfers__minPoints=0))

    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("program rules are invalid: version: ")
    assert lines[1].startswith("claims.windowDays: ")
    assert lines[2].startswith("transfers.minPoints: ")


def test_a_rules_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="program rules are invalid"):
        parse_rules("{}")


def test_text_that_is_not_json_is_refused() -> None:
    assert "is not valid JSON" in problems_of('{"version": ')["(document)"]


def test_bytes_that_are_not_utf8_are_refused() -> None:
    assert "is not valid JSON" in problems_of(b"\xff\xfe{")["(document)"]


def test_a_json_array_is_refused_as_not_an_object() -> None:
    assert problems_of("[]") == {"(document)": "must be an object"}


# --- load_rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["", "default"])
def test_an_empty_or_default_source_gives_the_shipped_rules(source: str) -> None:
    assert load_rules(source) is default_rules()


def test_a_file_source_reads_that_json_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document_with(version="2027-01-paris", expiry={"policy": "none"})))

    rules = load_rules(f"file:{path}")

    assert (rules.version, rules.expiry) == ("2027-01-paris", NoExpiry(policy="none"))


def test_a_file_source_with_an_invalid_document_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document_with(expiry__months=100)))

    with pytest.raises(RulesError, match=r"expiry\.months: must be at most 84"):
        load_rules(f"file:{path}")


def test_a_missing_file_is_a_rules_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"

    with pytest.raises(RulesError, match=r"cannot read .*nowhere\.json"):
        load_rules(f"file:{missing}")


def test_an_ssm_source_reads_the_parameter_with_a_five_minute_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities import parameters

    calls: list[tuple[str, int | None]] = []

    def fake_get_parameter(name: str, max_age: int | None = None) -> str:
        calls.append((name, max_age))
        return json.dumps(document_with(version="from-ssm"))

    monkeypatch.setattr(parameters, "get_parameter", fake_get_parameter)

    rules = load_rules("ssm:/loyalty/prod/rules")

    assert rules.version == "from-ssm"
    assert calls == [("/loyalty/prod/rules", 300)]


def test_an_unreadable_ssm_parameter_is_a_rules_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    def failing_get_parameter(name: str, max_age: int | None = None) -> str:
        raise GetParameterError("ParameterNotFound")

    monkeypatch.setattr(parameters, "get_parameter", failing_get_parameter)

    with pytest.raises(RulesError, match="cannot read SSM parameter /loyalty/rules"):
        load_rules("ssm:/loyalty/rules")


@pytest.mark.parametrize("source", ["s3://bucket/rules.json", "file:", "ssm:", "rules.json", "DEFAULT"])
def test_an_unknown_source_is_refused_naming_the_accepted_forms(source: str) -> None:
    with pytest.raises(RulesError, match="'file:<path>' or 'ssm:<name>'"):
        load_rules(source)


def test_program_rules_is_the_type_returned() -> None:
    assert isinstance(load_rules("default"), ProgramRules)
