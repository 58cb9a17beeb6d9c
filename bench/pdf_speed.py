"""Carrier-monthly PDF render speed: the live code vs a frozen baseline and naive WeasyPrint.

Three variants render the same carrier-months, interleaved in one process (for each
item A, B, C, the order rotating every round) so the noise of these shared machines
hits all three alike:

    naive     the baseline's charts and HTML, then a straightforward WeasyPrint call:
              a new FontConfiguration and freshly parsed CSS for every PDF
    baseline  the frozen copy of the 2026-12-01 code in bench/baseline_pdf/: its charts,
              templates, stylesheets and engine (reused fonts and parsed CSS)
    current   the live code: reports.render.build_context, render_html, render_report_pdf

A render is timed from loaded data to PDF bytes: the context (the loader's figures and
the two matplotlib charts), the HTML (Jinja2) and the PDF (WeasyPrint). The data load
is the same for all three and done once. Before each render a full garbage collection
runs, untimed: interleaved variants would otherwise pay for each other's garbage (a
full collection walks the whole heap, ~0.1 s, and falls on whichever render crosses
the threshold). Each render so pays for the collections its own allocations trigger,
not for the full ones a long-running process pays now and then, which the live engine
mostly avoids (it pauses the collector while it makes a PDF): the ratio is conservative.
Prints medians per stage, wall clock and CPU time (this process's, which other load
on a shared machine disturbs less), the ratios of the medians, the median and
quartiles of the per-item paired ratios, and this machine's plain-loop time.

    .venv/bin/python bench/pdf_speed.py [--rounds 3] [--items UA:2013-07,AA:2013-04,…]
    .venv/bin/python bench/pdf_speed.py --profile [--profile-renders 5] [--item UA:2013-07]

`--profile` runs cProfile over renders of one item instead, baseline and current
alternating, each with its own profiler, and prints where the time goes by stage.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _machine import core_speed  # bench/_machine.py, beside this script

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baseline_pdf as baseline

from reports.definitions import default_catalog
from reports.render import (
    build_context,
    load_data,
    render_html,
    render_report_pdf,
)

DEFAULT_ITEMS = (
    "UA:2013-01,UA:2013-07,AA:2013-04,DL:2013-10,B6:2013-02,EV:2013-12,WN:2013-06,MQ:2013-09"
)
VARIANTS = ("naive", "baseline", "current")
STAGES = ("context", "html", "pdf")


Render = Callable[[Any, dict, Any], tuple[dict[str, float], bytes]]


def _timed(stages: tuple[Callable, Callable, Callable]) -> Render:
    context_fn, html_fn, pdf_fn = stages

    def run(report, params, data) -> tuple[dict[str, float], bytes]:
        gc.collect()
        wall, cpu = [time.perf_counter()], [time.process_time()]
        context = context_fn(report, params, data)
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
        html = html_fn(report, params, context)
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
        pdf = pdf_fn(report, html)
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
        timing = {}
        for i, stage in enumerate(STAGES):
            timing[stage] = wall[i + 1] - wall[i]
            timing[f"{stage} cpu"] = cpu[i + 1] - cpu[i]
        timing["total"] = wall[-1] - wall[0]
        timing["total cpu"] = cpu[-1] - cpu[0]
        return timing, pdf if isinstance(pdf, bytes) else pdf.data

    return run


RENDERS: dict[str, Render] = {
    "naive": _timed((baseline.build_context, baseline.render_html, baseline.render_naive)),
    "baseline": _timed((baseline.build_context, baseline.render_html, baseline.render)),
    "current": _timed((build_context, render_html, render_report_pdf)),
}


def _items(spec: str) -> list[tuple[str, str]]:
    return [tuple(part.split(":", 1)) for part in spec.split(",") if part]  # type: ignore[misc]


def _load(report, items: list[tuple[str, str]]) -> list[tuple[dict, Any]]:
    loaded = []
    for carrier, month in items:
        params = report.validate({"carrier": carrier, "month": month})
        loaded.append((params, load_data(report, params)))
    return loaded


def bench(report, items: list[tuple[str, str]], rounds: int) -> None:
    loaded = _load(report, items)
    speed_before = core_speed()
    sizes: dict[str, list[int]] = {v: [] for v in VARIANTS}
    for params, data in loaded:  # warm-up: imports, font discovery, first parses
        for variant in VARIANTS:
            _, pdf = RENDERS[variant](report, params, data)
            sizes[variant].append(len(pdf))
    times: dict[str, dict[str, list[float]]] = {v: {} for v in VARIANTS}
    for round_ in range(rounds):
        for params, data in loaded:
            order = VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]
            for variant in order:
                timing, _ = RENDERS[variant](report, params, data)
                for stage, seconds in timing.items():
                    times[variant].setdefault(stage, []).append(seconds)
    speed_after = core_speed()

    n = len(times["current"]["total"])
    print(f"{n} renders per variant: {len(items)} carrier-months × {rounds} rounds, interleaved")
    print(f"items: {', '.join(f'{c} {m}' for c, m in items)}")
    print(
        "plain loop (5,000,000 additions, median of 3): "
        f"{speed_before:.3f} s before, {speed_after:.3f} s after"
    )
    med = {v: {s: statistics.median(times[v][s]) for s in times[v]} for v in VARIANTS}
    columns = (*STAGES, "total")
    for clock, suffix in (("wall", ""), ("CPU", " cpu")):
        print()
        header = "".join(f"{s:>10}" for s in columns)
        print(f"{'median ' + clock + ' s':<16}{header}" + ("  PDF KiB" if not suffix else ""))
        for variant in VARIANTS:
            row = "".join(f"{med[variant][s + suffix]:>10.3f}" for s in columns)
            size = f"  {statistics.median(sizes[variant]) / 1024:7.1f}" if not suffix else ""
            print(f"{variant:<16}{row}{size}")

    def paired(a: str, b: str, stage: str) -> str:
        ratios = sorted(x / y for x, y in zip(times[a][stage], times[b][stage], strict=True))
        q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
        return f"paired {statistics.median(ratios):.2f}x (IQR {q1:.2f}–{q3:.2f})"

    print()
    print("speed-up (ratio of medians; median of the per-item paired ratios)")
    for a, b, label in (
        ("baseline", "current", "current vs baseline"),
        ("naive", "current", "current vs naive"),
        ("naive", "baseline", "baseline vs naive"),
    ):
        for clock, suffix in (("wall", ""), ("CPU", " cpu")):
            whole = med[a]["total" + suffix] / med[b]["total" + suffix]
            pdf_only = med[a]["pdf" + suffix] / med[b]["pdf" + suffix]
            print(
                f"{label:<20} {clock:<4} {whole:5.2f}x, {paired(a, b, 'total' + suffix)}; "
                f"PDF stage alone {pdf_only:.2f}x"
            )


# -- profile ---------------------------------------------------------------------------------

# (label, indent, [(path suffix, function name)]): cumulative time of the functions.
_ROWS: list[tuple[str, int, list[tuple[str, str]]]] = [
    (
        "context: matplotlib charts → SVG",
        0,
        [("charts.py", "bar_chart"), ("charts.py", "line_chart")],
    ),
    ("context: figures (pandas)", 0, []),  # context minus charts
    ("HTML: Jinja2 compile + render", 0, []),  # the stage's time
    ("PDF: parse HTML", 0, [("weasyprint/__init__.py", "__init__")]),
    ("PDF: CSS cascade", 0, [("weasyprint/css/__init__.py", "get_all_computed_styles")]),
    ("PDF: box tree", 0, [("formatting_structure/build.py", "build_formatting_structure")]),
    ("of which SVG parse", 1, [("weasyprint/images.py", "get_image_from_uri")]),
    ("PDF: layout", 0, [("weasyprint/layout/__init__.py", "layout_document")]),
    ("of which line breaking", 1, [("weasyprint/text/line_break.py", "split_first_line")]),
    ("PDF: drawing pages", 0, [("weasyprint/document.py", "paint")]),
    ("of which SVG charts", 1, [("weasyprint/svg/__init__.py", "draw")]),
    ("PDF: fonts (subsetting)", 0, [("weasyprint/pdf/fonts.py", "build_fonts_dictionary")]),
    ("PDF: tags (structure tree)", 0, [("weasyprint/pdf/tags.py", "add_tags")]),
    ("PDF: serialisation (pydyf)", 0, [("pydyf/__init__.py", "write")]),
    ("PDF: rest", 0, []),  # PDF stage minus the rows above
]


def _cumulative(stats: pstats.Stats, wanted: list[tuple[str, str]]) -> float:
    total = 0.0
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for suffix, name in wanted:
            if func == name and filename.replace("\\", "/").endswith(suffix):
                total += ct
    return total


def profile(report, item: tuple[str, str], renders: int) -> None:
    ((params, data),) = _load(report, [item])
    steps = {
        "baseline": (baseline.build_context, baseline.render_html, baseline.render),
        "current": (build_context, render_html, render_report_pdf),
    }
    for variant in steps:  # warm-up
        for _ in range(2):
            RENDERS[variant](report, params, data)
    profilers = {v: cProfile.Profile() for v in steps}
    stage_time = {v: {s: 0.0 for s in STAGES} for v in steps}
    for _ in range(renders):
        for variant, (context_fn, html_fn, pdf_fn) in steps.items():
            prof = profilers[variant]
            gc.collect()
            prof.enable()
            t0 = time.perf_counter()
            context = context_fn(report, params, data)
            t1 = time.perf_counter()
            html = html_fn(report, params, context)
            t2 = time.perf_counter()
            pdf_fn(report, html)
            t3 = time.perf_counter()
            prof.disable()
            for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                stage_time[variant][stage] += seconds

    print(
        f"cProfile, {renders} renders each of {item[0]} {item[1]} (after 2 warm-ups), "
        "baseline and current alternating; seconds per render under the profiler"
    )
    print(f"{'':<38}{'baseline':>16}{'current':>16}")
    table: dict[str, dict[str, float]] = {}
    for variant, prof in profilers.items():
        stats = pstats.Stats(prof)
        st = stage_time[variant]
        rows = {label: _cumulative(stats, wanted) for label, _, wanted in _ROWS if wanted}
        rows["HTML: Jinja2 compile + render"] = st["html"]
        rows["context: figures (pandas)"] = st["context"] - rows["context: matplotlib charts → SVG"]
        top_pdf = [label for label, indent, wanted in _ROWS if label.startswith("PDF") and wanted]
        rows["PDF: rest"] = st["pdf"] - sum(rows[label] for label in top_pdf)
        rows["total"] = sum(st.values())
        table[variant] = {k: v / renders for k, v in rows.items()}
    for label, indent, _ in [*_ROWS, ("total", 0, [])]:
        cells = ""
        for variant in steps:
            seconds = table[variant][label]
            share = 100 * seconds / table[variant]["total"]
            cells += f"{seconds:>9.3f} {share:>5.1f}%"
        print(f"{'  ' * indent + label:<38}{cells}")
    speed_up = table["baseline"]["total"] / table["current"]["total"]
    print(f"speed-up under the profiler: {speed_up:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", default=DEFAULT_ITEMS, help="CARRIER:YYYY-MM,…")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-renders", type=int, default=5)
    parser.add_argument("--item", default="UA:2013-07", help="the item --profile renders")
    args = parser.parse_args()
    report = default_catalog().get("carrier-monthly")
    if args.profile:
        profile(report, _items(args.item)[0], args.profile_renders)
    else:
        bench(report, _items(args.items), args.rounds)


if __name__ == "__main__":
    main()
