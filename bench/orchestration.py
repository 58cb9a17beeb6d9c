"""Orchestration costs that do not depend on PDF size: progress writes and batch memory.

A tiny report (one short line of text per item) isolates what Prefect and the batch
flow cost per item. Each batch runs as `reportrunner batch` in its own process, with
its Prefect API traffic going through a counting proxy, so progress-artifact writes
are counted at the API, and the batch process's peak RSS (VmHWM) is sampled.

Targets: a 1,000-item batch makes at most duration / cooldown + 5 progress writes;
peak RSS grows less than 25% from a 50-item to a 500-item batch. At scale ("Scale of
one batch"): from 500 to 5,000 items, RSS grows < 25 %, every batch's progress writes
stay within the bound, and the batch page of the 5,000-item batch answers in <= 1 s.

`--sizes` runs one batch per size, side by side, each with its writes, bound, peak RSS
and the batch's own "timings:" line; the growth is from the first size to the last.
`--page` then measures the dashboard's batch page (`/batch?id=...`): for the last batch
in this process (the page's data: `batch_view`, `status_matrix` and `matrix_html` for
the first page of rows, as `dashboard/views/batch.py` builds them), and for every batch
as a real page load in headless Chromium (Playwright, Debian's chromium), a new tab each
time until the script run is over and no spinner is left (as `tests/e2e/browsing.py`
`settle` waits), interleaved with a bare Streamlit page (the floor, as in
bench/page_loads.py). Its Prefect API calls are counted at the same proxy. "first": no
session read the batch within the refresh interval; "revisit": a new tab right after.

The proxy passes websockets (Prefect's event stream) through untouched: without that,
every event is lost and Prefect's events client reconnects over and over, which costs
the batch time and memory that a real deployment does not pay.

Usage:
    .venv/bin/python bench/orchestration.py [--writes-items 1000] [--memory 50 500]
    .venv/bin/python bench/orchestration.py --sizes 500,5000 --writes-items 0 --page
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from _browser import ERRORS, FLOOR_SCRIPT, settle  # bench/_browser.py, beside this script
from _machine import core_speed  # bench/_machine.py, beside this script

PROJECT = Path(__file__).resolve().parents[1]
TINY_SPEC = """name: tiny
title: Tiny
source: files
parameters:
  n: {type: integer, min: 1, max: %(max)d}
batch: {dimensions: [n]}
outputs: [pdf]
quality: {min_rows: {airlines: 1}}
"""
TINY_LOADER = """def load(params, source):
    return {"airlines": source.table("airlines")}


def build_context(data, params):
    return {"count": len(data["airlines"])}
"""
TINY_TEMPLATE = """{% extends "base.html.j2" %}
{% block content %}<p>Item {{ params.n }} of a benchmark batch: {{ count }} airlines in the
reference table. This paragraph keeps the quality gate's blank-page check satisfied by
being long enough to count as a page with content on it, and nothing more.</p>{% endblock %}
"""


def _is_progress_write(method: str, path: str, body: bytes) -> bool:
    """Creating a progress artifact, or updating one (only progress artifacts are updated)."""
    if method == "PATCH":
        return re.fullmatch(r"/api/artifacts/[0-9a-f-]+", path) is not None
    if method == "POST" and path.rstrip("/") == "/api/artifacts":
        return json.loads(body or b"{}").get("type") == "progress"
    return False


class CountingProxy(ThreadingHTTPServer):
    """Forwards to the Prefect API and counts progress-artifact creates and updates."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.writes, self.lock = upstream, 0, threading.Lock()
        self.requests: list[tuple[str, str]] = []  # every request: (method, path)
        self.client = httpx.Client(timeout=60)
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _tunnel(self) -> None:
        """A websocket (Prefect's event stream, /api/events/in) passed through byte for byte.

        Without it the batch's events never reach the server: Prefect's events client
        then reconnects and fails over and over, which costs the batch time and memory
        that a real deployment does not pay.
        """
        upstream = urlsplit(self.server.upstream)
        remote = socket.create_connection((upstream.hostname, upstream.port))
        head = self.requestline + "\r\n"
        head += "".join(f"{key}: {value}\r\n" for key, value in self.headers.items())
        remote.sendall((head + "\r\n").encode("latin-1"))

        def pump(source: socket.socket, target: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    target.sendall(data)
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(remote, self.connection), daemon=True)
        back.start()
        pump(self.connection, remote)
        back.join()
        remote.close()
        self.close_connection = True

    def _forward(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            with self.server.lock:
                self.server.requests.append(("WEBSOCKET", self.path.split("?")[0]))
            self._tunnel()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.requests.append((self.command, self.path.split("?")[0]))
            if _is_progress_write(self.command, self.path, body):
                self.server.writes += 1
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}
        }
        reply = self.server.client.request(
            self.command, self.server.upstream + self.path, content=body, headers=headers
        )
        self.send_response(reply.status_code)
        for key, value in reply.headers.items():
            if key.lower() not in {
                "content-length",
                "transfer-encoding",
                "content-encoding",
                "connection",
            }:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward


@dataclass
class BatchRun:
    items: int
    seconds: float
    peak_mb: int
    writes: int  # progress-artifact creates and updates, counted at the proxy
    requests: int  # every API request the batch process made
    timings: str  # the batch's own "timings: …" log line (phases), when it logged one
    event_failures: int  # "Unable to connect" to the event stream: the run is not valid

    def bound(self, cooldown: float) -> float:
        return self.seconds / cooldown + 5


def run_batch(items: int, env: dict[str, str], proxy: CountingProxy, log: Path) -> BatchRun:
    """Run a batch of `items` tiny reports in its own process, sampling its peak RSS."""
    before_writes, before_requests = proxy.writes, len(proxy.requests)
    with log.open("w") as errors:  # a file, not a pipe: a full pipe would stall the batch
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deployments.cli",
                "batch",
                "tiny",
                "--over",
                "n=" + ",".join(str(i) for i in range(1, items + 1)),
                "--force",
                "--verbose",  # Prefect's logs, for the batch's "timings:" line
            ],
            env=env,
            stdout=errors,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started, peak_kb = time.perf_counter(), 0
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                match = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
                peak_kb = max(peak_kb, int(match.group(1))) if match else peak_kb
            except OSError:
                pass
            time.sleep(0.2)
    seconds = time.perf_counter() - started
    text = log.read_text(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"batch of {items} failed: {text[-2000:]}")
    timings = re.findall(r"timings: ([^\n]*)", text)
    return BatchRun(
        items,
        seconds,
        peak_kb // 1024,
        proxy.writes - before_writes,
        len(proxy.requests) - before_requests,
        timings[-1] if timings else "",
        text.count("Unable to connect"),
    )


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s, p90 {quantile(values, 0.9):.3f} s"


def _paths(calls: list[tuple[str, str]]) -> str:
    counted: dict[str, int] = {}
    for method, path in calls:
        key = f"{method} {re.sub(r'[0-9a-f-]{36}', '<id>', path)}"
        counted[key] = counted.get(key, 0) + 1
    return ", ".join(f"{k} ×{n}" for k, n in sorted(counted.items(), key=lambda kv: -kv[1]))


# ---- the batch page of the last batch -----------------------------------------------------

ROWS_PER_PAGE = 40  # dashboard/views/batch.py: MATRIX_ROWS_PER_PAGE


def page_in_process(batch_id: str, proxy: CountingProxy, repeat: int) -> None:
    """The batch page's data as the page builds it, in this process, each part timed."""
    from dashboard.api import ApiConfig, connect
    from dashboard.api._items import batch_view
    from dashboard.api._matrix import status_matrix
    from dashboard.components.matrix import matrix_html

    parts: dict[str, list[float]] = {"batch_view": [], "matrix": [], "html": [], "total": []}
    calls: list[tuple[str, str]] = []
    for attempt in range(repeat + 1):  # the first one warms
        before = len(proxy.requests)
        t0 = time.perf_counter()
        with connect(ApiConfig.from_env()) as api:
            view = batch_view(api, batch_id)
        t1 = time.perf_counter()
        dims = view.dimensions or list(view.items[0].params)[:1]
        others = [d for d in dims if d != dims[0]]
        grid = status_matrix(view.items, dims[0], others[0] if others else None, {})
        t2 = time.perf_counter()
        html = matrix_html(grid, view.batch.report, grid.row_values[:ROWS_PER_PAGE])
        t3 = time.perf_counter()
        if attempt:
            for name, took in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                parts[name].append(took)
            calls = proxy.requests[before:]
    print(f"batch page data, in this process ({len(view.items):,} items, {repeat} warm runs):")
    print(f"  batch_view (index read + API calls): {_spread(parts['batch_view'])}")
    print(f"  status_matrix:                       {_spread(parts['matrix'])}")
    print(f"  matrix_html, first {ROWS_PER_PAGE} rows:         {_spread(parts['html'])}")
    print(f"  total:                               {_spread(parts['total'])}")
    print(
        f"  grid {len(grid.row_values):,} rows × {len(grid.col_values)} column(s), "
        f"{len(html) // 1024:,} KiB of HTML for the first page; "
        f"{len(calls)} API calls ({_paths(calls)})"
    )


def start_streamlit(script: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """A Streamlit app as `reportrunner up` starts the dashboard (the API through the proxy)."""
    from deployments.prefect_server import free_port
    from deployments.processes import service_preexec

    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script)]
    command += ["--server.address", "127.0.0.1", "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=service_preexec(),
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{script.name} exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return process, url
        time.sleep(0.5)
    raise RuntimeError(f"{script.name} did not start")


# What any page load costs at least, in the browser and in Streamlit (bench/page_loads.py's).


def page_in_browser(
    pages: dict[str, str], proxy: CountingProxy, repeat: int, refresh_s: float
) -> None:
    """`repeat` first loads and revisits of each page in new tabs of headless Chromium,
    the pages interleaved (every page once, then again) so that load changes hit all."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("pages in Chromium: skipped (chromium is not installed)")
        return
    seconds = {(name, kind): [] for name in pages for kind in ("first", "revisit")}
    calls = {(name, kind): [] for name in pages for kind in ("first", "revisit")}
    cells: dict[str, int] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for url in {u.split("/batch")[0] + "/" for u in pages.values()}:
                warm = context.new_page()  # the browser's cache then holds Streamlit's files
                warm.goto(url)
                settle(warm)
                warm.close()
            for _ in range(repeat):
                time.sleep(refresh_s + 1)  # past the refresh interval: a first load
                for name, url in pages.items():
                    for kind in ("first", "revisit"):
                        page = context.new_page()
                        before = len(proxy.requests)
                        started = time.perf_counter()
                        page.goto(url)
                        settle(page)
                        seconds[(name, kind)].append(time.perf_counter() - started)
                        time.sleep(0.3)  # the page's last requests, if any
                        calls[(name, kind)].append(proxy.requests[before:])
                        if page.locator(ERRORS).count():
                            print(f"  ! {name}: {page.locator(ERRORS).first.inner_text()[:300]}")
                        cells[name] = page.locator(".rr-matrix td").count()
                        page.close()  # its session ends: no auto-refresh during the next load
        finally:
            browser.close()
    print(
        f"pages in headless Chromium, a new tab until settled, {repeat} of each, "
        f"interleaved; load average now {os.getloadavg()[0]:.1f}:"
    )
    head = f"{'first median':>12} {'p90':>6} {'revisit median':>14} {'p90':>6}"
    print(f"  {'page':<18} {head}  API calls")
    for name in pages:
        first, again = seconds[(name, "first")], seconds[(name, "revisit")]
        counts = [len(c) for c in calls[(name, "first")]]
        print(
            f"  {name:<18} {statistics.median(first):>12.2f} {quantile(first, 0.9):>6.2f} "
            f"{statistics.median(again):>14.2f} {quantile(again, 0.9):>6.2f}  "
            f"first {statistics.median(counts):g}, revisit "
            f"{statistics.median(len(c) for c in calls[(name, 'revisit')]):g}"
            + (f"; {cells[name]} matrix cells drawn" if cells.get(name) else "")
        )
    for name in pages:
        if calls[(name, "first")][0]:
            print(f"  {name}, first load: {_paths(calls[(name, 'first')][0])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--writes-items", type=int, default=1000, help="a batch for the writes bound (0: none)"
    )
    parser.add_argument(
        "--memory",
        type=int,
        nargs=2,
        default=None,
        metavar=("SMALL", "LARGE"),
        help="as --sizes SMALL,LARGE",
    )
    parser.add_argument(
        "--sizes", default="50,500", help="batch sizes, side by side (growth: first → last)"
    )
    parser.add_argument("--page", action="store_true", help="measure the batch page of each batch")
    parser.add_argument("--page-repeat", type=int, default=5, help="timed page loads")
    args = parser.parse_args()
    sizes = args.memory or [int(n) for n in args.sizes.split(",")]

    from deployments.prefect_server import PrefectServer

    work = Path(tempfile.mkdtemp(prefix="reportrunner-bench-"))
    (work / "catalog" / "tiny").mkdir(parents=True)
    largest = max([*sizes, args.writes_items])
    for name, text in (
        ("spec.yaml", TINY_SPEC % {"max": max(largest, 5000)}),
        ("loader.py", TINY_LOADER),
        ("template.html.j2", TINY_TEMPLATE),
    ):
        (work / "catalog" / "tiny" / name).write_text(text)
    server = PrefectServer(home=work / "prefect")
    print(f"{os.cpu_count()} cores; Python {platform.python_version()}", flush=True)
    speed = core_speed()
    print(
        f"core speed: a pure-Python loop of 5,000,000 additions took {speed:.3f} s "
        f"(median of 3); load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    server.start(timeout=180)
    proxy = CountingProxy(server.api_url.removesuffix("/api"))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    cooldown = 2.0
    env = {
        **os.environ,
        "PREFECT_API_URL": proxy.url,
        "REPORTRUNNER_HOME": str(work),
        "REPORTRUNNER_DATA_DIR": str(PROJECT / "var" / "data"),
        "REPORTRUNNER_CATALOG_DIR": str(work / "catalog"),
        "REPORTRUNNER_PROGRESS_COOLDOWN_S": str(cooldown),
    }
    env.pop("REPORTRUNNER_INDEX_URL", None)  # the item index: SQLite in the bench's home
    dashboard = floor = None
    try:
        print(f"tiny report; cooldown {cooldown:g} s", flush=True)
        if args.writes_items:
            run = run_batch(args.writes_items, env, proxy, work / "batch-writes.log")
            print(
                f"progress writes, {args.writes_items}-item batch: {run.writes} in "
                f"{run.seconds:.1f} s (bound {run.bound(cooldown):.0f}: "
                f"{'ok' if run.writes <= run.bound(cooldown) else 'OVER'})",
                flush=True,
            )
        runs = []
        for size in sizes:
            runs.append(run_batch(size, env, proxy, work / f"batch-{size}.log"))
            print(
                f"  batch of {size:,} done in {runs[-1].seconds:.1f} s; load average "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )
        print(
            f"{'items':>7} {'seconds':>8} {'peak RSS MB':>11} {'progress writes':>15} "
            f"{'bound':>6} {'API requests':>12}"
        )
        for run in runs:
            verdict = "ok" if run.writes <= run.bound(cooldown) else "OVER"
            print(
                f"{run.items:>7,} {run.seconds:>8.1f} {run.peak_mb:>11} {run.writes:>15} "
                f"{run.bound(cooldown):>6.0f} {run.requests:>12,}  {verdict}"
            )
        for run in runs:
            print(f"  {run.items:,} items, timings: {run.timings or '(not logged)'}")
            if run.event_failures:
                print(f"  ! {run.event_failures} failed connections to the event stream")
        small, large = runs[0], runs[-1]
        growth = (large.peak_mb - small.peak_mb) / small.peak_mb
        print(
            f"peak RSS, batch process: {small.items} items {small.peak_mb} MB, "
            f"{large.items} items {large.peak_mb} MB"
        )
        print(f"growth {growth:.1%} (target < 25%)", flush=True)
        if args.page:
            os.environ.update(env)  # this process reads the same index and API
            from reports.index import open_index, recent_batches
            from reports.settings import get_settings

            get_settings.cache_clear()
            batch = next(
                b
                for b in recent_batches(open_index(), limit=len(sizes) + 1)
                if b.total == large.items
            )
            page_in_process(batch.batch_id, proxy, args.page_repeat)
            from dashboard.controls import DEFAULT_REFRESH_S

            quiet = {k: v for k, v in env.items() if not k.startswith("REPORTRUNNER_DASHBOARD_")}
            app = PROJECT / "dashboard" / "app.py"
            dashboard, url = start_streamlit(app, quiet, work / "dashboard.log")
            (work / "floor.py").write_text(FLOOR_SCRIPT)
            floor, floor_url = start_streamlit(work / "floor.py", quiet, work / "floor.log")
            listed = recent_batches(open_index(), limit=len(sizes) + 1)
            pages = {"floor (bare page)": floor_url}
            for run in runs:
                found = next(b for b in listed if b.total == run.items)
                pages[f"batch of {run.items:,}"] = f"{url}/batch?id={found.batch_id}"
            page_in_browser(pages, proxy, args.page_repeat, DEFAULT_REFRESH_S)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        from deployments.processes import stop_process_group

        for process in (dashboard, floor):
            if process is not None:
                stop_process_group(process, 15)
        proxy.shutdown()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
