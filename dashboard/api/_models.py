"""What the query layer returns: plain, typed, picklable values (fit for `st.cache_data`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Defined in the Prefect API layer, shared with the alert checks; importable from here too.
from prefect_api import FailureSpike, HistoryBucket, Window


@dataclass(frozen=True)
class PoolHealth:
    name: str
    type: str
    status: str  # READY / NOT_READY / PAUSED
    needs_worker: bool  # push and managed pools run without workers
    online_workers: int | None  # None: not counted (too many pools for one refresh)


@dataclass(frozen=True)
class Health:
    api_ok: bool
    api_url: str
    checked_at: datetime
    pools: list[PoolHealth]
    late_runs: int
    notes: list[str] = field(default_factory=list)

    @property
    def workers_online(self) -> int | None:
        counts = [p.online_workers for p in self.pools if p.needs_worker]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)


@dataclass(frozen=True)
class WindowStats:
    """Flow runs expected to start in one window, by the state they are in now."""

    window: Window
    running: int
    queued: int  # Scheduled (incl. Late) and Pending
    completed: int
    failed: int  # Failed and Crashed
    cancelled: int
    total: int
    median_duration_s: float | None  # of the latest ≤ 200 completed runs
    duration_sample: int  # how many runs the median is taken over

    @property
    def success_rate(self) -> float | None:
        """Completed / (completed + failed); None when nothing finished."""
        finished = self.completed + self.failed
        return None if finished == 0 else self.completed / finished


@dataclass(frozen=True)
class Kpis:
    current: WindowStats
    previous: WindowStats


@dataclass(frozen=True)
class BatchProgress:
    """A running batch and what its progress artifact says."""

    run_id: str
    name: str
    report: str | None
    state: str
    started_at: datetime | None
    elapsed_s: float | None
    percent: float | None  # None: no progress artifact yet
    done: int | None
    total: int | None
    unchanged: int | None
    failed: int | None
    eta: str | None  # "3 min 05 s", "pending"; None when unknown
    description: str | None  # the artifact's text as written


@dataclass(frozen=True)
class ActiveBatches:
    batches: list[BatchProgress]
    total: int  # running batches; more than len(batches) when the list was cut


@dataclass(frozen=True)
class RunSample:
    """One finished run of a sample the overview reads (light: what insights need)."""

    id: str
    name: str  # the business name: "carrier-monthly carrier=AA month=2013-07"
    report: str  # "carrier-monthly · single", "… · batch", "… · chunk", or the flow's name
    state_type: str
    duration_s: float | None
    message: str | None
    finished_at: datetime | None  # end time, or the expected start when it never ran
    from_deployment: bool = False  # only those can be retried (a worker picks them up)


@dataclass(frozen=True)
class ReportDuration:
    """Run times of one report's completed runs in the window's sample."""

    report: str
    runs: int
    median_s: float
    p90_s: float
    max_s: float


@dataclass(frozen=True)
class SlowRun:
    """A completed run much slower than its report's median in the same sample."""

    run_id: str
    name: str
    report: str
    duration_s: float
    report_median_s: float

    @property
    def ratio(self) -> float:
        return self.duration_s / self.report_median_s if self.report_median_s else float("inf")


@dataclass(frozen=True)
class FailureGroup:
    """Failed runs whose messages differ only in values (numbers, ids, quoted values, paths)."""

    signature: str
    count: int
    example: str  # the newest message as written
    reports: list[str]
    run_ids: list[str]  # newest first
    latest: datetime | None
    retryable_ids: list[str] = field(default_factory=list)  # those started from a deployment
    run_names: list[str] = field(default_factory=list)  # business names, as `run_ids`


@dataclass(frozen=True)
class Insights:
    durations: list[ReportDuration]  # slowest median first
    slow_runs: list[SlowRun]  # slowest relative to their report first
    spikes: list[FailureSpike]  # oldest first
    failure_groups: list[FailureGroup]  # largest first
    completed_sample: int  # completed runs the durations are taken over (≤ 200)
    failed_sample: int  # failed or crashed runs the groups are taken over (≤ 200)


@dataclass(frozen=True)
class Overview:
    window: Window
    health: Health
    kpis: Kpis
    batches: ActiveBatches
    history: list[HistoryBucket]
    insights: Insights
    calls: int  # HTTP requests this refresh made


@dataclass(frozen=True)
class RunQuery:
    """Filters of the runs page; every one is applied by the server."""

    flows: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()  # deployment names (the part after "flow/")
    deployment_ids: tuple[str, ...] = ()  # exact deployments, whatever their flow
    report: str = ""  # runs of one report: single runs, batches and their chunks
    state_types: tuple[str, ...] = ()  # COMPLETED, FAILED, RUNNING, …
    work_pools: tuple[str, ...] = ()
    work_queues: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # runs must carry all of them
    search: str = ""  # part of the run name, e.g. a business key "carrier=AA"
    since: datetime | None = None  # expected start time
    until: datetime | None = None
    offset: int = 0
    limit: int = 50  # at most 200


@dataclass(frozen=True)
class RunRow:
    id: str
    name: str
    flow: str | None
    deployment: str | None  # full name, "batch/carrier-monthly"; None: started from the CLI
    state_type: str
    state_name: str
    message: str | None
    expected_start: datetime | None
    start: datetime | None
    end: datetime | None
    duration_s: float | None
    work_pool: str | None
    work_queue: str | None
    tags: list[str]
    parameters: dict
    progress: float | None  # percent from the run's latest progress artifact
    nested: bool = False  # ran inside another flow run (a batch's in-process chunk)


@dataclass(frozen=True)
class RunsPage:
    rows: list[RunRow]
    total: int  # runs matching the filters, counted by the server
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.rows) < self.total


@dataclass(frozen=True)
class FilterChoices:
    flows: list[str]
    deployments: list[str]  # full names, "report/carrier-monthly": the names alone repeat
    work_pools: list[str]
    work_queues: list[str]
    reports: list[str] = field(default_factory=list)
    deployment_ids: dict[str, str] = field(default_factory=dict)  # full name → id
    # By id, for naming a page's runs without asking again (`runs_page(known=…)`).
    flow_names: dict[str, str] = field(default_factory=dict)  # flow id → name
    deployment_names: dict[str, str] = field(default_factory=dict)  # id → name alone
