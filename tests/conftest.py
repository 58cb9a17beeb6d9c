"""Test session set-up: isolated settings, demo data, and one real Prefect server.

Environment variables are set before any project module reads its settings, so
that render worker processes (spawned later) inherit the same configuration.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Fixtures any layer's tests use: `ws`, `mini` and `kit` (throwaway report workspaces);
# `s3` and `s3_url` (an S3 bucket served by moto, tests/storage_helpers.py).
pytest_plugins = ["workspace", "storage_helpers"]

PROJECT = Path(__file__).resolve().parents[1]
FIXTURE_CATALOG = Path(__file__).resolve().parent / "fixtures" / "catalog"
SESSION_HOME = Path(tempfile.mkdtemp(prefix="reportrunner-tests-"))

# The session's catalog: the shipped reports plus test-only ones, side by side. Copies,
# not links: the catalog refuses a report folder that resolves outside it.
_catalog = SESSION_HOME / "catalog"
_catalog.mkdir()
for folder in [*(PROJECT / "reports" / "catalog").iterdir(), *FIXTURE_CATALOG.iterdir()]:
    if (folder / "spec.yaml").is_file():
        shutil.copytree(
            folder, _catalog / folder.name, ignore=shutil.ignore_patterns("__pycache__")
        )

os.environ.update(
    {
        "REPORTRUNNER_HOME": str(SESSION_HOME),
        "REPORTRUNNER_DATA_DIR": str(
            PROJECT / "var" / "data"
        ),  # built once, shared across sessions
        "REPORTRUNNER_CATALOG_DIR": str(_catalog),
        "REPORTRUNNER_PROGRESS_COOLDOWN_S": "0.5",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
)


def pytest_collection_modifyitems(session, config, items):
    """Browser tests last: Playwright's sync API leaves an event loop on the main thread,
    after which Prefect's sync-compatible calls in this process return coroutines."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path).replace("\\", "/"))


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def settings():
    from reports.datasets import setup_data
    from reports.settings import get_settings

    current = get_settings()
    setup_data(current.resolved_data_dir, current.resolved_database_url)
    return current


@pytest.fixture(scope="session")
def flights(settings):
    import pandas as pd

    return pd.read_parquet(settings.resolved_data_dir / "flights.parquet")


@pytest.fixture(scope="session")
def prefect_server(settings):
    """One Prefect server (SQLite, no UI) for the whole session; its URL is the active API."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.prefect_server import PrefectServer

    server = PrefectServer(home=SESSION_HOME / "prefect")
    server.start(timeout=180)
    os.environ["PREFECT_API_URL"] = server.api_url  # for CLI subprocesses
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server
    finally:
        from flows import render_pool

        render_pool.shutdown()
        server.stop()


POSTGRES_ADMIN_URL = os.environ.get(
    "REPORTRUNNER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def scratch_postgres_url():
    """A new, empty PostgreSQL database for one test, dropped afterwards.

    Skips when no server answers (a laptop without PostgreSQL), but fails under CI,
    where the PostgreSQL tests must run.
    """
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as exc:
        reason = f"PostgreSQL unreachable at {admin.url.render_as_string()}: {exc.orig}".strip()
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    name = f"reportrunner_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        from reports.sources import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def output_root(settings) -> Path:
    """The outputs folder, emptied before each test that asks for it."""
    root = Path(settings.resolved_output_url)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


# ---- no process started by the tests outlives the session --------------------------------


class _LeftoverProcessGuard:
    """Kills and reports processes the tests started that are still alive at the end.

    Every process the tests start inherits this session's home in its environment
    (REPORTRUNNER_HOME, REPORTRUNNER_CATALOG_DIR) or names it on its command line. A
    leftover fails the run (exit status 1) with one line per process, after all other
    results; the processes are SIGKILLed so that they cannot disturb the next run.
    """

    @pytest.hookimpl(trylast=True)  # after pytest's own hook has stopped session fixtures
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from deployments.processes import kill_pids, proc_stat, processes_with

        leftovers = {}
        for pid in processes_with(str(SESSION_HOME)):
            stat = proc_stat(pid)
            command = _command_line(pid)
            # This process's own multiprocessing helpers end with it (atexit), not before.
            if stat and not (stat.ppid == os.getpid() and "multiprocessing" in command):
                leftovers[pid] = (stat.start, command)
        if not leftovers:
            return
        kill_pids({pid: start for pid, (start, _) in leftovers.items()})
        title = f"{len(leftovers)} process(es) started by the tests outlived the session (killed)"
        lines = [f"pid {pid}: {command[:160]}" for pid, (_, command) in sorted(leftovers.items())]
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            import sys

            print("\n".join([f"LEFTOVER PROCESSES: {title}", *lines]), file=sys.stderr)
        else:
            reporter.line("")  # off the progress line
            reporter.write_sep("!", f"LEFTOVER PROCESSES: {title}", red=True, bold=True)
            for line in lines:
                reporter.write_line(line, red=True)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (OSError, UnicodeDecodeError):
        return "?"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_LeftoverProcessGuard(), "reportrunner-leftover-processes")
    if os.environ.get("CI"):
        config.pluginmanager.register(_NoSkipsUnderCi(), "reportrunner-no-skips-under-ci")


# ---- under CI, every test runs -------------------------------------------------------------


class _NoSkipsUnderCi:
    """With CI=true, a skipped test fails the run, named: CI must run every test.

    Skips are for a laptop without PostgreSQL or Chromium; on CI they would hide a test
    that silently stopped running. Expected failures (xfail) are not skips.
    """

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            self.skipped.append(f"{report.nodeid}: {reason}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.skipped:
            return
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        title = f"CI=true: {len(self.skipped)} test(s) skipped; under CI every test must run"
        if reporter is not None:
            reporter.line("")
            reporter.write_sep("!", title, red=True, bold=True)
            for line in self.skipped:
                reporter.write_line(line, red=True)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
