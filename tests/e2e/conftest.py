"""End-to-end set-up: the real local stack (`reportrunner up`) and headless Chromium.

The stack runs once per module, as a user starts it, on free ports with a home and
a data folder of its own: the data folder links the session's demo data, so a test
can mark a carrier broken for the test-only `flaky-carrier` report without touching
what other test sessions read. Chromium is Debian's (`scripts/bootstrap.sh` installs
it and axe-core); without them the tests skip, except under CI, where they must run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.browsing import DESKTOP

from deployments.prefect_server import free_port
from deployments.processes import die_with_parent, stop_process_group

E2E = Path(__file__).resolve().parent
AXE_SCRIPT = E2E / "node_modules" / "axe-core" / "axe.min.js"
STARTUP_TIMEOUT_S = 300


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the end-to-end tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _unavailable("Chromium not installed (scripts/bootstrap.sh installs Debian's chromium)")
    return path


@pytest.fixture(scope="session")
def axe_script() -> Path:
    if not AXE_SCRIPT.is_file():
        _unavailable(f"axe-core missing: run `npm ci` in {E2E.name}/ (scripts/bootstrap.sh does)")
    return AXE_SCRIPT


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path)
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class LiveStack:
    """What the tests need to know about the running stack."""

    dashboard_url: str
    api_url: str
    home: Path
    data_dir: Path
    log_dir: Path

    @property
    def outputs(self) -> Path:
        return self.home / "outputs"

    @contextlib.contextmanager
    def client(self) -> Iterator:
        """A Prefect client for this stack's server (not the session's test server)."""
        from prefect import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with (
            temporary_settings(updates={PREFECT_API_URL: self.api_url}),
            get_client(sync_client=True) as client,
        ):
            yield client

    def logs(self) -> str:
        """The tail of every service log, for a failure message."""
        return "\n".join(
            f"--- {path.name} (tail)\n" + path.read_text(errors="replace")[-3000:]
            for path in sorted(self.log_dir.glob("*.log"))
        )


def _private_data_dir(settings, folder: Path) -> Path:
    """Links to the session's demo tables, in a folder this stack alone writes markers into."""
    folder.mkdir(parents=True)
    for table in settings.resolved_data_dir.glob("*.parquet"):
        (folder / table.name).symlink_to(table)
    return folder


def _wait_until_running(up: subprocess.Popen, output: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = output.read_text(errors="replace")
        if "running; press Ctrl-C" in text:
            return
        if up.poll() is not None:
            raise RuntimeError(f"`reportrunner up` exited early:\n{text}")
        time.sleep(0.5)
    raise RuntimeError(f"`reportrunner up` not running after {timeout:.0f} s:\n{text}")


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    """Extra environment for the stack; a test module overrides it (e.g. sign-in users)."""
    return {}


@pytest.fixture(scope="module")
def stack(settings, tmp_path_factory, chromium_path, axe_script, stack_env) -> Iterator[LiveStack]:
    """`reportrunner up` without the demo batch; stopped (SIGTERM) after the module."""
    home = tmp_path_factory.mktemp("e2e-stack")
    data_dir = _private_data_dir(settings, home / "data")
    ports = {
        "--port": free_port(),
        "--dashboard-port": free_port(),
        "--worker-port": free_port(),
        "--mail-port": free_port(),
        "--metrics-port": free_port(),
    }
    env = {
        **os.environ,
        "REPORTRUNNER_HOME": str(home),
        "REPORTRUNNER_DATA_DIR": str(data_dir),
        "REPORTRUNNER_DATABASE_URL": settings.resolved_database_url,
        "PYTHONUNBUFFERED": "1",
        **stack_env,
    }
    env.pop("PREFECT_API_URL", None)  # `up` points everything at its own server
    command = [sys.executable, "-m", "deployments.cli", "up", "--demo-months", "0"]
    for flag, port in ports.items():
        command += [flag, str(port)]
    output = home / "up.out"
    with output.open("wb") as sink:  # a file, not a pipe: nobody reads `up` after start-up
        up = subprocess.Popen(
            command,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # a killed test session leaves no stack behind
        )
    try:
        _wait_until_running(up, output, STARTUP_TIMEOUT_S)
        yield LiveStack(
            dashboard_url=f"http://127.0.0.1:{ports['--dashboard-port']}",
            api_url=f"http://127.0.0.1:{ports['--port']}/api",
            home=home,
            data_dir=data_dir,
            log_dir=home / "logs",
        )
    finally:
        stop_process_group(up, grace_s=30)  # SIGTERM; its stop time is test_stack.py's subject


@pytest.fixture
def page(browser, stack):
    """A desktop-sized page with a fresh session (its own Streamlit session state)."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()
