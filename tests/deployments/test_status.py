"""`collect_status` against the session's real Prefect server.

Other tests share the server, so every object here has a unique name, counts are
compared with `>=`, and examples are looked up by this test's own run ids.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prefect import flow, get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings
from prefect.states import Late, Scheduled

from deployments.status import StatusReport, collect_status, exit_code

UNREACHABLE = "http://127.0.0.1:9/api"


@flow(name="status-test-boom")
def boom():
    raise ValueError("kaput")


@flow(name="status-test-waiting")
def waiting():
    return None


def _run_boom():
    state = boom(return_state=True)
    APILogWorker.drain_all(timeout=5)  # its logs reach the server before the session ends
    return state


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _pool(report: StatusReport, name: str):
    matches = [pool for pool in report.pools if pool.name == name]
    assert matches, f"pool {name} missing from {[p.name for p in report.pools]}"
    return matches[0]


def _problems_about(report: StatusReport, text: str) -> list[str]:
    return [problem for problem in report.problems if text in problem]


@pytest.fixture
def client():
    with get_client(sync_client=True) as prefect_client:
        yield prefect_client


@pytest.fixture
def new_pool(client):
    """Creates process work pools with unique names; deletes them afterwards."""
    created: list[str] = []

    def create() -> str:
        name = _unique("status-pool")
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        created.append(name)
        return name

    yield create
    for name in created:
        client.delete_work_pool(name)


@pytest.fixture
def flow_runs(client):
    """Flow run ids to delete afterwards, so no late run outlives its test."""
    ids: list = []
    yield ids
    for run_id in ids:
        client.delete_flow_run(run_id)


def test_fresh_pool_without_worker_is_not_ready(new_pool):
    name = new_pool()

    report = collect_status()

    assert report.api_ready
    pool = _pool(report, name)
    assert (pool.type, pool.status, pool.paused) == ("process", "NOT_READY", False)
    assert pool.workers == [] and pool.online_workers == 0
    assert [q.name for q in pool.queues] == ["default"]
    assert _problems_about(report, f"work pool '{name}' is NOT_READY: no online worker")
    assert not report.ok and exit_code(report) == 1


def test_paused_pool_and_paused_queue_are_problems(client, new_pool):
    name = new_pool()
    queue_name = _unique("status-queue")
    queue = client.create_work_queue(
        name=queue_name, work_pool_name=name, priority=5, concurrency_limit=3
    )
    client.update_work_pool(name, WorkPoolUpdate(is_paused=True))
    client.update_work_queue(queue.id, is_paused=True)

    report = collect_status()

    pool = _pool(report, name)
    assert (pool.status, pool.paused) == ("PAUSED", True)
    pool_problems = _problems_about(report, f"work pool '{name}' is PAUSED")
    assert len(pool_problems) == 1 and "no online worker" in pool_problems[0]
    queues = {q.name: q for q in pool.queues}
    assert (queues[queue_name].priority, queues[queue_name].concurrency_limit) == (5, 3)
    assert queues[queue_name].paused and not queues["default"].paused
    assert _problems_about(report, f"work queue '{queue_name}' of pool '{name}' is PAUSED")
    assert not _problems_about(report, "work queue 'default' of pool")

    text = report.render_text()
    assert name in text and queue_name in text
    pool_line = next(line for line in text.splitlines() if name in line)
    assert "PAUSED" in pool_line and "0 of 0 workers online" in pool_line
    queue_line = next(line for line in text.splitlines() if f"queue {queue_name}" in line)
    assert "PAUSED" in queue_line and "priority 5" in queue_line and "limit 3" in queue_line

    data = json.loads(json.dumps(report.as_dict()))
    entry = next(p for p in data["work_pools"] if p["name"] == name)
    assert entry["status"] == "PAUSED" and entry["paused"] is True
    assert {q["name"]: q["paused"] for q in entry["queues"]} == {
        "default": False,
        queue_name: True,
    }
    assert data["ok"] is False and data["exit_code"] == 1

    client.update_work_pool(name, WorkPoolUpdate(is_paused=False))
    client.update_work_queue(queue.id, is_paused=False)
    resumed = collect_status()
    assert _pool(resumed, name).status == "NOT_READY"
    assert not [p for p in resumed.problems if "PAUSED" in p and f"'{name}'" in p]


def test_worker_heartbeat_makes_it_online(client, new_pool):
    name = new_pool()
    worker = _unique("status-worker")
    client.send_worker_heartbeat(name, worker, heartbeat_interval_seconds=30)

    report = collect_status()

    pool = _pool(report, name)
    assert [(w.name, w.status) for w in pool.workers] == [(worker, "ONLINE")]
    assert pool.online_workers == 1 and pool.status == "READY"
    assert 0 <= pool.workers[0].heartbeat_age_s <= 30
    beat = datetime.fromisoformat(pool.workers[0].last_heartbeat)
    assert abs((datetime.now(UTC) - beat).total_seconds()) <= 30
    assert not [p for p in report.problems if f"'{name}'" in p]
    worker_line = next(line for line in report.render_text().splitlines() if worker in line)
    assert "ONLINE" in worker_line and "ago" in worker_line


def test_late_runs_are_counted_with_examples(client, flow_runs):
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=30)  # older than anything else on the server
    late = client.create_flow_run(
        waiting, name=_unique("status-late"), state=Scheduled(scheduled_time=long_ago)
    )
    flow_runs.append(late.id)
    client.set_flow_run_state(late.id, Late(scheduled_time=long_ago), force=True)
    # Waiting for 5 s only: late with late_after_s=0, not with the default 60 s.
    recent = client.create_flow_run(
        waiting,
        name=_unique("status-recent"),
        state=Scheduled(scheduled_time=now - timedelta(seconds=5)),
    )
    flow_runs.append(recent.id)
    future = client.create_flow_run(
        waiting,
        name=_unique("status-future"),
        state=Scheduled(scheduled_time=now + timedelta(hours=1)),
    )
    flow_runs.append(future.id)

    report = collect_status()
    eager = collect_status(late_after_s=0)

    assert report.late.count >= 1
    assert report.late.examples[0].id == str(late.id)  # oldest first
    example = report.late.examples[0]
    assert (example.name, example.flow, example.state) == (late.name, "status-test-waiting", "Late")
    assert example.time == long_ago.isoformat(timespec="seconds")
    ids = {e.id for e in report.late.examples}
    assert str(future.id) not in ids and str(recent.id) not in ids
    assert eager.late.count >= report.late.count + 1  # the recent run counts at 0 s
    assert _problems_about(report, "late")
    assert "LATE RUNS" in report.render_text() and late.name in report.render_text()


def test_failed_run_is_counted_in_the_window(flow_runs):
    state = _run_boom()
    assert state.is_failed()
    run_id = str(state.state_details.flow_run_id)
    flow_runs.append(state.state_details.flow_run_id)

    report = collect_status()

    assert report.failures.count >= 1
    mine = [e for e in report.failures.examples if e.id == run_id]
    assert mine, "the newest failure is among the examples"
    assert mine[0].flow == "status-test-boom" and mine[0].state == "Failed"
    assert "kaput" in mine[0].message and "\n" not in mine[0].message
    assert _problems_about(report, "failed or crashed in the last 60 min")
    assert "kaput" in report.render_text()

    time.sleep(2.5)
    narrow = collect_status(failure_window_s=1)
    assert run_id not in {e.id for e in narrow.failures.examples}
    assert narrow.failures.count < report.failures.count


def test_unreachable_api_is_one_line_and_exit_code_2():
    started = time.monotonic()
    report = collect_status(UNREACHABLE)

    assert time.monotonic() - started < 15
    assert not report.ok and not report.api_ready and exit_code(report) == 2
    assert len(report.problems) == 1
    assert "\n" not in report.problems[0] and UNREACHABLE in report.problems[0]
    text = report.render_text()
    assert "UNREACHABLE" in text and "DOWN" in text
    data = json.loads(json.dumps(report.as_dict()))
    healthy = collect_status().as_dict()
    assert list(data) == list(healthy)  # stable keys whatever happens
    assert data["late_runs"]["count"] is None and data["work_pools"] == []


def test_no_credentials_in_the_output(prefect_server):
    auth = "admin:hunter2-auth-secret"
    parts = httpx.URL(prefect_server.api_url)
    with_password = str(parts.copy_with(username="ops", password="pw-url-secret"))
    with temporary_settings(updates={PREFECT_API_AUTH_STRING: auth}):
        reachable = collect_status(with_password)
        unreachable = collect_status("http://ops:pw-url-secret@127.0.0.1:9/api?token=tk-secret")

    assert reachable.api_ready and reachable.api_url == prefect_server.api_url
    assert not unreachable.api_ready
    secrets = ["hunter2", "pw-url-secret", "tk-secret", base64.b64encode(auth.encode()).decode()]
    for report in (reachable, unreachable):
        output = report.render_text() + json.dumps(report.as_dict())
        assert not [secret for secret in secrets if secret in output]
    assert unreachable.api_url == "http://127.0.0.1:9/api"


def test_api_calls_are_bounded(monkeypatch, client, new_pool):
    new_pool()
    for _ in range(3):
        _run_boom()  # more runs must not mean more calls
    sent: list[str] = []
    original = httpx.Client.send

    def counting_send(self, request, *args, **kwargs):
        sent.append(f"{request.method} {request.url.path}")
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", counting_send)
    report = collect_status()
    monkeypatch.undo()

    examples = report.late.examples + report.failures.examples
    csrf = sent.count("GET /api/csrf-token")  # Prefect's client asks once before a POST
    assert csrf <= 1
    expected = (
        3  # health, work pools, work queues
        + csrf
        + len(report.pools)  # workers, one call per pool
        + 2  # late and failed counts
        + bool(report.late.examples)
        + bool(report.failures.examples)
        + bool(examples)  # flow names of the examples
    )
    assert len(sent) == expected, sent
    assert len(report.failures.examples) <= 5 and len(report.late.examples) <= 5
    assert sum("/flow_runs/filter" in call for call in sent) <= 2
