"""`reportrunner deploy` against the session's server: complete, schema-rich, idempotent."""

from __future__ import annotations

import pytest
from prefect import get_client
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from deployments.deploy import deploy, load_deployment_specs
from deployments.topology import QUEUES, WORK_POOL
from flows.source_slots import SQL_SOURCE_LIMIT
from reports import SpecError


def test_deploy_twice_changes_nothing_the_second_time():
    first = deploy()
    second = deploy()
    assert second.created == [] and second.updated == []
    assert len(second.unchanged) == len(first.created) + len(first.updated) + len(first.unchanged)

    with get_client(sync_client=True) as client:
        assert client.read_work_pool(WORK_POOL).type == "process"
        queues = {q.name: q.priority for q in client.read_work_queues(work_pool_name=WORK_POOL)}
        assert {q.name: q.priority for q in QUEUES}.items() <= queues.items()
        assert client.read_global_concurrency_limit_by_name(SQL_SOURCE_LIMIT).limit > 0

        adhoc = client.read_deployment_by_name("report/carrier-monthly")
        assert adhoc.work_queue_name == "adhoc" and adhoc.enforce_parameter_schema
        assert adhoc.concurrency_options.collision_strategy == "ENQUEUE"
        params = adhoc.parameter_openapi_schema["properties"]["parameters"]
        assert params["required"] == ["carrier", "month"]
        assert "AA" in params["properties"]["carrier"]["enum"]
        assert params["properties"]["month"]["pattern"].startswith("^")
        assert params["properties"]["carrier"]["description"].startswith("Airline code")

        scheduled = client.read_deployment_by_name("batch/carrier-monthly-batch")
        (schedule,) = scheduled.schedules
        assert schedule.schedule.cron == "0 6 2 * *"
        assert schedule.schedule.timezone == "America/New_York"
        assert schedule.active is False  # the demo switches schedules on explicitly
        over = scheduled.parameter_openapi_schema["properties"]["over"]
        assert set(over["properties"]) == {"carrier", "month"}

        chunk = client.read_deployment_by_name("render-chunk/render-chunk")
        assert chunk.work_queue_name == "chunks"


def test_schedules_switch_on_and_off():
    deploy(schedules_active=True)
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name("batch/carrier-monthly-batch").schedules[0].active
    result = deploy(schedules_active=False)
    assert "deployment batch/carrier-monthly-batch" in result.updated
    with get_client(sync_client=True) as client:
        assert not client.read_deployment_by_name("batch/airport-daily-batch").schedules[0].active


def test_enforced_schema_rejects_a_bad_run_before_it_starts():
    from prefect.deployments import run_deployment

    deploy()
    with pytest.raises(PrefectHTTPStatusError) as refused:
        run_deployment(
            "report/carrier-monthly",
            parameters={
                "report": "carrier-monthly",
                "parameters": {"carrier": "ZZ", "month": "2013-07"},
            },
            timeout=0,
        )
    assert refused.value.response.status_code == 409
    assert "'ZZ' is not one of" in str(refused.value)


def test_invalid_cron_is_one_clear_error(tmp_path):
    bad = tmp_path / "prefect.yaml"
    bad.write_text(
        "deployments:\n"
        "  - name: nightly\n"
        "    entrypoint: flows.batch_flow.batch\n"
        "    parameters: {report: carrier-monthly}\n"
        "    work_pool: {name: reports}\n"
        "    schedules:\n"
        "      - cron: '61 6 * * *'\n"
    )
    with pytest.raises(SpecError) as caught:
        load_deployment_specs(bad)
    assert str(caught.value).startswith(
        "prefect.yaml: deployment 'nightly': invalid schedule '61 6 * * *'"
    )


def test_deploy_generates_adhoc_deployments_for_new_catalog_reports():
    specs = {s["name"]: s for s in load_deployment_specs()}
    # flaky-carrier is a test-only report folder, absent from prefect.yaml
    assert specs["flaky-carrier"]["parameters"] == {"report": "flaky-carrier"}
    assert specs["flaky-carrier"]["work_pool"]["work_queue_name"] == "adhoc"
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_deployment_by_name("report/no-such-report")
