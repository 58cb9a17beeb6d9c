"""`reportrunner worker`: a Prefect process worker for the `reports` pool, with sane limits.

Prefect's own default is no limit on concurrent flow runs; a worker here runs at
most one flow run per core (each chunk already renders on several processes).
"""

from __future__ import annotations

import os
import sys

from deployments.topology import WORK_POOL


def worker_command(
    *, name: str | None, limit: int | None, pool: str = WORK_POOL, healthcheck: bool = True
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        pool,
        "--type",
        "process",
        "--limit",
        str(limit or os.cpu_count() or 1),
    ]
    if name:
        command += ["--name", name]
    if healthcheck:
        command.append("--with-healthcheck")
    return command


def worker_environment(healthcheck_port: int) -> dict[str, str]:
    # Each worker's health endpoint needs its own port when several share a host.
    return {
        **os.environ,
        "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
        "PREFECT_WORKER_WEBSERVER_PORT": str(healthcheck_port),
    }
