"""Contract tests of template.yaml's deploy path (issue #9): the stage, the user pool (the stack's own or
an existing one), the Cognito options, the rules CloudFormation checks before it changes anything, and
the outputs an operator reads next (docs/deploy.md, "Deploy path").

Conditions and rules are evaluated here from parameter values, as CloudFormation evaluates them, so a
test names the parameters an operator gives, not the conditions they lead to.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.contract.test_template import _of_type, _with_conditions, resources, template

__all__ = ["resources", "template"]  # the fixtures, shared with test_template.py

POOL_ID = "eu-west-3_AbCd12345"
CLIENT_IDS = "1example23456789abcdefghij,2example23456789abcdefghij"
CREATED = {"Stage": "prod", "AuthDomainPrefix": "acme-loyalty-prod"}
EXISTING = {"Stage": "prod", "ExistingUserPoolId": POOL_ID, "ExistingUserPoolClientIds": CLIENT_IDS}


def _parameters(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """Every parameter's value: the one given, else its default, else `<Name>` (a value of the operator's)."""
    return {
        name: given.get(name, str(parameter.get("Default", f"<{name}>")))
        for name, parameter in template["Parameters"].items()
    }


def _evaluate(value: Any, parameters: dict[str, str], conditions: dict[str, bool]) -> Any:
    """The value of a condition, a rule's assertion or an output, for these parameters.

    Knows the intrinsics they use: Ref (parameters and AWS::Region as eu-west-3), Equals, Not, And, Or,
    Condition, If, Sub, Join, Split, Select. A Ref to a resource evaluates to `<LogicalId>`.
    """
    if isinstance(value, list):
        return [_evaluate(item, parameters, conditions) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Condition", "Fn::")):
        return {key: _evaluate(item, parameters, conditions) for key, item in value.items()}
    ((function, argument),) = value.items()
    if function == "Ref":
        return {"AWS::Region": "eu-west-3"}.get(argument, parameters.get(argument, f"<{argument}>"))
    if function == "Condition":
        return conditions[argument]
    if function == "Fn::Equals":
        left, right = (_evaluate(item, parameters, conditions) for item in argument)
        return left == right
    if function == "Fn::Not":
        return not _evaluate(argument[0], parameters, conditions)
    if function == "Fn::And":
        return all(_evaluate(item, parameters, conditions) for item in argument)
    if function == "Fn::Or":
        return any(_evaluate(item, parameters, conditions) for item in argument)
    if function == "Fn::If":
        condition, when_true, when_false = argument
        return _evaluate(when_true if conditions[condition] else when_false, parameters, conditions)
    if function == "Fn::Join":
        delimiter, items = argument
        return delimiter.join(_evaluate(items, parameters, conditions))
    if function == "Fn::Split":
        delimiter, text = argument
        return str(_evaluate(text, parameters, conditions)).split(delimiter)
    if function == "Fn::Select":
        index, items = argument
        return _evaluate(items, parameters, conditions)[int(index)]
    if function == "Fn::Sub":
        text, variables = argument if isinstance(argument, list) else (argument, {})
        known = {name: _evaluate(item, parameters, conditions) for name, item in variables.items()}
        return re.sub(
            r"\$\{([^}]+)\}",
            lambda match: str(known.get(match[1]) or _evaluate({"Ref": match[1]}, parameters, conditions)),
            text,
        )
    raise AssertionError(f"{function} is not known to this test's evaluator")


def _conditions(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, bool]:
    """Every condition of the template, in an order where each follows those it names."""
    holding: dict[str, bool] = {}
    pending = dict(template["Conditions"])
    while pending:
        before = len(pending)
        for name, condition in list(pending.items()):
            if all(c in holding for c in re.findall(r"'Condition': '(\w+)'", repr(condition))):
                holding[name] = bool(_evaluate(condition, parameters, holding))
                del pending[name]
        assert len(pending) < before, f"conditions naming each other or unknown ones: {set(pending)}"
    return holding


def _deployed(template: dict[str, Any], given: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    parameters = _parameters(template, given)
    conditions = _conditions(template, parameters)
    return parameters, {name for name, holds in conditions.items() if holds}


def _refused_by(template: dict[str, Any], given: dict[str, str]) -> list[str]:
    """The descriptions of the rule assertions these parameters fail (empty: CloudFormation goes on)."""
    parameters = _parameters(template, given)
    failed = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], parameters, {}):
            continue
        failed += [
            a["AssertDescription"] for a in rule["Assertions"] if not _evaluate(a["Assert"], parameters, {})
        ]
    return failed


def _outputs(template: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    parameters, true = _deployed(template, given)
    conditions = {name: name in true for name in template["Conditions"]}
    return {
        name: _evaluate(output["Value"], parameters, conditions)
        for name, output in template["Outputs"].items()
        if output.get("Condition") is None or output["Condition"] in true
    }


def _created_resources(template: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    _, true = _deployed(template, given)
    return {
        name: _with_conditions(resource, true)
        for name, resource in template["Resources"].items()
        if resource.get("Condition") is None or resource["Condition"] in true
    }


def _jwt_configuration(template: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    parameters, true = _deployed(template, given)
    conditions = {name: name in true for name in template["Conditions"]}
    api = template["Resources"]["LoyaltyApi"]["Properties"]
    return dict(
        _evaluate(api["Auth"]["Authorizers"]["CognitoJwt"]["JwtConfiguration"], parameters, conditions)
    )


# ---------------------------------------------------------------- the stage


def test_the_stage_is_one_of_the_known_environments_and_must_be_chosen(template: dict[str, Any]) -> None:
    stage = template["Parameters"]["Stage"]
    assert stage["AllowedValues"] == ["dev", "test", "staging", "prod"]
    assert "Default" not in stage


def test_the_stage_tags_the_functions_the_api_the_table_and_the_user_pool(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    stage = {"Ref": "Stage"}
    assert template["Globals"]["Function"]["Tags"] == {"Stage": stage}
    assert resources["LoyaltyApi"]["Properties"]["Tags"] == {"Stage": stage}
    assert {"Key": "Stage", "Value": stage} in resources["LoyaltyTable"]["Properties"]["Tags"]
    assert resources["UserPool"]["Properties"]["UserPoolTags"] == {"Stage": stage}


def _places_of(value: Any, wanted: Any, path: str = "") -> list[str]:
    if value == wanted:
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _places_of(item, wanted, f"{path}/{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _places_of(item, wanted, f"{path}/{index}")]
    return []


def test_the_stage_renames_nothing_so_setting_it_on_a_deployed_stack_replaces_nothing(
    template: dict[str, Any],
) -> None:
    """A stage in a name would replace the named resource on update (the table would be orphaned)."""
    places = _places_of({k: template[k] for k in ("Globals", "Resources")}, {"Ref": "Stage"})
    assert places
    assert all(re.search(r"/(Tags|UserPoolTags)/(Stage|\d+/Value)$", place) for place in places), places
    assert not _places_of(template["Resources"], {"Fn::Sub": "${Stage}"})
    assert "${Stage}" not in repr(template["Resources"])


# ------------------------------------------------ the user pool: the stack's or an existing one


def test_the_stack_creates_its_user_pool_unless_an_existing_one_is_given(template: dict[str, Any]) -> None:
    assert "CreatesUserPool" in _deployed(template, CREATED)[1]
    assert "CreatesUserPool" not in _deployed(template, EXISTING)[1]


def test_every_cognito_resource_exists_only_with_the_stacks_own_pool(template: dict[str, Any]) -> None:
    cognito = {name for name, r in template["Resources"].items() if r["Type"].startswith("AWS::Cognito::")}
    assert cognito >= {
        "UserPool", "UserPoolDomain", "PartnerResourceServer", "PartnerClient", "MemberClient",
        "SupportGroup", "FinanceGroup",
    }  # fmt: skip
    assert cognito <= set(_created_resources(template, CREATED))
    assert not cognito & set(_created_resources(template, EXISTING))


def test_with_its_own_pool_the_api_accepts_that_pools_tokens_for_exactly_its_app_clients(
    template: dict[str, Any],
) -> None:
    """A client added to the pool and not to the audience would be refused; the reverse, a hole."""
    clients = _of_type(_created_resources(template, CREATED), "AWS::Cognito::UserPoolClient")
    jwt = _jwt_configuration(template, CREATED)

    assert jwt["issuer"] == "https://cognito-idp.eu-west-3.amazonaws.com/<UserPool>"
    assert sorted(jwt["audience"]) == sorted(f"<{name}>" for name in clients)
    assert {"<MemberClient>", "<PartnerClient>"} <= set(jwt["audience"])


@pytest.mark.parametrize("pool", [POOL_ID, "us-east-1_Xy9", "us-gov-west-1_AbC"])
def test_with_an_existing_pool_the_api_accepts_its_tokens_from_the_pools_own_region_for_the_clients_given(
    template: dict[str, Any], pool: str
) -> None:
    """The issuer is the pool's: its region is its id's prefix, whatever the stack's region."""
    region = pool.split("_")[0]
    assert _jwt_configuration(template, {**EXISTING, "ExistingUserPoolId": pool}) == {
        "issuer": f"https://cognito-idp.{region}.amazonaws.com/{pool}",
        "audience": CLIENT_IDS.split(","),
    }


@pytest.mark.parametrize(("pool", "accepted"), [
    ("", True), (POOL_ID, True), ("us-gov-west-1_AbC", True), ("ap-southeast-2_a1B2c3", True),
    ("eusc-de-east-1_AbC", True),
    ("eu-west-3-AbCd12345", False), ("AbCd12345", False), (f" {POOL_ID}", False),
    (f"https://cognito-idp.eu-west-3.amazonaws.com/{POOL_ID}", False),
])  # fmt: skip
def test_an_existing_pool_is_named_by_its_id(template: dict[str, Any], pool: str, accepted: bool) -> None:
    pattern = template["Parameters"]["ExistingUserPoolId"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, pool)) is accepted


@pytest.mark.parametrize(("clients", "accepted"), [
    ("", True), ("1example23456789abcdefghij", True), (CLIENT_IDS, True),
    ("a, b", False), ("a,", False), (",a", False), ("a,,b", False), ("a" * 129, False),
])  # fmt: skip
def test_the_existing_pools_clients_are_ids_separated_by_commas(
    template: dict[str, Any], clients: str, accepted: bool
) -> None:
    pattern = template["Parameters"]["ExistingUserPoolClientIds"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, clients)) is accepted


@pytest.mark.parametrize(("given", "refusals"), [
    (CREATED, 0),
    (EXISTING, 0),
    ({"Stage": "prod"}, 1),  # a pool of its own, but no hosted domain prefix
    ({**CREATED, "ExistingUserPoolClientIds": CLIENT_IDS}, 1),  # clients without their pool
    ({**EXISTING, "ExistingUserPoolClientIds": ""}, 1),  # a pool whose clients the API would refuse
    ({**EXISTING, "AuthDomainPrefix": "acme-loyalty-prod"}, 1),  # a prefix nothing would use
])  # fmt: skip
def test_cloudformation_refuses_the_pool_settings_that_cannot_work_before_changing_anything(
    template: dict[str, Any], given: dict[str, str], refusals: int
) -> None:
    assert len(_refused_by(template, given)) == refusals


def test_the_hosted_domain_exists_exactly_when_the_stack_creates_its_pool(template: dict[str, Any]) -> None:
    """Whenever the rules let a deployment through, the two conditions agree."""
    for given in (CREATED, EXISTING):
        assert not _refused_by(template, given)
        true = _deployed(template, given)[1]
        assert ("CreatesHostedDomain" in true) is ("CreatesUserPool" in true)


# ---------------------------------------------------------------- Cognito options


@pytest.mark.parametrize("tier", ["LITE", "ESSENTIALS", "PLUS"])
def test_the_user_pools_feature_plan_is_a_parameter(template: dict[str, Any], tier: str) -> None:
    parameter = template["Parameters"]["UserPoolTier"]
    assert parameter["AllowedValues"] == ["LITE", "ESSENTIALS", "PLUS"]
    assert (
        parameter["Default"] == "ESSENTIALS"
    )  # Cognito's own default for a new pool: an update changes nothing
    pool = _created_resources(template, {**CREATED, "UserPoolTier": tier})["UserPool"]["Properties"]
    assert (
        _evaluate(pool["UserPoolTier"], _parameters(template, {**CREATED, "UserPoolTier": tier}), {}) == tier
    )


@pytest.mark.parametrize(("self_sign_up", "admin_only"), [("true", False), ("false", True)])
def test_members_sign_up_from_the_apps_unless_the_operator_turns_it_off(
    template: dict[str, Any], self_sign_up: str, admin_only: bool
) -> None:
    assert template["Parameters"]["MemberSelfSignUp"]["Default"] == "true"  # as before the parameter
    pool = _created_resources(template, {**CREATED, "MemberSelfSignUp": self_sign_up})["UserPool"]
    assert pool["Properties"]["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": admin_only}


def test_the_access_tokens_of_every_client_live_the_minutes_the_operator_chose(
    template: dict[str, Any],
) -> None:
    parameter = template["Parameters"]["AccessTokenMinutes"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (60, 5, 1440)
    clients = _of_type(_created_resources(template, CREATED), "AWS::Cognito::UserPoolClient")
    assert set(clients) >= {"MemberClient", "PartnerClient"}
    for name, client in clients.items():
        properties = client["Properties"]
        assert properties["AccessTokenValidity"] == {"Ref": "AccessTokenMinutes"}, name
        assert properties["TokenValidityUnits"]["AccessToken"] == "minutes", name
    assert clients["MemberClient"]["Properties"]["IdTokenValidity"] == {"Ref": "AccessTokenMinutes"}


# ---------------------------------------------------------------- outputs


def test_with_its_own_pool_the_outputs_name_the_pool_its_clients_and_the_token_url(
    template: dict[str, Any],
) -> None:
    expected = {
        "ApiUrl": "https://<LoyaltyApi>.execute-api.eu-west-3.<AWS::URLSuffix>",
        "UserPoolId": "<UserPool>",
        "MemberClientId": "<MemberClient>",
        "PartnerClientId": "<PartnerClient>",
        "TokenUrl": "https://acme-loyalty-prod.auth.eu-west-3.amazoncognito.com/oauth2/token",
        "JwtIssuer": "https://cognito-idp.eu-west-3.amazonaws.com/<UserPool>",
        "TableName": "<LoyaltyTable>",
        "Region": "eu-west-3",
        "Stage": "prod",
    }
    outputs = _outputs(template, CREATED)
    assert {name: outputs.get(name) for name in expected} == expected


def test_with_an_existing_pool_the_outputs_name_that_pool_and_the_clients_the_api_accepts(
    template: dict[str, Any],
) -> None:
    outputs = _outputs(template, EXISTING)
    assert outputs["UserPoolId"] == POOL_ID
    assert outputs["ApiClientIds"] == CLIENT_IDS
    assert outputs["JwtIssuer"] == f"https://cognito-idp.eu-west-3.amazonaws.com/{POOL_ID}"
    assert not {"MemberClientId", "PartnerClientId", "TokenUrl"} & set(outputs)
    assert {"ApiUrl", "TableName", "Region", "Stage"} <= set(outputs)


def test_the_outputs_the_api_and_the_pool_agree_on_the_issuer_and_the_clients(
    template: dict[str, Any],
) -> None:
    for given in (CREATED, EXISTING):
        outputs, jwt = _outputs(template, given), _jwt_configuration(template, given)
        assert outputs["JwtIssuer"] == jwt["issuer"]
        assert outputs["ApiClientIds"].split(",") == jwt["audience"]


def test_the_stacks_own_pool_pins_the_issuer_the_authorizer_names(template: dict[str, Any]) -> None:
    """An UPDATED issuer (issuer-cognito-idp.…) would not be the authorizer's: every token refused."""
    pool = template["Resources"]["UserPool"]["Properties"]
    assert pool["IssuerConfiguration"] == {"Type": "ORIGINAL"}
