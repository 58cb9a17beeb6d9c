"""The batch matrix as an HTML table: every cell an icon, a colour and, on hover, words.

Status is never told by colour alone: each cell shows its status icon, names the item
and its status in its link's title and accessible name, and the legend spells every
icon. Every value placed in the page is escaped.
"""

from __future__ import annotations

import html

import streamlit as st

from dashboard.api._items import item_link
from dashboard.api._matrix import Matrix
from reports.contracts import ITEM_STATUS_ICONS

# Background and text per status: each pair ≥ 4.5:1 contrast, in light and dark themes.
STATUS_COLOURS = {
    "rendered": ("#d3f5dc", "#0b4a1d"),
    "unchanged": ("#e4e9f0", "#1f2a37"),
    "flagged": ("#fff0bf", "#5c4300"),
    "failed": ("#ffd4d4", "#7a0010"),
    "running": ("#d5e7ff", "#0b3a75"),
    "pending": ("#eeeeee", "#333333"),
}

_STYLE = (
    "<style>"
    ".rr-matrix{border-collapse:collapse;font-size:0.85rem;margin-bottom:0.5rem}"
    ".rr-matrix th{padding:2px 6px;text-align:left;white-space:nowrap;font-weight:600}"
    ".rr-matrix td{padding:0;border:1px solid #8a8f98;text-align:center;min-width:2.2rem}"
    ".rr-matrix td a{display:block;padding:3px 4px;text-decoration:none;color:inherit}"
    ".rr-matrix td a:focus{outline:3px solid #1f5fbf;outline-offset:-3px}"
    ".rr-scroll{overflow-x:auto;max-width:100%}"
    + "".join(
        f".rr-s-{status}{{background:{bg};color:{fg}}}"
        for status, (bg, fg) in STATUS_COLOURS.items()
    )
    + "</style>"
)


def legend_html() -> str:
    parts = [
        f'<span class="rr-s-{status}" style="padding:2px 6px;margin-right:6px">'
        f"{ITEM_STATUS_ICONS[status]} {status}</span>"
        for status in STATUS_COLOURS
    ]
    return f'<p aria-label="Legend">{"".join(parts)}</p>'


def matrix_html(matrix: Matrix, report: str, rows: list[str]) -> str:
    """The table for `rows` (a page of the matrix's row values)."""
    esc = html.escape
    corner = esc(matrix.rows_dim) + (f" ╲ {esc(matrix.cols_dim)}" if matrix.cols_dim else "")
    head = "".join(
        f'<th scope="col">{esc(value) if matrix.cols_dim else "status"}</th>'
        for value in matrix.col_values
    )
    body = []
    for row in rows:
        cells = []
        for col in matrix.col_values:
            item = matrix.cells.get((row, col))
            if item is None:
                cells.append('<td aria-label="no item">·</td>')
                continue
            words = f"{item.label}: {item.status}"
            if item.error:
                words += f" — {item.error[:200]}"
            cells.append(
                f'<td class="rr-s-{esc(item.status)}"><a href="{esc(item_link(report, item.key))}" '
                f'target="_self" title="{esc(words)}" aria-label="{esc(words)}">'
                f"{ITEM_STATUS_ICONS.get(item.status, '•')}</a></td>"
            )
        body.append(f'<tr><th scope="row">{esc(row)}</th>{"".join(cells)}</tr>')
    caption = f"Each item's status: {esc(matrix.rows_dim)} by row" + (
        f", {esc(matrix.cols_dim)} by column" if matrix.cols_dim else ""
    )
    return (
        f'{_STYLE}<div class="rr-scroll"><table class="rr-matrix"><caption>{caption}</caption>'
        f'<thead><tr><th scope="col">{corner}</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def status_matrix(matrix: Matrix, report: str, rows: list[str]) -> None:
    st.html(legend_html() + matrix_html(matrix, report, rows))
