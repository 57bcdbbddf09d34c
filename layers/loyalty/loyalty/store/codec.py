"""Plain Python values <-> DynamoDB attribute values (the small subset this table uses)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


def encode(value: Any) -> AttributeValue:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {key: encode(inner) for key, inner in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [encode(inner) for inner in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def decode(attribute: AttributeValue) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else Decimal(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "M":
        return {key: decode(inner) for key, inner in value.items()}
    if kind == "L":
        return [decode(inner) for inner in value]
    raise TypeError(f"unexpected DynamoDB type {kind}")


def to_item(values: Mapping[str, Any]) -> Item:
    return {key: encode(value) for key, value in values.items() if value is not None}


def from_item(item: Item) -> dict[str, Any]:
    return {key: decode(value) for key, value in item.items()}
