"""A batch as a grid: two of its dimensions as rows and columns, one item per cell.

Pure data, so the page and the benchmark build the same grid; the rest of the
dimensions are a facet (one value each) so that a 3-D batch reads as 2-D slices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from reports.contracts import ItemKey
from reports.index import BatchItem


@dataclass(frozen=True)
class Matrix:
    rows_dim: str
    cols_dim: str | None  # None: a batch over one dimension, one column
    row_values: list[str]
    col_values: list[str]
    cells: dict[tuple[str, str], BatchItem]
    shown: int  # items in this slice (the facet's values)


def _text(value: object) -> str:
    try:
        return _cached_text(value)
    except TypeError:  # an unhashable value (a list): no cache
        return ItemKey.of({"_": value}).label.partition("=")[2]


# A batch repeats each value many times (5,000 cells, ~100 values), but a batch over one
# dimension has a value per item: at 4,096 entries a 5,000-value axis missed every time.
@lru_cache(maxsize=65_536)
def _cached_text(value: object) -> str:
    return ItemKey.of({"_": value}).label.partition("=")[2]


def axis_values(items: Sequence[BatchItem], dim: str) -> list[str]:
    """A dimension's values in the order the batch expanded them."""
    seen: dict[str, None] = {}
    for item in items:
        if dim in item.params:
            seen.setdefault(_text(item.params[dim]), None)
    return list(seen)


def status_matrix(
    items: Sequence[BatchItem],
    rows_dim: str,
    cols_dim: str | None = None,
    facet: Mapping[str, str] | None = None,
) -> Matrix:
    """The items whose other dimensions equal `facet`, placed by their row and column values."""
    facet = dict(facet or {})
    chosen = [
        item
        for item in items
        if all(_text(item.params.get(dim)) == value for dim, value in facet.items())
    ]
    # Each item's row and column text once: the cells and both axes are read from it.
    placed = [
        (
            _text(item.params.get(rows_dim)),
            _text(item.params.get(cols_dim)) if cols_dim else "",
            item,
        )
        for item in chosen
    ]
    return Matrix(
        rows_dim=rows_dim,
        cols_dim=cols_dim,
        row_values=list(dict.fromkeys(r for r, _, i in placed if rows_dim in i.params)),
        col_values=(
            list(dict.fromkeys(c for _, c, i in placed if cols_dim in i.params))
            if cols_dim
            else [""]
        ),
        cells={(row, col): item for row, col, item in placed},
        shown=len(chosen),
    )
