"""FROZEN BASELINE: reports/charts.py as it was on 2026-12-01. Do not edit.

bench/pdf_speed.py measures the live code against this copy.

Charts as SVG `data:` URLs, drawn by matplotlib without a browser or display."""

from __future__ import annotations

import io
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure

_STYLE = {
    "svg.fonttype": "none",  # keep text as text: searchable, accessible, smaller
    "svg.hashsalt": "reportrunner",  # stable ids so unchanged data gives the same SVG
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_COLOR = "#1f5f99"


@dataclass(frozen=True)
class Chart:
    title: str
    alt: str  # text alternative: what a screen reader says instead of the picture
    data_url: str


def _to_chart(fig: Figure, title: str, alt: str) -> Chart:
    buffer = io.BytesIO()
    with matplotlib.rc_context(_STYLE):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    encoded = b64encode(buffer.getvalue()).decode("ascii")
    return Chart(title=title, alt=alt, data_url=f"data:image/svg+xml;base64,{encoded}")


def bar_chart(
    labels: Sequence[str | int],
    values: Sequence[float],
    *,
    title: str,
    alt: str,
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[float, float] = (6.5, 2.1),
) -> Chart:
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=size)
        ax = fig.add_subplot()
        # Whole numbers (days, years) get a numeric axis with readable ticks; the rest
        # are categories, one label per bar.
        numeric = bool(labels) and all(isinstance(label, int) for label in labels)
        ax.bar(list(labels) if numeric else [str(label) for label in labels], values, color=_COLOR)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.axhline(0, color="#555", linewidth=0.6)
        ax.grid(axis="y", color="#ddd", linewidth=0.5)
        ax.set_axisbelow(True)
        if not labels:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return _to_chart(fig, title, alt)


def line_chart(
    x: Sequence[float | int | str],
    series: dict[str, Sequence[float]],
    *,
    title: str,
    alt: str,
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[float, float] = (6.5, 2.1),
) -> Chart:
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=size)
        ax = fig.add_subplot()
        for label, values in series.items():
            ax.plot(list(x), list(values), label=label, linewidth=1.2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(color="#ddd", linewidth=0.5)
        if len(series) > 1:
            ax.legend(frameon=False)
        if not len(x):
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return _to_chart(fig, title, alt)
