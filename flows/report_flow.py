"""The `report` flow: one report, one parameter set, one task per stage.

    load → build context → render HTML → render PDF → publish

The engine's `run_stages` spells the sequence; here each stage runs as a task that
retries transient errors with backoff and jitter, while bad parameters, template
errors, blocked fetches and quality failures fail at once with their message. A
progress artifact moves 0 → 100 through the stages, and the outputs appear as a
markdown summary and links in the Prefect UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.artifacts import publish_report_artifacts
from flows.item_records import ItemRecorder
from flows.parameters import Formats, ReportName
from flows.retry import TASK_RETRY_OPTIONS
from flows.source_slots import source_slot
from reports import OutputStore, ReportError, get_settings, jobs
from reports.contracts import PROGRESS, REPORT_FLOW, Outcome, artifact_key, report_run_name
from reports.definitions import default_catalog
from reports.render import STAGES, run_stages

# The task run of each engine stage, as the Prefect UI and the dashboard's timeline name it.
TASK_NAMES = {
    "load": "load",
    "context": "build-context",
    "html": "render-html",
    "pdf": "render-pdf",
    "publish": "publish",
}


# Stage results are DataFrames and documents: never cache or persist them.
@task(cache_policy=NO_CACHE, persist_result=False, **TASK_RETRY_OPTIONS)
def stage_task(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _message(error: BaseException) -> str:
    return str(error) if isinstance(error, ReportError) else f"{type(error).__name__}: {error}"


def _run_name() -> str:
    return report_run_name(flow_run.parameters)


@flow(name=REPORT_FLOW, flow_run_name=_run_name, persist_result=False)
def report(
    report: ReportName,
    parameters: dict[str, Any] | None = None,
    formats: Formats | None = None,
) -> dict[str, Any]:
    """Render one report with one set of parameters and publish its outputs."""
    logger = get_run_logger()
    definition = default_catalog().get(report)
    store = OutputStore(get_settings().resolved_output_url)
    progress = create_progress_artifact(
        0, key=artifact_key(report, PROGRESS), description="loading data"
    )

    def run_stage(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        # Loading holds a slot of the SQL source limit; every stage retries on its own.
        with source_slot(report) if name == "load" else nullcontext():
            result = stage_task.with_options(name=TASK_NAMES[name])(fn, *args)
        done = 100 * (STAGES.index(name) + 1) / len(STAGES)
        update_progress_artifact(progress, done, description=f"{name} done")
        return result

    recorder = ItemRecorder(report, run_id=str(flow_run.id) if flow_run.id else None, logger=logger)
    recorder.started([parameters or {}])
    started = time.perf_counter()
    try:
        manifest = run_stages(
            definition,
            parameters or {},
            store,
            formats=formats,
            run_stage=run_stage,
            on_quality_issue=lambda issues: logger.warning("quality gate: %s", "; ".join(issues)),
        )
    except Exception as error:
        recorder.finished([Outcome.failed(parameters or {}, _message(error))])
        raise
    duration = round(time.perf_counter() - started, 3)
    recorder.finished([jobs.outcome_of(parameters or {}, manifest, duration_s=duration)])
    publish_report_artifacts(manifest, store)
    logger.info("%s: %s pages, outputs in %s", report, manifest["pages"], manifest["item_dir"])
    return manifest
