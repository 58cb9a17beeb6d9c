"""Every flow parameter has an enforced schema with bounds, checked before a run exists.

Through the API (the Prefect UI's custom run form, `run_deployment`, the dashboard),
a request outside the schema is refused with HTTP 409 and no flow run is created. A
run started without a deployment (`reportrunner batch`) fails with a message naming
the parameter. A run never gets more render processes than its worker allows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.deployments import run_deployment
from prefect.exceptions import PrefectHTTPStatusError

from deployments.deploy import deploy
from flows.batch_flow import batch

CM = {"carrier": "AA", "month": "2013-07"}
BATCH = {
    "report": "carrier-monthly",
    "over": {"carrier": ["AA"]},
    "parameters": {"month": "2013-07"},
}
CHUNK = {"report": "carrier-monthly", "items": [CM]}


@pytest.fixture(scope="module", autouse=True)
def deployed():
    return deploy()


def _flow_run_count() -> int:
    with get_client(sync_client=True) as client:
        return client.count_flow_runs()


@pytest.mark.parametrize(
    ("deployment", "parameters", "named"),
    [
        ("report/carrier-monthly", {"report": "carrier-monthly", "parameters": CM,
                                    "formats": ["exe", "../../x"]}, "exe"),
        ("report/carrier-monthly", {"report": "carrier-monthly", "parameters": CM,
                                    "formats": []}, "formats"),
        ("report/carrier-monthly", {"report": "carrier-monthly", "parameters": CM,
                                    "colour": "red"}, "colour"),
        ("batch/carrier-monthly", {**BATCH, "max_parallel": -1}, "-1"),
        ("batch/carrier-monthly", {**BATCH, "max_parallel": 100000}, "100000"),
        ("batch/carrier-monthly", {**BATCH, "chunk_size": 0}, "chunk_size"),
        ("batch/carrier-monthly", {**BATCH, "items_per_task": 0}, "items_per_task"),
        ("batch/carrier-monthly", {**BATCH, "chunk_runs": "everywhere"}, "everywhere"),
        ("batch/carrier-monthly", {**BATCH, "tuning": 1}, "tuning"),
        ("render-chunk/render-chunk", {**CHUNK, "output_url": "/etc"}, "output_url"),
        ("render-chunk/render-chunk", {**CHUNK, "batch_id": "../../etc"}, "batch_id"),
        ("render-chunk/render-chunk", {**CHUNK, "report": "../x"}, "report"),
    ],
)  # fmt: skip
def test_a_request_outside_the_schema_is_refused_before_a_run_exists(deployment, parameters, named):
    before = _flow_run_count()
    with pytest.raises(PrefectHTTPStatusError) as refused:
        run_deployment(deployment, parameters=parameters, timeout=0)
    assert refused.value.response.status_code == 409
    assert named in str(refused.value), str(refused.value)
    assert _flow_run_count() == before, "a refused request creates no flow run"


def test_a_run_started_without_a_deployment_fails_naming_the_parameter():
    state = batch(**BATCH, max_parallel=-1, return_state=True)
    assert state.is_failed()
    assert "max_parallel" in state.message and "greater than or equal to 1" in state.message


def test_a_run_never_gets_more_render_processes_than_its_worker_allows(output_root):
    ceiling = int(os.environ.get("REPORTRUNNER_MAX_PARALLEL") or os.cpu_count() or 1)
    state = batch(**BATCH, max_parallel=ceiling + 10, return_state=True)
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    messages = [entry.message for entry in logs]
    assert any(
        f"max_parallel {ceiling + 10} asked for; this worker allows {ceiling} render processes" in m
        for m in messages
    ), messages
    assert any(f", {ceiling} render processes," in m for m in messages), messages


def test_a_broken_report_folder_does_not_stop_deploy_for_the_good_ones(settings):
    catalog = Path(settings.catalog_dir)
    broken = catalog / "broken-spec"
    shutil.copytree(
        catalog / "carrier-monthly", broken, ignore=shutil.ignore_patterns("__pycache__")
    )
    (broken / "spec.yaml").write_text("name: broken-spec\ntitle: Broken\ncolour: red\n")
    try:
        result = deploy()
    finally:
        shutil.rmtree(broken)
    (skipped,) = result.skipped
    assert skipped.startswith("report broken-spec: ") and "colour" in skipped
    assert "deployment report/carrier-monthly" in result.unchanged
    assert "deployment batch/airport-daily" in result.unchanged
