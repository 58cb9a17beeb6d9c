"""What a batch is made of: parameter sets expanded from dimensions, split into chunks.

Pure functions: no Prefect, no I/O beyond asking the report for dimension values.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

from reports import ParameterError, Report, ReportError

ALL = "*"  # in `over`, stands for every value of the dimension

# Values resolved against the batch's as-of date, so a schedule can say "last month".
RELATIVE = {
    "month": {
        "previous": lambda day: (day.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m"),
        "current": lambda day: day.strftime("%Y-%m"),
    },
    "date": {
        "yesterday": lambda day: (day - dt.timedelta(days=1)).isoformat(),
        "today": lambda day: day.isoformat(),
    },
}


def resolve_relative(report: Report, name: str, value: Any, as_of: dt.date) -> Any:
    """`previous` (month), `yesterday` (date) and friends as concrete values; others as given."""
    pspec = report.spec.parameters.get(name)
    if pspec is None or not isinstance(value, str):
        return value
    resolver = RELATIVE.get(pspec.type, {}).get(value)
    return resolver(as_of) if resolver else value


def expand_items(
    report: Report,
    over: dict[str, list[Any] | str] | None = None,
    fixed: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    as_of: dt.date | None = None,
) -> list[dict[str, Any]]:
    """The batch's parameter sets, in a stable order.

    Either an explicit `items` list, or the cartesian product of the `over`
    dimensions (a list of values, or "*" for all), each merged with `fixed`.
    Items are not validated here: a bad item fails alone when it renders.
    Relative values (`previous` month, `yesterday`) resolve against `as_of`.
    """
    as_of = as_of or dt.date.today()
    fixed = {k: resolve_relative(report, k, v, as_of) for k, v in (fixed or {}).items()}
    if items is not None:
        if over:
            raise ParameterError(
                f"{report.name}: give either items or dimensions to batch over, not both"
            )
        _check_size(report, len(items))
        return [{**fixed, **item} for item in items]
    over = dict(over or {})
    if not over:
        raise ParameterError(
            f"{report.name}: nothing to batch over; name a dimension "
            f"({', '.join(report.spec.batch.dimensions) or 'any parameter'})"
        )
    for dim in over:
        if dim not in report.spec.parameters:
            raise ParameterError(f"{report.name}: unknown parameter '{dim}' to batch over")
        if dim in fixed:
            raise ParameterError(f"{report.name}: parameter '{dim}' is both fixed and batched over")
    axes = []
    for dim, values in over.items():
        if values == ALL:
            resolved = report.dimension_values(dim)
        elif isinstance(values, str):
            raise ParameterError(
                f"{report.name}: values for '{dim}' must be a list or \"*\", got {values!r}"
            )
        else:
            resolved = [resolve_relative(report, dim, v, as_of) for v in values]
        if not resolved:
            raise ParameterError(f"{report.name}: no values to batch over for '{dim}'")
        axes.append([(dim, value) for value in resolved])
    _check_size(report, math.prod(len(axis) for axis in axes))
    # Keep the spec's parameter order inside each item so output paths are stable.
    order = list(report.spec.parameters)
    expanded = []
    for combo in itertools.product(*axes):
        item = {**fixed, **dict(combo)}
        expanded.append(
            {
                k: item[k]
                for k in sorted(item, key=lambda k: order.index(k) if k in order else len(order))
            }
        )
    return expanded


Checked = dict[str, Any] | ReportError | None


def check_items(report: Report, items: list[dict[str, Any]]) -> list[Checked]:
    """Each item validated once, where the batch expands.

    For each item: its typed parameters (defaults filled in), the ReportError that
    fails it alone, or None when validation could not run (its choices live in a
    source that did not answer): the render step, which retries, decides then.
    """
    checked: list[Checked] = []
    for item in items:
        try:
            checked.append(report.validate(item))
        except ReportError as error:
            checked.append(error)
        except Exception:
            checked.append(None)
    return checked


def _check_size(report: Report, count: int) -> None:
    """Refuse a batch too large for one batch process before anything is expanded."""
    limit = report.settings.max_batch_items
    if count > limit:
        raise ParameterError(
            f"{report.name}: the batch has {count:,} items, more than the {limit:,} one batch "
            "may have (REPORTRUNNER_MAX_BATCH_ITEMS); split it into several batches"
        )


def split_chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)]
