"""Where the program rules document comes from, read as text: no schema here, so a function that
needs only the program timezone (balance reads) does not pay for building the rules models."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class RulesError(ValueError):
    """The program rules document cannot be used. `problems` lists (JSON path, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        lines = [f"{path}: {reason}" for path, reason in problems]
        super().__init__("program rules are invalid: " + "\n".join(lines))


def default_rules_text() -> str:
    return resources.files("loyalty.domain").joinpath("default_rules.json").read_text(encoding="utf-8")


def read_rules_text(source: str) -> str:
    """The document a deployment names: `""` or `"default"` (the shipped default),
    `"file:<path>"` (a local JSON file) or `"ssm:<parameter name>"` (an SSM parameter, cached 5 min).

    An unknown form or an unreadable source raises `RulesError`.
    """
    if source in ("", "default"):
        return default_rules_text()
    kind, _, target = source.partition(":")
    if kind == "file" and target:
        try:
            return Path(target).read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesError([("(source)", f"cannot read {target}: {exc.strerror or exc}")]) from None
    if kind == "ssm" and target:
        # Imported here: only deployments that keep their rules in SSM pay for the import.
        from aws_lambda_powertools.utilities.parameters import get_parameter
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = get_parameter(target, max_age=300)
        except GetParameterError as exc:
            raise RulesError([("(source)", f"cannot read SSM parameter {target}: {exc}")]) from None
        return value if value is not None else ""
    raise RulesError(
        [("(source)", f"{source!r} is not a rules source: use '', 'default', 'file:<path>' or 'ssm:<name>'")]
    )


def program_timezone(source: str) -> ZoneInfo:
    """Only the `timezone` of the rules document (the full document is validated where it is used)."""
    try:
        name = json.loads(read_rules_text(source))["timezone"]
        return ZoneInfo(name)
    except (ValueError, KeyError, TypeError, ZoneInfoNotFoundError):
        raise RulesError([("timezone", "is missing or not an IANA time zone")]) from None
