"""Dashboard tests run against the session's real Prefect server, with seeded runs.

`seeded` (module scope) creates, under a flow name of its own, runs in final states
in this window and the previous one, and a `batch` run that stays Running with a
progress artifact; it deletes them afterwards, so no run outlives the module (the
integration tests' counts and examples stay as they expect). `real_runs` runs the
real flows in-process once per module: a report that completes, one that fails and
a two-item batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import streamlit as st
from prefect import flow, get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.states import Completed, Failed, Running, Scheduled

from reports.contracts import ProgressSnapshot

# A running batch's progress, written the way the batch flow writes it.
PROGRESS = ProgressSnapshot(total=12, rendered=2, skipped=1, failed=2, elapsed_s=60, eta_s=65)
PROGRESS_TEXT = "5 of 12 done (1 unchanged), 2 failed, ETA 1 min 05 s"


@pytest.fixture(autouse=True)
def _server(prefect_server):
    """Every dashboard test talks to the session's Prefect server."""
    return prefect_server


@pytest.fixture(autouse=True)
def _fresh_cache():
    st.cache_data.clear()  # process-wide: one test's answers must not leak into the next
    yield
    st.cache_data.clear()


@pytest.fixture
def media(monkeypatch) -> dict[str, bytes]:
    """Every file a page hands Streamlit (images, downloads), by media file id."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    stored: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        stored[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return stored


@dataclass
class Seeded:
    flow: str  # unique flow name of the synthetic runs
    completed: int
    failed: int
    previous_completed: int  # expected to start in the previous 24 h window
    running_batch: str = ""
    run_ids: list = field(default_factory=list)


@pytest.fixture(scope="module")
def seeded(prefect_server):
    name = f"dash-seed-{uuid.uuid4().hex[:8]}"
    seeded = Seeded(flow=name, completed=17, failed=8, previous_completed=3)

    @flow(name=name)
    def seed_flow(item: int) -> None:  # never called: it names the runs' flow
        return None

    @flow(name="batch")
    def batch_stub(report: str) -> None:  # the real batch flow's name
        return None

    with get_client(sync_client=True) as client:
        for i in range(seeded.completed + seeded.failed):
            run = client.create_flow_run(
                seed_flow,
                name=f"{name} carrier={'AS' if i % 2 else 'UA'} item={i:03d}",
                parameters={"item": i},
                tags=["dash-seed", f"dash-seed-{'odd' if i % 2 else 'even'}"],
            )
            seeded.run_ids.append(run.id)
            client.set_flow_run_state(run.id, Running(), force=True)
            final = Completed() if i < seeded.completed else Failed(message=f"item {i} broke")
            client.set_flow_run_state(run.id, final, force=True)
        earlier = datetime.now(UTC) - timedelta(hours=30)
        for i in range(seeded.previous_completed):
            run = client.create_flow_run(
                seed_flow,
                name=f"{name} previous item={i:03d}",
                parameters={"item": i},
                state=Scheduled(scheduled_time=earlier),
            )
            seeded.run_ids.append(run.id)
            client.set_flow_run_state(run.id, Running(), force=True)
            client.set_flow_run_state(run.id, Completed(), force=True)
        batch_run = client.create_flow_run(
            batch_stub,
            name=f"carrier-monthly batch over month {name}",
            parameters={"report": "carrier-monthly"},
        )
        seeded.run_ids.append(batch_run.id)
        seeded.running_batch = str(batch_run.id)
        client.set_flow_run_state(batch_run.id, Running(), force=True)
        client.create_artifact(
            ArtifactCreate(
                key="carrier-monthly-batch-progress",
                type="progress",
                data=41.7,
                description=PROGRESS.description(),
                flow_run_id=batch_run.id,
            )
        )
    yield seeded
    with get_client(sync_client=True) as client:
        for run_id in seeded.run_ids:
            client.delete_flow_run(run_id)


@pytest.fixture(scope="module")
def real_runs(prefect_server, settings):
    """Real flows, in-process: a report that completes, one that fails, a small batch."""
    from flows import batch, report

    ok = report(
        report="carrier-monthly",
        parameters={"carrier": "AS", "month": "2013-01"},
        return_state=True,
    )
    bad = report(
        report="carrier-monthly",
        parameters={"carrier": "ZZ", "month": "2013-01"},
        return_state=True,
    )
    done = batch(
        report="carrier-monthly",
        over={"month": ["2013-02", "2013-03"]},
        parameters={"carrier": "AS"},
        max_parallel=1,
        items_per_task=1,  # a task run per item, so the detail page shows one per month
        force=True,  # rendered here even when an earlier test produced the same outputs
        return_state=True,
    )
    return {"report-ok": ok, "report-bad": bad, "batch": done}
