"""FROZEN BASELINE of the carrier-monthly PDF, as rendered on 2026-12-01. Do not edit.

The reference that bench/pdf_speed.py measures the live code against, side by side in
one process ("PDF render speed (second round)" in docs/BENCHMARKS.md). Copied, unchanged
but for a label, from the live code of that day:

    charts.py                  reports/charts.py (matplotlib → SVG charts)
    pdf.py                     reports/pdf.py (the engine: its settings and caches)
    layout/                    reports/layout/ (shared templates and stylesheet)
    carrier-monthly/           the report's template.html.j2 and assets/style.css

The live report's loader still computes the figures (its parameters and numbers are not
under test): while the baseline builds a context, the loader's `bar_chart` is swapped for
the frozen one. Everything else a render does — the template environment, the HTML
context, the stylesheets, the fetcher's roots, the WeasyPrint calls — is spelled here
or in the copies, so changing the live engine, charts or templates leaves this output
as it was.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2

from reports.tables import Table, apply_row_limit
from reports.templating import ReportSandbox

from . import charts
from .pdf import RenderedPdf, render_pdf

FOLDER = Path(__file__).resolve().parent
LAYOUT_DIR = FOLDER / "layout"
REPORT_DIR = FOLDER / "carrier-monthly"
ASSETS_DIR = REPORT_DIR / "assets"
STYLESHEETS = [LAYOUT_DIR / "base.css", ASSETS_DIR / "style.css"]
ALLOWED_ROOTS = [ASSETS_DIR, LAYOUT_DIR]
TEMPLATE = "template.html.j2"


@contextmanager
def _frozen_charts(loader) -> Iterator[None]:
    live = loader.bar_chart
    loader.bar_chart = charts.bar_chart
    try:
        yield
    finally:
        loader.bar_chart = live


def build_context(report, params: dict[str, Any], data) -> dict[str, Any]:
    """The loader's context (its figures), with the charts drawn by the frozen code."""
    with _frozen_charts(report.loader):
        return report.loader.build_context(data.frames, dict(params))


def _number(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _percent(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * 100:.{digits}f}%"


def _environment() -> jinja2.Environment:
    # As reports.templating.make_environment did: a new environment (so a new compile
    # of the templates) for every render.
    env = ReportSandbox(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(REPORT_DIR), jinja2.FileSystemLoader(LAYOUT_DIR)]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = _number
    env.filters["percent"] = _percent
    return env


def render_html(
    report, params: dict[str, Any], context: dict[str, Any], now: dt.datetime | None = None
) -> str:
    """The page WeasyPrint lays out, as reports.render.render_html made it."""
    tables = [value for value in context.values() if isinstance(value, Table)]
    apply_row_limit(
        report.name, tables, report.spec.pdf.max_table_rows, report.spec.pdf.on_table_overflow
    )
    parameter_line = ", ".join(f"{k}={v}" for k, v in params.items())
    now = now or dt.datetime.now(dt.UTC)
    full_context = {
        "report": report.spec,
        "params": dict(params),
        "parameter_line": parameter_line,
        "document_title": f"{report.spec.title} — {parameter_line}"
        if params
        else report.spec.title,
        "generated_at": now.strftime("%Y-%m-%d %H:%M UTC"),
        "generated_at_iso": now.isoformat(timespec="seconds"),
        **context,
    }
    return _environment().get_template(TEMPLATE).render(full_context)


def render(report, html: str) -> RenderedPdf:
    """The engine of the day: reused fonts and parsed stylesheets, tagged PDF."""
    return render_pdf(
        report.name,
        html,
        base_dir=ASSETS_DIR,
        stylesheets=STYLESHEETS,
        allowed_roots=ALLOWED_ROOTS,
    )


def render_naive(report, html: str) -> bytes:
    """A straightforward WeasyPrint call: new fonts and freshly parsed CSS every time."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    from reports.fetcher import SandboxedFetcher

    fetcher = SandboxedFetcher(ALLOWED_ROOTS)
    fonts = FontConfiguration()
    sheets = [CSS(filename=str(p), font_config=fonts, url_fetcher=fetcher) for p in STYLESHEETS]
    return HTML(string=html, base_url=ASSETS_DIR.as_uri() + "/", url_fetcher=fetcher).write_pdf(
        stylesheets=sheets, font_config=fonts, pdf_tags=True
    )
