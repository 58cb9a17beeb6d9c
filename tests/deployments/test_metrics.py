"""`reportrunner metrics`: the Prometheus exporter and its /health probe.

The exporter runs in this process on a free port, against the session's Prefect server
and item index; a real batch with one broken carrier fills the index. The /health test
needs a server whose every pool, run and worker it controls (the session's server has
failures of other tests in its last hour, so it is never healthy): it starts its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prefect import flow, get_client
from prefect.states import Running, StateType
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from deployments.metrics import DURATION_BUCKETS, MAX_SCRAPE_CALLS, MetricsExporter
from deployments.prefect_server import PrefectServer, free_port
from deployments.processes import stop_process_group
from prefect_api import ApiConfig
from prefect_helpers import start_worker
from reports.contracts import Outcome, ProgressSnapshot, item_key
from reports.index import get_batch, get_item, open_index
from reports.index._schema import items as items_table

REPORT = "flaky-carrier"
CARRIERS = ["9E", "FL", "OO"]  # × MONTHS: items no other test renders
MONTHS = ["2013-12"]
BROKEN = "FL"
CALL_BUDGET = 10


@flow(name="metrics-test-batch")
def pretend_batch():
    return None


# ---- helpers -------------------------------------------------------------------------------


class Scrape:
    """One /metrics answer, parsed with Prometheus's own parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float | None:
        found = [
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        return sum(found) if found else None

    def by(self, name: str, label: str, **labels: str) -> dict[str, float]:
        return {
            s.labels[label]: s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        }


def scrape(url: str) -> Scrape:
    response = httpx.get(f"{url}/metrics", timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout:.0f} s (last: {last!r})")


@pytest.fixture
def exporter():
    """Starts exporters on free ports (alert checks off); stops them afterwards."""
    servers = []

    def start(config: ApiConfig | None = None, cache_s: float = 0.0):
        exporter = MetricsExporter(config, cache_s=cache_s, alert_interval_s=0)
        servers.append(exporter.serve("127.0.0.1", free_port()))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# ---- the session's server and index ------------------------------------------------------


def test_a_batch_with_a_failing_item_is_counted_by_status_in_bounded_calls(
    exporter, output_root, settings
):
    keys = [item_key({"carrier": c, "month": m}) for c in CARRIERS for m in MONTHS]
    assert all(get_item(open_index(), REPORT, key) is None for key in keys), "items not new"
    server = exporter()
    before = scrape(server.url)

    broken = settings.resolved_data_dir / f"broken-{BROKEN}"
    broken.touch()
    try:
        state = _run_batch()
    finally:
        broken.unlink()
    assert state.type == StateType.FAILED  # one item failed, the others rendered
    summary, _ = get_batch(open_index(), str(state.state_details.flow_run_id))
    failed = len(MONTHS)
    rendered = len(keys) - failed
    assert summary.counts == {"rendered": rendered, "failed": failed}

    after = scrape(server.url)

    def items(sample: Scrape) -> dict[str, float]:
        return sample.by("reportrunner_items_total", "status", report=REPORT)

    grown = {s: items(after)[s] - items(before).get(s, 0) for s in items(after)}
    assert grown == {
        "rendered": rendered,
        "failed": failed,
        "unchanged": 0,
        "flagged": 0,
        "running": 0,
        "pending": 0,
    }
    # The same as the index says, status by status.
    with open_index().transaction() as connection:
        rows = connection.execute(
            select(items_table.c.status, func.count())
            .where(items_table.c.report == REPORT)
            .group_by(items_table.c.status)
        ).all()
    assert {s: v for s, v in items(after).items() if v} == dict(rows)

    def renders(sample: Scrape, status: str) -> float:
        return sample.value("reportrunner_renders_total", report=REPORT, status=status) or 0

    assert renders(after, "rendered") - renders(before, "rendered") == rendered
    assert renders(after, "failed") - renders(before, "failed") == failed
    assert "rendered = outputs made" in after.text  # the HELP says which is which

    timed = "reportrunner_render_duration_seconds_count"
    assert (after.value(timed, report=REPORT) or 0) - (before.value(timed, report=REPORT) or 0) == (
        rendered
    )
    buckets = after.by("reportrunner_render_duration_seconds_bucket", "le", report=REPORT)
    assert list(buckets) == [*(str(float(b)) for b in DURATION_BUCKETS), "+Inf"]
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    assert buckets["+Inf"] == after.value(timed, report=REPORT)

    assert after.value("reportrunner_up", component="api") == 1
    assert after.value("reportrunner_up", component="index") == 1
    calls = after.value("reportrunner_scrape_api_calls")
    assert 1 <= calls <= CALL_BUDGET, f"{calls:.0f} API calls in one scrape"
    assert after.value("reportrunner_scrape_duration_seconds") > 0
    for family in (
        "reportrunner_late_runs",
        "reportrunner_queue_paused",
        "reportrunner_pool_paused",
    ):
        assert f"# TYPE {family} gauge" in after.text
    # Labels stay bounded: no run ids, no parameter values.
    run_id = str(state.state_details.flow_run_id)
    assert run_id not in after.text and "carrier=" not in after.text


def _run_batch():
    from flows import batch

    return batch(report=REPORT, over={"carrier": CARRIERS, "month": MONTHS}, return_state=True)


def test_running_batches_count_per_report_with_their_eta_and_a_crashed_one_is_left_out(exporter):
    from prefect.client.schemas.actions import ArtifactCreate

    index = open_index()
    live, crashed = f"metrics-live-{uuid.uuid4().hex[:6]}", f"metrics-dead-{uuid.uuid4().hex[:6]}"
    carriers = [{"carrier": c} for c in ("AA", "DL", "UA", "WN")]
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(pretend_batch, name=live, state=Running())
        dead_id = str(uuid.uuid4())  # a batch whose run is gone: the index still says running
        try:
            index.start_batch(str(run.id), live, live, ["carrier"], carriers)
            index.start_batch(dead_id, crashed, crashed, ["carrier"], carriers[:3])
            index.record(live, [Outcome.failed(carriers[0], "boom")], batch_id=str(run.id))
            index.mark(live, carriers[1:2], "running", batch_id=str(run.id))
            snapshot = ProgressSnapshot(total=4, failed=1, elapsed_s=12.0, eta_s=42.0)
            client.create_artifact(
                ArtifactCreate(
                    type="progress",
                    data=snapshot.percent,
                    description=snapshot.description(),
                    flow_run_id=run.id,
                )
            )

            result = scrape(exporter().url)
        finally:
            client.delete_flow_run(run.id)
            index.finish_batch(str(run.id), "failed", "test over")
            index.finish_batch(dead_id, "failed", "test over")

    assert result.by("reportrunner_batch_items", "state", report=live) == {"done": 1, "total": 4}
    assert result.value("reportrunner_batch_eta_seconds", report=live) == 42.0
    assert result.by("reportrunner_batch_items", "state", report=crashed) == {}
    assert result.value("reportrunner_batch_eta_seconds", report=crashed) is None
    assert result.value("reportrunner_flow_runs", state="RUNNING") >= 1
    assert result.value("reportrunner_scrape_api_calls") <= CALL_BUDGET


class BusyServer:
    """A Prefect API (httpx MockTransport) with more active and late runs than a scrape
    reads in full: the runs beyond are counted by the server, not listed."""

    ACTIVE, LATE = 600, 255  # runs the server has; pages of ACTIVE_PAGE and LATE_PAGE

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.deployment = str(uuid.uuid4())
        now = datetime.now(UTC)
        self.due = now - timedelta(hours=2)

    def _run(self, state: str, name: str, queue: str | None) -> dict:
        return {
            "id": str(uuid.uuid4()),
            "state_type": state,
            "state_name": name,
            "deployment_id": self.deployment,
            "work_queue_name": queue,
            "next_scheduled_start_time": self.due.isoformat() if name == "Late" else None,
            "expected_start_time": self.due.isoformat(),
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api")
        self.asked.append(f"{request.method} {path}")
        body = json.loads(request.content) if request.content else {}
        now = datetime.now(UTC).isoformat()
        if path == "/csrf-token":
            answer: Any = {"token": "t", "client": "c", "expiration": "2999-01-01T00:00:00Z"}
        elif path == "/work_pools/filter":
            answer = [
                {"id": str(uuid.uuid4()), "name": "reports", "type": "process",
                 "is_paused": False, "status": "READY", "created": now, "updated": now}
            ]  # fmt: skip
        elif path == "/work_queues/filter":
            answer = [
                {"id": str(uuid.uuid4()), "name": name, "work_pool_name": "reports",
                 "work_pool_id": str(uuid.uuid4()), "is_paused": name == "chunks",
                 "priority": 1, "created": now, "updated": now}
                for name in ("adhoc", "chunks")
            ]  # fmt: skip
        elif path == "/work_pools/reports/workers/filter":
            answer = [
                {"id": str(uuid.uuid4()), "name": "w1", "work_pool_id": str(uuid.uuid4()),
                 "status": "ONLINE", "last_heartbeat_time": now, "created": now, "updated": now}
            ]  # fmt: skip
        elif path == "/flow_runs/filter" and body["flow_runs"].get("operator") == "or_":
            answer = [self._run("SCHEDULED", "Late", "adhoc") for _ in range(body["limit"])]
        elif path == "/flow_runs/filter":
            running = [self._run("RUNNING", "Running", "chunks") for _ in range(3)]
            late = [self._run("SCHEDULED", "Late", "adhoc") for _ in range(body["limit"] - 3)]
            answer = running + late
        elif path == "/flow_runs/history":
            states = [
                {"state_type": "SCHEDULED", "state_name": "Scheduled",
                 "count_runs": self.ACTIVE - self.LATE - 3},
                {"state_type": "SCHEDULED", "state_name": "Late", "count_runs": self.LATE},
                {"state_type": "RUNNING", "state_name": "Running", "count_runs": 3},
            ]  # fmt: skip
            answer = [{"interval_start": now, "interval_end": now, "states": states}]
        elif path == "/flow_runs/count":
            answer = self.LATE
        elif path == "/deployments/filter":
            answer = [{"id": self.deployment, "name": "report-adhoc", "flow_id": str(uuid.uuid4())}]
        else:
            return httpx.Response(404, json={"detail": path})
        return httpx.Response(200, json=answer)


def test_runs_beyond_a_page_are_counted_by_the_server_in_a_bounded_number_of_calls(tmp_path):
    from deployments.metrics import ACTIVE_PAGE, LATE_PAGE, OTHER

    fake = BusyServer()
    config = ApiConfig(url="http://prefect.test/api", transport=httpx.MockTransport(fake))
    index = f"sqlite:///{tmp_path / 'index.sqlite'}"  # empty: no running batch to look up
    exporter = MetricsExporter(config, cache_s=0, index_url=index, alert_interval_s=0)

    result = Scrape(exporter.scrape().decode())

    runs = result.by("reportrunner_flow_runs", "state", deployment="report-adhoc")
    assert runs == {"RUNNING": 3, "LATE": ACTIVE_PAGE - 3}
    beyond = result.by("reportrunner_flow_runs", "state", deployment=OTHER, queue=OTHER)
    assert beyond == {
        "SCHEDULED": fake.ACTIVE - fake.LATE - 3,
        "LATE": fake.LATE - (ACTIVE_PAGE - 3),
    }
    total = sum(s.value for s in result.samples if s.name == "reportrunner_flow_runs")
    assert total == fake.ACTIVE  # exact, page or not
    late = result.by("reportrunner_late_runs", "queue")
    assert late == {"adhoc": LATE_PAGE, "chunks": 0, OTHER: fake.LATE - LATE_PAGE}
    oldest = result.by("reportrunner_oldest_late_run_age_seconds", "queue")
    assert 7100 < oldest["adhoc"] < 7300 and oldest["chunks"] == 0
    assert result.by("reportrunner_queue_paused", "queue") == {"adhoc": 0, "chunks": 1}
    assert result.value("reportrunner_workers_online", pool="reports") == 1
    calls = result.value("reportrunner_scrape_api_calls")
    assert calls == len(fake.asked) == 9 <= MAX_SCRAPE_CALLS, fake.asked
    assert sorted(set(fake.asked)) == [
        "GET /csrf-token",
        "POST /deployments/filter",
        "POST /flow_runs/count",
        "POST /flow_runs/filter",
        "POST /flow_runs/history",
        "POST /work_pools/filter",
        "POST /work_pools/reports/workers/filter",
        "POST /work_queues/filter",
    ]

    fake.asked.clear()
    Scrape(exporter.scrape().decode())
    assert "POST /deployments/filter" not in fake.asked  # names are kept


def test_with_the_index_down_the_api_metrics_are_still_served():
    fake = BusyServer()
    config = ApiConfig(url="http://prefect.test/api", transport=httpx.MockTransport(fake))
    unreachable = "postgresql+psycopg2://nobody@127.0.0.1:1/reportrunner"
    exporter = MetricsExporter(config, cache_s=0, index_url=unreachable, alert_interval_s=0)

    result = Scrape(exporter.scrape().decode())

    assert result.value("reportrunner_up", component="index") == 0
    assert result.value("reportrunner_up", component="api") == 1
    assert "reportrunner_items_total" not in result.families
    assert sum(s.value for s in result.samples if s.name == "reportrunner_flow_runs") == 600


def test_with_the_api_down_the_index_metrics_are_still_served(exporter):
    down = ApiConfig(url="http://127.0.0.1:9/api", retries=0, timeout_s=2)
    server = exporter(config=down)

    result = scrape(server.url)

    assert result.value("reportrunner_up", component="api") == 0
    assert result.value("reportrunner_up", component="index") == 1
    assert "# TYPE reportrunner_items_total gauge" in result.text
    assert "reportrunner_renders_total" in result.text
    assert "reportrunner_flow_runs" not in result.families
    health = httpx.get(f"{server.url}/health", timeout=60)
    assert health.status_code == 503
    body = health.json()
    assert body["api"]["ready"] is False and body["exit_code"] == 2
    assert body["problems"][0].startswith("Prefect API unreachable")


def test_scrapers_arriving_together_share_one_collection(exporter, monkeypatch):
    collections = []
    original = MetricsExporter._collect

    def counted(self):
        collections.append(time.monotonic())
        return original(self)

    monkeypatch.setattr(MetricsExporter, "_collect", counted)
    server = exporter(cache_s=60)
    answers: list[str] = []
    threads = [
        threading.Thread(target=lambda: answers.append(scrape(server.url).text)) for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == 5 and len(set(answers)) == 1
    assert len(collections) == 1

    uncached = exporter(cache_s=0)
    scrape(uncached.url)
    scrape(uncached.url)
    assert len(collections) == 3


def test_the_failure_spike_check_runs_when_its_module_exists(monkeypatch):
    import types

    exporter = MetricsExporter(alert_interval_s=0)
    monkeypatch.setitem(sys.modules, "deployments.alert_checks", None)  # absent
    assert exporter.run_alert_checks() is False

    calls = []
    module = types.ModuleType("deployments.alert_checks")
    module.emit_failure_spikes = lambda api, now: calls.append((api.config.url, now))
    monkeypatch.setitem(sys.modules, "deployments.alert_checks", module)
    assert exporter.run_alert_checks() is True
    assert calls and calls[0][0] == os.environ["PREFECT_API_URL"]
    assert calls[0][1].tzinfo is not None


def test_the_command_serves_until_sigterm_and_leaves_nothing_behind():
    port = free_port()
    command = [sys.executable, "-m", "deployments.cli", "metrics", "--port", str(port)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def alive() -> bool:
            assert process.poll() is None, process.stdout.read()
            try:
                return httpx.get(f"{url}/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(alive, 60, "the exporter answering")
        result = scrape(url)
        assert result.value("reportrunner_up", component="api") == 1
        took = stop_process_group(process, grace_s=10)
        assert took < 5 and process.returncode == 0
        assert f"Metrics: {url}/metrics" in process.stdout.read()
    finally:
        stop_process_group(process, grace_s=5)


# ---- /health against a server of its own -----------------------------------------------------


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    server = PrefectServer(home=tmp_path_factory.mktemp("metrics-health") / "prefect")
    server.start(timeout=240)
    try:
        yield server
    finally:
        server.stop()


def test_health_is_503_when_the_only_worker_stops_and_200_when_a_worker_returns(
    exporter, own_server, tmp_path
):
    server = exporter(config=ApiConfig(url=own_server.api_url, retries=0))
    env = {
        "PREFECT_API_URL": own_server.api_url,
        # Offline three heartbeats after the last one: seconds, not minutes.
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "2",
    }

    def health() -> tuple[int, dict]:
        response = httpx.get(f"{server.url}/health", timeout=60)
        return response.status_code, response.json()

    def healthy():  # the pool exists once a worker has polled it
        code, body = health()
        online = {p["name"]: p["online_workers"] for p in body["work_pools"]}
        return body if code == 200 and body["exit_code"] == 0 and online.get("reports") else None

    def no_worker():
        code, body = health()
        problems = [p for p in body["problems"] if "no online worker" in p]
        return body if code == 503 and body["exit_code"] == 1 and problems else None

    workers = []
    try:
        workers.append(start_worker("first", limit=1, env=env, log=tmp_path / "first.log"))
        body = eventually(healthy, 90, "HTTP 200 with one worker online")
        (pool,) = body["work_pools"]
        assert pool["name"] == "reports" and pool["online_workers"] == 1
        online = scrape(server.url)
        assert online.value("reportrunner_workers_online", pool="reports") == 1
        assert online.value("reportrunner_pool_paused", pool="reports") == 0

        stop_process_group(workers[0], grace_s=15)
        body = eventually(no_worker, 60, "HTTP 503 once the only worker stopped")
        assert body["ok"] is False
        assert scrape(server.url).value("reportrunner_workers_online", pool="reports") == 0

        workers.append(start_worker("second", limit=1, env=env, log=tmp_path / "second.log"))
        eventually(healthy, 90, "HTTP 200 again with a new worker")
    finally:
        for worker in workers:
            stop_process_group(worker, grace_s=15)


def test_metrics_is_the_only_path_besides_health(exporter):
    server = exporter(config=ApiConfig(url="http://127.0.0.1:9/api", retries=0))
    assert httpx.get(f"{server.url}/nope").status_code == 404
    assert httpx.get(f"{server.url}/").status_code == 200
