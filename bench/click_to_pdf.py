"""Click to PDF: from the dashboard's "Run" to a downloadable PDF, on an idle stack.

Starts what `reportrunner up --demo-months 0` starts that matters here — a Prefect
server, `deploy`, one worker (`deployments.stack.Stack`, the same command and
environment as `up`) — on free ports, with its own REPORTRUNNER_HOME in a temporary
folder. Then, one after another, N times: creates a run of `report/carrier-monthly`
with new parameters exactly as the dashboard's form does (`dashboard.api.create_run`
on the target `launchable_reports` lists), and times, by polling every 50 ms:

  pending    the worker took the run (server's state history)
  process    a process carrying PREFECT__FLOW_RUN_ID=<run> exists (/proc)
  running    the flow began (server's state history)
  pdf        the dashboard's `find_output` finds the manifest (the download appears)
  completed  the run's final state (server's state history)

Before the runs, the idle stack is measured for --idle-seconds: API requests per
minute (the server's access log; only the worker talks to it then) and the CPU the
worker (with everything it started) and the server used. Everything is stopped at
the end.

Usage: .venv/bin/python bench/click_to_pdf.py [--runs 7] [--idle-seconds 60]
           [--env PREFECT_WORKER_QUERY_SECONDS=10 --env REPORTRUNNER_WARM_START=0]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
POLL_S = 0.05
ACCESS = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/api/[^ ?"]*)')


@dataclass
class Timeline:
    """Seconds after the click (the create_run call) at which each step was seen."""

    created: float
    pending: float
    process: float | None
    running: float
    pdf: float
    completed: float
    stages: dict[str, float]


def cpu_seconds(pids) -> float:
    """utime + stime (children reaped included) of the given processes, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def tree(pid: int) -> list[int]:
    from deployments.processes import descendants

    return [pid, *descendants(pid)]


def access_lines(log: Path) -> list[tuple[str, str]]:
    return [m.groups() for m in ACCESS.finditer(log.read_text(errors="replace"))]


def measure_idle(stack, seconds: float) -> dict[str, float]:
    """Requests per minute and CPU of the idle worker and server over `seconds`."""
    worker = next(s for s in stack.services if s.name == "worker").process.pid
    server = stack.server.process.pid
    log = stack.server.log_path
    requests_before = len(access_lines(log))
    worker_cpu, server_cpu = cpu_seconds(tree(worker)), cpu_seconds(tree(server))
    time.sleep(seconds)
    requests = access_lines(log)[requests_before:]
    by_path: dict[str, int] = {}
    for method, path in requests:
        key = f"{method} {re.sub(r'[0-9a-f-]{36}', '{id}', path)}"
        by_path[key] = by_path.get(key, 0) + 1
    return {
        "requests_per_min": len(requests) * 60 / seconds,
        "worker_cpu_pct": (cpu_seconds(tree(worker)) - worker_cpu) / seconds * 100,
        "server_cpu_pct": (cpu_seconds(tree(server)) - server_cpu) / seconds * 100,
        "by_path": {k: v * 60 / seconds for k, v in sorted(by_path.items(), key=lambda i: -i[1])},
    }


def wait_for_warm_start(log: Path, started: float, timeout: float = 180) -> None:
    """Until the worker's warm process is ready (when warm starts are on)."""
    from deployments.worker import warm_start_enabled

    if not warm_start_enabled():
        return
    while time.monotonic() - started < timeout:
        ready = [
            line for line in log.read_text(errors="replace").splitlines() if "warm start:" in line
        ]
        if any("ready" in line for line in ready):
            print(ready[-1].split(" at ")[0])
            return
        time.sleep(0.5)
    print("warm start: not ready; runs start cold")


def one_run(api, target, params: dict, store_url: str) -> Timeline:
    from dashboard.api import create_run
    from dashboard.api._outputs import find_output
    from deployments.processes import processes_with

    parameters = {"report": "carrier-monthly", "parameters": params}
    click = time.time()
    run = create_run(api, target, parameters, tags=("bench",))
    marker = f"PREFECT__FLOW_RUN_ID={run.id}"
    process = pdf = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = time.time()
        if process is None and processes_with(marker):
            process = now - click
        if pdf is None and find_output(store_url, "carrier-monthly", params) is not None:
            pdf = now - click
        if pdf is not None:
            state = api.client.read_flow_run(run.id).state
            if state.is_final():
                break
        time.sleep(POLL_S)
    else:
        raise RuntimeError(f"run {run.id} did not finish in 300 s")
    from uuid import UUID

    flow_run = api.client.read_flow_run(UUID(run.id))
    if not flow_run.state.is_completed():
        raise RuntimeError(f"run {run.id} ended {flow_run.state.name}: {flow_run.state.message}")
    states = {
        s.type.value: s.timestamp.timestamp() - click
        for s in api.client.read_flow_run_states(UUID(run.id))
    }
    return Timeline(
        created=flow_run.created.timestamp() - click,
        pending=states["PENDING"],
        process=process,
        running=states["RUNNING"],
        pdf=pdf,
        completed=states["COMPLETED"],
        stages=stage_seconds(api, UUID(run.id)),
    )


def stage_seconds(api, run_id) -> dict[str, float]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = api.client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
    )
    return {
        r.name.rsplit("-", 1)[0]: (r.end_time - r.start_time).total_seconds()
        for r in runs
        if r.start_time and r.end_time
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarize(timelines: list[Timeline]) -> None:
    print()
    print(f"{'run':>3} {'pending':>8} {'process':>8} {'running':>8} {'pdf':>8} {'completed':>10}")
    for number, t in enumerate(timelines, start=1):
        process = f"{t.process:8.2f}" if t.process is not None else f"{'-':>8}"
        print(
            f"{number:>3} {t.pending:8.2f} {process} {t.running:8.2f} {t.pdf:8.2f} "
            f"{t.completed:10.2f}"
        )
    pdf = [t.pdf for t in timelines]
    print()
    print(
        f"click → PDF downloadable: median {statistics.median(pdf):.2f} s, "
        f"p90 {quantile(pdf, 0.9):.2f} s  (target ≤ 5 s, stretch 3 s)"
    )
    parts = {
        "waiting for the worker's poll (click → Pending)": [t.pending for t in timelines],
        "process start to flow start (Pending → Running)": [
            t.running - t.pending for t in timelines
        ],
        "  of which until the process exists": [
            t.process - t.pending for t in timelines if t.process is not None
        ],
        "flow body until the manifest (Running → PDF)": [t.pdf - t.running for t in timelines],
        "publish: artifacts, index, final state (PDF → Completed)": [
            t.completed - t.pdf for t in timelines
        ],
    }
    print("breakdown (median s):")
    for label, values in parts.items():
        if values:
            print(f"  {label:<58}{statistics.median(values):6.2f}")
    stages: dict[str, list[float]] = {}
    for t in timelines:
        for name, seconds in t.stages.items():
            stages.setdefault(name, []).append(seconds)
    if stages:
        inside = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in stages.items())
        print(f"  stage task runs inside the body (median s): {inside}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for the stack (the worker inherits it), e.g. the settings before",
    )
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs) at the end")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="reportrunner-click-"))
    shutil.copytree(PROJECT / "var" / "data", work / "data")
    os.environ.update(
        {
            "REPORTRUNNER_HOME": str(work),
            "REPORTRUNNER_DATA_DIR": str(work / "data"),
            "PREFECT_HOME": str(work / "prefect"),
        }
    )
    os.environ.pop("REPORTRUNNER_OUTPUT_URL", None)
    os.environ.pop("REPORTRUNNER_INDEX_URL", None)
    for pair in args.env:
        key, _, value = pair.partition("=")
        os.environ[key] = value

    from deployments.deploy import deploy
    from deployments.prefect_server import free_port
    from deployments.stack import Stack
    from reports.definitions import default_catalog
    from reports.settings import get_settings

    settings = get_settings()
    stack = Stack(
        settings,
        prefect_port=free_port(),
        dashboard_port=free_port(),
        worker_healthcheck_port=free_port(),
        mail_port=free_port(),
        metrics_port=free_port(),
        say=lambda line: None,
    )
    shown = " ".join(args.env) or "(the defaults)"
    print(f"{os.cpu_count()} cores; environment {shown}; load {os.getloadavg()[0]:.1f}")
    try:
        # The server's access log counts API requests (uvicorn logs them at INFO).
        os.environ["PREFECT_SERVER_LOGGING_LEVEL"] = "INFO"
        stack.start()
        os.environ.pop("PREFECT_SERVER_LOGGING_LEVEL")
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: stack.server.api_url}):
            deploy()
            started = time.monotonic()
            stack.start_worker()
            print(f"worker healthy {time.monotonic() - started:.1f} s after its start")
            wait_for_warm_start(stack.logs / "worker.log", started)
            time.sleep(5)  # its first polls and syncs settle
            idle = measure_idle(stack, args.idle_seconds)
            print(
                f"idle {args.idle_seconds:.0f} s: {idle['requests_per_min']:.1f} API requests/min; "
                f"CPU: worker {idle['worker_cpu_pct']:.2f} % of a core, "
                f"server {idle['server_cpu_pct']:.2f} %"
            )
            for path, per_min in list(idle["by_path"].items())[:6]:
                print(f"  {per_min:6.1f}/min  {path}")

            from dashboard.api import launchable_reports
            from prefect_api import ApiConfig, connect

            report = default_catalog().get("carrier-monthly")
            carriers = report.dimension_values("carrier")
            timelines = []
            with connect(ApiConfig.active(timeout_s=30)) as api:
                target = next(
                    r.single for r in launchable_reports(api) if r.report == "carrier-monthly"
                )
                for number in range(args.runs):
                    params = {
                        "carrier": carriers[number % len(carriers)],
                        "month": f"2013-{number % 12 + 1:02d}",
                    }
                    time.sleep(3)  # an idle stack: the last run's process is gone
                    timeline = one_run(api, target, params, settings.resolved_output_url)
                    timelines.append(timeline)
                    print(
                        f"run {number + 1}: {params['carrier']} {params['month']}: "
                        f"Pending {timeline.pending:.2f} s, Running {timeline.running:.2f} s, "
                        f"PDF {timeline.pdf:.2f} s, Completed {timeline.completed:.2f} s",
                        flush=True,
                    )
            summarize(timelines)
    finally:
        stack.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
