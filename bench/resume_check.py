"""What the resume check's data load costs next to the render it can save.

A batch plans before it renders: for an item that has a manifest, it loads the item's
data and fingerprints it (`reports.jobs.current_manifest`). An item that turns out
changed then loads its data again in a render process. This measures, per item, in
one warm process (as the batch's planner and each render process are):

  load        the loader (cached Parquet tables, filtered) plus the data fingerprint
  check       the whole resume check of an unchanged item (load + manifest + files)
  render      a full render of the same item (load, context, HTML, PDF, publish)

The second load is worth keeping when `load` is small next to `render`: it is the
price of never re-rendering an unchanged item.

Usage: .venv/bin/python bench/resume_check.py [--items 24]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    args = parser.parse_args()

    from reports import OutputStore, jobs, render_report
    from reports.definitions import default_catalog
    from reports.render import load_data

    report = default_catalog().get("carrier-monthly")
    carriers = report.choices("carrier")
    month = lambda i: f"2013-{1 + i // len(carriers):02d}"  # noqa: E731 - carriers first
    items = [
        report.validate({"carrier": carriers[i % len(carriers)], "month": month(i)})
        for i in range(args.items)
    ]
    output = tempfile.mkdtemp(prefix="reportrunner-resume-check-")
    store = OutputStore(output)
    render_report(report, items[0], store)  # warm: fonts, CSS, Parquet cache

    def timed(fn) -> list[float]:
        seconds = []
        for params in items:
            started = time.perf_counter()
            fn(params)
            seconds.append(time.perf_counter() - started)
        return seconds

    renders = timed(lambda p: render_report(report, p, store))
    loads = timed(lambda p: load_data(report, p))
    checks = timed(lambda p: jobs.current_manifest(report.name, p, output))
    assert all(jobs.current_manifest(report.name, p, output) for p in items)

    def ms(values: list[float]) -> str:
        return f"median {1000 * statistics.median(values):7.1f} ms"

    print(f"items: {len(items)} (carrier-monthly), warm process")
    print(f"load + fingerprint    {ms(loads)}")
    print(f"resume check          {ms(checks)}")
    print(f"full render           {ms(renders)}")
    share = statistics.median(loads) / statistics.median(renders)
    print(f"second load / render  {100 * share:5.1f} %  (paid only by items that changed)")
    shutil.rmtree(output, ignore_errors=True)


if __name__ == "__main__":
    main()
