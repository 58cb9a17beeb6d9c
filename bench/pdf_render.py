"""PDF rendering of one carrier-monthly report: naive WeasyPrint vs the engine's warm path.

Side by side in one process, alternating, so machine noise hits both alike.
    naive: a new FontConfiguration and freshly parsed CSS for every PDF (what a
           straightforward `HTML(...).write_pdf()` call does)
    warm:  reports.pdf.render_pdf, which reuses both across renders
Prints medians and the ratio. Usage: .venv/bin/python bench/pdf_render.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from reports.definitions import default_catalog
from reports.fetcher import SandboxedFetcher
from reports.render import build_context, load_data, render_html, render_report_pdf

MONTHS = ["2013-01", "2013-04", "2013-07", "2013-10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    report = default_catalog().get("carrier-monthly")
    pages = []
    for month in MONTHS:
        params = report.validate({"carrier": "UA", "month": month})
        data = load_data(report, params)
        pages.append(render_html(report, params, build_context(report, params, data)))

    def naive(html) -> None:
        fetcher = SandboxedFetcher(report.allowed_roots)
        fonts = FontConfiguration()
        sheets = [
            CSS(filename=str(p), font_config=fonts, url_fetcher=fetcher) for p in report.stylesheets
        ]
        HTML(
            string=html.html, base_url=report.assets_dir.as_uri() + "/", url_fetcher=fetcher
        ).write_pdf(stylesheets=sheets, font_config=fonts, pdf_tags=True)

    def warm(html) -> None:
        render_report_pdf(report, html)

    for html in pages:  # warm-up: imports, font discovery, first parse
        naive(html)
        warm(html)
    timings: dict[str, list[float]] = {"naive": [], "warm": []}
    for _ in range(args.rounds):
        for html in pages:
            for name, fn in (("naive", naive), ("warm", warm)):
                started = time.perf_counter()
                fn(html)
                timings[name].append(time.perf_counter() - started)
    naive_s, warm_s = (statistics.median(timings[k]) for k in ("naive", "warm"))
    print(f"renders per variant: {len(timings['warm'])} (carrier UA, {len(MONTHS)} months)")
    print(f"naive WeasyPrint median: {naive_s:.3f} s")
    print(f"warm engine median:      {warm_s:.3f} s   (target ≤ 0.25 s)")
    print(f"speed-up warm vs naive:  {naive_s / warm_s:.2f}x")


if __name__ == "__main__":
    main()
