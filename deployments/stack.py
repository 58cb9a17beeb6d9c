"""`reportrunner up`: the whole product on one machine, started and stopped as one.

Starts a Prefect server (SQLite, project-local home, 127.0.0.1, UI on), applies
the deployments, one worker and the dashboard; waits for each health endpoint,
prints the URLs and triggers a demo batch. Ctrl-C or SIGTERM stops everything it
started within 15 s (SIGTERM, then SIGKILL after a grace period). Logs go to files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deployments.prefect_server import PrefectServer
from deployments.processes import service_preexec, stop_process_group
from deployments.worker import worker_command, worker_environment
from reports.settings import PROJECT_ROOT, Settings

GRACE_S = 8.0  # SIGTERM → SIGKILL; the services stop in parallel within 15 s


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        stop_process_group(self.process, GRACE_S)


@dataclass
class Stack:
    settings: Settings
    prefect_port: int = 4200
    dashboard_port: int = 8501
    worker_healthcheck_port: int = 8585
    mail_port: int = 8025
    metrics_port: int = 9464
    say: Callable[[str], None] = print
    services: list[Service] = field(default_factory=list)
    server: PrefectServer | None = None

    @property
    def logs(self) -> Path:
        return self.settings.home / "logs"

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.server = PrefectServer(
            home=self.settings.home / "prefect",
            port=self.prefect_port,
            ui=True,
            log_path=self.logs / "prefect-server.log",
            preexec_fn=service_preexec(),
        )
        self.say(f"starting Prefect server (log: {self.server.log_path}) …")
        self.server.start(timeout=180)
        self.services.append(Service("prefect-server", self.server.process, self.server.log_path))
        os.environ["PREFECT_API_URL"] = self.server.api_url
        os.environ["PREFECT_HOME"] = str(self.server.home)

    def start_worker(self) -> None:
        env = worker_environment(self.worker_healthcheck_port)
        service = self._spawn("worker", worker_command(name="local-worker", limit=None), env=env)
        self._wait_http(
            "worker", f"http://127.0.0.1:{self.worker_healthcheck_port}/health", service
        )

    def start_mail_sink(self) -> Path | None:
        """A local SMTP sink for the demo's deliveries, unless a real server is configured.

        Every message it receives lands in `<home>/mail/` as an .eml file, so a delivery
        can be watched on one machine with no mail server.
        """
        if os.environ.get("REPORTRUNNER_SMTP_HOST"):
            return None
        folder = self.settings.home / "mail"
        command = [
            sys.executable,
            "-m",
            "reports.delivery._smtp_sink",
            "--folder",
            str(folder),
            "--port",
            str(self.mail_port),
        ]
        service = self._spawn("mail-sink", command, env=dict(os.environ))
        self._wait_port("mail sink", self.mail_port, service)
        os.environ["REPORTRUNNER_SMTP_HOST"] = "127.0.0.1"
        os.environ["REPORTRUNNER_SMTP_PORT"] = str(self.mail_port)
        return folder

    def _wait_port(self, name: str, port: int, service: Service, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {service.process.returncode}; see {service.log_path}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} not listening after {timeout:.0f} s; see {service.log_path}")

    def start_metrics(self) -> str:
        """The Prometheus exporter (`reportrunner metrics`); returns its /metrics URL."""
        url = f"http://127.0.0.1:{self.metrics_port}"
        command = [
            sys.executable,
            "-m",
            "deployments.cli",
            "metrics",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.metrics_port),
        ]
        service = self._spawn("metrics", command, env=dict(os.environ))
        self._wait_http("metrics exporter", f"{url}/", service)  # "/" answers 200 when alive
        return f"{url}/metrics"

    def start_dashboard(self) -> None:
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(PROJECT_ROOT / "dashboard" / "app.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(self.dashboard_port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ]
        service = self._spawn("dashboard", command, env=dict(os.environ))
        self._wait_http("dashboard", f"{self.dashboard_url}/_stcore/health", service)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> Service:
        log_path = self.logs / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            # Default SIGINT even when `up` runs in the background: Prefect's worker stops
            # on SIGTERM by sending itself SIGINT, which an inherited SIG_IGN swallows.
            preexec_fn=service_preexec(),
        )
        service = Service(name, process, log_path)
        self.services.append(service)
        return service

    def _wait_http(self, name: str, url: str, service: Service, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {service.process.returncode}; see {service.log_path}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"{name} not healthy after {timeout:.0f} s; see {service.log_path}")

    def stop(self) -> None:
        """Stop every service in parallel: SIGTERM to each process group, SIGKILL after grace."""
        threads = [threading.Thread(target=s.stop) for s in reversed(self.services)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.services.clear()

    def wait(self) -> None:
        """Block until a service dies; Ctrl-C or SIGTERM (see `interruptible`) ends it too."""
        while True:
            for service in self.services:
                if service.process.poll() is not None:
                    self.say(
                        f"{service.name} exited (code {service.process.returncode}); "
                        f"see {service.log_path}"
                    )
                    return
            time.sleep(1.0)


@contextlib.contextmanager
def interruptible():
    """SIGTERM behaves like Ctrl-C while the stack runs; both are ignored while it stops.

    Without this, a second signal during shutdown would kill this process before
    it had stopped its children.
    """

    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def restore_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
