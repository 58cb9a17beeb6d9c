"""The `render-chunk` flow: renders a slice of a batch in this process.

A batch splits into chunks so that (a) Prefect's per-flow memory for task states
stays bounded however large the batch, and (b) chunks can run as separate flow
runs on different workers. Within a chunk, one thread-run task per item hands
the rendering to the render process pool.

Items whose outputs are current are skipped in one planning pass, so a re-run of
an unchanged batch costs one data check per item and no task runs.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows import render_pool
from flows.chunk_results import write_outcomes
from flows.items import item_key
from flows.limits import source_slot
from flows.progress import BatchProgress, lookup
from flows.retry import TASK_RETRY_OPTIONS
from reports import OutputStore, ReportError, get_settings, jobs

# How batches find this flow when they spread chunks over workers (see prefect.yaml).
CHUNK_DEPLOYMENT = "render-chunk/render-chunk"


@task(name="plan-chunk", cache_policy=NO_CACHE, persist_result=False)
def plan_chunk(report: str, items: list[dict[str, Any]], output_url: str) -> list[bool]:
    """For each item: are its outputs present and made from the same inputs?

    Checked here, not in the render pool: a check is a cached-data lookup and a
    manifest read (none at all for an item never rendered), so an unchanged batch
    never starts render processes, which would take the two cores from the check.
    """
    return [jobs.is_item_current(report, item, output_url) for item in items]


@task(name="render-item", cache_policy=NO_CACHE, persist_result=False, **TASK_RETRY_OPTIONS)
def render_item(
    report: str, params: dict[str, Any], output_url: str, parallel: int, force: bool
) -> dict[str, Any]:
    with source_slot(report):
        return render_pool.submit(
            parallel, jobs.render_item, report, params, output_url, force
        ).result()


def _run_name() -> str:
    params = flow_run.parameters
    return f"{params['report']} chunk of {len(params['items'])}"


@flow(
    name="render-chunk",
    flow_run_name=_run_name,
    persist_result=False,
    task_runner=ThreadPoolTaskRunner(max_workers=2 * (os.cpu_count() or 1)),
)
def render_chunk(
    report: str,
    items: list[dict[str, Any]],
    output_url: str | None = None,
    max_parallel: int | None = None,
    force: bool = False,
    batch_id: str | None = None,
    chunk_index: int = 0,
) -> list[dict[str, Any]]:
    """Render `items`; never raises for a failed item, returns one outcome per item.

    Started in-process by a batch, it reports to the batch's progress. Started on a
    worker, it keeps its own progress artifact and leaves its outcomes in the output
    store for the batch to merge.
    """
    logger = get_run_logger()
    settings = get_settings()
    output_url = output_url or settings.resolved_output_url
    parallel = max_parallel or settings.max_parallel
    in_process = lookup(batch_id)
    progress = in_process or BatchProgress(
        total=len(items), cooldown_s=settings.progress_cooldown_s
    )
    if in_process is None:
        progress.start()

    current = [False] * len(items) if force else plan_chunk(report, items, output_url)
    if not all(current):
        render_pool.warm_up(parallel)  # in the background, while tasks are being created
    outcomes: dict[int, dict[str, Any]] = {}
    for index, (item, is_current) in enumerate(zip(items, current, strict=True)):
        if is_current:
            outcomes[index] = {"key": item_key(item), "params": item, "status": "skipped"}
            progress.record("skipped")

    futures = {
        render_item.with_options(task_run_name=f"render {item_key(item)}").submit(
            report, item, output_url, parallel, force
        ): index
        for index, item in enumerate(items)
        if index not in outcomes
    }
    for future in as_completed(list(futures)):
        index = futures[future]
        item = items[index]
        result = future.result(raise_on_failure=False)
        if isinstance(result, BaseException):
            message = (
                str(result)
                if isinstance(result, ReportError)
                else f"{type(result).__name__}: {result}"
            )
            logger.error("%s failed: %s", item_key(item), message)
            outcomes[index] = {
                "key": item_key(item),
                "params": item,
                "status": "failed",
                "error": message,
            }
            progress.record("failed")
        else:
            outcomes[index] = {"key": item_key(item), "params": item, **result}
            progress.record(result["status"])
    ordered = [outcomes[i] for i in range(len(items))]
    if batch_id and in_process is None:
        write_outcomes(OutputStore(output_url), batch_id, chunk_index, ordered)
    return ordered
