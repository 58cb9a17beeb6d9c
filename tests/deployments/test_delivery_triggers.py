"""A subscription with `trigger: after-batch` gets a delivery run when a batch ends."""

from __future__ import annotations

import time
import uuid

from prefect import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter

from deployments.delivery_triggers import PREFIX, automation_name
from deployments.deploy import deploy
from flows import batch
from reports.settings import get_settings


def _subscription(folder, name: str, trigger: bool) -> None:
    (folder / f"{name}.yaml").write_text(
        f"name: {name}\nreport: flaky-carrier\nparameters: {{month: '2013-04'}}\n"
        "recipients: {list: [{address: ops-aa@example.com, carrier: AA}]}\n"
        "channel: {kind: email}\n" + ("trigger: after-batch\n" if trigger else "")
    )


def _delivery_runs(name: str) -> list:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
        )


def test_a_finished_batch_starts_the_subscriptions_delivery(tmp_path, monkeypatch, output_root):
    name = f"after-batch-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "deliveries"
    folder.mkdir()
    _subscription(folder, name, trigger=True)
    monkeypatch.setenv("REPORTRUNNER_DELIVERIES_DIR", str(folder))
    get_settings.cache_clear()
    try:
        result = deploy()
        assert f"delivery trigger: created {automation_name(name, 'flaky-carrier')!r}" in (
            result.notes
        )
        assert f"deployment deliver/{name}" in result.created
        assert _delivery_runs(name) == []

        state = batch(
            report="flaky-carrier",
            over={"carrier": ["AA"], "month": ["2013-04"]},
            return_state=True,
        )
        assert state.type.value == "COMPLETED"
        deadline = time.monotonic() + 60  # the automation reacts to the run's end event
        while not (runs := _delivery_runs(name)) and time.monotonic() < deadline:
            time.sleep(1)
        assert len(runs) == 1 and runs[0].parameters == {"subscription": name}

        _subscription(folder, name, trigger=False)  # trigger removed → automation removed
        again = deploy()
        assert f"delivery trigger: removed {automation_name(name, 'flaky-carrier')!r}" in (
            again.notes
        )
        with get_client(sync_client=True) as client:
            left = [a.name for a in client.read_automations() if a.name.startswith(PREFIX)]
        assert automation_name(name, "flaky-carrier") not in left
    finally:
        get_settings.cache_clear()
