"""The run form, generated from a deployment's parameter schema: fields, widgets, checks.

Pure: nothing here draws or talks to Prefect. `parameter_fields()` reads the schema
that `reportrunner deploy` stores on each deployment, `widget()` says which Streamlit
widget edits a field and with which arguments, and `check()` validates a value with
the same keywords Prefect enforces (type, enum, pattern, format, minimum/maximum)
plus the month/date bounds the schema carries as `x-range`. Messages are one line,
name the report and the parameter, and read like the CLI's.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

from reports import contracts
from reports.contracts import anchored, item_key, unanchored

ALL = "*"  # in a batch's `over`: every value of the dimension
MONTH_PATTERN = anchored(contracts.MONTH_PATTERN)  # as the deployment schema writes it
_SHOWN_CHOICES = 20
_DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"  # fromisoformat alone also takes 20130704


@dataclass(frozen=True)
class Field:
    """One report parameter, as the form sees it."""

    report: str
    name: str
    kind: str  # choice, boolean, integer, number, date, month, text
    required: bool
    description: str | None = None
    default: Any = None
    choices: tuple[Any, ...] | None = None
    minimum: Any = None  # numbers: minimum; month and date: x-range
    maximum: Any = None
    pattern: str | None = None


@dataclass(frozen=True)
class Widget:
    """A Streamlit widget function's name and its arguments: `getattr(st, kind)(**kwargs)`."""

    kind: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Problem:
    parameter: str
    message: str
    missing: bool = False  # nothing given yet: a hint to fill it in, not an error


@dataclass(frozen=True)
class Dimension:
    """A parameter a batch may fan out over, and every value "all" stands for."""

    name: str
    values: tuple[Any, ...] | None  # None: open-ended, values are typed in
    field: Field


@dataclass(frozen=True)
class DimensionPick:
    name: str
    every: bool  # all values ("*")
    values: tuple[Any, ...] = ()


def report_name(schema: dict[str, Any]) -> str:
    report = schema.get("properties", {}).get("report", {})
    return str(report.get("default") or (report.get("enum") or ["report"])[0])


def is_batch(schema: dict[str, Any]) -> bool:
    return "over" in schema.get("properties", {})


def parameter_fields(schema: dict[str, Any], batched: tuple[str, ...] = ()) -> list[Field]:
    """The report parameters of a deployment schema, minus those a batch fans out over.

    A batch schema requires nothing (any parameter may come from `over`), so there a
    parameter is required when it has no default and is not batched over.
    """
    report = report_name(schema)
    parameters = schema.get("properties", {}).get("parameters", {})
    required = set(parameters.get("required") or [])
    batch = is_batch(schema)
    return [
        _field(report, name, prop, name in required or (batch and "default" not in prop))
        for name, prop in (parameters.get("properties") or {}).items()
        if name not in batched
    ]


def _field(report: str, name: str, prop: dict[str, Any], required: bool) -> Field:
    low, high = prop.get("minimum"), prop.get("maximum")
    if "x-range" in prop:
        low, high = prop["x-range"]
    if "enum" in prop:
        kind = "choice"
    elif prop.get("type") in ("boolean", "integer", "number"):
        kind = prop["type"]
    elif prop.get("format") == "date":
        kind = "date"
    elif prop.get("pattern") == MONTH_PATTERN:
        kind = "month"
    else:
        kind = "text"
    return Field(
        report=report,
        name=name,
        kind=kind,
        required=required,
        description=prop.get("description"),
        default=prop.get("default"),
        choices=tuple(prop["enum"]) if "enum" in prop else None,
        minimum=low,
        maximum=high,
        pattern=prop.get("pattern") if kind in ("text", "choice") else None,
    )


def widget(field: Field, key: str) -> Widget:
    """The widget that edits `field`, its default preselected, bounded by the schema."""
    common: dict[str, Any] = {
        "label": f"{field.name} (required)" if field.required else field.name,
        "key": key,
        "help": help_text(field),
    }
    if field.kind == "choice":
        choices = list(field.choices or ())
        index = choices.index(field.default) if field.default in choices else None
        return Widget(
            "selectbox",
            {**common, "options": choices, "index": index, "placeholder": f"Choose {field.name}"},
        )
    if field.kind == "boolean":
        return Widget("checkbox", {**common, "value": bool(field.default)})
    if field.kind in ("integer", "number"):
        cast = int if field.kind == "integer" else float
        bounds = {
            "min_value": None if field.minimum is None else cast(field.minimum),
            "max_value": None if field.maximum is None else cast(field.maximum),
            "value": None if field.default is None else cast(field.default),
        }
        return Widget("number_input", {**common, **bounds, "step": cast(1)})
    # Months and dates are typed text, checked by check() on every change. Two widgets
    # were dropped on purpose (both seen in Chromium with Streamlit 1.67): text_input's
    # `validate` keeps a value that fails it in the browser, so the field turned red
    # with its hint only on hover and the server went on describing the last valid
    # value; and date_input commits a typed date only when picked or on Enter, not when
    # Tab leaves the field. A text_input commits on Enter and whenever focus leaves it.
    text = {**common, "value": "" if field.default is None else str(field.default)}
    if field.kind == "month":
        text.update(placeholder="YYYY-MM", max_chars=7)
    elif field.kind == "date":
        text.update(placeholder="YYYY-MM-DD", max_chars=10)
    return Widget("text_input", text)


def help_text(field: Field, requirement: bool = True) -> str:
    """The schema's description, then what values are allowed (and whether one is needed)."""
    parts = [field.description.rstrip(".") + "." if field.description else field.name]
    if field.choices is not None:
        parts.append(f"One of {len(field.choices)} values.")
    if field.minimum is not None and field.maximum is not None:
        parts.append(f"From {field.minimum} to {field.maximum}.")
    elif field.minimum is not None:
        parts.append(f"At least {field.minimum}.")
    elif field.maximum is not None:
        parts.append(f"At most {field.maximum}.")
    if field.pattern and field.kind == "text":
        parts.append(f"Must match {unanchored(field.pattern)}.")
    if field.default is not None:
        parts.append(f"Default: {field.default}.")
    if requirement:
        parts.append("Required." if field.required else "Optional.")
    return " ".join(parts)


def parameter_value(field: Field, raw: Any) -> Any:
    """A widget's value as the flow parameter: dates as ISO text, blank text as None."""
    if raw is None:
        return None
    if field.kind == "date" and isinstance(raw, dt.date):
        return raw.isoformat()
    if field.kind in ("date", "month", "text"):
        return str(raw).strip() or None
    if field.kind == "integer" and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return raw


def check(field: Field, value: Any) -> Problem | None:
    """None when `value` is acceptable for `field`, else the one-line problem."""

    def problem(text: str, missing: bool = False) -> Problem:
        return Problem(field.name, f"{field.report}: {text}", missing)

    def wrong(expected: str) -> Problem:
        return problem(f"parameter '{field.name}' must be {expected}, got {value!r}")

    if value is None or value == "":
        return (
            problem(f"missing required parameter '{field.name}'", True) if field.required else None
        )
    if field.kind == "boolean" and not isinstance(value, bool):
        return wrong("true or false")
    if field.kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return wrong("an integer")
    if field.kind == "number" and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        return wrong("a finite number")
    if field.kind in ("date", "month", "text") and not isinstance(value, str):
        return wrong("a string")
    if field.kind == "month" and not re.fullmatch(MONTH_PATTERN, value):
        return wrong("a month as YYYY-MM")
    if field.kind == "date" and (not re.fullmatch(_DATE_PATTERN, value) or _date(value) is None):
        return wrong("a date as YYYY-MM-DD")
    if field.pattern and isinstance(value, str) and not re.search(field.pattern, value):
        return wrong(f"a string matching {unanchored(field.pattern)}")
    if field.choices is not None and value not in field.choices:
        shown = ", ".join(map(str, field.choices[:_SHOWN_CHOICES]))
        more = " …" if len(field.choices) > _SHOWN_CHOICES else ""
        return problem(f"parameter '{field.name}' is {value!r}, not one of: {shown}{more}")
    if field.minimum is not None and value < field.minimum:
        return problem(
            f"parameter '{field.name}' is {value!r}, below the minimum {field.minimum!r}"
        )
    if field.maximum is not None and value > field.maximum:
        return problem(
            f"parameter '{field.name}' is {value!r}, above the maximum {field.maximum!r}"
        )
    return None


def dimensions(schema: dict[str, Any]) -> list[Dimension]:
    """The dimensions a batch deployment may fan out over, in the schema's order."""
    over = schema.get("properties", {}).get("over", {}).get("properties") or {}
    fields = {f.name: f for f in parameter_fields(schema)}
    result = []
    for name, prop in over.items():
        items = next((o.get("items", {}) for o in prop.get("anyOf", []) if "items" in o), {})
        field = fields.get(name) or _field(report_name(schema), name, items, False)
        values = items.get("enum") or field.choices or _range(field)
        result.append(Dimension(name, tuple(values) if values else None, field))
    return result


def _range(field: Field) -> list[Any] | None:
    """Every value between the bounds, for months, dates and integers."""
    low, high = field.minimum, field.maximum
    if low is None or high is None:
        return None
    if field.kind == "month":
        year, month = map(int, str(low).split("-"))
        months = []
        while f"{year:04d}-{month:02d}" <= str(high):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months
    if field.kind == "date":
        start, end = _date(low), _date(high)
        if start is None or end is None:
            return None
        return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    if field.kind == "integer":
        return list(range(int(low), int(high) + 1))
    return None


def every_values_widget(dimension: Dimension, key: str) -> Widget:
    count = len(dimension.values or ())
    return Widget(
        "checkbox",
        {
            "label": f"All {count} values of {dimension.name}",
            "key": key,
            "value": False,
            "help": f"Render one report for every {dimension.name}; the run expands them itself.",
        },
    )


def values_widget(dimension: Dimension, key: str) -> Widget:
    """A multiselect of the known values, or a text field of comma-separated values."""
    help_ = f"The values of {dimension.name} to render, one report each. " + help_text(
        dimension.field, requirement=False
    )
    if dimension.values is None:
        return Widget(
            "text_input",
            {
                "label": f"Values of {dimension.name}",
                "key": key,
                "placeholder": "value, value, …",
                "help": help_ + " Separate them with commas.",
            },
        )
    return Widget(
        "multiselect",
        {
            "label": f"Values of {dimension.name}",
            "key": key,
            "options": list(dimension.values),
            "placeholder": f"Choose values of {dimension.name}",
            "help": help_,
        },
    )


def pick(dimension: Dimension, every: bool, raw: Any) -> DimensionPick:
    """What the batch widgets of one dimension chose, as values of the parameter."""
    if every and dimension.values is not None:
        return DimensionPick(dimension.name, True)
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    values = (parameter_value(dimension.field, v) for v in raw or ())
    return DimensionPick(dimension.name, False, tuple(v for v in values if v is not None))


def check_pick(dimension: Dimension, chosen: DimensionPick) -> list[Problem]:
    """Problems with one dimension's choice: nothing chosen yet, or values out of bounds."""
    if not chosen.every and not chosen.values:
        text = f"choose at least one value of '{chosen.name}' to batch over"
        return [Problem(chosen.name, f"{dimension.field.report}: {text}", True)]
    found = (check(dimension.field, value) for value in chosen.values)
    return [p for p in found if p is not None]


def check_dimensions(
    report: str, dims: list[Dimension], picks: list[DimensionPick]
) -> list[Problem]:
    if not picks:
        return [Problem("over", f"{report}: choose at least one dimension to batch over", True)]
    by_name = {d.name: d for d in dims}
    return [p for chosen in picks for p in check_pick(by_name[chosen.name], chosen)]


def value_counts(dims: list[Dimension], picks: list[DimensionPick]) -> dict[str, int]:
    """How many values each chosen dimension contributes."""
    by_name = {d.name: d for d in dims}
    return {p.name: len(by_name[p.name].values or ()) if p.every else len(p.values) for p in picks}


def batch_size(dims: list[Dimension], picks: list[DimensionPick]) -> int:
    """How many reports a batch renders: the product of each dimension's value count."""
    counts = value_counts(dims, picks)
    return math.prod(counts.values()) if counts else 0


def batch_summary(dims: list[Dimension], picks: list[DimensionPick]) -> str:
    """'This batch renders 32 reports (16 values of carrier × 2 values of month).'"""
    size = batch_size(dims, picks)
    parts = [
        f"{n} value{'' if n == 1 else 's'} of {name}"
        for name, n in value_counts(dims, picks).items()
    ]
    detail = f" ({' × '.join(parts)})" if parts else ""
    return f"This batch renders {size:,} report{'' if size == 1 else 's'}{detail}."


def over_parameter(picks: list[DimensionPick]) -> dict[str, Any]:
    return {p.name: ALL if p.every else list(p.values) for p in picks}


def run_parameters(
    report: str, values: dict[str, Any], picks: list[DimensionPick] | None = None
) -> dict[str, Any]:
    """The flow run's parameters: a single run's, or a batch's when `picks` are given."""
    chosen = {name: value for name, value in values.items() if value is not None}
    if picks is None:
        return {"report": report, "parameters": chosen}
    return {"report": report, "over": over_parameter(picks), "parameters": chosen}


def run_target(parameters: dict[str, Any]) -> str:
    """The run in words, for the audit log: "carrier-monthly carrier=AA month=2013-07"."""
    fixed = item_key(parameters.get("parameters") or {})
    if "over" not in parameters:
        return f"{parameters['report']} {fixed}".strip()
    over = " ".join(
        f"{k}={v if v == ALL else ','.join(map(str, v))}" for k, v in parameters["over"].items()
    )
    return f"{parameters['report']} batch over {over} {fixed}".strip()


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None
