"""Tables for the PDF and HTML, capped at what a reader reads; the CSV keeps every row."""

from __future__ import annotations

import csv
import re
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

    def to_csv_bytes(self) -> bytes:
        """Every row as UTF-8 CSV that a spreadsheet opens as data, never as formulas.

        Text cells and headings a spreadsheet would run as a formula get a leading `'`
        (see `_RISKY`); numeric, boolean and date columns are written unchanged, so -5
        stays a number. Text is quoted, as OWASP advises: a `;` inside a cell must not
        start a new cell in a spreadsheet that splits on `;`.
        """
        frame = self.frame
        changed = {}
        for position, dtype in enumerate(frame.dtypes):
            if _is_text(dtype):
                column = frame.iloc[:, position]
                if (safe := _neutralised(column)) is not column:
                    changed[position] = safe
        headings = [_neutralised_text(name) for name in frame.columns]
        if changed or headings != list(frame.columns):
            frame = frame.copy(deep=False)  # the loader's frame is left as it was
            for position, column in changed.items():
                frame.isetitem(position, column)
            frame.columns = headings
        return frame.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")


# A spreadsheet runs a cell as a formula when it starts with = + - @ (OWASP "CSV Injection"),
# TAB, CR or LF, or NUL (ASVS 1.2.10). Leading blanks do not protect: LibreOffice's "trim
# spaces" import strips them first. Full-width ＝＋－＠ are included for East Asian
# spreadsheets. A plain number such as "-5" or "+1.5e3" is no formula and stays as it is.
_STARTS = r"(?:[\t\r\n\x00]|[\s\x00-\x1f\x7f]*[=+\-@\uff1d\uff0b\uff0d\uff20])"
_RISKY = r"^(?![+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$)" + _STARTS
_RISKY_RE = re.compile(_RISKY)
# Cells joined by \x1f (a control character, so it is among the blanks above): one scan in C
# tells whether any cell of a column may start a formula, the usual answer being no.
_ANY_START_RE = re.compile(r"(?:^|\x1f)" + _STARTS)


def _is_text(dtype: Any) -> bool:
    types = pd.api.types
    return (
        types.is_object_dtype(dtype)
        or types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _neutralised(column: pd.Series) -> pd.Series:
    """`column` with a `'` before every text cell a spreadsheet would run; vectorised."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    texts = [value for value in column.tolist() if isinstance(value, str)]
    if not texts or not _ANY_START_RE.search("\x1f".join(texts)):
        return column
    risky = column.str.match(_RISKY, na=False)
    if not risky.any():
        return column
    column = column.copy()
    column[risky] = "'" + column[risky]
    return column


def _neutralised_text(value: Any) -> Any:
    if isinstance(value, str) and _RISKY_RE.match(value):
        return "'" + value
    return value


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
