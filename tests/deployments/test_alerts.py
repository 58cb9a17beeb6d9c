"""Alerts: `reportrunner deploy` makes them Prefect automations that post to the webhook.

Against the session's real Prefect server, whose triggers and actions services run the
automations, with a local HTTP listener standing in for Slack/Teams: the path from the
event (a pool without workers, a Late run, a deadline or failure-spike event) through
the trigger, the notification block and the webhook POST is the real one. Every wait
is on a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect import flow, get_client
from prefect.client.schemas.objects import WorkPoolStatus
from prefect.states import Completed, Failed, Running, Scheduled

from deployments.alert_checks import emit_failure_spikes, spike_event_id
from deployments.alerts import ALERT_NAMES, BACKLOG, DEADLINE, FAILURE_SPIKE, NO_WORKER
from deployments.alerts import ensure_alerts as apply_alerts
from deployments.deploy import deploy
from deployments.notifications import ensure_failure_notifications, webhook_block_id
from deployments.processes import processes_with, stop_process_group
from deployments.topology import WORK_POOL
from prefect_api import ApiConfig, actions, connect
from prefect_helpers import start_worker
from reports.contracts import DEADLINE_EVENT, FAILURE_SPIKE_EVENT, batch_resource, report_resource
from reports.settings import get_settings

DASHBOARD = "https://reports.example.test/dash"
DEPLOYMENT = "report/carrier-monthly"
RUN_PARAMETERS = {"report": "carrier-monthly", "parameters": {"carrier": "AA", "month": "2013-01"}}


# ---- a webhook listener, and the settings the alerts are made from -------------------------


@dataclass
class Webhook:
    url: str
    env: pytest.MonkeyPatch
    received: queue.Queue = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)  # the "text" of every POST, in order

    def configure(self, **variables: str) -> None:
        """Set REPORTRUNNER_<NAME> variables for the settings `deploy` reads."""
        for name, value in variables.items():
            self.env.setenv(f"REPORTRUNNER_{name.upper()}", value)
        get_settings.cache_clear()

    def wait_for(self, found: Callable[[str], bool], timeout: float) -> list[str]:
        """Every message so far for which `found` holds, waiting until there is one."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain(max(0.0, min(0.5, deadline - time.monotonic())))
            hits = [text for text in self.seen if found(text)]
            if hits or time.monotonic() >= deadline:
                return hits

    def drain(self, wait: float) -> None:
        """Take what arrived, waiting up to `wait` seconds for the first one."""
        try:
            raw = self.received.get(timeout=wait) if wait else self.received.get_nowait()
            while True:
                self.seen.append(json.loads(raw)["text"])
                raw = self.received.get_nowait()
        except queue.Empty:
            pass


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.put(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.MonkeyPatch.context() as env:
            hook = Webhook(url, env, received)
            hook.configure(failure_webhook_url=f"{url}/hook", dashboard_url=DASHBOARD)
            yield hook
    finally:
        get_settings.cache_clear()
        # Later tests must not post anywhere: no block, no failure or alert automations.
        with get_client(sync_client=True) as client:
            apply_alerts(client, None, get_settings())
        ensure_failure_notifications(None)
        server.shutdown()
        server.server_close()


def _apply_alerts() -> None:
    """What `deploy` does for the alerts, without re-applying every deployment."""
    webhook_url = get_settings().failure_webhook_url
    assert webhook_url is not None
    with get_client(sync_client=True) as client:
        ensure_failure_notifications(webhook_url.get_secret_value(), client)
        apply_alerts(client, webhook_block_id(client), get_settings())


def _automations() -> dict[str, list]:
    with get_client(sync_client=True) as client:
        return {name: client.read_automations_by_name(name) for name in ALERT_NAMES}


@pytest.fixture
def deployed(webhook) -> None:
    """The deployments exist (a run of one waits on the `reports` pool)."""
    deploy()


# ---- deploy --------------------------------------------------------------------------------


def test_deploy_creates_updates_and_removes_the_alerts(webhook: Webhook):
    first = deploy()
    assert [n for n in first.notes if n.startswith("alerts:")] == [
        f"alerts: created {name}" for name in ALERT_NAMES
    ]
    created = _automations()
    assert all(len(found) == 1 and found[0].enabled for found in created.values()), created
    with get_client(sync_client=True) as client:
        block_id = webhook_block_id(client)
    for (automation,) in created.values():  # each posts through the one webhook block
        (action,) = automation.actions
        assert action.type == "send-notification" and action.block_document_id == block_id
    (backlog,) = created[BACKLOG]
    assert backlog.trigger.type == "compound" and backlog.trigger.require == "any"
    proactive, reactive = backlog.trigger.triggers
    assert proactive.posture == "Proactive" and proactive.within == timedelta(minutes=10)
    assert reactive.posture == "Reactive" and reactive.threshold == 5
    assert created[NO_WORKER][0].trigger.within == timedelta(minutes=5)
    assert created[DEADLINE][0].trigger.expect == {DEADLINE_EVENT}
    assert created[FAILURE_SPIKE][0].trigger.expect == {FAILURE_SPIKE_EVENT}
    assert DASHBOARD + "/operations" in created[NO_WORKER][0].actions[0].body

    # Again: nothing changes. A changed setting updates that one alert, in place.
    again = deploy()
    assert [n for n in again.notes if n.startswith("alerts:")] == [
        f"alerts: unchanged {name}" for name in ALERT_NAMES
    ]
    webhook.configure(alert_late_runs="7")
    changed = deploy()
    assert f"alerts: updated {BACKLOG}" in changed.notes
    assert f"alerts: unchanged {NO_WORKER}" in changed.notes
    (updated,) = _automations()[BACKLOG]
    assert updated.id == backlog.id and updated.trigger.triggers[1].threshold == 7

    # No webhook: no alerts, and the deploy summary says so.
    webhook.env.delenv("REPORTRUNNER_FAILURE_WEBHOOK_URL")
    get_settings.cache_clear()
    removed = deploy()
    (note,) = [n for n in removed.notes if n.startswith("alerts:")]
    assert note.startswith("alerts: no webhook set (REPORTRUNNER_FAILURE_WEBHOOK_URL); removed")
    assert all(name in note for name in ALERT_NAMES)
    assert _automations() == {name: [] for name in ALERT_NAMES}
    (note,) = [n for n in deploy().notes if n.startswith("alerts:")]
    assert note.endswith("; none configured")


# ---- no worker -----------------------------------------------------------------------------


def test_pool_without_worker_alerts_with_a_link_to_operations(webhook: Webhook, deployed, tmp_path):
    webhook.configure(alert_no_worker_minutes="0.2")  # 12 s
    _apply_alerts()
    marker = f"REPORTRUNNER_TEST_ALERT_WORKER={uuid.uuid4().hex}"
    env = {
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "2",  # offline after 3 missed: 6 s
        marker.split("=")[0]: marker.split("=")[1],
    }
    worker = start_worker("alerts-worker", limit=1, env=env, log=tmp_path / "worker.log")
    run_id = None
    try:
        _wait_for_pool(WorkPoolStatus.READY, timeout=180, worker=worker, log=tmp_path)
        stop_process_group(worker, grace_s=20)
        with get_client(sync_client=True) as client:  # a run waits for a worker
            deployment = client.read_deployment_by_name(DEPLOYMENT)
            run_id = client.create_flow_run_from_deployment(
                deployment.id, parameters=RUN_PARAMETERS
            ).id
        # Other tests' workers may still count as online until they miss 3 heartbeats.
        not_ready_at = _wait_for_pool(WorkPoolStatus.NOT_READY, timeout=300)

        hits = webhook.wait_for(lambda text: f"pool `{WORK_POOL}`" in text, timeout=90)
        assert hits, f"no no-worker alert within 90 s of NOT_READY; got {webhook.seen}"
        text = hits[0]
        assert text.startswith(f"reportrunner: no worker online for pool `{WORK_POOL}` for 0.2 min")
        assert f"{DASHBOARD}/operations" in text
        since = text.split("no online worker since ", 1)[1].split(": ", 1)[0]
        # The event's time: the foreman saw no online worker (within its 15 s loop).
        assert abs(datetime.fromisoformat(since) - not_ready_at) < timedelta(seconds=30)
    finally:
        stop_process_group(worker, grace_s=20)
        for pid in processes_with(marker):  # anything a failed stop left behind
            os.kill(pid, signal.SIGKILL)
        if run_id is not None:
            with get_client(sync_client=True) as client:
                client.delete_flow_run(run_id)


def _wait_for_pool(status, timeout: float, worker=None, log=None) -> datetime:
    """Wait until the `reports` pool has `status`; when it was first seen so."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            if client.read_work_pool(WORK_POOL).status == status:
                return datetime.now(UTC)
            if worker is not None and worker.poll() is not None:
                text = (log / "worker.log").read_text(errors="replace")
                raise AssertionError(f"the worker exited early:\n{text[-3000:]}")
            assert time.monotonic() < deadline, f"pool {WORK_POOL} not {status} after {timeout} s"
            time.sleep(0.5)


# ---- backlog -------------------------------------------------------------------------------


def test_late_runs_alert_each_run_and_the_count(webhook: Webhook, deployed):
    webhook.configure(alert_backlog_minutes="0.2", alert_late_runs="2")
    _apply_alerts()
    # No online worker (an earlier test's may count as online until it misses 3
    # heartbeats): the runs must wait.
    _wait_for_pool(WorkPoolStatus.NOT_READY, timeout=300)
    due = datetime.now(UTC) - timedelta(minutes=1)  # Late at the server's next check
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        runs = [
            client.create_flow_run_from_deployment(
                deployment.id, parameters=RUN_PARAMETERS, state=Scheduled(scheduled_time=due)
            )
            for _ in range(2)
        ]
    try:
        links = {f"{DASHBOARD}/run?id={run.id}": run for run in runs}
        for link, run in links.items():
            hits = webhook.wait_for(lambda text, link=link: text.endswith(link), timeout=120)
            assert hits, f"no backlog alert for run {run.id} within 120 s; got {webhook.seen}"
            assert hits[0].startswith("reportrunner: run `")
            assert "has waited 0.2 min for a worker" in hits[0]
            assert "turned Late at " in hits[0] and "queue `adhoc`" in hits[0]
        count = webhook.wait_for(lambda text: "2 runs turned Late within 0.2 min" in text, 30)
        assert count, f"no late-runs alert; got {webhook.seen}"
        assert count[0].endswith(f"{DASHBOARD}/runs")
        assert len([t for t in webhook.seen for link in links if t.endswith(link)]) == 2
    finally:
        with get_client(sync_client=True) as client:
            for run in runs:
                client.delete_flow_run(run.id)


# ---- batch deadline ------------------------------------------------------------------------


def test_deadline_event_posts_one_message_with_eta_and_batch_link(webhook: Webhook):
    _apply_alerts()
    batch_id = str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0)
    link = f"{DASHBOARD}/batch?id={batch_id}"
    payload = {  # as flows/deadline.py's DeadlineWatch writes it
        "report": "carrier-monthly",
        "batch": batch_id,
        "deadline": (now + timedelta(minutes=30)).isoformat(),
        "eta": (now + timedelta(minutes=52)).isoformat(),
        "late_by": "22 min 00 s",
        "items_left": 140,
        "per_minute": 6.5,
        "link": link,
    }
    _post_event(
        DEADLINE_EVENT,
        {
            "prefect.resource.id": batch_resource(batch_id),
            "prefect.resource.name": "carrier-monthly batch",
        },
        payload,
    )
    hits = webhook.wait_for(lambda text: batch_id in text, timeout=60)
    assert hits, f"no deadline alert within 60 s; got {webhook.seen}"
    webhook.drain(3)  # a second message would come right behind the first
    (text,) = [t for t in webhook.seen if batch_id in t]
    assert text.startswith("reportrunner: the carrier-monthly batch will miss its deadline")
    assert f"ETA {payload['eta']}, deadline {payload['deadline']} (late by 22 min 00 s)" in text
    assert "140 items left at 6.5 per minute" in text
    assert "At risk since " in text and text.endswith(link)


def _post_event(name: str, resource: dict, payload: dict, event_id=None) -> None:
    from prefect.events import Event

    event = Event(
        id=event_id or uuid.uuid4(),
        occurred=datetime.now(UTC),
        event=name,
        resource=resource,
        payload=payload,
    )
    with connect(ApiConfig.active(timeout_s=30)) as api:
        api.post("/events", [event.model_dump(mode="json")])


# ---- failure spike -------------------------------------------------------------------------

SPIKING = "destination-quarterly"
QUIET = "airport-daily"


@pytest.fixture
def seeded_failures() -> Iterator[datetime]:
    """4 failed runs of SPIKING and 2 completed + 1 failed of QUIET, expected a minute ago."""
    at = datetime.now(UTC) - timedelta(minutes=1)

    @flow(name=f"alert-seed-{uuid.uuid4().hex[:8]}")
    def seed_flow() -> None:  # never called: it names the runs' flow
        return None

    plan = [(SPIKING, Failed)] * 4 + [(QUIET, Completed)] * 2 + [(QUIET, Failed)]
    ids = []
    with get_client(sync_client=True) as client:
        try:
            for report, final in plan:
                run = client.create_flow_run(
                    seed_flow, tags=[f"report:{report}"], state=Scheduled(scheduled_time=at)
                )
                ids.append(run.id)
                client.set_flow_run_state(run.id, Running(), force=True)
                client.set_flow_run_state(run.id, final(message="seeded"), force=True)
            yield at
        finally:
            for run_id in ids:
                client.delete_flow_run(run_id)


def test_failure_spike_is_announced_once_per_report_and_hour(webhook: Webhook, seeded_failures):
    _apply_alerts()
    at = seeded_failures  # the hour of the seeded runs, whatever the clock says by now
    hour = at.replace(minute=0, second=0, microsecond=0)
    with connect(ApiConfig.active(timeout_s=30)) as api:
        assert SPIKING in emit_failure_spikes(api, at)
    with connect(ApiConfig.active(timeout_s=30)) as api:
        # Usually before the first is stored, so posted again: with the same event id,
        # which the server drops. Once stored, it is not posted at all.
        assert emit_failure_spikes(api, at) in ([SPIKING], [])

    hits = webhook.wait_for(lambda text: SPIKING in text, timeout=60)
    assert hits, f"no failure-spike alert within 60 s; got {webhook.seen}"
    assert _stored_spikes(SPIKING, hour, timeout=30) == [spike_event_id(SPIKING, hour)]
    with connect(ApiConfig.active(timeout_s=30)) as api:
        assert emit_failure_spikes(api, at) == []  # stored: not announced again
        reports = len(set(_catalog_names()))
        assert api.calls <= reports + 2  # history per report, the events read, a CSRF token

    webhook.drain(3)
    (text,) = [t for t in webhook.seen if SPIKING in t]
    assert text.startswith(f"reportrunner: {SPIKING} is failing more than usual")
    assert f"4 runs of {SPIKING} failed since {hour.isoformat()}" in text
    assert "; a typical hour has 0. Noticed at " in text
    assert text.endswith(f"{DASHBOARD}/items?report={SPIKING}&q=")
    assert not [t for t in webhook.seen if QUIET in t]
    assert _stored_spikes(QUIET, hour, timeout=0) == []


def _catalog_names() -> list[str]:
    from reports.definitions import default_catalog

    return default_catalog().names()


def _stored_spikes(report: str, hour: datetime, timeout: float) -> list[uuid.UUID]:
    """Ids of the stored spike events of `report` in the hour, waiting for one to be stored."""
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    query = EventFilter(
        occurred=EventOccurredFilter(since=hour, until=hour + timedelta(hours=1)),
        event=EventNameFilter(name=[FAILURE_SPIKE_EVENT]),
        resource=EventResourceFilter(id=[report_resource(report)]),
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            found = [event.id for event in client.read_events(filter=query, limit=50).events]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.5)


def test_a_batch_that_cannot_meet_its_deadline_alerts_once_before_it(
    webhook: Webhook, settings, output_root
):
    """The whole loop: a real batch's ETA → its event → the automation → the webhook."""
    from flows import batch

    _apply_alerts()
    carriers = ["AA", "DL", "UA", "B6"]
    slow = [settings.resolved_data_dir / f"slow-{c}" for c in carriers]
    for marker in slow:
        marker.write_text("4")
    try:
        started = datetime.now(UTC)
        state = batch(
            report="flaky-carrier",
            over={"carrier": carriers, "month": ["2013-09", "2013-10", "2013-11"]},
            max_parallel=1,
            items_per_task=1,
            deadline="40s",  # 12 items at 4 s or more each, one at a time: it cannot be met
            force=True,
            return_state=True,
        )
        met = batch(  # the same report, a deadline it meets: no alert
            report="flaky-carrier",
            over={"carrier": ["HA"], "month": ["2013-09"]},
            deadline="10m",
            force=True,
            return_state=True,
        )
    finally:
        for marker in slow:
            marker.unlink()
    missed_id = str(state.state_details.flow_run_id)
    hits = webhook.wait_for(lambda text: missed_id in text, timeout=60)
    assert hits, f"no deadline alert within 60 s; got {webhook.seen}"
    webhook.drain(3)
    (text,) = [t for t in webhook.seen if missed_id in t]  # exactly once
    assert text.startswith("reportrunner: the flaky-carrier batch will miss its deadline")
    assert "items left" in text and text.endswith(f"/batch?id={missed_id}")
    assert not [t for t in webhook.seen if str(met.state_details.flow_run_id) in t]
    # The event behind it came before the deadline, with a projection past it.
    with connect() as api:
        events = actions.read_events(api, DEADLINE_EVENT, limit=200)
    (event,) = [e for e in events if e["resource"]["prefect.resource.id"].endswith(missed_id)]
    deadline = datetime.fromisoformat(event["payload"]["deadline"])
    assert datetime.fromisoformat(event["occurred"]) < deadline
    # The payload keeps whole seconds: the deadline may read up to 1 s early.
    assert timedelta(seconds=39) <= deadline - started <= timedelta(seconds=50)
    assert datetime.fromisoformat(event["payload"]["eta"]) > deadline
    assert 0 < event["payload"]["items_left"] < 12
