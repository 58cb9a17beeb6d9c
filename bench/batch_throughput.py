"""Batch throughput, resume and change detection: Prefect + worker vs a plain loop.

One run measures, side by side on this machine:
  loop    a single Python process calling reports.render_report for every item,
          no Prefect (the baseline); run before the cold batch and again right after
          it, and the ratio uses their mean (the machine's speed drifts)
  cold    the carrier-monthly batch deployment on a Prefect server (SQLite) and one
          process worker, into an empty output folder; first with a render task
          run per item (items_per_task=1), then with the default groups
  resume  the same batch again, nothing changed
  change  the same batch after one carrier's flights changed: only its items render
Everything lives in a temporary folder; the server and worker are stopped at the end.

For the cold batch with the default groups it prints where the time beyond loop ÷ cores
went, measured: the server's state times (waiting for the worker, the flow-run process
start), the batch's own phase timings (its "timings:" log line: setup, validation, plan,
chunks, summary; render pools; item index writes and events), the chunk flow runs,
the items' render times against the loop's, the API requests (the server's access log)
and the CPU seconds of each kind of process (sampled from /proc every 0.5 s).

Usage: .venv/bin/python bench/batch_throughput.py [--carriers 16] [--months 12]
           [--env KEY=VALUE …] [--skip-single]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]


def loop(items: list[dict], output: str) -> float:
    """The baseline: one process, one item after another, warm caches."""
    from reports import OutputStore, render_report
    from reports.definitions import default_catalog

    report, store = default_catalog().get("carrier-monthly"), OutputStore(output)
    started, cpu = time.perf_counter(), time.process_time()
    for params in items:
        render_report(report, params, store)
    print(f"cpu {time.process_time() - cpu}", file=sys.stderr)
    return time.perf_counter() - started


def show(label: str, seconds: float, extra: str = "") -> None:
    print(f"{label:<32}{seconds:7.1f} s  {extra}")


ACCESS = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/api/[^ ?"]*)')


def api_requests(log: Path, keep_ids: bool = False) -> list[str]:
    """Every API request in the server's access log, as "METHOD /path/{id}"."""
    text = log.read_text(errors="replace")
    found = [f"{method} {path}" for method, path in ACCESS.findall(text)]
    return found if keep_ids else [re.sub(r"[0-9a-f-]{36}", "{id}", r) for r in found]


def wait_until_ready(log: Path, worker: subprocess.Popen, timeout: float = 300) -> None:
    """Until the worker has started (and its warm process is ready, when warm starts are on)."""
    from deployments.worker import warm_start_enabled

    started = time.monotonic()
    needed = ["started!"] + (["warm start: ready"] if warm_start_enabled() else [])
    while time.monotonic() - started < timeout:
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
        text = log.read_text(errors="replace")
        if all(word in text for word in needed):
            print(f"worker ready after {time.monotonic() - started:.1f} s")
            time.sleep(3)
            return
        time.sleep(0.5)
    print("worker not ready; measuring anyway")


class CpuSampler:
    """CPU seconds per kind of process while a batch runs, from /proc every 0.5 s.

    A process that exits between two samples loses at most its last 0.5 s.
    """

    def __init__(self, server_pid: int, worker_pid: int) -> None:
        self.server_pid, self.worker_pid = server_pid, worker_pid
        self.seen: dict[tuple[int, int], tuple[str, float]] = {}  # (pid, start) → kind, cpu
        self.base: dict[tuple[int, int], float] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.render_vm_peak_mb = 0.0

    def __enter__(self) -> CpuSampler:
        self.base = {key: cpu for key, (_, cpu) in self._sample().items()}
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join()
        self.seen.update(self._sample())

    def _run(self) -> None:
        while not self.stop_event.wait(0.5):
            self.seen.update(self._sample())

    def _sample(self) -> dict[tuple[int, int], tuple[str, float]]:
        from deployments.processes import descendants, process_table

        table = process_table()
        server = {self.server_pid, *descendants(self.server_pid, table)}
        worker = {self.worker_pid, *descendants(self.worker_pid, table)}
        ticks = os.sysconf("SC_CLK_TCK")
        found = {}
        for pid in server | worker:
            stat = table.get(pid)
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / ticks
            key = (pid, int(fields[19]))
            # A process keeps its first kind: an exiting one has no command line left.
            known = self.seen.get(key)
            kind = known[0] if known else self._kind(pid, stat, cmdline, table, server)
            found[key] = (kind, cpu)
            if kind == "render processes":  # the memory cap counts address space
                with contextlib.suppress(OSError, StopIteration):
                    status = Path(f"/proc/{pid}/status").read_text().splitlines()
                    peak = next(line for line in status if line.startswith("VmSize:"))
                    self.render_vm_peak_mb = max(
                        self.render_vm_peak_mb, int(peak.split()[1]) / 1024
                    )
        return found

    def _kind(self, pid, stat, cmdline: bytes, table, server) -> str:
        if pid in server:
            return "server"
        if b"spawn_main" in cmdline:
            return "render processes"
        if b"multiprocessing.forkserver" in cmdline:
            # The render fork server, or a render process it forked (same command line).
            forked = b"multiprocessing.forkserver" in _cmdline(stat.ppid) if stat else False
            return "render processes" if forked else "render fork server"
        if b"multiprocessing.resource_tracker" in cmdline:
            return "render fork server"  # its helper, started beside it
        if b"warm_start serve" in cmdline:
            # The warm process itself, or a flow run it forked (a session leader).
            forked = b"warm_start serve" in _cmdline(stat.ppid) if stat else False
            return "flow-run processes" if forked and _session(pid) == pid else "warm process"
        if b"warm_start.py connect" in cmdline:
            return "flow-run clients"
        if b"prefect.engine" in cmdline or b"_workspace_supervisor" in cmdline:
            return "flow-run processes"
        return "worker"

    def by_kind(self) -> dict[str, float]:
        totals: Counter = Counter()
        for key, (kind, cpu) in self.seen.items():
            totals[kind] += cpu - self.base.get(key, 0.0)
        return dict(totals)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def _session(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def batch_timings(client, run_id) -> str:
    """The batch flow's own "timings: …" log line."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs = client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200
    )
    lines = [log.message for log in logs if log.message.startswith("timings:")]
    return lines[-1] if lines else "timings: (not logged)"


def breakdown(client, run, loop_s: float, items: int, cores: int, index_url: str, extra) -> None:
    """Where the cold batch's time beyond loop ÷ cores went, as measured."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    from reports.index import get_batch, open_index

    def line(label: str, seconds: float, note: str = "") -> None:
        print(f"  {label:<40}{seconds:8.2f} s  {note}")

    states = {s.type.value: s.timestamp for s in client.read_flow_run_states(run.id)}
    wall = (run.end_time - run.created).total_seconds()
    ideal = loop_s / cores
    print()
    print("breakdown of the cold batch (default groups), measured:")
    line("wall, creation → end", wall)
    line(f"loop ÷ {cores} (the renders alone, ideal)", ideal)
    line("beyond it", wall - ideal, f"= {(wall - ideal) / items * 1000:.0f} ms per report")
    line("waiting for the worker (→ Pending)", (states["PENDING"] - run.created).total_seconds())
    line(
        "flow-run process start (→ Running)",
        (states["RUNNING"] - states["PENDING"]).total_seconds(),
    )
    line("flow body (Running → end)", (run.end_time - states["RUNNING"]).total_seconds())
    print(f"  batch flow {batch_timings(client, run.id)}")
    chunks = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])
        )
    )
    spans = sorted((c.start_time, c.end_time) for c in chunks if c.start_time and c.end_time)
    if spans:
        gaps = [(b[0] - a[1]).total_seconds() for a, b in itertools.pairwise(spans)]
        total = sum((end - start).total_seconds() for start, end in spans)
        gap = f", between them median {statistics.median(gaps):.2f} s" if gaps else ""
        print(f"  chunk flow runs: {len(spans)}, {total:.1f} s in all{gap}")
    found = get_batch(open_index(index_url), str(run.id))
    durations = [m.duration_s for m in found[1] if m.duration_s] if found else []
    if durations:
        total = sum(durations)
        print(
            f"  renders: {len(durations)} items, {total:.1f} s of render time "
            f"({total / len(durations):.2f} s each; in the loop {loop_s / items:.2f} s: "
            f"{total / loop_s - 1:+.0%} while sharing the cores)"
        )
    requests = extra["requests"]
    print(f"  API requests: {len(requests)} ({len(requests) / items:.1f} per report); most:")
    requests = [re.sub(r"[0-9a-f-]{36}", "{id}", r) for r in requests]
    for path, count in Counter(requests).most_common(8):
        print(f"    {count:6d}  {path}")
    cpu = extra["cpu"]
    print(f"  CPU seconds during the batch ({sum(cpu.values()):.0f} of {cores} × {wall:.0f}):")
    for kind, seconds in sorted(cpu.items(), key=lambda i: -i[1]):
        print(f"    {seconds:8.1f}  {kind}")
    print(f"  render processes' largest address space seen: {extra['render_vm_peak_mb']:.0f} MB")
    render_cpu = cpu.get("render processes", 0.0)
    print(
        f"  CPU beyond the renders: {sum(cpu.values()) - render_cpu:.1f} s "
        f"({(sum(cpu.values()) - render_cpu) / items * 1000:.0f} ms per report); renders "
        f"{render_cpu:.1f} s against the loop's {extra['loop_cpu']:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carriers", type=int, default=16)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for the worker and its flow runs (e.g. REPORTRUNNER_WARM_START=0)",
    )
    parser.add_argument(
        "--skip-single", action="store_true", help="skip the cold batch with a task per item"
    )
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
    }
    for pair in args.env:
        key, _, value = pair.partition("=")
        env[key] = value
    os.environ.update(env)

    from prefect import get_client
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
    print(f"environment: {' '.join(args.env) or '(defaults)'}; load {os.getloadavg()[0]:.1f}")

    import json

    def run_loop(output: Path) -> tuple[float, float]:
        looped = subprocess.run(
            [sys.executable, __file__, "--loop-only", json.dumps(items), str(output)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return float(looped.stdout.strip()), float(re.findall(r"cpu ([0-9.]+)", looped.stderr)[-1])

    # The loop runs before the cold batch and again right after it: the machine's speed
    # drifts (other tenants), and the ratio uses the mean of the two that bracket it.
    loop_before, loop_cpu = run_loop(work / "out-loop")
    print(f"loop CPU {loop_cpu:.1f} s ({loop_cpu / loop_before:.0%} of its wall time)")
    show(
        "loop   (no Prefect, 1 process)",
        loop_before,
        f"{len(items) / loop_before * 60:6.1f} PDFs/min",
    )

    # The server logs every request at INFO: the breakdown counts them.
    server = PrefectServer(
        home=work / "prefect", extra_env={"PREFECT_SERVER_LOGGING_LEVEL": "INFO"}
    )
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
            # A long-running worker is the case measured: wait until it polls (and, with
            # warm starts on, until its warm process is ready).
            wait_until_ready(work / "worker.log", worker)

            measured: dict = {}

            def run_batch(label: str, **options) -> tuple[float, dict]:
                before = len(api_requests(server.log_path or work / "prefect" / "server.log"))
                sampler = CpuSampler(server.process.pid, worker.pid)
                with sampler:
                    run = _run(**options)
                log = server.log_path or work / "prefect" / "server.log"
                polls = f"GET /api/flow_runs/{run.id}"  # this script's own, once a second
                measured[label] = {
                    "requests": [
                        r for r in api_requests(log, keep_ids=True)[before:] if r != polls
                    ],
                    "cpu": sampler.by_kind(),
                    "render_vm_peak_mb": sampler.render_vm_peak_mb,
                }
                assert run.state.is_completed(), f"{label}: {run.state.message}"
                # From the run's creation to its end by the server's clock: the same span
                # as the wall time here, without the up to 1 s of this script's polling.
                wall = (run.end_time - run.created).total_seconds()
                return wall, run

            def _run(**options):
                return run_deployment(
                    "batch/carrier-monthly-batch",
                    parameters={
                        "report": "carrier-monthly",
                        "over": {"carrier": carriers, "month": months},
                        **options,
                    },
                    timeout=3600,
                    poll_interval=1,
                )

            single_s = None
            if not args.skip_single:  # against the loop before it
                # The same cold batch with a render task run per item, as before grouping.
                single_s, _ = run_batch("cold, a task per item", items_per_task=1)
                show(
                    "cold, 1 item per task",
                    single_s,
                    f"{len(items) / single_s * 60:6.1f} PDFs/min",
                )
                shutil.rmtree(work / "out-batch")
            cold_s, cold_run = run_batch("cold")
            show("cold   (Prefect + 1 worker)", cold_s, f"{len(items) / cold_s * 60:6.1f} PDFs/min")
            loop_after, loop_cpu_after = run_loop(work / "out-loop-after")
            show("loop again, right after", loop_after, f"CPU {loop_cpu_after:.1f} s")
            loop_s = (loop_before + loop_after) / 2
            loop_cpu = (loop_cpu + loop_cpu_after) / 2
            # Three times: a resume is short, and up to 1 s of it is where the worker's
            # poll happens to fall.
            resumes = sorted((run_batch("resume") for _ in range(3)), key=lambda r: r[0])
            resume_s, resume_run = resumes[1]
            with get_client(sync_client=True) as client:
                states = {
                    s.type.value: s.timestamp for s in client.read_flow_run_states(resume_run.id)
                }
                resume_timings = batch_timings(client, resume_run.id)
            pickup = (states["PENDING"] - resume_run.created).total_seconds()
            start = (states["RUNNING"] - states["PENDING"]).total_seconds()
            show(
                "resume (nothing changed)",
                resume_s,
                f"median of {', '.join(f'{s:.1f}' for s, _ in resumes)} s: "
                f"{pickup:.1f} s to be picked up, {start:.1f} s to start, "
                f"{resume_s - pickup - start:.1f} s of flow",
            )
            print(f"  {resume_timings}")

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
            with get_client(sync_client=True) as client:
                breakdown(
                    client,
                    client.read_flow_run(cold_run.id),
                    loop_s,
                    len(items),
                    cores,
                    f"sqlite:///{work / 'index.sqlite'}",
                    {**measured["cold"], "loop_cpu": loop_cpu},
                )
    finally:
        if worker is not None:
            stop_process_group(worker, grace_s=20)
        server.stop()

    ideal_s = loop_s / cores
    print()
    print(
        f"throughput ratio batch/loop:    {loop_s / cold_s:.2f}x  (target ≥ 1.6x, limit {cores}x; "
        f"against the loop before {loop_before / cold_s:.2f}x, after {loop_after / cold_s:.2f}x)"
    )
    if single_s:
        print(f"  with a task per item:         {loop_s / single_s:.2f}x")
    overhead_ms = (cold_s - ideal_s) / len(items) * 1000
    print(
        f"orchestration overhead:         {overhead_ms:.0f} ms per report (beyond loop ÷ {cores})"
    )
    print(f"resume / cold:                  {resume_s / cold_s:.1%}  (target ≤ 10%)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
