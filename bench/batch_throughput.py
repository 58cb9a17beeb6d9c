"""Batch throughput, resume and change detection: Prefect + worker vs a plain loop.

One run measures, side by side on this machine:
  loop    a single Python process calling reports.render_report for every item,
          no Prefect (the baseline)
  cold    the carrier-monthly batch deployment on a Prefect server (SQLite) and one
          process worker, into an empty output folder; first with a render task
          run per item (items_per_task=1), then with the default groups
  resume  the same batch again, nothing changed
  change  the same batch after one carrier's flights changed: only its items render
Everything lives in a temporary folder; the server and worker are stopped at the end.

Usage: .venv/bin/python bench/batch_throughput.py [--carriers 16] [--months 12]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]


def loop(items: list[dict], output: str) -> float:
    """The baseline: one process, one item after another, warm caches."""
    from reports import OutputStore, render_report
    from reports.definitions import default_catalog

    report, store = default_catalog().get("carrier-monthly"), OutputStore(output)
    started = time.perf_counter()
    for params in items:
        render_report(report, params, store)
    return time.perf_counter() - started


def show(label: str, seconds: float, extra: str = "") -> None:
    print(f"{label:<32}{seconds:7.1f} s  {extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carriers", type=int, default=16)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--loop-only", nargs=2, metavar=("ITEMS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop_only:
        import json

        print(loop(json.loads(args.loop_only[0]), args.loop_only[1]))
        return

    work = Path(tempfile.mkdtemp(prefix="reportrunner-bench-"))
    data = work / "data"
    shutil.copytree(PROJECT / "var" / "data", data)
    env = {
        **os.environ,
        "REPORTRUNNER_HOME": str(work),
        "REPORTRUNNER_DATA_DIR": str(data),
        "REPORTRUNNER_OUTPUT_URL": str(work / "out-batch"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    os.environ.update(env)

    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.deploy import deploy
    from deployments.prefect_server import PrefectServer
    from deployments.processes import service_preexec, stop_process_group
    from deployments.worker import worker_command, worker_environment
    from reports.definitions import default_catalog

    report = default_catalog().get("carrier-monthly")
    carriers = report.dimension_values("carrier")[: args.carriers]
    months = report.dimension_values("month")[: args.months]
    items = [{"carrier": c, "month": m} for c in carriers for m in months]
    cores = os.cpu_count() or 1
    print(f"{len(items)} carrier-monthly reports, {cores} cores, output in {work}")

    import json

    loop_s = float(
        subprocess.run(
            [sys.executable, __file__, "--loop-only", json.dumps(items), str(work / "out-loop")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    show("loop   (no Prefect, 1 process)", loop_s, f"{len(items) / loop_s * 60:6.1f} PDFs/min")

    server = PrefectServer(home=work / "prefect")
    server.start(timeout=180)
    worker = None
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            env["PREFECT_API_URL"] = server.api_url
            deploy()
            worker = subprocess.Popen(
                worker_command(name="bench", limit=2),
                env={**worker_environment(8590), **env},
                stdout=(work / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=service_preexec(),  # SIGTERM stops it even if run in the background
            )

            def run_batch(label: str, **options) -> tuple[float, dict]:
                run = run_deployment(
                    "batch/carrier-monthly-batch",
                    parameters={
                        "report": "carrier-monthly",
                        "over": {"carrier": carriers, "month": months},
                        **options,
                    },
                    timeout=3600,
                    poll_interval=1,
                )
                assert run.state.is_completed(), f"{label}: {run.state.message}"
                # From the run's creation to its end by the server's clock: the same span
                # as the wall time here, without the up to 1 s of this script's polling.
                wall = (run.end_time - run.created).total_seconds()
                return wall, run

            # The same cold batch with a render task run per item, as before grouping.
            single_s, _ = run_batch("cold, a task per item", items_per_task=1)
            show("cold, 1 item per task", single_s, f"{len(items) / single_s * 60:6.1f} PDFs/min")
            shutil.rmtree(work / "out-batch")
            cold_s, _ = run_batch("cold")
            show("cold   (Prefect + 1 worker)", cold_s, f"{len(items) / cold_s * 60:6.1f} PDFs/min")
            resume_s, _ = run_batch("resume")
            show("resume (nothing changed)", resume_s)

            flights = pd.read_parquet(data / "flights.parquet")
            changed = carriers[-1]
            flights.loc[flights["carrier"] == changed, "dep_delay"] += 1
            flights.to_parquet(data / "flights.parquet", index=False)
            change_s, _ = run_batch("change")
            pdfs = sorted((work / "out-batch").rglob("*.pdf"), key=lambda p: p.stat().st_mtime)
            recent = [p for p in pdfs if p.stat().st_mtime > time.time() - change_s - 1]
            rerendered = sorted({p.parent.parent.name for p in recent})
            show(
                f"change (carrier {changed} data)",
                change_s,
                f"re-rendered {len(recent)} PDFs: {rerendered}",
            )
    finally:
        if worker is not None:
            stop_process_group(worker, grace_s=20)
        server.stop()

    ideal_s = loop_s / cores
    print()
    print(
        f"throughput ratio batch/loop:    {loop_s / cold_s:.2f}x  (target ≥ 1.5x, limit {cores}x)"
    )
    print(f"  with a task per item:         {loop_s / single_s:.2f}x")
    overhead_ms = (cold_s - ideal_s) / len(items) * 1000
    print(
        f"orchestration overhead:         {overhead_ms:.0f} ms per report (beyond loop ÷ {cores})"
    )
    print(f"resume / cold:                  {resume_s / cold_s:.1%}  (target ≤ 10%)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
