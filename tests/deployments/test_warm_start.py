"""Warm start: `reportrunner worker` forks each flow run from its pre-imported process.

Against the session's Prefect server, with a worker of this module's own (started as a
CI runner starts it, SIGINT ignored). Each test waits for the worker's warm process to
say it is ready, so that runs go warm, then checks what a user and an operator rely on:
- a run is forked from the warm process (the worker tracks only the small client), and
  completes with its PDF;
- cancelling a run ends the forked process, and the run ends Cancelled;
- SIGKILL of the process the worker tracks ends the forked run too;
- new code on disk: the next run still completes, and a fresh warm process takes over;
- no warm process: runs start cold and complete.

Slow runs come from the `flaky-carrier` test report's `slow-<carrier>` marker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest

from deployments.processes import process_table, processes_with, stop_process_group
from prefect_helpers import start_worker

REPORT = "flaky-carrier"
CARRIER = "YV"  # flaky-carrier items of this carrier belong to this module
READY = "warm start: ready"
MARKER = "REPORTRUNNER_TEST_WARM_WORKER"
PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class Worker:
    process: object
    marker: str
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def warm_processes(self) -> list[int]:
        """The worker's warm processes (`flows.warm_start serve`), oldest first."""
        return sorted(pid for pid in processes_with(self.marker) if _is_warm(_cmdline(pid)))

    def fork_servers(self) -> list[int]:
        """Render fork servers (`flows.render_pool.start_forkserver`): the warm processes'
        children with the fork server's command (the render processes it forks have it
        too, but are its children)."""
        warm, table = set(self.warm_processes()), process_table()
        return [
            pid
            for pid in processes_with(self.marker)
            if b"forkserver" in _cmdline(pid) and pid in table and table[pid].ppid in warm
        ]

    def forked_runs(self) -> list[int]:
        """Processes forked by a warm process: flow runs (not its render fork server or
        resource tracker, which are children of its own with commands of their own)."""
        warm = set(self.warm_processes())
        return [
            stat.pid
            for stat in process_table().values()
            if stat.ppid in warm and _live(stat) and _is_warm(_cmdline(stat.pid))
        ]


def _is_warm(cmdline: bytes) -> bool:
    """`python -m flows.warm_start serve …`: a warm process, or a run forked from one."""
    return b"warm_start\x00serve" in cmdline


def _cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def _live(stat) -> bool:
    return stat.state not in ("Z", "X")


def wait_for(what: str, check, timeout: float = 120, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@pytest.fixture(scope="module")
def deployed(prefect_server) -> None:
    from deployments.deploy import deploy

    deploy()


def cancel_waiting_runs() -> None:
    """Runs other modules left waiting (e.g. deliveries their batches triggered) would go
    to this module's worker and hold forked processes of their own."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    waiting = FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(state={"type": waiting})):
            client.set_flow_run_state(run.id, Cancelled(), force=True)


@pytest.fixture
def worker(prefect_server, deployed, tmp_path) -> Iterator[Worker]:
    cancel_waiting_runs()
    marker = uuid.uuid4().hex
    log = tmp_path / "worker.log"
    env = {MARKER: marker, "REPORTRUNNER_WARM_START": "1"}
    process = start_worker(f"warm-{marker[:8]}", limit=2, env=env, log=log, sigint_ignored=True)
    worker = Worker(process, f"{MARKER}={marker}", log)
    try:
        wait_for("the warm process to be ready", lambda: READY in worker.text(), timeout=240)
        yield worker
    finally:
        stop_process_group(process, 40)
        for pid in processes_with(worker.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def slow(settings) -> Iterator[callable]:
    """`slow(seconds)`: every load of CARRIER takes that much longer, until the test ends."""
    marker = settings.resolved_data_dir / f"slow-{CARRIER}"

    def set_delay(seconds: float) -> None:
        marker.write_text(str(seconds))

    try:
        yield set_delay
    finally:
        marker.unlink(missing_ok=True)


def start_run(month: str) -> UUID:
    from prefect.deployments import run_deployment

    run = run_deployment(
        f"report/{REPORT}",
        parameters={"report": REPORT, "parameters": {"carrier": CARRIER, "month": month}},
        timeout=0,
    )
    return run.id


def state_of(run_id: UUID):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state


def wait_final(run_id: UUID, timeout: float = 180):
    return wait_for(
        f"run {run_id} to end",
        lambda: (state := state_of(run_id)).is_final() and state,
        timeout=timeout,
        every=0.5,
    )


def tracked(run_id: UUID) -> list[int]:
    """The processes started for this run by the worker (they carry its id)."""
    return processes_with(f"PREFECT__FLOW_RUN_ID={run_id}")


def test_a_run_is_forked_from_the_warm_process_and_completes(worker, slow):
    slow(4)
    run_id = start_run("2013-01")
    wait_for(
        "the run to be Running in a forked process",
        lambda: state_of(run_id).is_running() and worker.forked_runs(),
    )
    (client,) = tracked(run_id)
    # Still the client: a cold start would have exec'd Prefect's engine in its place.
    assert b"warm_start.py\x00connect" in _cmdline(client), _cmdline(client)
    state = wait_final(run_id)
    assert state.is_completed(), state
    wait_for("the forked run to be gone", lambda: not worker.forked_runs(), timeout=30)


def test_cancelling_a_warm_run_ends_its_process(worker, slow):
    from prefect import get_client
    from prefect.states import Cancelling

    slow(120)
    run_id = start_run("2013-02")
    wait_for(
        "the run to be Running", lambda: state_of(run_id).is_running() and worker.forked_runs()
    )
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelling(), force=True)
    state = wait_final(run_id, timeout=90)
    assert state.is_cancelled(), state
    wait_for("the forked run to be gone", lambda: not worker.forked_runs(), timeout=30)
    assert tracked(run_id) == []


def test_killing_the_tracked_process_ends_the_forked_run(worker, slow):
    slow(120)
    run_id = start_run("2013-03")
    wait_for(
        "the run to be Running", lambda: state_of(run_id).is_running() and worker.forked_runs()
    )
    (client,) = tracked(run_id)
    os.kill(client, signal.SIGKILL)
    wait_for("the forked run to end with its client", lambda: not worker.forked_runs(), timeout=30)
    state = wait_final(run_id, timeout=90)
    assert state.is_crashed(), state  # as the worker reports a flow-run process killed


def test_new_code_on_disk_gets_a_fresh_warm_process(worker, slow):
    """The stale process refuses the next run (it starts cold) and exits; the run after
    that starts a fresh one, and once it is ready runs are forked from it."""
    (stale,) = worker.warm_processes()
    (stale_server,) = worker.fork_servers()
    assert process_table()[stale_server].ppid == stale
    source = PROJECT / "reports" / "contracts.py"  # imported by every warm process
    before = source.stat()
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 2_000_000_000))
    try:
        assert wait_final(start_run("2013-04")).is_completed()
        wait_for("the stale process to exit", lambda: stale not in worker.warm_processes(), 60)
        wait_for(  # the process itself, whoever its parent is now
            "its fork server to exit", lambda: stale_server not in processes_with(worker.marker), 30
        )
        assert wait_final(start_run("2013-05")).is_completed()  # cold: the fresh one imports
        (fresh,) = wait_for("a fresh warm process", worker.warm_processes, timeout=60)
        wait_for("it to be ready", lambda: worker.text().count(READY) >= 2, timeout=240)
        slow(4)
        run_id = start_run("2013-07")
        (forked,) = wait_for("a run forked", worker.forked_runs, timeout=120)
        assert process_table()[forked].ppid == fresh
        assert [process_table()[p].ppid for p in worker.fork_servers()] == [fresh]
        assert wait_final(run_id).is_completed()
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_runs_start_cold_when_the_warm_process_is_gone(worker, slow):
    (warm,) = worker.warm_processes()
    os.kill(warm, signal.SIGKILL)
    wait_for("the warm process to be gone", lambda: warm not in worker.warm_processes(), 30)
    slow(4)
    run_id = start_run("2013-06")
    wait_for("the run to be Running", lambda: state_of(run_id).is_running(), every=0.2)
    (process,) = tracked(run_id)  # the client, which exec'd Prefect's engine itself
    assert b"prefect.engine" in _cmdline(process), _cmdline(process)
    assert wait_final(run_id).is_completed()
