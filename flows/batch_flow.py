"""The `batch` flow: one report fanned out over many parameter sets.

    expand items → split into chunks → render each chunk → summarize

One progress artifact reads "N of M done, K failed, ETA …" for the whole batch.
A failed item never stops the others; the batch ends Failed if any item failed,
naming them. Re-running (or retrying) the batch skips every item whose inputs
and outputs are unchanged, so only failed or changed items render again.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows import progress as progress_registry
from flows.artifacts import artifact_key, publish_batch_artifacts
from flows.chunk_flow import render_chunk
from flows.items import expand_items, item_key, split_chunks
from flows.progress import BatchProgress
from reports import get_settings
from reports.catalog import default_catalog


def _run_name() -> str:
    params = flow_run.parameters
    over = params.get("over") or {}
    fixed = params.get("parameters") or {}
    dims = " × ".join(over) if over else f"{len(params.get('items') or [])} items"
    return f"{params['report']} batch over {dims} {item_key(fixed)}".strip()


@flow(name="batch", flow_run_name=_run_name, persist_result=False)
def batch(
    report: str,
    over: dict[str, list[Any] | str] | None = None,
    parameters: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    max_parallel: int | None = None,
    chunk_size: int | None = None,
    force: bool = False,
):
    """Render `report` for every combination of the `over` values (or every `items` entry).

    over: dimension → list of values, or "*" for all values of that dimension.
    parameters: values shared by every item. force: render even unchanged items.
    """
    logger = get_run_logger()
    settings = get_settings()
    definition = default_catalog().get(report)
    expanded = expand_items(definition, over, parameters, items)
    parallel = max_parallel or settings.max_parallel
    chunks = split_chunks(expanded, chunk_size or settings.chunk_size)
    output_url = settings.resolved_output_url
    logger.info(
        "%s: %d items in %d chunk(s), %d render processes, outputs in %s",
        report,
        len(expanded),
        len(chunks),
        parallel,
        output_url,
    )

    batch_id = str(flow_run.id or "local")
    progress = BatchProgress(
        total=len(expanded),
        artifact_key=artifact_key(report, "batch-progress"),
        cooldown_s=settings.progress_cooldown_s,
        listeners=progress_registry.subscribers(),
    )
    progress_registry.register(batch_id, progress)
    outcomes: list[dict[str, Any]] = []
    try:
        progress.start()
        for number, chunk in enumerate(chunks, start=1):
            run_chunk = render_chunk.with_options(
                flow_run_name=f"{report} chunk {number}/{len(chunks)}",
                task_runner=ThreadPoolTaskRunner(max_workers=2 * parallel),
            )
            outcomes += run_chunk(
                report=report,
                items=chunk,
                output_url=output_url,
                max_parallel=parallel,
                force=force,
                batch_id=batch_id,
            )
    finally:
        progress_registry.unregister(batch_id)

    summary = progress.describe()
    publish_batch_artifacts(report, outcomes, summary)
    result = {
        "report": report,
        "total": progress.total,
        "rendered": progress.rendered,
        "skipped": progress.skipped,
        "failed": progress.failed,
        "progress_writes": progress.writes,
        "failed_items": [
            {"key": o["key"], "error": o["error"]} for o in outcomes if o["status"] == "failed"
        ],
        "output_url": output_url,
    }
    logger.info("%s: %s", report, summary)
    if progress.failed:
        first = result["failed_items"][0]
        message = (
            f"{progress.failed} of {progress.total} items failed; "
            f"first: {first['key']}: {first['error']}"
        )
        return Failed(message=message, data=result)
    return Completed(message=summary, data=result)
