"""Orchestration costs that do not depend on PDF size: progress writes and batch memory.

A tiny report (one short line of text per item) isolates what Prefect and the batch
flow cost per item. Each batch runs as `reportrunner batch` in its own process, with
its Prefect API traffic going through a counting proxy, so progress-artifact writes
are counted at the API, and the batch process's peak RSS (VmHWM) is sampled.

Targets: a 1,000-item batch makes at most duration / cooldown + 5 progress writes;
peak RSS grows less than 25% from a 50-item to a 500-item batch.
Usage: .venv/bin/python bench/orchestration.py [--writes-items 1000] [--memory 50 500]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parents[1]
TINY_SPEC = """name: tiny
title: Tiny
source: files
parameters:
  n: {type: integer, min: 1, max: 5000}
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
        self.client = httpx.Client(timeout=60)
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if _is_progress_write(self.command, self.path, body):
            with self.server.lock:
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


def run_batch(items: int, env: dict[str, str]) -> tuple[float, int]:
    """Run a batch of `items` tiny reports; return wall seconds and peak RSS in MB."""
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
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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
    if process.returncode != 0:
        raise RuntimeError(f"batch of {items} failed: {process.stderr.read()[-2000:]}")
    return time.perf_counter() - started, peak_kb // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes-items", type=int, default=1000)
    parser.add_argument(
        "--memory", type=int, nargs=2, default=[50, 500], metavar=("SMALL", "LARGE")
    )
    args = parser.parse_args()

    from deployments.prefect_server import PrefectServer

    work = Path(tempfile.mkdtemp(prefix="reportrunner-bench-"))
    (work / "catalog" / "tiny").mkdir(parents=True)
    for name, text in (
        ("spec.yaml", TINY_SPEC),
        ("loader.py", TINY_LOADER),
        ("template.html.j2", TINY_TEMPLATE),
    ):
        (work / "catalog" / "tiny" / name).write_text(text)
    server = PrefectServer(home=work / "prefect")
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
    try:
        print(f"{os.cpu_count()} cores; tiny report; cooldown {cooldown:g} s")
        before = proxy.writes
        seconds, _ = run_batch(args.writes_items, env)
        writes = proxy.writes - before
        bound = seconds / cooldown + 5
        print(
            f"progress writes, {args.writes_items}-item batch: {writes} in {seconds:.1f} s "
            f"(bound {bound:.0f}: {'ok' if writes <= bound else 'OVER'})"
        )
        small, large = args.memory
        _, small_mb = run_batch(small, env)
        _, large_mb = run_batch(large, env)
        growth = (large_mb - small_mb) / small_mb
        print(f"peak RSS, batch process: {small} items {small_mb} MB, {large} items {large_mb} MB")
        print(f"growth {growth:.1%} (target < 25%)")
    finally:
        proxy.shutdown()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
