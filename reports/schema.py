"""JSON Schema of a report's parameters, for Prefect deployments and the dashboard's run form.

Prefect validates flow-run parameters against it (`enforce_parameter_schema`), and
the dashboard builds its form from the same types, choices, defaults and
descriptions, so the two never disagree.
"""

from __future__ import annotations

from typing import Any

from reports.contracts import MONTH_PATTERN, anchored
from reports.definitions import Report
from reports.spec import ParameterSpec

_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "month": {"type": "string", "pattern": anchored(MONTH_PATTERN)},
}


def parameter_property(report: Report, name: str, pspec: ParameterSpec) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": name, **_TYPES[pspec.type]}
    if pspec.description:
        schema["description"] = pspec.description
    if pspec.default is not None:
        schema["default"] = pspec.default
    if pspec.pattern:
        schema["pattern"] = anchored(pspec.pattern)
    choices = report.choices(name)
    if choices is not None:
        schema["enum"] = choices
    if pspec.type in {"integer", "number"}:
        if pspec.min is not None:
            schema["minimum"] = pspec.min
        if pspec.max is not None:
            schema["maximum"] = pspec.max
    elif pspec.min is not None or pspec.max is not None:
        # Month and date bounds are not JSON-Schema keywords; say them for the form.
        schema["x-range"] = [pspec.min, pspec.max]
    return schema


def parameters_schema(report: Report, exclude: set[str] = frozenset()) -> dict[str, Any]:
    """An object schema for the report's parameters (minus `exclude`)."""
    properties = {
        name: parameter_property(report, name, pspec)
        for name, pspec in report.spec.parameters.items()
        if name not in exclude
    }
    required = [
        name
        for name, pspec in report.spec.parameters.items()
        if pspec.required and name not in exclude
    ]
    return {
        "type": "object",
        "title": f"{report.spec.title} parameters",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
