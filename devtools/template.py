"""Reads `template.yaml`, the single source of truth, for the local mode and the tests.

Only what the local mode needs: the HTTP routes and schedules of the functions, the table
definition, and the functions' environment. Not a CloudFormation engine: intrinsic functions
are resolved from values the caller provides, and anything else is refused with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devtools import REPO_ROOT

__all__ = [
    "Route",
    "Schedule",
    "TemplateError",
    "function_code",
    "function_environment",
    "http_routes",
    "load_template",
    "schedules",
    "serverless_functions",
    "table_definition",
    "ttl_attribute",
]

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_HTTP_API = "AWS::Serverless::HttpApi"
DYNAMODB_TABLE = "AWS::DynamoDB::Table"


class TemplateError(ValueError):
    """The template does not say what the local mode needs, or says it in a way it cannot read."""


# --- loading ------------------------------------------------------------------------------------


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short tags (`!Ref x`) as their long form (`{"Ref": x}`)."""


# CloudFormation reads `2010-09-09` as a string, not a date: drop YAML's implicit timestamps.
_CloudFormationLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "Sub",
            "GetAtt",
            "If",
            "Join",
            "Select",
            "Split",
            "Equals",
            "Not",
            "And",
            "Or",
            "FindInMap",
            "Base64",
            "ImportValue",
            "GetAZs",
            "Cidr",
            "Length",
            "ToJsonString",
            "Transform",
        )
    },
}


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node.tag}", node.start_mark)


def _short_tag_constructor(long_name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct_node(loader, node)
        if long_name == "Fn::GetAtt" and isinstance(value, str):
            # `!GetAtt Table.Arn` and `!GetAtt Db.Endpoint.Address`: the resource is before the first dot.
            resource, dot, attribute = value.partition(".")
            if not dot:
                raise yaml.constructor.ConstructorError(
                    None, None, f"!GetAtt {value!r} needs the form Resource.Attribute", node.start_mark
                )
            value = [resource, attribute]
        return {long_name: value}

    return construct


for _short, _long in _SHORT_TAGS.items():
    _CloudFormationLoader.add_constructor(f"!{_short}", _short_tag_constructor(_long))


def load_template(path: str | Path = "template.yaml") -> dict[str, Any]:
    """Parse a SAM/CloudFormation template, short tags turned into their long form.

    A relative path is taken from the repository root, so this works from any directory.
    """
    template_path = Path(path)
    if not template_path.is_absolute():
        template_path = REPO_ROOT / template_path
    with template_path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=_CloudFormationLoader)
    if not isinstance(document, dict):
        raise TemplateError(f"{template_path} is not a template: its top level is not a mapping")
    return document


# --- functions, routes and schedules ------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One HTTP API route: `method` upper case (`ANY` for any), `path` as declared (`/members/{memberId}`)."""

    method: str
    path: str
    function: str
    code_uri: str
    handler: str
    authorized: bool
    authorization_scopes: tuple[str, ...] = ()

    @property
    def route_key(self) -> str:
        """The routeKey API Gateway puts in the event: `POST /members/{memberId}/earn` or `$default`."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class Schedule:
    """One scheduled invocation of a function (`Schedule` or `ScheduleV2` event). `input` is the
    JSON a `ScheduleV2` sends instead of an EventBridge event (`Input`), if it declares one."""

    function: str
    code_uri: str
    handler: str
    name: str
    expression: str
    input: str | None = field(default=None, compare=False)


def _resources(template: Mapping[str, Any]) -> dict[str, Any]:
    resources = template.get("Resources")
    if not isinstance(resources, dict):
        raise TemplateError("the template has no Resources")
    return resources


def _globals(template: Mapping[str, Any], section: str) -> dict[str, Any]:
    value = (template.get("Globals") or {}).get(section) or {}
    return value if isinstance(value, dict) else {}


def serverless_functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The Properties of every AWS::Serverless::Function, by logical id."""
    return {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in _resources(template).items()
        if isinstance(resource, dict) and resource.get("Type") == SERVERLESS_FUNCTION
    }


def _code_and_handler(
    template: Mapping[str, Any], function: str, properties: Mapping[str, Any]
) -> tuple[str, str]:
    defaults = _globals(template, "Function")
    code_uri = properties.get("CodeUri", defaults.get("CodeUri"))
    handler = properties.get("Handler", defaults.get("Handler"))
    if not isinstance(code_uri, str) or not code_uri:
        raise TemplateError(
            f"{function}: CodeUri must be a local folder (on the function or in Globals.Function)"
        )
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(
            f"{function}: Handler must look like module.function (on the function or in Globals)"
        )
    return code_uri.rstrip("/") or ".", handler


def function_code(template: Mapping[str, Any], function: str) -> tuple[str, str]:
    """The function's (CodeUri, Handler), either from the function or from Globals.Function."""
    functions = serverless_functions(template)
    if function not in functions:
        raise TemplateError(f"the template has no {SERVERLESS_FUNCTION} named {function}")
    return _code_and_handler(template, function, functions[function])


def _events(properties: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    events = properties.get("Events") or {}
    return [
        (name, event.get("Type", ""), event.get("Properties") or {})
        for name, event in events.items()
        if isinstance(event, dict)
    ]


def _api_auth(template: Mapping[str, Any], event_properties: Mapping[str, Any]) -> dict[str, Any]:
    """The Auth of the HTTP API an event belongs to: its own HttpApi resource, or the implicit API."""
    auth = dict(_globals(template, "HttpApi").get("Auth") or {})
    api = event_properties.get("ApiId")
    if isinstance(api, dict) and isinstance(api.get("Ref"), str):
        resource = _resources(template).get(api["Ref"]) or {}
        if resource.get("Type") != SERVERLESS_HTTP_API:
            raise TemplateError(f"ApiId {api['Ref']} is not an {SERVERLESS_HTTP_API}")
        auth.update((resource.get("Properties") or {}).get("Auth") or {})
    return auth


def http_routes(template: Mapping[str, Any]) -> list[Route]:
    """Every `HttpApi` event of every function, as API Gateway would route it.

    A route is authorized when it names an authorizer, or when its API has a `DefaultAuthorizer`
    and the route does not opt out with `Authorizer: NONE` (as SAM deploys it).
    """
    routes: list[Route] = []
    for function, properties in serverless_functions(template).items():
        for _name, event_type, event in _events(properties):
            if event_type != "HttpApi":
                continue
            code_uri, handler = _code_and_handler(template, function, properties)
            event_auth = event.get("Auth") or {}
            api_auth = _api_auth(template, event)
            authorizer = event_auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
            path = event.get("Path", "$default")
            method = str(event.get("Method", "ANY")).upper()
            if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
                method = "ANY"
            routes.append(
                Route(
                    method=method,
                    path=path,
                    function=function,
                    code_uri=code_uri,
                    handler=handler,
                    authorized=bool(authorizer) and authorizer != "NONE",
                    authorization_scopes=tuple(event_auth.get("AuthorizationScopes") or ()),
                )
            )
    return routes


def schedules(template: Mapping[str, Any]) -> list[Schedule]:
    """Every `Schedule` (EventBridge rule) and `ScheduleV2` (EventBridge Scheduler) event."""
    found: list[Schedule] = []
    for function, properties in serverless_functions(template).items():
        for name, event_type, event in _events(properties):
            if event_type not in ("Schedule", "ScheduleV2"):
                continue
            code_uri, handler = _code_and_handler(template, function, properties)
            expression = event.get("Schedule" if event_type == "Schedule" else "ScheduleExpression")
            found.append(
                Schedule(
                    function=function,
                    code_uri=code_uri,
                    handler=handler,
                    name=str(event.get("Name") or name),
                    expression=str(expression),
                    input=str(event["Input"]) if event_type == "ScheduleV2" and "Input" in event else None,
                )
            )
    return found


# --- the table ----------------------------------------------------------------------------------


def _table_properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    resource = _resources(template).get(logical_id)
    if not isinstance(resource, dict) or resource.get("Type") != DYNAMODB_TABLE:
        raise TemplateError(f"the template has no {DYNAMODB_TABLE} named {logical_id}")
    return resource.get("Properties") or {}


def _index(index: Mapping[str, Any]) -> dict[str, Any]:
    # Throughput, contributor insights and the like mean nothing to an on-demand local table.
    return {
        "IndexName": index["IndexName"],
        "KeySchema": index["KeySchema"],
        "Projection": index["Projection"],
    }


def table_definition(template: Mapping[str, Any], logical_id: str = "LoyaltyTable") -> dict[str, Any]:
    """Keyword arguments for boto3's `create_table` (without `TableName`), on-demand billing."""
    properties = _table_properties(template, logical_id)
    try:
        definition: dict[str, Any] = {
            "AttributeDefinitions": list(properties["AttributeDefinitions"]),
            "KeySchema": list(properties["KeySchema"]),
            "BillingMode": "PAY_PER_REQUEST",
        }
    except KeyError as missing:
        raise TemplateError(f"{logical_id} has no {missing.args[0]}") from None
    if properties.get("GlobalSecondaryIndexes"):
        definition["GlobalSecondaryIndexes"] = [_index(i) for i in properties["GlobalSecondaryIndexes"]]
    if properties.get("LocalSecondaryIndexes"):
        definition["LocalSecondaryIndexes"] = [_index(i) for i in properties["LocalSecondaryIndexes"]]
    stream = properties.get("StreamSpecification")
    if isinstance(stream, dict) and stream.get("StreamViewType"):
        definition["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    return definition


def ttl_attribute(template: Mapping[str, Any], logical_id: str = "LoyaltyTable") -> str | None:
    """The TTL attribute the table declares, or None when TTL is off."""
    ttl = _table_properties(template, logical_id).get("TimeToLiveSpecification") or {}
    enabled = ttl.get("Enabled")
    if enabled is True or str(enabled).lower() == "true":
        return str(ttl["AttributeName"])
    return None


# --- environment --------------------------------------------------------------------------------

_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")
_NO_VALUE = object()


class _Resolver:
    """Resolves the few intrinsic functions an environment variable uses, from known values."""

    def __init__(self, template: Mapping[str, Any], values: Mapping[str, str], where: str) -> None:
        self.parameters = template.get("Parameters") or {}
        self.values = values
        self.where = where

    def fail(self, reason: str) -> TemplateError:
        return TemplateError(f"{self.where}: {reason}")

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.values:
            return self.values[name]
        parameter = self.parameters.get(name)
        if isinstance(parameter, dict) and "Default" in parameter:
            return str(parameter["Default"])
        raise self.fail(f"no value for Ref {name}: pass it in `values` (logical id or parameter name)")

    def get_att(self, resource: str, attribute: str) -> str:
        key = f"{resource}.{attribute}"
        if key in self.values:
            return self.values[key]
        raise self.fail(f"no value for Fn::GetAtt {key}: pass it in `values` as {key!r}")

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in (argument[1] or {}).items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            literal, name = match.groups()
            if literal:
                return "${" + name + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(*name.split(".", 1))
            value = self.ref(name)
            if value is _NO_VALUE:
                raise self.fail("AWS::NoValue cannot be used inside Fn::Sub")
            return str(value)

        return _SUB_VARIABLE.sub(replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict) or len(value) != 1:
            raise self.fail(f"cannot read value {value!r}")
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            resource, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(resource, attribute)
        if function == "Fn::Sub":
            return self.sub(argument)
        if function == "Fn::If":
            condition, when_true, when_false = argument
            # Local mode has no conditions engine: a condition holds only when `values` says so.
            return self.resolve(when_true if self.values.get(condition) == "true" else when_false)
        if function == "Fn::Join":
            delimiter, items = argument
            return str(delimiter).join(str(item) for item in self.resolve(items))
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if function == "Fn::Split":
            delimiter, text = argument
            return str(self.resolve(text)).split(delimiter)
        raise self.fail(f"{function} is not supported in environment variables by the local mode")


def function_environment(
    template: Mapping[str, Any], function: str, values: Mapping[str, str]
) -> dict[str, str]:
    """The function's environment variables (Globals.Function merged with its own), resolved.

    `values` gives what CloudFormation would know: `Ref` by logical id, parameter or pseudo
    parameter name (`AWS::Region`), `Fn::GetAtt` as `"Resource.Attribute"`, and conditions
    (`"IsProduction": "true"`; a condition absent from `values` is false). A parameter missing
    from `values` takes its `Default`. Anything else raises `TemplateError`.
    """
    functions = serverless_functions(template)
    if function not in functions:
        raise TemplateError(f"the template has no {SERVERLESS_FUNCTION} named {function}")
    variables = {
        **((_globals(template, "Function").get("Environment") or {}).get("Variables") or {}),
        **((functions[function].get("Environment") or {}).get("Variables") or {}),
    }
    environment: dict[str, str] = {}
    for name, value in variables.items():
        resolved = _Resolver(template, values, f"{function} environment variable {name}").resolve(value)
        if resolved is _NO_VALUE:
            continue
        if not isinstance(resolved, str):
            raise TemplateError(f"{function} environment variable {name} is not a string: {resolved!r}")
        environment[name] = resolved
    return environment
