"""Dashboard page loads in headless Chromium, against the real stack and 10,000 runs.

Starts a throwaway stack as `reportrunner up --demo-months 0` does (Prefect server with
its UI, the deployments, the mail sink, one worker and the dashboard; not the metrics
exporter, whose alert checks would call the API in the middle of a page load) on free
ports with a home of its own, seeds 10,000 finished flow runs into its server
(`bench/seed_runs.py`), runs two real batches through the worker (so the item index
has items, batches and renders) and one delivery, then opens every dashboard page in
Chromium:

- first: a new tab (a new Streamlit session) opens the page; no session has read the
  page's live data within the refresh interval (each page comes back only after the
  nine others);
- revisit: another new tab opens the same page right after, within the refresh
  interval, as a second viewer or a reload does.

A load lasts from `goto` until Streamlit's script run is over and no spinner or
skeleton is left (as `tests/e2e/browsing.py` `settle` waits); the browser's cache holds
Streamlit's static files, as for anyone who has opened the dashboard before. The
repetitions are interleaved (every page once, then again) and the table gives the
median and the 90th percentile. API calls are counted at the Prefect server, in its
access log (`PREFECT_SERVER_LOGGING_LEVEL=INFO`), without the worker's polls.

The floor is a bare Streamlit page (a title and one line) served the same way: what
any page load costs at least, in the browser and in Streamlit. The anchor is the
Prefect UI's runs page on the same server (`/runs`, new tab, until the network is
idle: Playwright's `networkidle`, 500 ms without a request).

`--load-items 192` then starts a batch of that many items (16 carriers × 12 months)
and loads every page again while it renders (its API calls then include the batch's
own).

`--compare DIR` also serves the dashboard of another checkout (e.g. a `git worktree`
of the commit before a change) against the same server, and interleaves its loads
with this one's: on a shared, noisy machine, compare the two within one run.

Usage:
    .venv/bin/python bench/page_loads.py                   # 10,000 runs, 5 repetitions
    .venv/bin/python bench/page_loads.py --repeat 3 --runs 2000 --no-deliver
    .venv/bin/python bench/page_loads.py --load-items 192  # and again under a batch
    .venv/bin/python bench/page_loads.py --compare ../before   # side by side with a checkout
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from _browser import FLOOR_SCRIPT, TIMEOUT_MS, settle  # bench/_browser.py, beside this script
from _machine import core_speed  # bench/_machine.py, beside this script

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

from deployments.prefect_server import free_port  # noqa: E402
from deployments.processes import die_with_parent, stop_process_group  # noqa: E402

DESKTOP = {"width": 1280, "height": 900}
REPORT = "carrier-monthly"
CARRIERS = ["AA", "UA", "DL", "B6", "AS", "EV", "MQ", "WN", "9E", "US", "VX", "FL", "F9"]
CARRIERS += ["HA", "OO", "YV"]
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# Requests the worker makes on its own (polls, heartbeats), not the dashboard's.
WORKER_PATHS = re.compile(r"/work_pools/[^/]+/(get_scheduled_flow_runs|workers/heartbeat)")
ACCESS = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/api/[^ ?"]*)[^"]* HTTP/[\d.]+"')


# ---- the stack ------------------------------------------------------------------------


@dataclass
class Bench:
    """The stack `reportrunner up` starts, less the metrics exporter (whose alert checks
    would call the API in the middle of a page load), and any compared dashboard."""

    stack: Any  # deployments.stack.Stack
    extra: list[subprocess.Popen] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.stack.settings.home

    @property
    def api_url(self) -> str:
        return self.stack.server.api_url

    @property
    def ui_url(self) -> str:
        return self.stack.server.ui_url

    @property
    def dashboard_url(self) -> str:
        return self.stack.dashboard_url

    @property
    def server_log(self) -> Path:
        return self.stack.server.log_path

    def stop(self) -> None:
        for process in self.extra:
            stop_process_group(process, 15)
        self.stack.stop()


def start_stack(home: Path) -> Bench:
    """Server (with its UI), deployments, mail sink, worker and dashboard, as `reportrunner
    up --demo-months 0` starts them, on free ports, with `home` as REPORTRUNNER_HOME."""
    from deployments.stack import Stack
    from reports.settings import Settings, get_settings

    project = Settings()  # the project's: its demo data is linked, not copied
    data = home / "data"
    data.mkdir(parents=True)
    for table in project.resolved_data_dir.glob("*.parquet"):
        (data / table.name).symlink_to(table)
    os.environ.update(
        REPORTRUNNER_HOME=str(home),
        REPORTRUNNER_DATA_DIR=str(data),
        REPORTRUNNER_DATABASE_URL=project.resolved_database_url,
        PYTHONUNBUFFERED="1",
        PREFECT_SERVER_LOGGING_LEVEL="INFO",  # for the server only: its access log
    )
    os.environ.pop("PREFECT_API_URL", None)
    get_settings.cache_clear()
    stack = Stack(
        get_settings(),
        prefect_port=free_port(),
        dashboard_port=free_port(),
        worker_healthcheck_port=free_port(),
        mail_port=free_port(),
        say=lambda line: None,
    )
    bench = Bench(stack)
    try:
        stack.start()  # the server; this process's PREFECT_API_URL and PREFECT_HOME follow it
        os.environ.pop("PREFECT_SERVER_LOGGING_LEVEL")
        from deployments.deploy import deploy

        deploy()
        stack.start_mail_sink()
        stack.start_worker()
        stack.start_dashboard()
    except BaseException:
        bench.stop()
        raise
    return bench


def start_streamlit(bench: Bench, script: Path, name: str) -> str:
    """Another Streamlit app, started as the stack's dashboard is, on the same server."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script)]
    command += ["--server.address", "127.0.0.1", "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    log_path = bench.home / "logs" / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            env=dict(os.environ),
            cwd=script.parent.parent if script.name == "app.py" else script.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    bench.extra.append(process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return url
        time.sleep(0.5)
    raise RuntimeError(f"{name} did not start; see {log_path}")


def start_floor(bench: Bench) -> str:
    """A bare Streamlit page, to measure what the browser and Streamlit cost by themselves."""
    script = bench.home / "floor" / "floor.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(FLOOR_SCRIPT)
    return start_streamlit(bench, script, "floor")


# ---- what the pages show: seeded runs, real batches, a delivery ------------------------


def seed_history(runs: int, days: float) -> float:
    """`runs` flow runs written into the server's database; the deployments' ids are the
    real ones where the names match (never re-created: that would reset them)."""
    from prefect import get_client
    from seed_runs import REPORTS, seed

    wanted = {
        **{r: "report" for r in REPORTS},
        **{f"{r}-batch": "batch" for r in REPORTS},
        "render-chunk": "render-chunk",
    }
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(limit=200)}
        by_flow: dict[str, dict[str, object]] = {}
        for deployment in client.read_deployments(limit=200):
            flow = flows.get(deployment.flow_id, "?")
            by_flow.setdefault(flow, {})[deployment.name] = deployment.id
    ids = {}
    for name, flow in wanted.items():
        found = by_flow.get(flow, {})
        ids[name] = found.get(name) or next(iter(found.values()))
    return seed(runs, days, ids)


def start_run(name: str, parameters: dict) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(name)
        return str(client.create_flow_run_from_deployment(deployment.id, parameters=parameters).id)


def run_state(run_id: str) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    return state.type.value if state else "UNKNOWN"


def run_message(run_id: str) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    return f"{state.name}: {state.message}" if state else "unknown"


def run_and_wait(name: str, parameters: dict, timeout_s: float = 900) -> tuple[str, str, float]:
    """A run of deployment `name`, waited for: (run id, final state, seconds)."""
    started = time.monotonic()
    run_id = start_run(name, parameters)
    while (state := run_state(run_id)) not in FINAL:
        if time.monotonic() - started > timeout_s:
            return run_id, "TIMEOUT", time.monotonic() - started
        time.sleep(1.0)
    return run_id, state, time.monotonic() - started


# ---- counting API calls at the server ---------------------------------------------------


class AccessLog:
    """New request lines of the Prefect server's access log since the last `mark()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def calls(self) -> list[tuple[str, str]]:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            raw = log.read()
        self.offset += len(raw)
        found = [(m.group(1), m.group(2)) for m in ACCESS.finditer(raw.decode(errors="replace"))]
        return [(method, path) for method, path in found if not WORKER_PATHS.search(path)]


# ---- the browser --------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    paths: dict[str, int] = field(default_factory=dict)

    def add(self, seconds: float, calls: list[tuple[str, str]]) -> None:
        self.seconds.append(seconds)
        self.calls.append(len(calls))
        for method, path in calls:
            key = f"{method} {re.sub(r'[0-9a-f-]{36}', '<id>', path)}"
            self.paths[key] = self.paths.get(key, 0) + 1


def timed_load(context, url: str, log: AccessLog, wait: Callable) -> tuple[float, list]:
    """Open `url` in a new tab of `context`: seconds until `wait` returns, and the calls."""
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    log.mark()
    started = time.perf_counter()
    try:
        wait(page, url)
        took = time.perf_counter() - started
        time.sleep(0.3)  # the last access-log lines
        shown = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
        if shown.count():
            print(f"  ! {url}: {shown.first.inner_text()[:300]}", flush=True)
    finally:
        page.close()  # its session ends: no auto-refresh from it during the next loads
    return took, log.calls()


def dashboard_wait(page, url: str) -> None:
    page.goto(url)
    settle(page)


def ui_wait(page, url: str) -> None:
    page.goto(url, wait_until="networkidle")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


Results = dict[tuple[str, str], dict[str, Sample]]  # (dashboard, page) → first/revisit


def measure(
    browser,
    dashboards: dict[str, str],
    pages: dict[str, str],
    repeat: int,
    log: AccessLog,
    stop: Callable[[], bool] | None = None,
) -> Results:
    """Every page of every dashboard, first load then revisit, `repeat` times interleaved."""
    results: Results = {
        (d, p): {"first": Sample(), "revisit": Sample()} for p in pages for d in dashboards
    }
    context = browser.new_context(viewport=DESKTOP)
    try:
        # A throw-away load of each: the browser's cache holds Streamlit's static files,
        # as it does for anyone who has opened the dashboard before.
        for base in dashboards.values():
            timed_load(context, base + "/", log, dashboard_wait)
        names = list(pages)
        for rep in range(repeat):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                variants = list(dashboards) if rep % 2 == 0 else list(reversed(dashboards))
                for variant in variants:
                    url = dashboards[variant] + pages[name]
                    for kind in ("first", "revisit"):
                        took, calls = timed_load(context, url, log, dashboard_wait)
                        results[(variant, name)][kind].add(took, calls)
                if stop is not None and stop():
                    return results
            print(f"  repetition {rep + 1} of {repeat} done", flush=True)
    finally:
        context.close()
    return results


def measure_one(browser, url: str, repeat: int, log: AccessLog, wait: Callable) -> Sample:
    """One page, `repeat` new tabs after a throw-away one."""
    sample = Sample()
    context = browser.new_context(viewport=DESKTOP)
    try:
        timed_load(context, url, log, wait)
        for _ in range(repeat):
            sample.add(*timed_load(context, url, log, wait))
    finally:
        context.close()
    return sample


def _cell(values: list[float], how: str) -> str:
    if not values:
        return "–"
    value = statistics.median(values) if how == "median" else quantile(values, 0.9)
    return f"{value:.2f}"


def print_table(
    results: Results, variant: str, anchor: Sample | None = None, floor: Sample | None = None
) -> None:
    print(
        f"{'page':<14} {'first median':>12} {'p90':>6} {'revisit median':>14} {'p90':>6} "
        f"{'API calls first':>15} {'revisit':>7}"
    )
    for (shown, name), kinds in results.items():
        first, again = kinds["first"], kinds["revisit"]
        if shown != variant or not first.seconds:
            continue
        calls = f"{statistics.median(again.calls):g}" if again.calls else "–"
        print(
            f"{name:<14} {_cell(first.seconds, 'median'):>12} {_cell(first.seconds, 'p90'):>6} "
            f"{_cell(again.seconds, 'median'):>14} {_cell(again.seconds, 'p90'):>6} "
            f"{statistics.median(first.calls):>15g} {calls:>7}"
        )
    if floor is not None and floor.seconds:
        print(
            f"floor: a bare Streamlit page (a title, one line), new tab: "
            f"median {_cell(floor.seconds, 'median')} s, p90 {_cell(floor.seconds, 'p90')} s"
        )
    if anchor is not None and anchor.seconds:
        print(
            f"anchor: Prefect UI /runs, new tab until network idle: "
            f"median {_cell(anchor.seconds, 'median')} s, p90 {_cell(anchor.seconds, 'p90')} s, "
            f"{statistics.median(anchor.calls):g} API calls"
        )


def print_calls(results: Results, variant: str) -> None:
    """Which requests each page made per first load (mean over the repetitions)."""
    for (shown, name), kinds in results.items():
        sample = kinds["first"]
        if shown != variant or not sample.calls:
            continue
        count = len(sample.calls)
        parts = ", ".join(
            f"{path} ×{n / count:.3g}"
            for path, n in sorted(sample.paths.items(), key=lambda kv: -kv[1])
        )
        print(f"  {name}: {parts or 'none'}")


def report(
    results: Results,
    dashboards: dict[str, str],
    anchor: Sample | None = None,
    floor: Sample | None = None,
) -> None:
    for variant in dashboards:
        if len(dashboards) > 1:
            print(f"\n[{variant}]")
        last = variant == list(dashboards)[-1]
        print_table(results, variant, anchor if last else None, floor if last else None)
        print("API calls per first load, by request:")
        print_calls(results, variant)


# ---- main ---------------------------------------------------------------------------------

THIS, OTHER = "this checkout", "compared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="seeded flow runs")
    parser.add_argument("--days", type=float, default=7.0, help="over this many days")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of every page")
    parser.add_argument("--batch-carriers", type=int, default=4, help="carriers per real batch")
    parser.add_argument("--no-deliver", action="store_true", help="skip the delivery run")
    parser.add_argument("--no-anchor", action="store_true", help="skip the Prefect UI page")
    parser.add_argument("--pages", help="comma-separated subset of the pages, by name")
    parser.add_argument(
        "--load-items", type=int, default=0, help="then load pages while a batch of N renders"
    )
    parser.add_argument(
        "--compare", type=Path, help="another checkout whose dashboard is measured alongside"
    )
    parser.add_argument("--keep", action="store_true", help="keep the stack's home (logs)")
    args = parser.parse_args()

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is not installed (scripts/bootstrap.sh --test-tools installs it)")
    if args.compare and not (args.compare / "dashboard" / "app.py").is_file():
        sys.exit(f"--compare {args.compare}: no dashboard/app.py there")
    print(f"{os.cpu_count()} cores; Python {platform.python_version()}")
    speed = core_speed()
    print(f"core speed: a pure-Python loop of 5,000,000 additions took {speed:.3f} s (median of 3)")
    work = Path(tempfile.mkdtemp(prefix="reportrunner-bench-pages-"))
    started = time.monotonic()
    bench = start_stack(work / "home")
    try:
        print(f"stack up in {time.monotonic() - started:.0f} s", flush=True)
        dashboards = {THIS: bench.dashboard_url}
        if args.compare:
            app = args.compare.resolve() / "dashboard" / "app.py"
            dashboards[OTHER] = start_streamlit(bench, app, "dashboard-compared")
        run(args, bench, dashboards, chromium)
    finally:
        bench.stop()
        if args.keep:
            print(f"stack home kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args, bench: Bench, dashboards: dict[str, str], chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    took = seed_history(args.runs, args.days)
    print(f"seeded {args.runs:,} flow runs over {args.days:g} days in {took:.1f} s", flush=True)
    carriers = CARRIERS[: args.batch_carriers]
    batches = []
    for months in (["2013-11"], ["2013-10", "2013-11"]):
        over = {"carrier": carriers, "month": months}
        run_id, state, seconds = run_and_wait(f"batch/{REPORT}", {"over": over})
        batches.append(run_id)
        print(f"batch {'+'.join(carriers)} × {'+'.join(months)}: {state} in {seconds:.0f} s")
    if not args.no_deliver:
        parameters = {"as_of": "2013-12-15", "render": False}
        run_id, state, seconds = run_and_wait("deliver/carrier-contacts", parameters)
        print(f"delivery carrier-contacts (2013-11, nothing rendered): {run_message(run_id)}")
    item = urlencode({"report": REPORT, "key": f"carrier={carriers[0]} month=2013-11"})
    pages = {
        "Overview": "/",
        "Items": "/items",
        "Batch": f"/batch?id={batches[-1]}",
        "Item detail": f"/item?{item}",
        "Runs": "/runs",
        "Run detail": f"/run?id={batches[-1]}",
        "Run a report": "/launch",
        "Outputs": "/outputs",
        "Operations": "/operations",
        "Deliveries": "/deliveries",
    }
    if args.pages:
        wanted = {p.strip() for p in args.pages.split(",")}
        pages = {name: path for name, path in pages.items() if name in wanted}
    floor_url = start_floor(bench)
    log = AccessLog(bench.server_log)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            print(
                f"idle: {len(pages)} pages × {len(dashboards)} dashboard(s) × {args.repeat}, "
                f"load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            results = measure(browser, dashboards, pages, args.repeat, log)
            floor = measure_one(browser, floor_url, args.repeat, log, dashboard_wait)
            anchor = None
            if not args.no_anchor:
                anchor = measure_one(browser, f"{bench.ui_url}/runs", args.repeat, log, ui_wait)
            print(f"\nidle, {args.runs:,} runs; load average now {os.getloadavg()[0]:.1f}")
            report(results, dashboards, anchor, floor)
            if args.load_items:
                under_load(browser, args, dashboards, pages, log)
        finally:
            browser.close()


def under_load(browser, args, dashboards: dict[str, str], pages: dict[str, str], log) -> None:
    """Every page again while a batch of `--load-items` items renders."""
    months = max(1, -(-args.load_items // len(CARRIERS)))
    over = {"carrier": CARRIERS, "month": [f"2013-{m:02d}" for m in range(1, months + 1)]}
    run_id = start_run(f"batch/{REPORT}", {"over": over, "force": True})
    deadline = time.monotonic() + 300
    while run_state(run_id) != "RUNNING" and time.monotonic() < deadline:
        time.sleep(1.0)
    time.sleep(10)  # past planning: its chunks are rendering
    started = time.monotonic()
    print(f"\nunder load: a batch of {len(CARRIERS) * months} items rendering", flush=True)
    results = measure(
        browser, dashboards, pages, args.repeat, log, stop=lambda: run_state(run_id) in FINAL
    )
    print(
        f"\nwhile the batch rendered: {time.monotonic() - started:.0f} s of loads, the batch "
        f"{run_state(run_id).lower()} at the end; load average {os.getloadavg()[0]:.1f}"
    )
    print("(API calls under load include the batch's own requests)")
    report(results, dashboards)


if __name__ == "__main__":
    main()
