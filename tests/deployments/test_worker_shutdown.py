"""`reportrunner worker` stops within 15 s of one SIGTERM and leaves no process behind.

Each worker starts the way a CI runner or `cmd &` in a script starts it: with SIGINT
ignored. That is how one SIGTERM once left a worker polling for minutes: Prefect's
worker stops by sending itself SIGINT, which the inherited SIG_IGN swallowed. Each
test stops the worker as an operator or systemd does (one SIGTERM to its process
group) with the test's own escalation to SIGKILL well beyond 15 s, so a slow stop
shows as a slow stop, then checks that nothing the worker started is alive: its
process group, the Prefect worker's group and the flow runs' own groups.

The module has a Prefect server of its own: the last test stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from deployments.prefect_server import PrefectServer, free_port
from deployments.processes import (
    live_group_members,
    proc_stat,
    process_table,
    processes_with,
    stop_process_group,
)
from deployments.worker import EXIT_FORCED_STOP
from prefect_helpers import start_worker

STOP_LIMIT_S = 15.0
TEST_GRACE_S = 40.0  # the test's own SIGKILL comes only long after the limit
MARKER = "REPORTRUNNER_TEST_WORKER"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory, settings) -> Iterator[PrefectServer]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = PrefectServer(home=tmp_path_factory.mktemp("shutdown-prefect"))
    server.start(timeout=300)
    try:
        # Both Prefect's settings and the environment (prefect_api reads it first; the
        # session server may have set it) point at this server.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PREFECT_API_URL", server.api_url)
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                yield server
    finally:
        server.stop()


@pytest.fixture
def _server(own_server):
    """Replaces tests/deployments/conftest.py's session server: these tests need their own."""
    return own_server


@pytest.fixture(scope="module")
def deployed(own_server) -> None:
    from deployments.deploy import deploy

    deploy()


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    marker: str
    log: Path

    def processes(self) -> list[int]:
        return processes_with(self.marker)

    def prefect_worker_pid(self) -> int:
        children = [s.pid for s in process_table().values() if s.ppid == self.process.pid]
        assert len(children) == 1, f"the supervisor should have one child, has {children}"
        return children[0]


@contextlib.contextmanager
def running_worker(server: PrefectServer, tmp_path: Path, name: str) -> Iterator[Worker]:
    marker = f"{MARKER}={uuid.uuid4().hex}"
    port = free_port()
    env = {
        "PREFECT_API_URL": server.api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # picks a new run up at once
        MARKER: marker.split("=", 1)[1],
    }
    log = tmp_path / f"{name}.log"
    process = start_worker(
        name, limit=1, env=env, log=log, healthcheck_port=port, sigint_ignored=True
    )
    worker = Worker(name, process, marker, log)
    try:
        _wait_until_serving(worker, port)
        yield worker
    finally:
        stop_process_group(process, TEST_GRACE_S)
        for pid in worker.processes():  # whatever a failed stop left in other sessions
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _wait_until_serving(worker: Worker, port: int, timeout: float = 240) -> None:
    """Online for the API and healthy on its own endpoint: Prefect's signal handlers are set."""
    from prefect import get_client
    from prefect.client.schemas.objects import WorkerStatus
    from prefect.exceptions import PrefectHTTPStatusError

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            assert worker.process.poll() is None, worker.log.read_text(errors="replace")
            try:
                workers = client.read_workers_for_work_pool("reports")
            except PrefectHTTPStatusError as exc:  # 404 until the worker has created the pool
                assert exc.response.status_code == 404, exc
                workers = []
            online = any(w.name == worker.name and w.status == WorkerStatus.ONLINE for w in workers)
            with contextlib.suppress(httpx.HTTPError):
                healthy = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).is_success
                if online and healthy:
                    return
            time.sleep(0.5)
    raise AssertionError(f"worker {worker.name} not serving after {timeout} s")


def _start_run() -> UUID:
    from prefect.deployments import run_deployment

    run = run_deployment(
        "report/carrier-monthly",
        parameters={
            "report": "carrier-monthly",
            "parameters": {"carrier": "HA", "month": "2013-06"},
        },
        timeout=0,
    )
    return run.id


def _wait_until_held(run_id: UUID, worker: Worker, timeout: float = 180) -> None:
    """The run is Running (sending heartbeats) in processes the worker started."""
    from prefect import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            holders = processes_with(f"PREFECT__FLOW_RUN_ID={run_id}")
            if holders and client.read_flow_run(run_id).state.is_running():
                assert set(holders) <= set(worker.processes()), "runs carry the worker's env"
                return
            time.sleep(0.2)
    raise AssertionError(f"flow run {run_id} not running on {worker.name} after {timeout} s")


def _sigterm(worker: Worker) -> tuple[float, set[int]]:
    """One SIGTERM to the worker's process group: seconds until it was gone, and the
    process groups of everything it had started."""
    groups = {stat.pgid for pid in worker.processes() if (stat := proc_stat(pid))}
    return stop_process_group(worker.process, TEST_GRACE_S), groups


def _assert_nothing_left(worker: Worker, groups: set[int]) -> None:
    assert worker.processes() == [], "processes of the worker outlived it"
    for group in groups:
        assert live_group_members(group) == [], f"process group {group} outlived the worker"


def test_one_sigterm_stops_a_worker_that_inherited_an_ignored_sigint(own_server, tmp_path):
    with running_worker(own_server, tmp_path, "sigint-ignored") as worker:
        took, groups = _sigterm(worker)
        assert took < STOP_LIMIT_S, f"stopped after {took:.1f} s"
        # Exit 0: Prefect's own graceful path ran; it was not killed after the grace.
        assert worker.process.returncode == 0, worker.log.read_text(errors="replace")
        _assert_nothing_left(worker, groups)


def test_one_sigterm_stops_a_worker_and_the_run_it_holds(own_server, deployed, tmp_path):
    from prefect import get_client

    with running_worker(own_server, tmp_path, "holding") as worker:
        run_id = _start_run()
        _wait_until_held(run_id, worker)
        took, groups = _sigterm(worker)
        assert took < STOP_LIMIT_S, f"stopped after {took:.1f} s"
        assert worker.process.returncode in (0, EXIT_FORCED_STOP)
        _assert_nothing_left(worker, groups)
        assert processes_with(f"PREFECT__FLOW_RUN_ID={run_id}") == []
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    # Not finished: Running until the heartbeat automation crashes it (or Crashed already).
    assert state.name in {"Running", "Crashed"}, state


def test_a_wedged_worker_is_killed_with_its_runs_after_the_grace(own_server, deployed, tmp_path):
    """Whatever keeps Prefect's worker from stopping (here SIGSTOP), the supervisor ends it
    and the flow runs it started in sessions of their own."""
    with running_worker(own_server, tmp_path, "wedged") as worker:
        run_id = _start_run()
        _wait_until_held(run_id, worker)
        os.kill(worker.prefect_worker_pid(), signal.SIGSTOP)
        took, groups = _sigterm(worker)
        assert took < STOP_LIMIT_S, f"stopped after {took:.1f} s"
        assert worker.process.returncode == EXIT_FORCED_STOP
        _assert_nothing_left(worker, groups)
        assert processes_with(f"PREFECT__FLOW_RUN_ID={run_id}") == []
        forced = [
            line
            for line in worker.log.read_text(errors="replace").splitlines()
            if "forced stop" in line
        ]
        assert len(forced) == 1 and forced[0].startswith("reportrunner worker: forced stop after")


def test_one_sigterm_stops_a_worker_whose_api_is_gone(own_server, tmp_path):
    """Last in this module: it stops the module's server."""
    with running_worker(own_server, tmp_path, "api-gone") as worker:
        own_server.stop()
        took, groups = _sigterm(worker)
        assert took < STOP_LIMIT_S, f"stopped after {took:.1f} s"
        assert worker.process.returncode in (0, EXIT_FORCED_STOP)
        _assert_nothing_left(worker, groups)
