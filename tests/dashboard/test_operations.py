"""Operator actions against the session's real Prefect server, through the functions and pages.

The deployments come from `deployments.deploy.deploy()`; runs are created from them
(no worker runs here, so a retried run waits as AwaitingRetry). Every test leaves
pools and queues resumed and deletes the runs it made.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.exceptions import ObjectNotFound
from prefect.states import Failed, Running
from streamlit.testing.v1 import AppTest

from dashboard import actions
from dashboard.api import connect, operations
from dashboard.auth import OPERATOR, User
from deployments.topology import WORK_POOL

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
ALICE = User("alice", OPERATOR)


@pytest.fixture(scope="module")
def deployed(prefect_server):
    from deployments.deploy import deploy

    deploy()
    with get_client(sync_client=True) as client:
        return {
            "report": client.read_deployment_by_name("report/carrier-monthly"),
            "batch": client.read_deployment_by_name("batch/carrier-monthly"),
        }


@pytest.fixture
def made_runs(deployed):
    """Runs a test creates from the deployments; deleted afterwards."""
    ids: list = []
    yield ids
    with get_client(sync_client=True) as client:
        for run_id in ids:
            with contextlib.suppress(ObjectNotFound):  # a test may have deleted it
                client.delete_flow_run(run_id)


PARAMETERS = {"parameters": {"carrier": "AS", "month": "2013-01"}}


def _scheduled_run(client, deployment, ids, name=None):
    run = client.create_flow_run_from_deployment(deployment.id, parameters=PARAMETERS, name=name)
    ids.append(run.id)
    return run


def _failed_run(client, deployment, ids, name=None):
    run = _scheduled_run(client, deployment, ids, name)
    client.set_flow_run_state(run.id, Running(), force=True)
    client.set_flow_run_state(run.id, Failed(message="source down"), force=True)
    return run


def _audit_until(predicate, timeout=60):
    """The event persister writes every few seconds: poll until the entry is there."""
    deadline = time.monotonic() + timeout
    while True:
        with connect() as api:
            entries = actions.audit_log(api, 100)
        found = [e for e in entries if predicate(e)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_pause_and_resume_a_pool_and_a_queue(deployed):
    with get_client(sync_client=True) as client:
        queue = client.read_work_queue_by_name("adhoc", work_pool_name=WORK_POOL)
    try:
        with connect() as api:
            paused = actions.set_pool_paused(api, ALICE, WORK_POOL, True)
            queue_paused = actions.set_queue_paused(api, ALICE, str(queue.id), True, "adhoc")
            seen = operations(api)
        assert paused.ok and paused.message == f"Paused work pool '{WORK_POOL}'."
        assert queue_paused.ok
        with get_client(sync_client=True) as client:
            assert client.read_work_pool(WORK_POOL).is_paused
            assert client.read_work_queue(queue.id).is_paused
        pool = next(p for p in seen.pools if p.name == WORK_POOL)
        assert pool.status == "PAUSED"
        assert next(q for q in seen.queues if q.id == str(queue.id)).paused
    finally:
        with connect() as api:
            assert actions.set_pool_paused(api, ALICE, WORK_POOL, False).ok
            assert actions.set_queue_paused(api, ALICE, str(queue.id), False, "adhoc").ok
    with get_client(sync_client=True) as client:
        assert not client.read_work_pool(WORK_POOL).is_paused
        assert not client.read_work_queue(queue.id).is_paused
    found = _audit_until(lambda e: e.action == "pool.pause" and e.user == "alice")
    assert found and found[0].outcome == "ok" and found[0].target == f"work pool {WORK_POOL}"


def test_pause_a_schedule_and_a_deployment(deployed):
    with get_client(sync_client=True) as client:
        scheduled = client.read_deployment_by_name("batch/carrier-monthly-batch")
    schedule = scheduled.schedules[0]
    try:
        with connect() as api:
            flipped = actions.set_schedule_active(
                api, ALICE, str(scheduled.id), str(schedule.id), not schedule.active
            )
            paused = actions.set_deployment_paused(api, ALICE, str(scheduled.id), True)
            listed = operations(api)
        assert flipped.ok and paused.ok
        with get_client(sync_client=True) as client:
            now = client.read_deployment(scheduled.id)
        assert now.paused
        assert now.schedules[0].active is (not schedule.active)
        row = next(d for d in listed.deployments if d.id == str(scheduled.id))
        assert row.paused and row.schedules[0].text == "cron 0 6 2 * *"
        assert row.schedules[0].timezone == "America/New_York"
    finally:
        with connect() as api:
            actions.set_deployment_paused(api, ALICE, str(scheduled.id), False)
            actions.set_schedule_active(
                api, ALICE, str(scheduled.id), str(schedule.id), schedule.active
            )


def test_retry_a_failed_run_and_refuse_a_running_one(deployed, made_runs):
    with get_client(sync_client=True) as client:
        run = _failed_run(client, deployed["report"], made_runs)
        running = _scheduled_run(client, deployed["report"], made_runs)
        client.set_flow_run_state(running.id, Running(), force=True)
    with connect() as api:
        retried = actions.retry_run(api, ALICE, str(run.id))
        refused = actions.retry_run(api, ALICE, str(running.id))
    assert retried.ok, retried.message
    assert not refused.ok and "only failed, crashed or cancelled runs" in refused.message
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
        assert state.type.value == "SCHEDULED" and state.name == "AwaitingRetry"
        assert client.read_flow_run(running.id).state.type.value == "RUNNING"


def test_cancel_a_scheduled_run_and_refuse_a_finished_one(deployed, made_runs):
    with get_client(sync_client=True) as client:
        waiting = _scheduled_run(client, deployed["report"], made_runs)
        finished = _failed_run(client, deployed["report"], made_runs)
    with connect() as api:
        cancelled = actions.cancel_run(api, ALICE, str(waiting.id))
        refused = actions.cancel_run(api, ALICE, str(finished.id))
    assert cancelled.ok, cancelled.message
    assert not refused.ok and "only runs not yet finished" in refused.message
    with get_client(sync_client=True) as client:
        kind = client.read_flow_run(waiting.id).state.type.value
    assert kind in ("CANCELLING", "CANCELLED")


def test_delete_runs_says_how_many(deployed, made_runs):
    with get_client(sync_client=True) as client:
        ids = [str(_failed_run(client, deployed["report"], made_runs).id) for _ in range(3)]
    with connect() as api:
        result = actions.delete_runs(api, ALICE, ids)
    assert result.ok and result.message == "Deleted 3 run(s)."
    with get_client(sync_client=True) as client:
        left = client.count_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(i) for i in ids]))
        )
    assert left == 0


def test_retry_only_the_failed_items_of_a_real_batch(deployed):
    """A CLI-style batch (no deployment) with one failing item gets a new run of its item."""
    from flows import batch

    state = batch(
        report="carrier-monthly",
        items=[{"carrier": "AS", "month": "2013-04"}, {"carrier": "ZZ", "month": "2013-04"}],
        max_parallel=1,
        return_state=True,
    )
    assert state.is_failed()
    run_id = str(state.state_details.flow_run_id)
    new_id = None
    try:
        with connect() as api:
            items = actions.failed_items(api, run_id)
            result = actions.retry_failed_items(api, ALICE, run_id)
        assert items == [{"carrier": "ZZ", "month": "2013-04"}]
        assert result.ok, result.message
        assert "for the 1 failed item(s)" in result.message
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags={"all_": ["retry-failed-items"]}),
                sort="EXPECTED_START_TIME_DESC",
                limit=1,
            )
            new_id = runs[0].id
            assert runs[0].deployment_id == deployed["batch"].id
            assert runs[0].parameters["items"] == [{"carrier": "ZZ", "month": "2013-04"}]
            assert client.read_flow_run(run_id).state.type.value == "FAILED"  # history kept
    finally:
        with get_client(sync_client=True) as client:
            client.delete_flow_run(run_id)
            if new_id:
                client.delete_flow_run(new_id)


def test_a_batch_from_a_deployment_is_retried_in_place(deployed, made_runs):
    """AwaitingRetry on the batch run itself: its re-run skips unchanged items."""
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            deployed["batch"].id, parameters={"items": [{"carrier": "AA", "month": "2013-01"}]}
        )
        made_runs.append(run.id)
        client.set_flow_run_state(run.id, Running(), force=True)
        client.create_artifact(
            ArtifactCreate(
                key="carrier-monthly-batch-items",
                type="table",
                data='[{"item": "carrier=AA month=2013-01", "status": "done", "error": ""},'
                ' {"item": "carrier=ZZ month=2013-01", "status": "failed", "error": "none"},'
                ' {"item": "carrier=YY month=2013-01", "status": "failed", "error": "none"}]',
                flow_run_id=run.id,
            )
        )
        client.set_flow_run_state(run.id, Failed(message="2 of 3 items failed"), force=True)
    with connect() as api:
        assert len(actions.failed_items(api, str(run.id))) == 2
        result = actions.retry_failed_items(api, ALICE, str(run.id))
    assert result.ok and "Retrying 2 failed item(s)" in result.message
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run.id).state.name == "AwaitingRetry"


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=90).run()


def test_operations_page_pauses_a_pool_after_confirmation(deployed):
    at = _app()
    at.switch_page("views/operations.py").run()
    assert not at.exception and not at.error
    texts = [m.value for m in at.markdown]
    assert f"**{WORK_POOL}** · process" in texts
    assert [s.value for s in at.subheader] == [
        "Work pools",
        "Work queues",
        "Deployments and schedules",
        "Workers",
        "Audit",
    ]
    try:
        at.button(key=f"pool_toggle_{WORK_POOL}").click().run()
        assert at.warning[0].value == f"Pause work pool '{WORK_POOL}'?"
        with get_client(sync_client=True) as client:
            assert not client.read_work_pool(WORK_POOL).is_paused  # not before confirming
        at.button(key="ops_confirm").click().run()
        assert at.success[0].value == f"Paused work pool '{WORK_POOL}'."
        with get_client(sync_client=True) as client:
            assert client.read_work_pool(WORK_POOL).is_paused
        assert "⏸️ PAUSED" in [m.value for m in at.markdown]
    finally:
        with connect() as api:
            actions.set_pool_paused(api, ALICE, WORK_POOL, False)


def test_runs_page_bulk_retry_confirms_with_the_count(deployed, made_runs):
    tag = f"bulk-{uuid.uuid4().hex[:6]}"
    with get_client(sync_client=True) as client:
        for i in range(2):
            _failed_run(client, deployed["report"], made_runs, name=f"{tag} item={i}")
    at = _app()
    at.switch_page("views/runs.py").run()
    at.text_input(key="runs_search").input(tag).run()
    assert list(at.dataframe[0].value["Detail"]) == [f"run?id={i}" for i in made_runs[::-1]]
    at.session_state["runs_table_0"] = {"selection": {"rows": [0, 1], "columns": []}}
    at.run()
    assert at.button(key="runs_bulk_retry").label == "🔁 Retry 2"
    assert at.button(key="runs_bulk_cancel").disabled  # failed runs cannot be cancelled
    at.button(key="runs_bulk_retry").click().run()
    assert at.warning[0].value == "Retry 2 run(s)? They run again from the start."
    at.button(key="runs_confirm").click().run()
    assert not at.exception
    assert at.success[0].value == "Retried 2 of 2 run(s)."
    with get_client(sync_client=True) as client:
        names = {client.read_flow_run(i).state.name for i in made_runs}
    assert names == {"AwaitingRetry"}


def test_runs_page_opens_the_one_selected_run(deployed, made_runs):
    tag = f"open-{uuid.uuid4().hex[:6]}"
    with get_client(sync_client=True) as client:
        run = _failed_run(client, deployed["report"], made_runs, name=f"{tag} item=0")
    at = _app()
    at.switch_page("views/runs.py").run()
    at.text_input(key="runs_search").input(tag).run()
    at.session_state["runs_table_0"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    at.button(key="runs_open").click().run()
    assert not at.exception
    assert at.query_params["id"] == str(run.id)
