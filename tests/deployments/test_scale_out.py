"""Scale-out profile: a Prefect server on PostgreSQL and two workers share one batch.

The batch runs from its deployment, so its chunks become separate flow runs that
either worker may pick up; outputs go to one shared folder.
"""

from __future__ import annotations

import os
import time

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.prefect_server import PrefectServer
from deployments.processes import stop_process_group
from prefect_helpers import child_flow_runs, flow_run_artifacts, pdf_text, start_worker
from reports.index import ItemIndex, get_batch

pytestmark = pytest.mark.postgres

CARRIERS = [
    "9E",
    "AA",
    "AS",
    "B6",
    "DL",
    "EV",
    "F9",
    "FL",
    "HA",
    "MQ",
    "UA",
    "US",
    "VX",
    "WN",
    "YV",
    "OO",
]
MONTHS = ["2013-01", "2013-02", "2013-03", "2013-04"]


def _wait_until_online(count: int, timeout: float = 60) -> None:
    from prefect import get_client
    from prefect.client.schemas.objects import WorkerStatus

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            workers = client.read_workers_for_work_pool("reports")
            if sum(w.status == WorkerStatus.ONLINE for w in workers) >= count:
                return
            time.sleep(1)
    raise AssertionError(f"fewer than {count} workers online after {timeout} s")


def test_two_workers_on_postgres_complete_a_64_item_batch(scratch_postgres_url, tmp_path):
    from prefect.deployments import run_deployment

    from deployments.deploy import deploy

    database = scratch_postgres_url.replace("+psycopg2", "+asyncpg")
    server = PrefectServer(home=tmp_path / "prefect", database_url=database)
    server.start(timeout=240)
    outputs = tmp_path / "shared-outputs"
    env = {
        **os.environ,
        "PREFECT_API_URL": server.api_url,
        "REPORTRUNNER_OUTPUT_URL": str(outputs),
        "REPORTRUNNER_INDEX_URL": scratch_postgres_url,  # one item index for every host
        "REPORTRUNNER_MAX_PARALLEL": "1",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    workers = []
    try:
        with (
            pytest.MonkeyPatch.context() as patch,  # prefect_api reads the environment first
            temporary_settings(updates={PREFECT_API_URL: server.api_url}),
        ):
            patch.setenv("PREFECT_API_URL", server.api_url)
            deploy()
            workers = [
                start_worker(name, limit=2, env=env, log=tmp_path / f"{name}.log")
                for name in ("w1", "w2")
            ]
            _wait_until_online(2)  # with two workers, "auto" spreads the chunks
            run = run_deployment(
                "batch/carrier-monthly-batch",
                parameters={
                    "report": "carrier-monthly",
                    "over": {"carrier": CARRIERS, "month": MONTHS},
                    "chunk_size": 8,
                    "max_parallel": 1,
                },
                timeout=900,
                poll_interval=3,
            )
            assert run.state.is_completed(), run.state.message

            chunks = child_flow_runs(run.id)
            assert len(chunks) == 8 and all(c.state.is_completed() for c in chunks)
            progress = next(a for a in flow_run_artifacts(run.id) if a.type == "progress")
            assert progress.data == 100
            assert progress.description.startswith("64 of 64 done")
            # Both workers wrote the one index: every item, recorded by its chunk's run.
            batch, items = get_batch(ItemIndex(scratch_postgres_url), str(run.id))
            assert batch.total == 64  # some small carriers fly nothing some months: flagged
            assert batch.counts.get("rendered", 0) + batch.counts.get("flagged", 0) == 64
            assert {item.run_id for item in items} == {str(c.id) for c in chunks}
    finally:
        stopped_in = [stop_process_group(worker, grace_s=40) for worker in workers]
        server.stop()
    assert all(s < 15 for s in stopped_in), f"workers stopped after {stopped_in} s"

    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("w1", "w2")}
    for name, text in logs.items():
        assert any(str(c.id) in text for c in chunks), f"worker {name} ran no chunk"
    pdfs = sorted(outputs.rglob("*.pdf"))
    assert len(pdfs) == 64
    assert len({p.parent for p in pdfs}) == 64  # exactly one PDF per item folder
    assert not list(outputs.rglob("*.tmp"))
    pages, text = pdf_text(
        outputs / "carrier-monthly/carrier=AA/month=2013-03/carrier-monthly_AA_2013-03.pdf"
    )
    assert pages >= 2 and "American Airlines" in text
