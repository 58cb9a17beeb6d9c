"""Dashboard queries against a long history: 10,000 seeded flow runs on a fresh server.

Measures, side by side in one run against the same server:
- one overview refresh (`dashboard.api.overview`): seconds and Prefect API calls;
- one page of the runs table (`runs_page`): first page, a deep page, a business-key
  search and a state filter;
- the naive way a dashboard counts runs: read every run of the window in pages of
  200 and count in Python (what the dashboard avoids).

Targets: overview ≤ 1 s and ≤ 15 calls; one runs page ≤ 1 s.
Usage: .venv/bin/python bench/dashboard_queries.py [--runs 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def timed(repeat: int, query: Callable) -> tuple[float, int]:
    """Median seconds and the API calls of one call of `query(api)`, each on a new connection."""
    from dashboard.api import connect

    seconds, calls = [], 0
    for _ in range(repeat):
        with connect() as api:
            started = time.perf_counter()
            query(api)
            seconds.append(time.perf_counter() - started)
            calls = api.calls
    return statistics.median(seconds), calls


def naive_counts(api) -> dict[str, int]:
    """Every run of the last 24 h read in pages of 200 and counted here."""
    from datetime import UTC, datetime, timedelta

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterExpectedStartTime

    since = datetime.now(UTC) - timedelta(hours=24)
    window = FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since))
    counts: dict[str, int] = {}
    offset = 0
    while True:
        page = api.client.read_flow_runs(flow_run_filter=window, limit=200, offset=offset)
        for run in page:
            counts[str(run.state_type)] = counts.get(str(run.state_type), 0) + 1
        if len(page) < 200:
            return counts
        offset += 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="reportrunner-bench-"))
    from deployments.prefect_server import PrefectServer

    server = PrefectServer(home=work / "prefect")
    # Before Prefect is imported here: the seeding writes into this server's database.
    os.environ.update(PREFECT_HOME=str(server.home), PREFECT_API_URL=server.api_url)
    server.start(timeout=180)
    try:
        run(args)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def run(args) -> None:
    from dataclasses import replace

    from prefect import get_client
    from seed_runs import ensure_objects, seed

    from dashboard.api import RunQuery, Window, overview, runs_page

    with get_client(sync_client=True) as client:
        ids = ensure_objects(client)
    took = seed(args.runs, args.days, ids)
    print(f"2 cores; {args.runs:,} flow runs seeded over {args.days:g} days in {took:.1f} s")

    base = RunQuery(limit=50)
    cases: list[tuple[str, Callable]] = [
        ("overview refresh (24 h window)", lambda api: overview(api, Window.last())),
        ("runs page 1 (50 rows)", lambda api: runs_page(api, base)),
        ("runs page 100 (offset 4,950)", lambda api: runs_page(api, replace(base, offset=4950))),
        ("runs search carrier=AA", lambda api: runs_page(api, replace(base, search="carrier=AA"))),
        (
            "runs filter state Failed",
            lambda api: runs_page(api, replace(base, state_types=("FAILED",))),
        ),
        ("naive: read all runs of 24 h to count", naive_counts),
    ]
    results = {}
    print(f"{'query':<40} {'median s':>9} {'API calls':>10}")
    for label, query in cases:
        seconds, calls = timed(args.repeat, query)
        results[label] = seconds
        print(f"{label:<40} {seconds:>9.3f} {calls:>10}")
    ours, naive = results[cases[0][0]], results[cases[-1][0]]
    print(f"overview vs naive counting: {naive / ours:.1f}× faster")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
