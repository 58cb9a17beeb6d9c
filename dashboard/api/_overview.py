"""The overview's queries: health, KPIs with the previous window, runs over time, batches,
insights.

API calls per `overview()`, whatever the number of runs (see `MAX_CALLS`):
1 health check, 1 work pools, ≤ `MAX_WORKER_POOLS` online-worker lists, 1 late-run
count, 1 CSRF token (the client fetches one before its first POST), 1 run history
(both windows, by state, in buckets), 1 sample of this window's completed runs (their
run times and reports), 1 duration sample of the previous window, 1 sample of this
window's failed runs, 1 flow names (of both samples), 1 running batches (+1 count when
the list is cut), 1 progress artifacts (only when a batch runs).
"""

from __future__ import annotations

import statistics
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard.api import _insights
from dashboard.api._models import (
    ActiveBatches,
    Health,
    HistoryBucket,
    Kpis,
    Overview,
    PoolHealth,
    Window,
    WindowStats,
)
from dashboard.api._progress import batch_progress, latest_progress
from prefect_api import (
    Api,
    ApiUnavailable,
    late_runs,
    needs_worker,
    pool_status,
    read_pools,
    read_workers,
    run_history,  # shared with the alert checks
    utc,
)
from reports.contracts import BATCH_FLOW

PAGE = 200  # the API's largest page
MAX_WORKER_POOLS = 3  # pools whose online workers are counted in one refresh
MAX_BATCHES = 20  # running batches shown
HISTORY_BUCKETS = 24  # per window
LATE_AFTER = timedelta(seconds=60)
PARALLEL_READS = 4  # the server answers reads concurrently; more only queue there
MAX_CALLS = 1 + 1 + MAX_WORKER_POOLS + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 1  # = 15

_QUEUED = ("SCHEDULED", "PENDING")
_FAILED = ("FAILED", "CRASHED")


def overview(api: Api, window: Window) -> Overview:
    """Everything the overview page shows, in at most `MAX_CALLS` API calls.

    The health check goes first: its POST fetches the CSRF token the other reads
    share. Those do not depend on each other, so they run side by side: the refresh
    then takes as long as its slowest read, not the sum of them.
    """
    with ThreadPoolExecutor(max_workers=PARALLEL_READS) as pool:
        return finish_overview(start_overview(api, window, pool))


@dataclass(frozen=True)
class OverviewReads:
    """An overview refresh under way: health checked, the other reads started in `pool`.

    A page can draw each part as soon as its read is done (`batches` first, which is
    quick) while the others are still being answered; `finish_overview` waits for all.
    """

    api: Api
    window: Window
    health: Health
    batches: Future  # ActiveBatches
    history: Future  # list[HistoryBucket]: both windows
    completed: Future  # this window's latest completed runs
    failed: Future  # this window's latest failed runs
    previous: Future  # run times of the previous window's latest completed runs


def start_overview(api: Api, window: Window, pool: ThreadPoolExecutor) -> OverviewReads:
    """The health check, then every other read of `overview` started in `pool`."""
    health_now = health(api)
    return OverviewReads(
        api=api,
        window=window,
        health=health_now,
        batches=pool.submit(active_batches, api),
        history=pool.submit(
            run_history, api, window.previous.start, window.end, window.length / HISTORY_BUCKETS
        ),
        completed=pool.submit(
            _insights.latest_finished, api, window, _insights.COMPLETED, "completed runs"
        ),
        failed=pool.submit(_insights.latest_finished, api, window, _insights.FAILED, "failed runs"),
        previous=pool.submit(_completed_durations, api, window.previous),
    )


def finish_overview(reads: OverviewReads) -> Overview:
    """The overview, once the reads `start_overview` started are answered."""
    api, window = reads.api, reads.window
    history = reads.history.result()
    completed, failed = reads.completed.result(), reads.failed.result()
    # One flow-name lookup labels both samples.
    labelled = _insights.samples(api, completed + failed)
    previous_durations, batches = reads.previous.result(), reads.batches.result()
    completed_samples, failed_samples = labelled[: len(completed)], labelled[len(completed) :]
    durations = [s.duration_s for s in completed_samples if s.duration_s is not None]
    return Overview(
        window=window,
        health=reads.health,
        kpis=Kpis(
            current=_window_stats(api, window, history, durations),
            previous=_window_stats(api, window.previous, history, previous_durations),
        ),
        batches=batches,
        history=history,
        insights=_insights.insights(history, window, completed_samples, failed_samples),
        calls=api.calls,
    )


def health(api: Api) -> Health:
    """API reachable, work pools with status and online workers, late runs."""
    error = api.health_error()
    if error is not None:
        raise ApiUnavailable(api.message("the health check", error))
    now = datetime.now(UTC)
    notes: list[str] = []
    with api.guard("work pools"):
        counted = 0
        result = []
        for pool in read_pools(api, notes):
            online = None
            if needs_worker(pool) and counted < MAX_WORKER_POOLS:
                online = len(read_workers(api, pool.name, online_only=True))
                counted += 1
            result.append(
                PoolHealth(
                    name=pool.name,
                    type=pool.type,
                    status=pool_status(pool),
                    needs_worker=needs_worker(pool),
                    online_workers=online,
                )
            )
        if counted == MAX_WORKER_POOLS and any(p.online_workers is None for p in result):
            notes.append(f"workers are counted for the first {MAX_WORKER_POOLS} pools only")
    with api.guard("late runs"):
        late, _ = late_runs(api, now - LATE_AFTER)
    return Health(
        api_ok=True,
        api_url=api.config.safe_url,
        checked_at=now,
        pools=result,
        late_runs=late,
        notes=notes,
    )


def kpis(api: Api, window: Window, history: list[HistoryBucket] | None = None) -> Kpis:
    """This window against the previous one (counts from the server's run history)."""
    if history is None:
        history = run_history(
            api, window.previous.start, window.end, window.length / HISTORY_BUCKETS
        )
    return Kpis(
        current=_window_stats(api, window, history),
        previous=_window_stats(api, window.previous, history),
    )


def active_batches(api: Api, limit: int = MAX_BATCHES) -> ActiveBatches:
    """Running `batch` flow runs, newest first, with their progress artifacts read."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    flows = FlowFilter(name=FlowFilterName(any_=[BATCH_FLOW]))
    running = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
    )
    with api.guard("running batches"):
        runs = api.client.read_flow_runs(
            flow_filter=flows,
            flow_run_filter=running,
            sort=FlowRunSort.START_TIME_DESC,
            limit=min(limit, PAGE),
        )
        total = len(runs)
        if total >= limit:
            total = api.client.count_flow_runs(flow_filter=flows, flow_run_filter=running)
    artifacts = latest_progress(api, [r.id for r in runs], "batch progress")
    batches = []
    for run in runs:
        artifact = artifacts.get(run.id)
        batches.append(
            batch_progress(
                run_id=str(run.id),
                name=run.name,
                report=(run.parameters or {}).get("report"),
                state=run.state_name or "Running",
                started_at=utc(run.start_time) if run.start_time else None,
                ended_at=None,
                data=artifact.data if artifact else None,
                description=artifact.description if artifact else None,
            )
        )
    return ActiveBatches(batches=batches, total=total)


# ---- helpers --------------------------------------------------------------------------


def _window_stats(
    api: Api,
    window: Window,
    history: list[HistoryBucket],
    durations: list[float] | None = None,
) -> WindowStats:
    """Counts from the history; run times from `durations` when already read."""
    counts: dict[str, int] = {}
    for bucket in history:
        middle = bucket.start + (bucket.end - bucket.start) / 2
        if window.start <= middle < window.end:
            for kind, n in bucket.counts.items():
                counts[kind] = counts.get(kind, 0) + n
    if durations is None:
        durations = _completed_durations(api, window)
    return WindowStats(
        window=window,
        running=counts.get("RUNNING", 0) + counts.get("CANCELLING", 0),
        queued=sum(counts.get(k, 0) for k in _QUEUED),
        completed=counts.get("COMPLETED", 0),
        failed=sum(counts.get(k, 0) for k in _FAILED),
        cancelled=counts.get("CANCELLED", 0),
        total=sum(counts.values()),
        median_duration_s=statistics.median(durations) if durations else None,
        duration_sample=len(durations),
    )


def _completed_durations(api: Api, window: Window) -> list[float]:
    """Run times of the latest ≤ 200 completed runs of the window (light rows, one call)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    flow_runs = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED])),
        expected_start_time=FlowRunFilterExpectedStartTime(
            after_=window.start, before_=window.end - timedelta(microseconds=1)
        ),
    )
    body = {
        "flow_runs": flow_runs.model_dump(mode="json", exclude_unset=True),
        "sort": "EXPECTED_START_TIME_DESC",
        "limit": PAGE,
    }
    with api.guard("run durations"):
        rows = api.post("/ui/flow_runs/history", body)
        return [d for d in (_seconds(row.get("duration")) for row in rows) if d is not None]


def _seconds(value: Any) -> float | None:
    """A duration as the API sends it: seconds, or ISO 8601 ("PT1.5S")."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(timedelta).validate_python(value).total_seconds()
    except Exception:
        return None
