"""Prefect basic auth end to end, and secrets that never reach a log, a screen or an output.

One Prefect server of this module's own, started with PREFECT_SERVER_API_AUTH_STRING.
The CLI, a worker and the dashboard's query layer use it with PREFECT_API_AUTH_STRING;
without it each says, in one line, that authentication failed. Meanwhile the webhook
URL, the auth string and a database password are set, and every line printed, logged
to the Prefect API or written as an artifact or output is searched for them.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from uuid import UUID

import pytest

AUTH = f"reportrunner:pw-{uuid.uuid4().hex[:12]}"
WEBHOOK = f"https://hooks.example/SECRET-TOKEN-{uuid.uuid4().hex[:12]}"
DB_PASSWORD = f"db-pw-{uuid.uuid4().hex[:12]}"
SECRETS = [
    AUTH,
    AUTH.split(":")[1],
    base64.b64encode(AUTH.encode()).decode(),
    "SECRET-TOKEN",
    DB_PASSWORD,
]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, settings):
    from deployments.prefect_server import PrefectServer

    server = PrefectServer(
        home=tmp_path_factory.mktemp("auth-prefect"),
        extra_env={"PREFECT_SERVER_API_AUTH_STRING": AUTH},
    )
    server.start(timeout=300)
    yield server
    server.stop()


def _env(server, *, auth: str | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PREFECT_API_URL": server.api_url, **extra}
    env.pop("PREFECT_API_AUTH_STRING", None)
    if auth:
        env["PREFECT_API_AUTH_STRING"] = auth
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def _assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} shows the secret {secret[:6]}…"


@pytest.mark.timeout(1800)  # minutes of real waiting on a loaded machine
def test_without_credentials_each_entry_point_says_authentication_in_one_line(auth_server):
    from dashboard.api import ApiConfig, ApiUnavailable, connect, health
    from deployments.prefect_server import credentials_problem

    url = auth_server.api_url
    assert credentials_problem(url, None) == (
        f"Prefect API at {url} requires authentication (HTTP 401): "
        "set PREFECT_API_AUTH_STRING to the server's user:password"
    )
    assert credentials_problem(url, "reportrunner:wrong") == (
        f"Prefect API at {url} rejected PREFECT_API_AUTH_STRING (HTTP 401): "
        "authentication failed; check the user:password"
    )
    assert credentials_problem(url, AUTH) is None

    status = _cli(_env(auth_server, auth=None), "status")
    assert status.returncode == 2 and "Traceback" not in status.stderr
    assert (
        f"! Prefect API error at {url} while reading work pools: GET /api/csrf-token answered "
        "HTTP 401 (authentication failed: set PREFECT_API_AUTH_STRING to the server's "
        "user:password)"
    ) in status.stdout

    for command in (("deploy",), ("batch", "carrier-monthly", "--over", "carrier=AS")):
        result = _cli(_env(auth_server, auth="reportrunner:wrong"), *command)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (command, result.stderr)
        assert lines[0] == (
            f"error: Prefect API at {url} rejected PREFECT_API_AUTH_STRING (HTTP 401): "
            "authentication failed; check the user:password"
        )
        _assert_no_secret(f"{command[0]} without credentials", result.stdout + result.stderr)

    with pytest.raises(ApiUnavailable) as refused, connect(ApiConfig(url)) as api:
        health(api)
    assert str(refused.value).startswith(f"Prefect API at {url} failed while reading work pools")
    assert "401" in str(refused.value) and "\n" not in str(refused.value)
    with connect(ApiConfig(url, auth_string=AUTH)) as api:
        assert health(api).api_ok


@pytest.mark.timeout(2700)  # minutes of real waiting on a loaded machine
def test_cli_worker_and_flows_work_with_basic_auth_and_never_show_a_secret(auth_server, tmp_path):
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from deployments.prefect_server import free_port
    from deployments.processes import stop_process_group

    out = tmp_path / "outputs"
    env = _env(
        auth_server,
        auth=AUTH,
        REPORTRUNNER_FAILURE_WEBHOOK_URL=WEBHOOK,
        REPORTRUNNER_OUTPUT_URL=str(out),
    )
    printed: list[tuple[str, str]] = []

    deployed = _cli(env, "deploy")
    printed.append(("deploy", deployed.stdout + deployed.stderr))
    assert deployed.returncode == 0, deployed.stderr
    assert "deploy: " in deployed.stdout

    status = _cli(env, "status")
    printed.append(("status", status.stdout + status.stderr))
    assert status.returncode in (0, 1) and "READY" in status.stdout, status.stdout

    batch = _cli(env, "batch", "carrier-monthly", "--over", "carrier=AS,ZZ", "-p", "month=2013-05")
    printed.append(("batch", batch.stdout + batch.stderr))
    assert batch.returncode == 1, batch.stderr
    assert "carrier-monthly: 1 rendered, 0 unchanged, 1 failed of 2" in batch.stdout
    batch_id = UUID(re.search(r"flow-run/([0-9a-f-]{36})", batch.stdout).group(1))

    failing = _cli(
        {**env, "REPORTRUNNER_DATABASE_URL": f"postgresql+psycopg2://reader:{DB_PASSWORD}@127.0.0.1:1/x"},
        "render", "destination-quarterly", "-p", "dest=ATL", "-p", "quarter=2013-Q3",
        "--out", str(tmp_path / "render"),
    )  # fmt: skip
    printed.append(("render with an unreachable database", failing.stdout + failing.stderr))
    assert failing.returncode != 0
    assert failing.stderr.strip().startswith("error: ")
    assert "database unreachable" in failing.stderr and len(failing.stderr.splitlines()) == 1

    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "deployments.cli", "worker", "--name", "auth-worker",
             "--limit", "1", "--healthcheck-port", str(free_port())],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        with temporary_settings(
            updates={PREFECT_API_URL: auth_server.api_url, PREFECT_API_AUTH_STRING: AUTH}
        ):
            run = run_deployment(
                "report/carrier-monthly",
                parameters={
                    "report": "carrier-monthly",
                    "parameters": {"carrier": "HA", "month": "2013-06"},
                },
                timeout=0,
            )
            with get_client(sync_client=True) as client:
                deadline = time.monotonic() + 900
                while not client.read_flow_run(run.id).state.is_final():
                    assert time.monotonic() < deadline, "the worker never finished the run"
                    time.sleep(3)
                assert client.read_flow_run(run.id).state.is_completed()
                chunks = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[batch_id])
                    )
                )
                run_ids = [run.id, batch_id, *(c.id for c in chunks)]
                logs = client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids))
                )
                artifacts = client.read_artifacts(
                    artifact_filter=ArtifactFilter(
                        flow_run_id=ArtifactFilterFlowRunId(any_=run_ids)
                    )
                )
    finally:
        # One SIGTERM, as systemd sends it; SIGKILL only long after the limit asserted below.
        stopped_in = stop_process_group(worker, grace_s=40)
    assert stopped_in < 15, f"the worker stopped {stopped_in:.1f} s after one SIGTERM"
    assert list(out.rglob("carrier-monthly_HA_2013-06.pdf")), "the worker's run wrote its PDF"

    assert len(logs) > 5 and any("carrier-monthly" in entry.message for entry in logs)
    assert artifacts, "the runs published artifacts"
    printed.append(("worker output", worker_log.read_text(errors="replace")))
    printed += [(f"Prefect log of run {e.flow_run_id}", e.message) for e in logs]
    printed += [(f"artifact {a.key}", f"{a.data} {a.description or ''}") for a in artifacts]
    printed += [
        (str(path), path.read_text(errors="replace"))
        for path in [*out.rglob("*.json"), *out.rglob("*.html"), *out.rglob("*.csv")]
    ]
    logs_dir = Path(os.environ["REPORTRUNNER_HOME"]) / "logs"
    printed += [(str(p), p.read_text(errors="replace")) for p in logs_dir.rglob("*") if p.is_file()]
    for where, text in printed:
        _assert_no_secret(where, text)
