"""The metrics exporter against a long history: one /metrics scrape at 10,000 flow runs.

On a throwaway Prefect server (SQLite) and a throwaway item index:
- 10,000 flow runs over 7 days, seeded with `bench/seed_runs.py` (finished runs of three
  reports, batches and chunks, failures, a few still active);
- one running batch (a flow run of the carrier-monthly batch deployment, Running, with
  a progress artifact and its items registered in the index) and five late runs, so
  that every read of a scrape happens;
- the item index seeded with `bench/item_index.py`'s seeder (10,000 items of one
  report, about 11,000 renders with durations).

Then `--scrapes` cold scrapes (cache 0: each one reads the index and the API anew) of
`GET /metrics` from an exporter in this process: median and p90 seconds, the Prefect
API calls per scrape (the exporter's own `reportrunner_scrape_api_calls`, and the
requests listed by path), and one cached scrape next to them.

Targets: ≤ 10 API calls and ≤ 1 s per scrape (p90) at 10,000 runs. A second phase
adds 1,000 runs scheduled ahead and 250 late runs, more than a scrape reads in full,
to show that the calls stay bounded (two more: a run history and a count).
Usage: .venv/bin/python bench/metrics_scrape.py [--runs 10000] [--items 10000] [--scrapes 20]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

TARGET_S = 1.0
TARGET_CALLS = 10
LATE_RUNS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--items", type=int, default=10_000, help="items in the item index")
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=1_000, help="runs scheduled ahead")
    parser.add_argument("--late", type=int, default=250, help="more late runs, for phase 2")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="reportrunner-bench-metrics-"))
    # Before any project or Prefect module reads its settings.
    os.environ.update(
        REPORTRUNNER_HOME=str(work / "home"),
        REPORTRUNNER_INDEX_URL=f"sqlite:///{work / 'index.sqlite'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    from deployments.prefect_server import PrefectServer

    server = PrefectServer(home=work / "prefect")
    os.environ.update(PREFECT_HOME=str(server.home), PREFECT_API_URL=server.api_url)
    server.start(timeout=180)
    try:
        run(args)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def run(args) -> None:
    import item_index
    from seed_runs import ensure_objects, seed

    from deployments.metrics import ACTIVE_PAGE, LATE_PAGE, MetricsExporter

    speed = item_index.core_speed()
    print(f"{os.cpu_count()} cores; Python {platform.python_version()}")
    print(f"core speed: a pure-Python loop of 5,000,000 additions took {speed:.3f} s (median of 3)")

    from prefect import get_client

    with get_client(sync_client=True) as client:
        ids = ensure_objects(client)
    took = seed(args.runs, args.days, ids)
    print(f"{args.runs:,} flow runs seeded over {args.days:g} days in {took:.1f} s")
    items, renders, took = seed_index(args.items)
    print(f"item index: {items:,} items, {renders:,} renders seeded in {took:.1f} s")
    batch_id = running_batch(ids["carrier-monthly-batch"])
    late_runs(ids["carrier-monthly"], LATE_RUNS)
    print(f"plus 1 running batch ({batch_id[:8]}…) with a progress artifact, {LATE_RUNS} late runs")

    with Recorder() as recorder:
        parallel = recorder.serve(MetricsExporter(cache_s=0, alert_interval_s=0))
        one_by_one = recorder.serve(
            MetricsExporter(cache_s=0, alert_interval_s=0, parallel_reads=1)
        )
        first = recorder.scrape(parallel)
        recorder.scrape(one_by_one)  # both warm: imports, connections, deployment names
        measured = {"parallel": Scrapes(), "one_by_one": Scrapes()}
        for _ in range(args.scrapes):  # interleaved: both see the same noise
            measured["parallel"].add(recorder.scrape(parallel))
            measured["one_by_one"].add(recorder.scrape(one_by_one))
        requests = recorder.paths(parallel)
        cached = recorder.cached(parallel)

        backlog_runs(ids, args.backlog)
        late_runs(ids["carrier-monthly"], args.late)
        print(
            f"then {args.backlog:,} runs scheduled over the next 30 days and {args.late} more "
            f"late runs: more than the exporter reads in full ({ACTIVE_PAGE} active, "
            f"{LATE_PAGE} late)"
        )
        time.sleep(20)  # the server's late-run service marks them Late: a quiet server again
        backlog = {"parallel": Scrapes(), "one_by_one": Scrapes()}
        for _ in range(args.scrapes):
            backlog["one_by_one"].add(recorder.scrape(one_by_one))
            backlog["parallel"].add(recorder.scrape(parallel))
        backlog_requests = recorder.paths(parallel)
        backlog_text = recorder.last_text
        active_count = count_active()

    print()
    print(f"first scrape (cold process): {first.seconds:.3f} s, {first.calls} API calls")
    print(f"{args.scrapes} cold scrapes (cache 0) of GET /metrics each, interleaved:")
    print(f"{'':<46}{'median s':>9}{'p90 s':>8}{'max s':>8}{'calls':>7}")
    variants = (
        ("reads side by side (4 threads, the default)", "parallel"),
        ("one read at a time (1 thread)", "one_by_one"),
    )
    print(f"at {args.runs:,} runs:")
    for label, key in variants:
        print(measured[key].row("  " + label))
    print(f"with {args.backlog:,} runs scheduled ahead and {args.late + LATE_RUNS} late runs:")
    for label, key in variants:
        print(backlog[key].row("  " + label))
    print("requests of one scrape:")
    for path, n in sorted(requests.items()):
        print(f"  {n} × {path}")
    extra = {p: n - requests.get(p, 0) for p, n in backlog_requests.items()}
    print(
        "with the backlog, in addition: "
        + ", ".join(f"{n} × {p}" for p, n in sorted(extra.items()) if n > 0)
    )
    print(f"cached scrape (cache 15 s, within the interval): {cached * 1000:.1f} ms, 0 API calls")
    late, active = (_total(backlog_text, name) for name in ("late_runs", "flow_runs"))
    print(
        f"with the backlog, summed over their labels: {late:.0f} late runs (created: "
        f"{args.late + LATE_RUNS}), {active:,.0f} runs not final (the server counts "
        f"{active_count:,})"
    )
    ok = max(measured["parallel"].calls) <= TARGET_CALLS and measured["parallel"].p90 <= TARGET_S
    print(
        f"target at {args.runs:,} runs, ≤ {TARGET_CALLS} calls and ≤ {TARGET_S:g} s per scrape "
        "(p90): " + ("PASS" if ok else "FAIL")
    )
    calls = max(backlog["parallel"].calls)
    print(f"with the backlog: {calls} calls per scrape (≤ {TARGET_CALLS}: the bound holds)")


class Scrapes:
    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.calls: list[int] = []

    def add(self, scrape: Scrape) -> None:
        self.seconds.append(scrape.seconds)
        self.calls.append(scrape.calls)

    @property
    def p90(self) -> float:
        return _p90(self.seconds)

    def row(self, label: str) -> str:
        calls = (
            f"{min(self.calls)}"
            if min(self.calls) == max(self.calls)
            else (f"{min(self.calls)}–{max(self.calls)}")
        )
        return (
            f"{label:<46}{statistics.median(self.seconds):>9.3f}{self.p90:>8.3f}"
            f"{max(self.seconds):>8.3f}{calls:>7}"
        )


class Scrape:
    def __init__(self, seconds: float, calls: int) -> None:
        self.seconds, self.calls = seconds, calls


class Recorder:
    """Serves exporters in this process and scrapes them over HTTP, recording each
    scrape's API requests by path (the exporter's own counter, `Api._count`, wrapped)."""

    def __init__(self) -> None:
        self._paths: dict[int, Counter] = {}
        self._current: Counter | None = None
        self._servers: list = []
        self.last_text = ""

    def __enter__(self) -> Recorder:
        import httpx

        from prefect_api import Api

        self._original = original = Api._count
        recorder = self

        def _count(api, request) -> None:
            if recorder._current is not None:
                path = request.url.path.removeprefix("/api")
                recorder._current[f"{request.method} {path}"] += 1
            original(api, request)

        Api._count = _count
        self._http = httpx.Client(timeout=60)
        return self

    def __exit__(self, *exc) -> None:
        from prefect_api import Api

        for server in self._servers:
            server.close()
        self._http.close()
        Api._count = self._original

    def serve(self, exporter):
        from deployments.prefect_server import free_port

        server = exporter.serve("127.0.0.1", free_port())
        self._servers.append(server)
        return server

    def scrape(self, server) -> Scrape:
        self._current = self._paths[id(server)] = Counter()
        started = time.perf_counter()
        text = self._http.get(f"{server.url}/metrics").text
        seconds = time.perf_counter() - started
        self._current = None
        self.last_text = text
        return Scrape(seconds, int(_value(text, "reportrunner_scrape_api_calls")))

    def paths(self, server) -> dict[str, int]:
        return dict(self._paths[id(server)])

    def cached(self, server) -> float:
        server.exporter.cache_s = 15.0
        self._http.get(f"{server.url}/metrics")
        started = time.perf_counter()
        self._http.get(f"{server.url}/metrics")
        seconds = time.perf_counter() - started
        server.exporter.cache_s = 0.0
        return seconds


def seed_index(count: int) -> tuple[int, int, float]:
    """`bench/item_index.py`'s seeder: items, renders with durations, batches."""
    import random

    import item_index
    from sqlalchemy import func, select

    from reports.index import open_index
    from reports.index._schema import renders

    index = open_index()
    counter = item_index.Statements(index.engine)
    per_batch = min(5_000, count)
    batches = max(1, math.ceil(count / per_batch))
    seeder = item_index.Seeder(index, counter, random.Random(20261201), batches, per_batch, 0)
    started = time.perf_counter()
    for _ in range(batches):
        seeder.seed_batch()
    with index.transaction() as connection:
        rendered = connection.execute(select(func.count()).select_from(renders)).scalar_one()
    return seeder.seeded_items, rendered, time.perf_counter() - started


def running_batch(deployment_id) -> str:
    """A batch flow run in state Running, its items in the index, its progress artifact."""
    from prefect import get_client
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.states import Running

    from reports.contracts import ProgressSnapshot
    from reports.index import open_index

    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            deployment_id,
            parameters={"report": "carrier-monthly", "over": {"carrier": "*"}},
            state=Running(),
        )
        items = [{"carrier": c, "month": "2013-07"} for c in ("AA", "B6", "DL", "EV", "UA")]
        index = open_index()
        index.start_batch(str(run.id), "carrier-monthly", run.name, ["carrier"], items)
        index.mark("carrier-monthly", items[:2], "running", batch_id=str(run.id))
        snapshot = ProgressSnapshot(total=5, rendered=2, elapsed_s=30.0, eta_s=45.0)
        client.create_artifact(
            ArtifactCreate(
                type="progress",
                data=snapshot.percent,
                description=snapshot.description(),
                flow_run_id=run.id,
            )
        )
    return str(run.id)


def late_runs(deployment_id, count: int) -> None:
    """Runs scheduled ten minutes ago that no worker picked up (through the API, which
    sets the time the late check compares with)."""
    from prefect import get_client
    from prefect.states import Scheduled

    when = datetime.now(UTC) - timedelta(minutes=10)
    with get_client(sync_client=True) as client:
        for _ in range(count):
            client.create_flow_run_from_deployment(
                deployment_id, parameters={}, state=Scheduled(scheduled_time=when)
            )


def backlog_runs(ids: dict, count: int) -> None:
    """Runs scheduled ahead (the next 30 days), written like `seed_runs` writes history."""
    import asyncio
    import random

    from seed_runs import _write

    rng, now = random.Random(11), datetime.now(UTC)
    plans = [
        {
            "flow": "report",
            "deployment": "carrier-monthly",
            "name": f"carrier-monthly scheduled {n}",
            "parameters": {"report": "carrier-monthly", "parameters": {}},
            "tags": ["reportrunner", "seeded"],
            "state": "SCHEDULED",
            "message": None,
            "start": now + timedelta(seconds=rng.uniform(3600, 30 * 86400)),
            "seconds": 0.0,
        }
        for n in range(count)
    ]
    asyncio.run(_write(plans, ids, 500))


def count_active() -> int:
    from prefect import get_client

    from deployments.metrics import _active_filter

    with get_client(sync_client=True) as client:
        return client.count_flow_runs(flow_run_filter=_active_filter())


def _total(text: str, name: str) -> float:
    prefix = f"reportrunner_{name}{{"
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise KeyError(name)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
