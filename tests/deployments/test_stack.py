"""`reportrunner up`: the one-command local stack starts, renders the demo, and stops clean."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from deployments.prefect_server import free_port
from deployments.processes import processes_with, stop_process_group


def _wait_for_line(process: subprocess.Popen, text: str, timeout: float) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            assert process.poll() is None, "up exited early:\n" + "".join(lines)
            continue
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} within {timeout} s:\n" + "".join(lines))


def test_up_serves_everything_renders_the_demo_and_stops_clean(tmp_path):
    home = tmp_path / "home"
    ports = {
        "--port": free_port(),
        "--dashboard-port": free_port(),
        "--worker-port": free_port(),
        "--mail-port": free_port(),
        "--metrics-port": free_port(),
    }
    env = {**os.environ, "REPORTRUNNER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("REPORTRUNNER_SMTP_HOST", None)  # `up` starts its own mail sink
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "deployments.cli", "up", "--demo-months", "1"]
    for flag, port in ports.items():
        command += [flag, str(port)]
    up = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, as a service manager starts it
    )
    try:
        lines = _wait_for_line(up, "running; press Ctrl-C", timeout=300)
        output = "".join(lines)
        ui = f"http://127.0.0.1:{ports['--port']}"
        assert f"Prefect UI:  {ui}" in output
        assert f"Dashboard:   http://127.0.0.1:{ports['--dashboard-port']}" in output
        assert httpx.get(f"{ui}/api/health").status_code == 200
        dashboard = f"http://127.0.0.1:{ports['--dashboard-port']}/_stcore/health"
        assert httpx.get(dashboard).text == "ok"
        run_id = next(line for line in lines if "demo batch:" in line).rsplit("/", 1)[-1].strip()

        deadline = time.monotonic() + 400
        state = None
        while time.monotonic() < deadline:
            state = httpx.get(f"{ui}/api/flow_runs/{run_id}").json()["state"]
            if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                break
            time.sleep(3)
        assert state and state["type"] == "COMPLETED", state
        assert len(list((home / "outputs" / "carrier-monthly").rglob("*.pdf"))) == 16
        assert processes_with(f"REPORTRUNNER_HOME={home}")  # server, worker, dashboard

        # The shipped subscription, through the stack's mail sink: one email per carrier
        # contact, each with that carrier's January PDF (rendered by the demo batch).
        delivered = subprocess.run(
            [
                sys.executable,
                "-m",
                "deployments.cli",
                "deliver",
                "carrier-contacts",
                "--as-of",
                "2013-02-02",
            ],
            env={
                **env,
                "PREFECT_API_URL": f"{ui}/api",
                "REPORTRUNNER_SMTP_HOST": "127.0.0.1",
                "REPORTRUNNER_SMTP_PORT": str(ports["--mail-port"]),
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert delivered.returncode == 0, delivered.stdout + delivered.stderr
        assert "16 of 16 sent, 0 failed, 0 held" in delivered.stdout
        mails = sorted((home / "mail").glob("*.eml"))
        assert len(mails) == 16
        assert "carrier-monthly_AA_2013-01.pdf" in "".join(m.read_text() for m in mails)

        took = stop_process_group(up, grace_s=30)  # SIGTERM; SIGKILL long after the limit
        assert took < 15, f"up stopped {took:.1f} s after SIGTERM"
        assert up.returncode == 0
        assert processes_with(f"REPORTRUNNER_HOME={home}") == [], "processes left behind"
        for port in ports.values():
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    finally:
        stop_process_group(up, grace_s=30)
        for pid in processes_with(f"REPORTRUNNER_HOME={home}"):  # services in other groups
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
