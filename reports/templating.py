"""Jinja2 for reports: autoescaped HTML, strict variables, errors that name the line.

Templates run in Jinja2's immutable sandbox: a template can format the data it is
given but can neither reach Python internals through it nor change it (no
`params.update(…)`, no `list.append(…)`), so a render is a pure function of its
context (see "Trust model" in the README).
"""

from __future__ import annotations

import math
import traceback
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from reports.errors import ReportError, TemplateError

LAYOUT_DIR = Path(__file__).resolve().parent / "layout"


def _number(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _percent(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * 100:.{digits}f}%"


class ReportSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, minus pandas and numpy objects.

    Their public methods write files (`to_csv`, `to_pickle`, …). Templates get
    formatted values through `Table.rows` and plain context values instead.
    """

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if _is_data_object(obj) or _is_data_object(value):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def is_safe_callable(self, obj: Any) -> bool:
        return not _is_data_object(getattr(obj, "__self__", None)) and super().is_safe_callable(obj)


def _is_data_object(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith(("pandas", "numpy")) and not isinstance(obj, int | float | str | bool)


def make_environment(report_dir: Path) -> SandboxedEnvironment:
    env = ReportSandbox(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(report_dir), jinja2.FileSystemLoader(LAYOUT_DIR)]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = _number
    env.filters["percent"] = _percent
    return env


def compile_template(env: jinja2.Environment, report: str, name: str) -> jinja2.Template:
    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        where = Path(exc.filename or exc.name or name).name
        raise TemplateError(f"{report}: {where} line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"{report}: template {exc.name} not found") from None


def render_template(template: jinja2.Template, report: str, context: dict[str, Any]) -> str:
    try:
        return template.render(context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{report}: {_template_line(exc)}{exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"{report}: {_template_line(exc)}template {exc.name} not found"
        ) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{report}: {_template_line(exc)}{exc}") from None
    except (ReportError, MemoryError):
        raise  # a render limit fired (or the template called into the loader's code)
    except Exception as exc:
        # Anything else raised while the template runs is the template's doing: the
        # sandbox's `range(10**9)` guard (OverflowError), `1/0`, `'a' + 1`, …
        raise TemplateError(
            f"{report}: {_template_line(exc)}{exc.__class__.__name__}: {exc}"
        ) from None


def _template_line(exc: BaseException) -> str:
    # Jinja2 rewrites tracebacks so template frames carry the template's file and line.
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"{Path(frame.filename).name} line {frame.lineno}: "
    return ""
