"""JSON log lines: one object per line, the fields shippers index, and never a secret."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from reports.json_logs import JsonLines, redact

SECRETS = {
    "REPORTRUNNER_SMTP_PASSWORD": "smtp-pass-9f3k2",
    "REPORTRUNNER_FAILURE_WEBHOOK_URL": "https://hooks.example.com/services/T0/B0/zz-secret-path",
    "REPORTRUNNER_DASHBOARD_SECRET": "dashboard-signing-key-0123456789abcdef0123",
}


def test_a_record_is_one_line_of_json_without_secrets(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    record = logging.LogRecord(
        "reportrunner.items",
        logging.ERROR,
        __file__,
        1,
        "posting to %s with %s failed; db postgresql://app:hunter22@db/reports",
        (SECRETS["REPORTRUNNER_FAILURE_WEBHOOK_URL"], SECRETS["REPORTRUNNER_SMTP_PASSWORD"]),
        None,
    )
    record.report, record.item, record.duration_s = "carrier-monthly", "carrier=AA", 0.5
    line = JsonLines().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["report"] == "carrier-monthly" and data["duration_s"] == 0.5
    assert data["level"] == "ERROR" and data["logger"] == "reportrunner.items"
    for value in [*SECRETS.values(), "hunter22"]:
        assert value not in line
    assert "postgresql://app:***@db/reports" in data["message"]


def test_redact_leaves_ordinary_text_alone():
    assert redact("carrier=AA rendered in 0.5 s", secrets=[]) == "carrier=AA rendered in 0.5 s"


@pytest.mark.usefixtures("prefect_server")
def test_a_batch_logs_json_lines_with_its_items_and_no_secret(prefect_server, output_root):
    env = {
        **os.environ,
        **SECRETS,
        "PREFECT_API_URL": prefect_server.api_url,
        "REPORTRUNNER_LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployments.cli",
            "batch",
            "flaky-carrier",
            "--over",
            "carrier=AA,DL",
            "--over",
            "month=2013-08",
            "--verbose",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]  # every JSON-looking line parses
    items = [r for r in records if r["logger"] == "reportrunner.items"]
    assert {r["item"] for r in items} == {"carrier=AA month=2013-08", "carrier=DL month=2013-08"}
    assert all(r["report"] == "flaky-carrier" and r["status"] == "rendered" for r in items)
    assert all(r["duration_s"] > 0 and r["batch_id"] for r in items)
    assert any(r.get("flow_run_id") for r in records), "flow-run records carry their run id"
    everything = result.stdout + result.stderr
    for value in SECRETS.values():
        assert value not in everything
