"""The declarative part of a report: `spec.yaml`, parsed and validated.

A spec names the report, types its parameters (defaults, choices, ranges), says
which parameters a batch may fan out over, which outputs to write and what the
quality gate does with empty data.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reports.contracts import MONTH_PATTERN, OUTPUT_FORMATS, OutputFormat
from reports.errors import ParameterError, SpecError

ParamType = Literal["string", "integer", "number", "boolean", "date", "month"]
_MONTH = re.compile(MONTH_PATTERN)
_NAME = re.compile(r"[a-z][a-z0-9-]*")


class ChoicesFrom(BaseModel):
    """Choices read from the report's data source: distinct values of one column."""

    model_config = ConfigDict(extra="forbid")
    table: str
    column: str


class ParameterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ParamType = "string"
    description: str = ""
    default: Any = None
    choices: list[Any] | None = None
    choices_from: ChoicesFrom | None = None
    min: Any = None
    max: Any = None
    pattern: str | None = None

    @property
    def required(self) -> bool:
        return self.default is None


class BatchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dimensions: list[str] = Field(default_factory=list)


class QualitySpec(BaseModel):
    """Minimum row counts per loaded table; what happens when one is not met."""

    model_config = ConfigDict(extra="forbid")
    min_rows: dict[str, int] = Field(default_factory=dict)
    on_violation: Literal["warn", "fail"] = "fail"


class PdfSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Long tables make WeasyPrint slow and the PDF unreadable; the CSV keeps every row.
    max_table_rows: int = Field(default=40, ge=1)
    on_table_overflow: Literal["truncate", "fail"] = "truncate"


class ReportSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    title: str
    description: str = ""
    version: str = "1"
    author: str = "reportrunner"
    language: str = "en"
    source: Literal["files", "sql"] = "files"
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    batch: BatchSpec = Field(default_factory=BatchSpec)
    outputs: list[OutputFormat] = Field(default_factory=lambda: list(OUTPUT_FORMATS))
    quality: QualitySpec = Field(default_factory=QualitySpec)
    pdf: PdfSpec = Field(default_factory=PdfSpec)

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("must be lowercase letters, digits and dashes, starting with a letter")
        return value

    @model_validator(mode="after")
    def _dimensions_are_parameters(self) -> ReportSpec:
        for dim in self.batch.dimensions:
            if dim not in self.parameters:
                raise ValueError(f"batch dimension '{dim}' is not a parameter")
        return self

    def validate_params(
        self,
        raw: Mapping[str, Any],
        choices_of: Callable[[str], list[Any]] | None = None,
    ) -> dict[str, Any]:
        """Return typed parameters with defaults filled in, or raise ParameterError.

        `raw` values may be strings (from the CLI or a form) or typed values.
        `choices_of(name)` resolves `choices_from` when the caller can reach the data.
        """
        unknown = sorted(set(raw) - set(self.parameters))
        if unknown:
            known = ", ".join(self.parameters) or "none"
            raise ParameterError(
                f"{self.name}: unknown parameter '{unknown[0]}' (parameters: {known})"
            )
        params: dict[str, Any] = {}
        for name, pspec in self.parameters.items():
            if name in raw and raw[name] is not None and raw[name] != "":
                value = _coerce(self.name, name, pspec, raw[name])
            elif pspec.required:
                raise ParameterError(f"{self.name}: missing required parameter '{name}'")
            else:
                value = _coerce(self.name, name, pspec, pspec.default)
            _check_bounds(self.name, name, pspec, value)
            choices = pspec.choices
            if choices is None and pspec.choices_from is not None and choices_of is not None:
                choices = choices_of(name)
            if choices is not None and pspec.choices is not None:
                # YAML reads `2013-01-01` as a date: compare in the parameter's own type.
                choices = [_coerce(self.name, name, pspec, choice) for choice in choices]
            if choices is not None and value not in choices:
                shown = ", ".join(map(str, choices[:20])) + (" …" if len(choices) > 20 else "")
                raise ParameterError(
                    f"{self.name}: parameter '{name}' is {value!r}, not one of: {shown}"
                )
            params[name] = value
        return params


def _coerce(report: str, name: str, pspec: ParameterSpec, value: Any) -> Any:
    """Convert `value` to the parameter's type; raise ParameterError naming it."""

    def fail(expected: str) -> ParameterError:
        return ParameterError(f"{report}: parameter '{name}' must be {expected}, got {value!r}")

    kind = pspec.type
    try:
        if kind == "string":
            if not isinstance(value, str | int):
                raise fail("a string")
            text = str(value)
            if pspec.pattern and not re.fullmatch(pspec.pattern, text):
                raise fail(f"a string matching {pspec.pattern}")
            return text
        if kind == "integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise fail("an integer")
            return int(value)
        if kind == "number":
            if isinstance(value, bool):
                raise fail("a number")
            number = float(value)
            if not math.isfinite(number):
                raise fail("a finite number")
            return number
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"true", "yes", "1"}:
                return True
            if text in {"false", "no", "0"}:
                return False
            raise fail("true or false")
        if kind == "date":
            if isinstance(value, dt.date):
                return value.isoformat()
            return dt.date.fromisoformat(str(value)).isoformat()
        if kind == "month":
            text = value.strftime("%Y-%m") if isinstance(value, dt.date) else str(value)
            if not _MONTH.fullmatch(text):
                raise fail("a month as YYYY-MM")
            return text
    except ParameterError:
        raise
    except (TypeError, ValueError):
        expected = {"date": "a date as YYYY-MM-DD"}.get(kind, f"of type {kind}")
        raise fail(expected) from None
    raise fail(f"of type {kind}")  # pragma: no cover - Literal exhausts the types


def _check_bounds(report: str, name: str, pspec: ParameterSpec, value: Any) -> None:
    low = None if pspec.min is None else _coerce(report, name, pspec, pspec.min)
    high = None if pspec.max is None else _coerce(report, name, pspec, pspec.max)
    if low is not None and value < low:
        raise ParameterError(
            f"{report}: parameter '{name}' is {value!r}, below the minimum {low!r}"
        )
    if high is not None and value > high:
        raise ParameterError(
            f"{report}: parameter '{name}' is {value!r}, above the maximum {high!r}"
        )


def range_values(pspec: ParameterSpec) -> list[Any] | None:
    """All values between min and max for month and date parameters, else None."""
    if pspec.min is None or pspec.max is None:
        return None
    if pspec.type == "month":
        year, month = map(int, str(pspec.min).split("-"))
        end = str(pspec.max)
        values = []
        while f"{year:04d}-{month:02d}" <= end:
            values.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return values
    if pspec.type == "date":
        day, end = dt.date.fromisoformat(str(pspec.min)), dt.date.fromisoformat(str(pspec.max))
        return [(day + dt.timedelta(days=i)).isoformat() for i in range((end - day).days + 1)]
    if pspec.type == "integer":
        return list(range(int(pspec.min), int(pspec.max) + 1))
    return None


def yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """'<path>: line 2 invalid YAML: <problem>' — one line, where PyYAML gives five."""
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{path}:{where} invalid YAML: {problem}"


def load_spec(path: Path) -> ReportSpec:
    """Parse one spec.yaml; every problem becomes a SpecError naming the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(yaml_error(path, exc)) from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: spec must be a mapping of fields, got {type(raw).__name__}")
    try:
        spec = ReportSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "spec"
        raise SpecError(f"{path}: {loc}: {first['msg']}") from None
    if spec.name != path.parent.name:
        raise SpecError(
            f"{path}: name '{spec.name}' must match its folder name '{path.parent.name}'"
        )
    return spec
