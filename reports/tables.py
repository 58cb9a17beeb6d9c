"""Tables for the PDF and HTML, capped at what a reader reads; the CSV keeps every row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reports.errors import QualityError


@dataclass
class Table:
    """One table of a report.

    `columns` maps DataFrame columns to headings (in order); `formats` maps a column
    to a format spec such as ",.0f" or ".1%". The full frame goes to the CSV.
    """

    name: str
    frame: pd.DataFrame
    caption: str
    columns: dict[str, str] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    max_rows: int | None = None  # filled from the spec's pdf.max_table_rows when None

    @property
    def headings(self) -> list[str]:
        return list(self.columns.values()) if self.columns else list(map(str, self.frame.columns))

    @property
    def total_rows(self) -> int:
        return len(self.frame)

    @property
    def truncated(self) -> bool:
        return self.max_rows is not None and self.total_rows > self.max_rows

    @property
    def rows(self) -> list[list[str]]:
        """Formatted cells of the rows shown; escaping is left to the autoescaping template."""
        keys = list(self.columns) if self.columns else list(self.frame.columns)
        shown = self.frame.head(self.max_rows) if self.max_rows else self.frame
        return [
            [_format(record[key], self.formats.get(key)) for key in keys]
            for record in shown.to_dict("records")
        ]

    def numeric(self, heading: str) -> bool:
        keys = list(self.columns) if self.columns else list(self.frame.columns)
        key = keys[self.headings.index(heading)]
        return pd.api.types.is_numeric_dtype(self.frame[key])


def _format(value: Any, spec: str | None) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if spec:
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def apply_row_limit(report: str, tables: list[Table], max_rows: int, policy: str) -> None:
    """Cap each table at `max_rows` for the PDF, or fail if the spec says so."""
    for table in tables:
        if table.max_rows is None:
            table.max_rows = max_rows
        if table.truncated and policy == "fail":
            raise QualityError(
                f"{report}: table '{table.name}' has {table.total_rows:,} rows, more than the "
                f"{table.max_rows:,} a PDF may show (pdf.on_table_overflow: fail)"
            )
