"""The `batch` flow: one report fanned out over many parameter sets.

    expand items → settle the current ones → split the rest into chunks → render each
    chunk → merge → summarize

Chunks run in this process (a CLI batch, or `chunk_runs="local"`) or, when the
batch itself runs from a deployment, as separate `render-chunk` flow runs that any
worker on the pool picks up; the batch then polls them and merges the outcomes
they leave in the output store.

One progress artifact reads "N of M done, K failed, ETA …" for the whole batch.
A failed item never stops the others; the batch ends Failed if any item failed,
naming them. Re-running (or retrying) the batch skips every item whose inputs and
outputs are unchanged, so only failed or changed items render again.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal
from uuid import UUID, uuid4

from prefect import flow, get_client, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterType,
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterName,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType, WorkerStatus
from prefect.deployments import run_deployment
from prefect.runtime import deployment, flow_run
from prefect.states import Completed, Failed

from flows import item_records, render_pool
from flows import progress as progress_registry
from flows.artifacts import publish_batch_artifacts
from flows.chunk_flow import run_chunks_here
from flows.chunk_results import read_outcomes
from flows.deadline import DeadlineWatch, parse_deadline
from flows.item_records import ItemRecorder, batch_dimensions
from flows.items import check_items, expand_items, split_chunks
from flows.parameters import (
    AsOfYear,
    ChunkSize,
    Deadline,
    ItemsPerTask,
    Parallelism,
    ReportName,
)
from flows.progress import ProgressTracker
from reports import OutputStore, ReportError, get_settings, jobs
from reports.contracts import (
    BATCH_FLOW,
    BATCH_PROGRESS,
    CHUNK_DEPLOYMENT,
    Outcome,
    artifact_key,
    batch_run_name,
)
from reports.definitions import default_catalog
from reports.index import open_index, render_durations

ChunkRuns = Literal["auto", "local", "deployment"]


def _run_name() -> str:
    params = flow_run.parameters
    return _run_name_of(
        params["report"], params.get("over"), params.get("parameters"), params.get("items")
    )


def _run_name_of(report: str, over, fixed, items) -> str:
    # The dashboard names the runs it creates with the same function.
    return batch_run_name({"report": report, "over": over, "parameters": fixed, "items": items})


@flow(name=BATCH_FLOW, flow_run_name=_run_name, persist_result=False)
def batch(
    report: ReportName,
    over: dict[str, list[Any] | str] | None = None,
    parameters: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    max_parallel: Parallelism | None = None,
    chunk_size: ChunkSize | None = None,
    items_per_task: ItemsPerTask | None = None,
    force: bool = False,
    as_of: dt.date | None = None,
    as_of_year: AsOfYear | None = None,
    deadline: Deadline | None = None,
    chunk_runs: ChunkRuns = "auto",
):
    """Render `report` for every combination of the `over` values (or every `items` entry).

    over: dimension → list of values, or "*" for all values of that dimension.
    parameters: values shared by every item. force: render even unchanged items.
    chunk_size, items_per_task, max_parallel: default from the settings; max_parallel
    is capped by the worker's own REPORTRUNNER_MAX_PARALLEL.
    as_of: date that relative values (`previous` month, `yesterday`) resolve against;
    default: the run's scheduled date. as_of_year: resolve them as if that date were in
    this year (same month and day; the demo data is 2013's).
    deadline: `45m` after the scheduled start, or a time of day `06:30 America/New_York`;
    when the ETA passes it, the batch emits one `reportrunner.batch.deadline-at-risk`.
    chunk_runs: "deployment" spreads chunks over workers, "local" renders here, "auto"
    spreads when this batch runs from a deployment.
    """
    logger = get_run_logger()
    timer = _PhaseTimer()
    settings = get_settings()
    definition = default_catalog().get(report)
    scheduled = flow_run.scheduled_start_time or dt.datetime.now(dt.UTC)
    reference = as_of or scheduled.date()
    if as_of_year:
        reference = same_day_in(reference, as_of_year)
    expanded = expand_items(definition, over, parameters, items, as_of=reference)
    parallel = render_pool.pool_size(max_parallel)
    if max_parallel and parallel < max_parallel:
        logger.warning(
            "max_parallel %d asked for; this worker allows %d render processes "
            "(REPORTRUNNER_MAX_PARALLEL)",
            max_parallel,
            parallel,
        )
    output_url = settings.resolved_output_url
    # Chunks and the item index know the batch by this id: the flow run's, or a fresh one
    # when the flow runs without an API (tests calling the function directly).
    batch_id = str(flow_run.id or uuid4())
    progress = ProgressTracker(
        total=len(expanded),
        artifact_key=artifact_key(report, BATCH_PROGRESS),
        cooldown_s=settings.progress_cooldown_s,
        listeners=progress_registry.subscribers(),
        history_item_s=_item_seconds(report, parallel),
    )
    if deadline:
        progress.listeners.append(
            DeadlineWatch(
                report=report,
                batch_id=batch_id,
                deadline=parse_deadline(deadline, scheduled),
                link=f"{settings.dashboard_url.rstrip('/')}/batch?id={batch_id}",
            )
        )
    progress.start()
    recorder = ItemRecorder(
        report, run_id=batch_id, batch_id=batch_id, progress=progress, logger=logger
    )
    recorder.start_batch(
        flow_run.name or _run_name_of(report, over, parameters, items),
        batch_dimensions(over, expanded),
        expanded,
    )

    # Each item is validated once, here: a bad one fails alone before any planning or
    # rendering. Items whose outputs are current are settled next, so an unchanged
    # batch starts no chunk flow runs and no render processes at all.
    outcomes: dict[int, Outcome] = {}
    typed: dict[int, dict[str, Any] | None] = {}
    timer.done("setup")
    for index, checked in enumerate(check_items(definition, expanded)):
        if isinstance(checked, ReportError):
            outcomes[index] = Outcome.failed(expanded[index], str(checked))
        else:
            typed[index] = checked
    invalid = len(outcomes)
    timer.done("validate")
    size = chunk_size or settings.chunk_size
    # Decided before planning, so that render processes can start during it: chunks go to
    # other workers only when there are workers for them (and then nothing renders here).
    spread = _spread_over_workers(chunk_runs, -(-len(typed) // size))
    if not force:
        manifests = plan_items(
            report, list(typed.values()), output_url, warm_up=None if spread else parallel
        )
        for index, manifest in zip(list(typed), manifests, strict=True):
            if manifest is not None:
                outcomes[index] = jobs.outcome_of(expanded[index], manifest)
    recorder.finished([outcomes[index] for index in sorted(outcomes)])
    timer.done("plan")
    todo = [index for index in range(len(expanded)) if index not in outcomes]
    chunks = split_chunks([expanded[i] for i in todo], size)
    remote = spread and (chunk_runs == "deployment" or len(chunks) >= 2)
    logger.info(
        "%s: %d items, %d invalid, %d current, %d to render in %d chunk(s) %s, "
        "%d render processes, outputs in %s",
        report,
        len(expanded),
        invalid,
        len(outcomes) - invalid,
        len(todo),
        len(chunks),
        "on workers" if remote else "in this process",
        parallel,
        output_url,
    )
    options = {  # the chunk flow's parameters besides report, items and chunk_index
        "max_parallel": parallel,
        "items_per_task": items_per_task or settings.items_per_task,
        "force": force,
        "batch_id": batch_id,
    }
    if chunks:
        run = _run_chunks_on_workers if remote else _run_chunks_here
        outcomes.update(zip(todo, run(report, chunks, options, progress), strict=True))
    timer.done(f"{len(chunks)} chunk(s)")
    ordered = [outcomes[index] for index in range(len(expanded))]
    state = _summarize(report, ordered, progress, output_url, logger, recorder)
    timer.done("summary")
    logger.info("%s", timer.describe(progress.writes))
    return state


class _PhaseTimer:
    """Where a batch's time went, phase by phase, with what the item records cost.

    Logged as one line at the end ("timings: …"); bench/batch_throughput.py reads it.
    """

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.phases: list[tuple[str, float]] = []
        self.records = item_records.costs()
        self.pools = render_pool.stats()

    def done(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases.append((phase, now - self.last))
        self.last = now

    def describe(self, progress_writes: int) -> str:
        records, pools = item_records.costs(), render_pool.stats()
        delta = {k: records[k] - self.records[k] for k in records}
        phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.phases)
        return (
            f"timings: {phases}; render pools started "
            f"{pools['pools_started'] - self.pools['pools_started']} "
            f"(ready after {pools['start_s'] - self.pools['start_s']:.2f} s); "
            f"item index {delta['index_writes']:.0f} writes {delta['index_s']:.2f} s; "
            f"events {delta['events']:.0f} in {delta['events_s']:.2f} s; "
            f"progress writes {progress_writes}"
        )


@task(name="plan", cache_policy=NO_CACHE, persist_result=False)
def plan_items(
    report: str,
    items: list[dict[str, Any] | None],
    output_url: str,
    warm_up: int | None = None,
) -> list[dict[str, Any] | None]:
    """For each validated item: its manifest if its outputs are present and current.

    A check is a cached-data lookup and a manifest read (none at all for an item never
    rendered), done in this process: render processes would only take the cores
    from it. An item that could not be validated yet (None) is left to the render step.
    warm_up: start that many render processes at the first item to render, so they
    start while the rest is checked (an unchanged batch starts none).
    """
    manifests = []
    for item in items:
        manifests.append(jobs.current_manifest(report, item, output_url))
        if warm_up and manifests[-1] is None:
            render_pool.warm_up(warm_up)
            warm_up = None
    return manifests


def same_day_in(day: dt.date, year: int) -> dt.date:
    """The same month and day in `year` (29 February becomes the 28th)."""
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def _item_seconds(report: str, parallel: int) -> tuple[float, float] | None:
    """Seconds per item this batch may take, low and high, from the report's history.

    The first ETA, before any item has finished, comes from this: the report's recent
    render times (25th and 75th percentile), spread over the render processes.
    """
    try:
        durations = sorted(render_durations(open_index(), report))
    except Exception:
        return None
    if len(durations) < 3:
        return None
    low, high = durations[len(durations) // 4], durations[(3 * len(durations)) // 4]
    return low / parallel, high / parallel


def _spread_over_workers(chunk_runs: ChunkRuns, chunks: int) -> bool:
    """Run chunks as flow runs on workers only where that can be faster.

    Each chunk flow run costs a worker several seconds to start a process, which
    only pays off when another worker can take chunks in parallel. So "auto"
    spreads a batch that runs from a deployment when its pool has two or more
    online workers, and renders in this process otherwise.
    """
    if chunk_runs != "auto":
        return chunk_runs == "deployment"
    if not deployment.id or chunks < 2:
        return False
    with get_client(sync_client=True) as client:
        pool = client.read_flow_run(flow_run.id).work_pool_name
        if not pool:
            return False
        workers = client.read_workers_for_work_pool(pool)
    return sum(worker.status == WorkerStatus.ONLINE for worker in workers) >= 2


def _run_chunks_here(report, chunks, options, progress):
    batch_id = options["batch_id"]
    progress_registry.register(batch_id, progress)
    try:
        return run_chunks_here(report, chunks, options)
    finally:
        progress_registry.unregister(batch_id)


def _run_chunks_on_workers(report, chunks, options, progress):
    """Start one chunk flow run per chunk, poll them into the progress, merge their outcomes."""
    settled = progress.skipped
    runs = {}
    for number, chunk in enumerate(chunks, start=1):
        started = run_deployment(
            CHUNK_DEPLOYMENT,
            parameters={"report": report, "items": chunk, "chunk_index": number, **options},
            flow_run_name=f"{report} chunk {number}/{len(chunks)}",
            tags=["reportrunner", f"report:{report}", "chunk"],
            timeout=0,  # return at once: the batch polls
            as_subflow=True,
        )
        runs[started.id] = (number, chunk)
    batch_id = options["batch_id"]
    store = OutputStore(get_settings().resolved_output_url)
    merged: dict[int, list[dict[str, Any]]] = {}
    poll_s = max(1.0, get_settings().progress_cooldown_s)
    with get_client(sync_client=True) as client:
        while True:
            pending = [run_id for run_id in runs if runs[run_id][0] not in merged]
            states = {  # the API lists at most 200 per call
                r.id: r.state
                for page in range(0, len(pending), 200)
                for r in client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        id=FlowRunFilterId(any_=pending[page : page + 200])
                    ),
                    limit=200,
                )
            }
            for run_id, state in states.items():
                number, chunk = runs[run_id]
                if number in merged or state is None or not state.is_final():
                    continue
                merged[number] = read_outcomes(store, batch_id, number) or [
                    Outcome.failed(
                        item, f"chunk {number} ended {state.name}: {state.message or '-'}"
                    )
                    for item in chunk
                ]
            running = [run_id for run_id in runs if runs[run_id][0] not in merged]
            _poll_progress(client, progress, merged, running, runs, settled)
            if not running:
                break
            time.sleep(poll_s)
    return [outcome for number in sorted(merged) for outcome in merged[number]]


def _poll_progress(
    client, progress: ProgressTracker, merged, running: list[UUID], runs, settled: int
) -> None:
    """Exact counts from merged chunks, estimates from running chunks' progress artifacts.

    `settled`: items found current before any chunk started.
    """
    done = [o for outcomes in merged.values() for o in outcomes]
    rendered = sum(o.status == "rendered" for o in done)
    skipped = settled + sum(o.status == "skipped" for o in done)
    failed = sum(o.status == "failed" for o in done)
    if running:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=running),
                type=ArtifactFilterType(any_=["progress"]),
            ),
        )
        estimate = sum(len(runs[a.flow_run_id][1]) * float(a.data or 0) / 100 for a in artifacts)
        # A failed render task holds at least one failed item: a lower bound until the
        # chunk ends. (The sync client has no task-run count; a chunk has few tasks.)
        running_failed = len(
            client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=running)),
                task_run_filter=TaskRunFilter(
                    name=TaskRunFilterName(like_="render "),
                    state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.FAILED])),
                ),
                limit=200,
            )
        )
        failed += running_failed
        rendered += max(0, int(estimate) - running_failed)
    progress.set_counts(rendered=rendered, skipped=skipped, failed=failed)


def _summarize(report, outcomes, progress: ProgressTracker, output_url, logger, recorder):
    # The outcomes are the truth; progress counts from polling were estimates.
    progress.set_counts(
        rendered=sum(o.status == "rendered" for o in outcomes),
        skipped=sum(o.status == "skipped" for o in outcomes),
        failed=sum(o.status == "failed" for o in outcomes),
    )
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
            {"key": o.key, "error": o.error} for o in outcomes if o.status == "failed"
        ],
        "output_url": output_url,
    }
    logger.info("%s: %s", report, summary)
    recorder.finish_batch("failed" if progress.failed else "completed", summary)
    if progress.failed:
        first = result["failed_items"][0]
        message = (
            f"{progress.failed} of {progress.total} items failed; "
            f"first: {first['key']}: {first['error']}"
        )
        return Failed(message=message, data=result)
    return Completed(message=summary, data=result)
