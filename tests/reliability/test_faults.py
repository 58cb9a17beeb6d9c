"""Faults on real processes: a batch killed repeatedly, and a flaky data source.

Each batch runs as `reportrunner batch` in its own process, the way an operator or
a worker runs it, against the session's Prefect server.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest

from deployments.processes import stop_process_group
from prefect_helpers import (
    child_flow_runs,
    flow_run_artifacts,
    pdf_text,
    start_worker,
)

pytestmark = pytest.mark.usefixtures("prefect_server")  # the session's real server

CARRIERS = "AA,DL,UA,B6"
MONTHS = "2013-01,2013-02,2013-03,2013-04,2013-05,2013-06"


def _batch_command(report: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "deployments.cli",
        "batch",
        report,
        "--over",
        f"carrier={CARRIERS}",
        "--over",
        f"month={MONTHS}",
        "--chunk-size",
        "8",
    ]


def _complete_items(root: Path) -> dict[str, str]:
    """Item folder → manifest creation time, for items whose manifest matches its files."""
    complete = {}
    for manifest_path in root.rglob("manifest.json"):
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["files"]:
            data = (root / entry["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
        complete[manifest["item_dir"]] = manifest["created_at"]
    return complete


def _wait_for_children_to_exit(pid_marker: str, timeout: float = 30) -> None:
    """Render processes of a killed batch notice their parent is gone and exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [
            p for p in Path("/proc").iterdir() if p.name.isdigit() and _environ_has(p, pid_marker)
        ]
        if not alive:
            return
        time.sleep(0.5)
    commands = [
        (p / "cmdline").read_bytes().replace(b"\0", b" ")[:80]
        + b" | "
        + b" ".join(
            line.encode()
            for line in (p / "status").read_text().splitlines()
            if line.startswith(("PPid", "State", "Threads"))
        )
        for p in alive
    ]
    raise AssertionError(f"render processes outlived their killed batch: {commands}")


def _environ_has(proc: Path, marker: str) -> bool:
    try:
        return marker.encode() in (proc / "environ").read_bytes()
    except OSError:
        return False


def test_batch_killed_three_times_then_rerun_loses_and_duplicates_nothing(output_root: Path):
    rng = random.Random(20261128)
    marker = f"REPORTRUNNER_FAULT_RUN={rng.random()}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    completed_before_rerun: dict[str, str] = {}
    for kill in range(3):
        batch = subprocess.Popen(
            _batch_command("carrier-monthly"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(6, 14))  # somewhere in start-up, planning or rendering
        batch.send_signal(signal.SIGKILL)
        batch.wait()
        _wait_for_children_to_exit(marker)
        completed_before_rerun = _complete_items(output_root)
        assert not list(output_root.rglob("*.tmp")), f"partial files after kill {kill + 1}"

    final = subprocess.run(
        _batch_command("carrier-monthly"), env=env, capture_output=True, text=True, timeout=600
    )
    assert final.returncode == 0, final.stderr
    done = len(completed_before_rerun)
    assert f"{24 - done} rendered, {done} unchanged, 0 failed of 24" in final.stdout

    after = _complete_items(output_root)  # every hash checked against its manifest
    assert len(after) == 24
    for item, created in completed_before_rerun.items():
        assert after[item] == created, f"{item} was rendered again"
    pdfs = list(output_root.rglob("*.pdf"))
    assert len(pdfs) == 24 and len({p.parent for p in pdfs}) == 24
    pages, text = pdf_text(pdfs[0])
    assert pages >= 1 and "Carrier monthly performance" in text


def test_transient_source_failures_are_retried_to_completion(output_root: Path, tmp_path):
    env = {**os.environ, "FLAKY_TRANSIENT_DIR": str(tmp_path)}
    result = subprocess.run(
        _batch_command("flaky-carrier"), env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "24 rendered, 0 unchanged, 0 failed of 24" in result.stdout
    injected = {p.name for p in tmp_path.iterdir()}
    assert 4 <= len(injected) <= 12  # about 30% of 24 items failed their first load

    run_id = UUID(re.search(r"flow-run/([0-9a-f-]{36})", result.stdout).group(1))
    table = next(a for a in flow_run_artifacts(run_id) if a.type == "table")
    attempts = {row["item"]: row["attempts"] for row in json.loads(table.data)}
    assert len(attempts) == 24
    retried = {item for item, count in attempts.items() if count == 2}
    expected = {f"carrier={key.split('-', 1)[0]} month={key.split('-', 1)[1]}" for key in injected}
    assert retried == expected, "retry counts of the items must match the injected faults"
    assert all(count == 1 for item, count in attempts.items() if item not in expected)
    logs = _warnings_of([c.id for c in child_flow_runs(run_id)])
    assert sum("attempt 1 failed" in line and "retrying in" in line for line in logs) == len(
        expected
    )


def _warnings_of(flow_run_ids: list[UUID]) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=flow_run_ids), level=LogFilterLevel(ge_=30)
            ),
            limit=200,
        )
    return [log.message for log in logs]


def test_prefect_server_restart_mid_batch_loses_nothing(output_root: Path, tmp_path):
    from deployments.prefect_server import PrefectServer

    server = PrefectServer(home=tmp_path / "prefect")
    server.start(timeout=180)
    env = {**os.environ, "PREFECT_API_URL": server.api_url}
    batch = subprocess.Popen(
        _batch_command("carrier-monthly"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a group of its own, render processes included
    )
    try:
        time.sleep(10)  # the batch is rendering
        server.stop()
        time.sleep(3)
        server.start(timeout=180)  # same home and port: the batch's API URL is valid again
        batch.communicate(timeout=600)
        attempts = 1
        if batch.returncode != 0:  # the outage failed the run: retry it to completion
            retry = subprocess.run(
                _batch_command("carrier-monthly"),
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert retry.returncode == 0, retry.stderr
            attempts = 2
    finally:
        stop_process_group(batch, grace_s=10)
        server.stop()

    after = _complete_items(output_root)  # every file matches its manifest's sha256
    assert len(after) == 24, f"{len(after)} of 24 items complete after {attempts} run(s)"
    pdfs = list(output_root.rglob("*.pdf"))
    assert len(pdfs) == 24 and len({p.parent for p in pdfs}) == 24
    assert not list(output_root.rglob("*.tmp"))


# ---- a worker killed while holding runs ------------------------------------------------


def _heartbeat_every(seconds: int) -> dict[str, str]:
    return {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(seconds)}


def _wait_for_state(client, run_id: UUID, wanted: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    name = "?"
    while time.monotonic() < deadline:
        name = client.read_flow_run(run_id).state.name
        if name in wanted:
            return name
        time.sleep(2)
    raise AssertionError(f"flow run {run_id} is {name}, not {sorted(wanted)}, after {timeout} s")


def _heartbeats(api_url: str, run_id: UUID) -> int:
    import httpx

    response = httpx.post(
        f"{api_url}/events/filter",
        json={
            "filter": {
                "event": {"name": ["prefect.flow-run.heartbeat"]},
                "resource": {"id": [f"prefect.flow-run.{run_id}"]},
            },
            "limit": 10,
        },
        timeout=30,
    )
    response.raise_for_status()
    return len(response.json()["events"])


def _processes_of_run(run_id: UUID) -> dict[int, int]:
    """pid → process group of every process working for a flow run (found by its env)."""
    found = {}
    marker = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and _environ_has(proc, marker.decode()):
            try:
                found[int(proc.name)] = int(
                    (proc / "stat").read_text().rsplit(")", 1)[1].split()[2]
                )
            except OSError:
                continue
    return found


@pytest.mark.timeout(900)
def test_a_run_left_pending_by_a_dead_worker_is_crashed(prefect_server):
    """A worker killed after taking a run (Pending) but before its process began: the run
    never sends a heartbeat. The same automation crashes it after the same silence."""
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Pending

    from deployments.deploy import deploy
    from deployments.worker import ensure_zombie_detection

    deploy()
    with get_client(sync_client=True) as client:
        ensure_zombie_detection(client, 30)  # silence: 3 × 30 s
        run = run_deployment(
            "report/carrier-monthly",
            parameters={
                "report": "carrier-monthly",
                "parameters": {"carrier": "AA", "month": "2013-05"},
            },
            timeout=0,
        )
        # What a worker does when it takes a run, with nobody left to start its process.
        client.set_flow_run_state(run.id, Pending(), force=True)
        taken = time.monotonic()
        assert _wait_for_state(client, run.id, {"Crashed"}, timeout=600) == "Crashed"
        assert time.monotonic() - taken >= 85  # not before the silence (3 × 30 s, 5 s slack)
        assert "Pending that long" in client.read_flow_run(run.id).state.message


@pytest.mark.timeout(2700)  # minutes of real waiting on a loaded machine
def test_worker_killed_while_holding_runs_is_detected_and_recovered(output_root, prefect_server):
    """SIGKILL a worker (and its process group) mid-batch, with a run queued behind it.

    Operator procedure under test (docs/RELIABILITY.md): `reportrunner status` names the
    Crashed run; start a worker; retry the crashed run; the queued run needs nothing.
    """
    from prefect import get_client
    from prefect.deployments import run_deployment

    from deployments.deploy import deploy
    from deployments.worker import ensure_zombie_detection

    heartbeat = 30  # Prefect's minimum: detection after 3 missed beats, 90 s
    deploy()
    with get_client(sync_client=True) as client:
        ensure_zombie_detection(client, heartbeat)
    worker = start_worker("doomed", limit=1, env=_heartbeat_every(heartbeat))
    try:
        batch = run_deployment(
            "batch/carrier-monthly",
            parameters={
                "report": "carrier-monthly",
                "over": {"carrier": "*", "month": ["2013-01", "2013-02", "2013-03"]},
            },
            timeout=0,
        )
        with get_client(sync_client=True) as client:
            _wait_for_state(client, batch.id, {"Running"}, timeout=600)
            queued = run_deployment(
                "report/carrier-monthly",
                parameters={
                    "report": "carrier-monthly",
                    "parameters": {"carrier": "AA", "month": "2013-04"},
                },
                timeout=0,
            )
            deadline = time.monotonic() + 300
            while _heartbeats(prefect_server.api_url, batch.id) == 0:
                assert time.monotonic() < deadline, "the batch sent no heartbeat"
                time.sleep(2)
            # Found out: Prefect's process worker starts each flow run in a process group
            # of its own, so killing the worker (even its whole group) leaves the run going
            # on to the end. A lost machine takes both: kill both groups.
            holders = _processes_of_run(batch.id)
            groups = set(holders.values())
            assert holders and worker.pid not in groups, holders
            os.killpg(worker.pid, signal.SIGKILL)
            for group in groups:
                os.killpg(group, signal.SIGKILL)
            worker.wait()
            _wait_for_children_to_exit(f"PREFECT__FLOW_RUN_ID={batch.id}")
            assert client.read_flow_run(queued.id).state.name in {"Scheduled", "Late"}

            # Detected: no heartbeat for 90 s → Crashed, by the automation.
            assert _wait_for_state(client, batch.id, {"Crashed"}, timeout=600) == "Crashed"
            assert _wait_for_state(client, queued.id, {"Late"}, timeout=300) == "Late"
        status = subprocess.run(
            [sys.executable, "-m", "deployments.cli", "status", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        payload = json.loads(status.stdout)
        assert status.returncode == 1 and payload["late_runs"]["count"] >= 1
        crashed = [e for e in payload["failed_runs"]["examples"] if e["id"] == str(batch.id)]
        assert crashed and crashed[0]["state"] == "Crashed"

        # Recovery: a new worker, and the crashed batch retried the way the UI does it.
        worker = start_worker("replacement", limit=2, env=_heartbeat_every(heartbeat))
        retry = subprocess.run(
            [sys.executable, "-m", "prefect", "flow-run", "retry", str(batch.id)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert retry.returncode == 0, retry.stdout + retry.stderr
        with get_client(sync_client=True) as client:
            assert _wait_for_state(client, queued.id, {"Completed"}, 900) == "Completed"
            assert _wait_for_state(client, batch.id, {"Completed", "Failed"}, 1200) == "Completed"
    finally:
        stop_process_group(worker, grace_s=20)
    after = _complete_items(output_root)  # every file matches its manifest's sha256
    assert len(after) == 16 * 3 + 1
    assert not list(output_root.rglob("*.tmp"))
