"""For tests against a real Prefect server: reading results back (PDFs as text, artifacts,
task runs) and starting workers."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from uuid import UUID

from pypdf import PdfReader


def pdf_text(path: Path) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return len(reader.pages), "\n".join(page.extract_text() or "" for page in reader.pages)


def flow_run_artifacts(flow_run_id: UUID) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def child_flow_runs(parent_id: UUID) -> list:
    """Flow runs started as subflows of `parent_id` (the batch's chunks)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
            )
        )


def task_runs_of(flow_run_ids: list[UUID]) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids))
        )


def start_worker(
    name: str,
    *,
    limit: int,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    healthcheck_port: int | None = None,
    sigint_ignored: bool = False,
) -> subprocess.Popen:
    """`reportrunner worker` in its own process group, like a service on its own host.

    `sigint_ignored`: start it the way a CI runner or `cmd &` in a script does, with
    SIGINT ignored (an ignored signal stays ignored across exec).
    """
    from deployments.prefect_server import free_port

    command = [sys.executable, "-m", "deployments.cli", "worker", "--name", name]
    command += ["--limit", str(limit), "--healthcheck-port", str(healthcheck_port or free_port())]
    return subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=log.open("wb") if log else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
