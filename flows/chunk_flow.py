"""The `render-chunk` flow: renders a slice of a batch in this process.

A batch splits into chunks so that (a) Prefect's per-flow memory for task states
stays bounded however large the batch, and (b) chunks can run as separate flow
runs on different workers. Within a chunk, items go in small groups to thread-run
`render` tasks, which hand each item to the render process pool.

Why groups and not a task per item: each task run costs about 100 ms of API calls
and server CPU on the cores that render, and about 1 MB of this process's memory
until the chunk ends (see docs/BENCHMARKS.md). Inside a group every item still
renders on its own, retries transient errors on its own and is counted in the
progress as soon as it is done.

The batch gives a chunk only items that were not current when it planned; an item
that became current since is still skipped (by the render step, which checks again)
unless the batch is forced.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows import render_pool
from flows.chunk_results import write_outcomes
from flows.item_records import ItemRecorder
from flows.items import split_chunks
from flows.parameters import BatchId, ChunkIndex, ItemsPerTask, Parallelism, ReportName
from flows.progress import ProgressTracker, lookup
from flows.retry import RETRIES, is_transient, retry_delay_s
from flows.source_slots import source_slot
from reports import OutputStore, ReportError, get_settings, jobs
from reports.contracts import CHUNK_FLOW, Outcome, item_key

# Chunks a batch runs in its own process at once. One after another, the render processes
# idle at each chunk's end: its last items finish on one process while the other waits,
# then its flow run ends and the next one is created (≈ 0.6 s each; docs/BENCHMARKS.md).
# With two in flight, the next chunk's items queue behind the current one's, and memory
# still holds at most two chunks' task states.
LOCAL_CHUNKS_IN_FLIGHT = 2

# Set while a chunk flow run is being created (see `run_chunks_here`).
_creating: contextvars.ContextVar[list[threading.Lock] | None] = contextvars.ContextVar(
    "reportrunner_chunk_creating", default=None
)


class ItemsFailed(ReportError):
    """Some items of a render task failed; carries every item's outcome."""

    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes
        failed = [o for o in outcomes if o.status == "failed"]
        first = failed[0]
        super().__init__(
            f"{len(failed)} of {len(outcomes)} items failed; first: {first.key}: {first.error}"
        )

    def __reduce__(self):  # rebuilt from the outcomes wherever Prefect copies it
        return (type(self), (self.outcomes,))


@task(name="render", cache_policy=NO_CACHE, persist_result=False)
def render_items(
    report: str,
    items: list[dict[str, Any]],
    output_url: str,
    parallel: int,
    force: bool,
    recorder: ItemRecorder,
) -> list[Outcome]:
    """Render `items` side by side; one outcome per item, in order.

    `recorder` counts each finished item in the batch's progress and records it in the
    item index at once, so it is searchable while the rest still render.

    Ends Failed (ItemsFailed, carrying every outcome) when any item failed, so the
    Prefect UI shows which task holds the failure.
    """
    logger = get_run_logger()
    recorder.started(items)

    def render_one(item: dict[str, Any]) -> Outcome:
        outcome = _render_with_retries(report, item, output_url, parallel, force, logger)
        recorder.finished([outcome])
        return outcome

    with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="item") as threads:
        # Each thread runs in a copy of this task's context: its logs and source slots
        # belong to this task run.
        futures = [threads.submit(contextvars.copy_context().run, render_one, i) for i in items]
        outcomes = [future.result() for future in futures]
    if any(o.status == "failed" for o in outcomes):
        raise ItemsFailed(outcomes)
    return outcomes


def _render_with_retries(report, item, output_url, parallel, force, logger) -> Outcome:
    """One item in the render pool; transient errors retried with backoff, others at once."""
    key = item_key(item)
    for attempt in range(1, RETRIES + 2):
        try:
            with source_slot(report):
                outcome = render_pool.submit(
                    parallel, jobs.render_item, report, item, output_url, force
                ).result()
            outcome.attempts = attempt
            return outcome
        except Exception as error:
            message = str(error) if isinstance(error, ReportError) else _describe(error)
            if not is_transient(error) or attempt > RETRIES:
                logger.error("%s failed: %s", key, message)
                return Outcome.failed(item, message, attempts=attempt)
            delay = retry_delay_s(attempt)
            logger.warning(
                "%s: attempt %d failed (%s); retrying in %.1f s", key, attempt, message, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _task_name(items: list[dict[str, Any]]) -> str:
    if len(items) == 1:
        return f"render {item_key(items[0])}"
    return f"render {item_key(items[0])} … {item_key(items[-1])} ({len(items)} items)"


def _run_name() -> str:
    params = flow_run.parameters
    return f"{params['report']} chunk of {len(params['items'])}"


@flow(
    name=CHUNK_FLOW,
    flow_run_name=_run_name,
    persist_result=False,
    task_runner=ThreadPoolTaskRunner(max_workers=2 * (os.cpu_count() or 1)),
)
def render_chunk(
    report: ReportName,
    items: list[dict[str, Any]],
    max_parallel: Parallelism | None = None,
    items_per_task: ItemsPerTask | None = None,
    force: bool = False,
    batch_id: BatchId | None = None,
    chunk_index: ChunkIndex = 0,
) -> list[Outcome]:
    """Render `items`; never raises for a failed item, returns one outcome per item.

    Started in-process by a batch, it reports to the batch's progress. Started on a
    worker, it keeps its own progress artifact and leaves its outcomes in the output
    store for the batch to merge. Outputs go to this worker's configured output root
    (every worker of a pool shares one): where outputs go is never a run parameter.
    """
    _created()
    settings = get_settings()
    output_url = settings.resolved_output_url
    parallel = render_pool.pool_size(max_parallel)
    in_process = lookup(batch_id)
    progress = in_process or ProgressTracker(
        total=len(items), cooldown_s=settings.progress_cooldown_s
    )
    if in_process is None:
        progress.start()

    recorder = ItemRecorder(
        report,
        run_id=str(flow_run.id) if flow_run.id else None,
        batch_id=batch_id,
        progress=progress,
        logger=get_run_logger(),
    )
    render_pool.warm_up(parallel)  # in the background, while tasks are being created
    outcomes: dict[int, Outcome] = {}
    futures = {}
    for group in split_chunks(list(range(len(items))), items_per_task or settings.items_per_task):
        group_items = [items[index] for index in group]
        future = render_items.with_options(task_run_name=_task_name(group_items)).submit(
            report, group_items, output_url, parallel, force, recorder
        )
        futures[future] = group
    for future in as_completed(list(futures)):
        group = futures[future]
        result = future.result(raise_on_failure=False)
        if isinstance(result, ItemsFailed):
            result = result.outcomes
        elif isinstance(result, BaseException):  # the task itself broke, not an item
            message = _describe(result)
            get_run_logger().error("render task failed: %s", message)
            result = [Outcome.failed(items[i], message) for i in group]
            recorder.finished(result)
        outcomes.update(zip(group, result, strict=True))
    ordered = [outcomes[i] for i in range(len(items))]
    if batch_id and in_process is None:
        write_outcomes(OutputStore(output_url), batch_id, chunk_index, ordered)
    return ordered


def run_chunks_here(
    report: str, chunks: list[list[dict[str, Any]]], options: dict[str, Any]
) -> list[Outcome]:
    """Run `chunks` as subflows of the calling flow, `LOCAL_CHUNKS_IN_FLIGHT` at a time.

    The outcomes come back in the chunks' order. Each subflow is created only after the
    previous one has started: Prefect numbers a parent's subflow calls without a lock, and
    two calls given the same number would be taken for one subflow run.
    """
    creating = threading.Lock()

    def run(number: int, chunk: list[dict[str, Any]]) -> list[Outcome]:
        run_chunk = render_chunk.with_options(
            flow_run_name=f"{report} chunk {number}/{len(chunks)}",
            task_runner=ThreadPoolTaskRunner(max_workers=2 * options["max_parallel"]),
        )
        with _created_in_turn(creating):
            return run_chunk(report=report, items=chunk, chunk_index=number, **options)

    lanes = ThreadPoolExecutor(LOCAL_CHUNKS_IN_FLIGHT, thread_name_prefix="chunk")
    try:
        futures = [  # each lane runs in a copy of this flow's context: the subflow's parent
            lanes.submit(contextvars.copy_context().run, run, number, chunk)
            for number, chunk in enumerate(chunks, start=1)
        ]
        return [outcome for future in futures for outcome in future.result()]
    finally:  # a chunk that broke (not an item: those are outcomes) ends the batch
        lanes.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _created_in_turn(creating: threading.Lock) -> Iterator[None]:
    """Hold `creating` until the chunk's body starts (`_created`), or the call ends."""
    creating.acquire()
    held = [creating]
    token = _creating.set(held)
    try:
        yield
    finally:
        _creating.reset(token)
        if held:
            held.pop().release()


def _created() -> None:
    """In a chunk's body: its flow run exists, so the batch may create the next one."""
    held = _creating.get()
    if held:
        held.pop().release()
