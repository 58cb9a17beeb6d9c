"""Start, probe and stop a Prefect server process (the local stack and the test session use it).

The server gets its own PREFECT_HOME, binds to 127.0.0.1 and has analytics off.
Without PREFECT_API_URL, Prefect would silently start an ephemeral server in
~/.prefect instead; everything here passes the URL explicitly.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deployments.processes import stop_process_group


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api_ready(api_url: str, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def credentials_problem(api_url: str, auth_string: str | None, timeout: float = 5.0) -> str | None:
    """None when the API takes our basic-auth credentials, else a one-line reason.

    `/health` answers everyone, even on a server started with
    PREFECT_SERVER_API_AUTH_STRING, so `api_ready` cannot tell; `/admin/version` can.
    """
    headers = {}
    if auth_string:
        headers["Authorization"] = "Basic " + base64.b64encode(auth_string.encode()).decode()
    try:
        url = f"{api_url.rstrip('/')}/admin/version"
        response = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError:
        return None  # reachability is api_ready's question
    if response.status_code not in (401, 403):
        return None
    where = f"Prefect API at {api_url}"
    if not auth_string:
        return (
            f"{where} requires authentication (HTTP {response.status_code}): "
            "set PREFECT_API_AUTH_STRING to the server's user:password"
        )
    return (
        f"{where} rejected PREFECT_API_AUTH_STRING (HTTP {response.status_code}): "
        "authentication failed; check the user:password"
    )


@dataclass
class PrefectServer:
    home: Path
    port: int = field(default_factory=free_port)
    ui: bool = False
    database_url: str | None = None  # default: SQLite inside home
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    preexec_fn: Callable[[], None] | None = None
    process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "true" if self.ui else "false",
            "PREFECT_API_URL": self.api_url,
            **self.extra_env,
        }
        if self.database_url:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.database_url
        return env

    def start(self, timeout: float = 120.0) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path or self.home / "server.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
        command = [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--analytics-off",
            *([] if self.ui else ["--no-ui"]),
        ]
        self.process = subprocess.Popen(
            command,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches its children
            preexec_fn=self.preexec_fn,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Prefect server exited with code {self.process.returncode}; see {log_path}"
                )
            if api_ready(self.api_url, timeout=2):
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Prefect server not ready after {timeout:.0f} s; see {log_path}")

    def stop(self, grace: float = 10.0) -> float:
        """SIGTERM, SIGKILL after `grace`; the seconds it took (0 when not running)."""
        if self.process is None:
            return 0.0
        return stop_process_group(self.process, grace)
