"""`reportrunner` as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prefect_helpers import pdf_text


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_render_writes_pdf_with_airline_and_flight_count(tmp_path: Path, flights):
    result = run_cli(
        "render",
        "carrier-monthly",
        "-p",
        "carrier=AA",
        "-p",
        "month=2013-07",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    pdf = Path(next(line for line in result.stdout.splitlines() if line.endswith(".pdf")))
    pages, text = pdf_text(pdf)
    expected = int(((flights.carrier == "AA") & (flights.month == 7)).sum())
    assert 2 <= pages <= 4
    assert "American Airlines" in text and f"{expected:,}" in text
    assert pdf.is_relative_to(tmp_path)


def test_render_format_subset(tmp_path: Path):
    result = run_cli(
        "render",
        "carrier-monthly",
        "-p",
        "carrier=DL",
        "-p",
        "month=2013-02",
        "--out",
        str(tmp_path),
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    written = sorted(Path(line).name for line in result.stdout.splitlines())
    assert written == [
        "carrier-monthly_DL_2013-02_daily.csv",
        "carrier-monthly_DL_2013-02_routes.csv",
        "carrier-monthly_DL_2013-02_worst_days.csv",
    ]


def test_user_errors_print_one_line_and_exit_2(tmp_path: Path):
    cases = {
        ("render", "nope"): "error: unknown report 'nope'; reports: airport-daily, "
        "carrier-monthly, destination-quarterly, flaky-carrier",
        ("render", "carrier-montly"): "error: unknown report 'carrier-montly'; "
        "did you mean 'carrier-monthly'?",
        ("render", "carrier-monthly", "-p", "carrier=AA"): "error: carrier-monthly: "
        "missing required parameter 'month'",
        ("render", "carrier-monthly", "-p", "carrier=AA", "-p", "month=July"): "error: "
        "carrier-monthly: parameter 'month' must be a month as YYYY-MM, got 'July'",
        (
            "render",
            "carrier-monthly",
            "-p",
            "carrier",
        ): "error: -p expects key=value, got 'carrier'",
        (
            "render",
            "carrier-monthly",
            "-p",
            "carrier=AA",
            "-p",
            "month=2013-07",
            "-p",
            "x=1",
        ): "error: carrier-monthly: unknown parameter 'x' (parameters: carrier, month)",
        ("render", "carrier-monthly", "--format", "docx"): "error: --format: unknown format "
        "'docx' (use pdf, html, csv)",
    }
    for args, expected in cases.items():
        result = run_cli(*args, "--out", str(tmp_path)) if "--out" not in args else run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip() == expected, args
        assert "Traceback" not in result.stderr


def test_batch_needs_a_reachable_prefect_api():
    unset = run_cli("batch", "carrier-monthly", "--all", "carrier", env={"PREFECT_API_URL": ""})
    assert unset.returncode == 2
    assert unset.stderr.startswith("error: PREFECT_API_URL is not set")
    down = run_cli(
        "batch",
        "carrier-monthly",
        "--all",
        "carrier",
        env={"PREFECT_API_URL": "http://127.0.0.1:9/api"},
    )
    assert down.returncode == 2
    assert down.stderr.strip() == (
        "error: Prefect API at http://127.0.0.1:9/api is unreachable: is the server running?"
    )


def test_batch_runs_a_flow_and_reports_failures(output_root: Path):
    result = run_cli(
        "batch",
        "carrier-monthly",
        "--over",
        "carrier=AS,HA,ZZ",
        "-p",
        "month=2013-05",
        "--progress",
    )
    assert result.returncode == 1, result.stderr
    assert "carrier-monthly: 2 rendered, 0 unchanged, 1 failed of 3" in result.stdout
    assert (
        "failed carrier=ZZ month=2013-05: carrier-monthly: parameter 'carrier' is 'ZZ'"
        in result.stderr
    )
    assert "3 of 3 done, 1 failed" in result.stderr  # the progress bar's last state
    assert (output_root / "carrier-monthly/carrier=HA/month=2013-05").is_dir()

    again = run_cli("batch", "carrier-monthly", "--over", "carrier=AS,HA", "-p", "month=2013-05")
    assert again.returncode == 0, again.stderr
    assert "0 rendered, 2 unchanged, 0 failed of 2" in again.stdout


def test_batch_rejects_unknown_dimension_in_one_line():
    result = run_cli("batch", "carrier-monthly", "--all", "airline")
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "error: carrier-monthly: unknown parameter 'airline' to batch over"
    )


def test_list_and_validate():
    listed = run_cli("list")
    assert listed.returncode == 0
    assert "carrier-monthly  —  Carrier monthly performance" in listed.stdout
    assert "batch over: carrier, month" in listed.stdout
    validated = run_cli("validate", "carrier-monthly")
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.startswith("ok    carrier-monthly: sample carrier=AA month=2013-07")


def test_worker_and_deploy_need_a_reachable_api():
    for command in (["worker"], ["deploy"]):
        result = run_cli(*command, env={"PREFECT_API_URL": "http://127.0.0.1:9/api"})
        assert result.returncode == 2, command
        assert result.stderr.strip() == (
            "error: Prefect API at http://127.0.0.1:9/api is unreachable: is the server running?"
        )


def test_status_exit_codes(prefect_server):
    down = run_cli("status", env={"PREFECT_API_URL": "http://127.0.0.1:9/api"})
    assert down.returncode == 2
    assert "DOWN" in down.stdout and "Traceback" not in down.stderr
    up = run_cli("status", "--json")
    payload = json.loads(up.stdout)
    assert payload["api"]["ready"] is True
    assert up.returncode == (0 if payload["ok"] else 1)


def test_a_command_line_render_is_found_by_items(tmp_path: Path):
    index = f"sqlite:///{tmp_path / 'index.sqlite'}"
    env = {"REPORTRUNNER_INDEX_URL": index}
    # Parameters typed in any order name the same item as a batch would.
    rendered = run_cli(
        "render",
        "flaky-carrier",
        "-p",
        "month=2013-05",
        "-p",
        "carrier=UA",
        "--out",
        str(tmp_path / "out"),
        env=env,
    )
    assert rendered.returncode == 0, rendered.stderr
    found = run_cli("items", "carrier=ua", "--json", env=env)
    assert found.returncode == 0, found.stderr
    listed = json.loads(found.stdout)
    assert listed["total"] == 1
    (item,) = listed["items"]
    assert (item["report"], item["key"], item["status"]) == (
        "flaky-carrier",
        "carrier=UA month=2013-05",
        "rendered",
    )
    text = run_cli("items", "2013-05", "--report", "flaky-carrier", env=env)
    assert "✅ rendered" in text.stdout and "carrier=UA month=2013-05" in text.stdout
    assert text.stdout.strip().endswith("1 item")
    bad = run_cli("items", "--status", "gone", env=env)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: search: unknown status 'gone'"
