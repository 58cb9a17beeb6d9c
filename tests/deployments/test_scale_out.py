"""Scale-out profile: a Prefect server on PostgreSQL and two workers share one batch.

The batch runs from its deployment, so its chunks become separate flow runs that
either worker may pick up; outputs go to one shared folder, or to one S3 bucket
(moto in server mode, tests/storage_helpers.py).
"""

from __future__ import annotations

import io
import os
import posixpath
import time
import uuid
from collections import Counter

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from pypdf import PdfReader

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


def test_two_workers_on_postgres_share_an_s3_bucket(scratch_postgres_url, s3, tmp_path):
    """The same profile with outputs in S3 (moto): every host reaches one bucket.

    Each item is rendered exactly once (one PDF per item, nothing left under a
    temporary name), and the same batch run again renders nothing and writes nothing.
    """
    from prefect.deployments import run_deployment

    from deployments.deploy import deploy

    prefix = f"scale-out-{uuid.uuid4().hex[:8]}"
    database = scratch_postgres_url.replace("+psycopg2", "+asyncpg")
    server = PrefectServer(home=tmp_path / "prefect", database_url=database)
    server.start(timeout=240)
    env = {
        **os.environ,
        **s3.env(),  # the endpoint and dummy credentials: what a real host sets
        "PREFECT_API_URL": server.api_url,
        "REPORTRUNNER_OUTPUT_URL": s3.output_url(prefix),
        "REPORTRUNNER_INDEX_URL": scratch_postgres_url,
        "REPORTRUNNER_MAX_PARALLEL": "1",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    batch = {
        "report": "carrier-monthly",
        "over": {"carrier": CARRIERS[:8], "month": MONTHS[:2]},
        "chunk_size": 4,
        "max_parallel": 1,
    }
    workers = []
    try:
        with (
            pytest.MonkeyPatch.context() as patch,
            temporary_settings(updates={PREFECT_API_URL: server.api_url}),
        ):
            patch.setenv("PREFECT_API_URL", server.api_url)
            deploy()
            workers = [
                start_worker(name, limit=2, env=env, log=tmp_path / f"{name}.log")
                for name in ("w1", "w2")
            ]
            _wait_until_online(2)
            cold_mark = s3.requests.mark()
            run = run_deployment(
                "batch/carrier-monthly-batch", parameters=batch, timeout=600, poll_interval=3
            )
            assert run.state.is_completed(), run.state.message
            chunks = child_flow_runs(run.id)
            assert len(chunks) == 4 and all(c.state.is_completed() for c in chunks)
            progress = next(a for a in flow_run_artifacts(run.id) if a.type == "progress")
            assert progress.description.startswith("16 of 16 done, 0 failed")
            cold_requests = s3.requests.since(cold_mark, prefix)

            listed = _objects(s3, prefix)
            rerun_mark = s3.requests.mark()
            again = run_deployment(
                "batch/carrier-monthly-batch", parameters=batch, timeout=600, poll_interval=3
            )
            assert again.state.is_completed(), again.state.message
            rerun_requests = s3.requests.since(rerun_mark, prefix)
            assert child_flow_runs(again.id) == []  # nothing to render: no chunk started
            progress = next(a for a in flow_run_artifacts(again.id) if a.type == "progress")
            assert progress.description.startswith("16 of 16 done (16 unchanged), 0 failed")
    finally:
        stopped_in = [stop_process_group(worker, grace_s=40) for worker in workers]
        server.stop()
    assert all(s < 15 for s in stopped_in), f"workers stopped after {stopped_in} s"

    # Exactly once: one PDF per item folder, 16 folders, each with its manifest; the
    # chunks' outcomes under _batches/; no temporary objects anywhere.
    keys = sorted(listed)
    pdfs = [k for k in keys if k.endswith(".pdf")]
    assert len(pdfs) == 16 and len({posixpath.dirname(k) for k in pdfs}) == 16
    manifests = [k for k in keys if k.endswith("/manifest.json")]
    assert {posixpath.dirname(k) for k in manifests} == {posixpath.dirname(k) for k in pdfs}
    assert [k for k in keys if k.startswith("_batches/")] == [
        f"_batches/{run.id}/chunk-{n:04d}.json" for n in range(1, 5)
    ]
    assert not [k for k in keys if k.endswith(".tmp") or ".tmp" in posixpath.basename(k)]
    # Every object was PUT exactly once, under its final name (no temporary, no copy);
    # the only DELETEs are publish's removal of a manifest before new outputs.
    puts = Counter(r.path for r in cold_requests if r.method == "PUT")
    assert sorted(puts) == sorted(f"/{s3.bucket}/{prefix}/{k}" for k in keys)
    assert set(puts.values()) == {1}
    deletes = [r.path for r in cold_requests if r.method == "DELETE"]
    assert deletes and all(path.endswith("/manifest.json") for path in deletes)
    assert not [r for r in cold_requests if r.method == "POST"]  # no multipart uploads
    # The re-run only read (a manifest and a HEAD per file of each item) and changed nothing.
    assert {r.method for r in rerun_requests} == {"GET", "HEAD"}, rerun_requests[:5]
    assert _objects(s3, prefix) == listed  # every object as it was (same ETag and time)
    for name, sent in (("cold run", cold_requests), ("re-run", rerun_requests)):
        methods = dict(Counter(r.method for r in sent))
        print(f"S3 requests, 16 items, {name}: {len(sent)} {methods}")  # shown with -s
    ran = [str(run.id), *(str(c.id) for c in chunks)]
    for name in ("w1", "w2"):  # both hosts took part: the batch or a chunk
        text = (tmp_path / f"{name}.log").read_text()
        assert any(run_id in text for run_id in ran), f"worker {name} ran nothing"

    client = s3.client()
    pdf = "carrier-monthly/carrier=AA/month=2013-02/carrier-monthly_AA_2013-02.pdf"
    data = client.get_object(Bucket=s3.bucket, Key=f"{prefix}/{pdf}")["Body"].read()
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 2 and "American Airlines" in reader.pages[0].extract_text()


def _objects(s3, prefix: str) -> dict[str, tuple[str, str]]:
    """Every object under the prefix: key → (ETag, LastModified)."""
    pages = (
        s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=f"{prefix}/")
    )
    return {
        o["Key"][len(prefix) + 1 :]: (o["ETag"], str(o["LastModified"]))
        for page in pages
        for o in page.get("Contents", [])
    }
