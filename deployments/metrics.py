"""`reportrunner metrics`: Prometheus metrics and a health probe for the report runner.

A small HTTP server (default 127.0.0.1:9464) with three paths:

    /metrics   Prometheus text format: items, renders and render durations by report,
               running batches and their ETA, flow runs that are not final, late runs,
               workers, paused pools and queues, deliveries, and the exporter's own cost
    /health    the JSON of `reportrunner status --json`; HTTP 200 when all is well
               (exit code 0), 503 when something needs attention or the API is down
    /          a line of text: the exporter is alive (what `reportrunner up` waits for)

What a scrape reads. The item index (one database, five small aggregate queries) and
the Prefect API through `prefect_api`, in a fixed number of calls whatever the history:

    1 CSRF token (the client fetches one before its first POST)
    1 work pools (also the API's health check: when it fails the API is down)
    1 work queues of every pool
    1 workers per pool that needs workers, for at most MAX_WORKER_POOLS pools
    1 flow runs that are not final, the ACTIVE_PAGE due first (+1 run history, by
      state, only when there are more: the totals per state stay exact)
    1 late runs, the LATE_PAGE oldest (+1 count only when there are more)
    1 progress artifacts of the running batches (only when a batch runs)
    1 deployment names (only for deployments not seen before; kept for the process)

so at most 9 + the pools whose workers are counted, and 6 to 8 in the usual case. A
collection is kept `cache_s` seconds (default 15): several scrapers, or a scraper and
a probe, cost one collection per interval. Labels are bounded: report, status, state,
deployment, queue, pool, subscription and component; never run ids or parameters.

When the API is down the index metrics are still served, with
`reportrunner_up{component="api"} 0`; when the index is down, the API metrics are, with
`reportrunner_up{component="index"} 0`.

Every minute a background thread calls `deployments.alert_checks.emit_failure_spikes`
when that module exists (it announces failure spikes as Prefect events).
"""

from __future__ import annotations

import contextvars
import dataclasses
import importlib
import json
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from deployments.topology import WORK_POOL

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464  # the port OpenTelemetry's Prometheus exporters use
DEFAULT_CACHE_S = 15.0
ALERT_INTERVAL_S = 60.0
LATE_AFTER_S = 60  # as `reportrunner status`: not started a minute after its time
DURATION_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
PAGE = 200  # the API's largest page
# Runs a scrape reads in full: the server sends each with its parameters, state and job
# variables, which costs more than the rest of a scrape together. Runs beyond these are
# counted by the server (exactly), without their deployment and queue.
ACTIVE_PAGE = 100
LATE_PAGE = 50
MAX_WORKER_POOLS = 3  # pools whose workers are counted in one scrape (ours first)
PARALLEL_READS = 4  # the server answers reads concurrently; more only queue there
MAX_SCRAPE_CALLS = 9 + MAX_WORKER_POOLS
MAX_RUNNING_BATCHES = 1000  # index rows read per scrape (a crashed batch stays "running")
ITEM_STATUSES = ("rendered", "unchanged", "flagged", "failed", "running", "pending")
RENDER_STATUSES = ("rendered", "flagged", "failed")
ACTIVE_STATE_TYPES = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")
OTHER = "_other"  # runs beyond the page read: counted, not broken down
_HISTORY_FROM = datetime(2000, 1, 1, tzinfo=UTC)


# ---- one collection -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Collection:
    """What one scrape found, as metric families, kept for `cache_s` seconds."""

    families: list[Metric]
    at: float  # time.monotonic() when it was made
    api_up: bool
    index_up: bool
    api_calls: int
    duration_s: float


@dataclasses.dataclass
class _IndexFigures:
    items: list[tuple[str, str, int]]
    renders: list[tuple[str, str, int]]
    durations: list[tuple[Any, ...]]  # report, cumulative bucket counts…, count, sum
    batches: list[tuple[str, str, int, int]]  # batch id, report, total, done
    deliveries: dict[str, dict[str, int]]


@dataclasses.dataclass
class _ApiFigures:
    pools: list[Any]
    queues: list[Any]
    online: dict[str, int]
    active: Counter  # (state, deployment, queue) → runs
    active_ids: set[str] | None  # ids of every active run; None when not all were read
    late: Counter  # queue → late runs
    oldest_late: dict[str, float]  # queue → seconds since the oldest one's start time
    eta: dict[str, float]  # report → largest ETA of its running batches
    alive: set[str] | None  # running batches confirmed by the API (None: not checked)


class MetricsExporter:
    """Collects the metrics (cached) and the health report; serves them with `serve()`."""

    def __init__(
        self,
        config: Any | None = None,
        *,
        cache_s: float = DEFAULT_CACHE_S,
        index_url: str | None = None,
        late_after_s: int = LATE_AFTER_S,
        alert_interval_s: float = ALERT_INTERVAL_S,
        parallel_reads: int = PARALLEL_READS,
    ) -> None:
        from prefect_api import ApiConfig

        # A probe answers at once or says the API is down: no retries with back-off.
        self.config = config or ApiConfig.from_env(timeout_s=5.0, retries=0)
        self.cache_s = max(0.0, cache_s)
        self.index_url = index_url
        self.late_after_s = late_after_s
        self.alert_interval_s = alert_interval_s
        self.parallel_reads = max(1, parallel_reads)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self._lock = threading.Lock()
        self._cached: Collection | None = None
        self._health_lock = threading.Lock()
        self._health: tuple[float, int, dict[str, Any]] | None = None
        self._deployments: dict[str, str] = {}  # id → name, for the process's lifetime
        self._api_was_up: bool | None = None
        self._stop = threading.Event()
        self._alerts: threading.Thread | None = None

    # ---- metrics ----------------------------------------------------------------------

    def collection(self) -> Collection:
        """The latest collection, made anew when older than `cache_s` seconds."""
        with self._lock:  # scrapers arriving together wait for one collection
            cached = self._cached
            if cached is not None and time.monotonic() - cached.at < self.cache_s:
                return cached
            self._cached = self._collect()
            return self._cached

    def scrape(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)

    def _collect(self) -> Collection:
        started = time.perf_counter()
        now = datetime.now(UTC)
        # The index and the API answer side by side; the API's reads do too, after the
        # first (which fetches the CSRF token the others share, and fails fast when the
        # API is down). A scrape then takes about as long as its slowest read.
        with ThreadPoolExecutor(self.parallel_reads, thread_name_prefix="metrics-read") as pool:
            index_read = _submit(pool, self._read_index)
            api_figures, calls, api_error = self._read_api(now, index_read, pool)
            index_figures, index_error = index_read.result()
        self._log_api_state(api_figures is not None, api_error)
        duration = time.perf_counter() - started
        families = list(_index_families(index_figures)) if index_figures else []
        if index_figures is not None:
            families += _batch_families(index_figures, api_figures)
        if api_figures is not None:
            families += _api_families(api_figures)
        families += _self_families(
            api_up=api_figures is not None,
            index_up=index_figures is not None,
            calls=calls,
            duration_s=duration,
        )
        if index_error:
            log.warning("metrics: the item index could not be read: %s", index_error)
        return Collection(
            families=families,
            at=time.monotonic(),
            api_up=api_figures is not None,
            index_up=index_figures is not None,
            api_calls=calls,
            duration_s=duration,
        )

    def _log_api_state(self, up: bool, error: str | None) -> None:
        if up != self._api_was_up:
            if up:
                log.info("metrics: Prefect API at %s answers", self.config.safe_url)
            else:
                log.warning("metrics: Prefect API down: %s", error)
        self._api_was_up = up

    def _read_index(self) -> tuple[_IndexFigures | None, str | None]:
        try:
            from reports.index import open_index

            return _index_figures(open_index(self.index_url)), None
        except Exception as exc:  # a scrape reports, it does not crash
            log.debug("metrics: reading the item index failed", exc_info=True)
            return None, " ".join(str(exc).split())[:300] or type(exc).__name__

    def _read_api(
        self, now: datetime, index_read: Future, pool: ThreadPoolExecutor
    ) -> tuple[_ApiFigures | None, int, str | None]:
        from prefect_api import ApiUnavailable, connect, describe

        api = None
        try:
            with connect(self.config) as api:
                return self._api_figures(api, now, index_read, pool), api.calls, None
        except (ApiUnavailable, Exception) as exc:
            log.debug("metrics: reading the Prefect API failed", exc_info=True)
            return None, api.calls if api is not None else 0, self.config.redact(describe(exc))

    def _api_figures(
        self, api: Any, now: datetime, index_read: Future, pool: ThreadPoolExecutor
    ) -> _ApiFigures:
        from prefect_api import needs_worker, read_pools, read_queues, read_workers

        notes: list[str] = []
        pools = read_pools(api, notes)  # the first call: fails at once when the API is down
        queues_read = _submit(pool, read_queues, api, notes)
        counted = [p for p in pools if needs_worker(p)]
        counted.sort(key=lambda p: p.name != WORK_POOL)  # ours first
        workers_read = {  # the server tells ONLINE by heartbeat age
            p.name: _submit(pool, read_workers, api, p.name) for p in counted[:MAX_WORKER_POOLS]
        }
        active_read = _submit(pool, self._active_runs, api, now)
        late_read = _submit(pool, self._late_runs, api, now)
        online = {
            name: sum(_word(w.status) == "ONLINE" for w in read.result())
            for name, read in workers_read.items()
        }
        active, active_ids = active_read.result()
        late, oldest = late_read.result()
        index_figures, _ = index_read.result()
        running = index_figures.batches if index_figures is not None else []
        alive = None
        if active_ids is not None:  # every active run was read: a batch not among them ended
            alive = {batch_id for batch_id, *_ in running if batch_id in active_ids}
        eta = _batch_etas(api, running, alive)
        queues = queues_read.result()
        return _ApiFigures(pools, queues, online, active, active_ids, late, oldest, eta, alive)

    def _active_runs(self, api: Any, now: datetime) -> tuple[Counter, set[str] | None]:
        """Runs not in a final state by (state, deployment, queue), in one or two calls."""
        runs = _run_page(api, _active_filter(), ACTIVE_PAGE)
        names = self._deployment_names(api, {r["deployment_id"] for r in runs})
        counted: Counter = Counter()
        for run in runs:
            deployment = names.get(run["deployment_id"] or "", "")
            counted[
                (_state_label(run["state_type"], run["state_name"]), deployment, _queue(run))
            ] += 1
        if len(runs) < ACTIVE_PAGE:
            return counted, {run["id"] for run in runs}
        # More than a page: exact totals per state from the run history, the runs beyond
        # the page (those due last, mostly scheduled ahead) under deployment/queue _other.
        listed: Counter = Counter()
        for (state, _, _), n in counted.items():
            listed[state] += n
        for state, total in _active_totals(api, now).items():
            if total > listed[state]:
                counted[(state, OTHER, OTHER)] += total - listed[state]
        return counted, None

    def _deployment_names(self, api: Any, ids: set[Any]) -> dict[str, str]:
        unknown = [i for i in ids if i and i not in self._deployments]
        if unknown:
            from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

            found = api.client.read_deployments(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=unknown)),
                limit=PAGE,
            )
            for deployment in found:
                self._deployments[str(deployment.id)] = deployment.name
            for ident in unknown:  # deleted since: never asked for again
                self._deployments.setdefault(ident, "unknown")
        return self._deployments

    def _late_runs(self, api: Any, now: datetime) -> tuple[Counter, dict[str, float]]:
        """Late runs by queue (the shared definition of `prefect_api.late_filter`)."""
        from prefect_api import late_filter

        flow_runs = late_filter(now - timedelta(seconds=self.late_after_s))
        runs = _run_page(api, flow_runs, LATE_PAGE)
        counted: Counter = Counter(_queue(run) for run in runs)
        oldest: dict[str, float] = {}
        for run in runs:  # oldest first: the first of each queue is its oldest
            start = _time(run["next_scheduled_start_time"] or run["expected_start_time"])
            if start is not None:
                oldest.setdefault(_queue(run), max(0.0, (now - start).total_seconds()))
        if len(runs) >= LATE_PAGE:
            total = api.client.count_flow_runs(flow_run_filter=flow_runs)
            if total > len(runs):
                counted[OTHER] += total - len(runs)
        return counted, oldest

    # ---- health -----------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, `reportrunner status --json`): 200 when exit code 0, else 503."""
        from deployments.status import collect_status, exit_code

        with self._health_lock:
            cached = self._health
            if cached is not None and time.monotonic() - cached[0] < self.cache_s:
                return cached[1], cached[2]
            report = collect_status(config=self.config, late_after_s=self.late_after_s)
            code = 200 if exit_code(report) == 0 else 503
            self._health = (time.monotonic(), code, report.as_dict())
            return code, self._health[2]

    # ---- alert checks -----------------------------------------------------------------

    def run_alert_checks(self, now: datetime | None = None) -> bool:
        """`deployments.alert_checks.emit_failure_spikes(api, now)`, if that module exists."""
        try:
            checks = importlib.import_module("deployments.alert_checks")
        except ModuleNotFoundError as exc:
            if exc.name != "deployments.alert_checks":
                raise
            log.debug("metrics: no deployments.alert_checks module; no failure-spike checks")
            return False
        emit = getattr(checks, "emit_failure_spikes", None)
        if emit is None:
            log.debug("metrics: deployments.alert_checks has no emit_failure_spikes")
            return False
        from prefect_api import connect

        with connect(self.config) as api:
            emit(api, now or datetime.now(UTC))
        return True

    def _alert_loop(self) -> None:
        while not self._stop.wait(self.alert_interval_s):
            try:
                self.run_alert_checks()
            except Exception:  # the next minute tries again
                log.warning("metrics: the failure-spike check failed", exc_info=True)

    def start_alert_checks(self) -> None:
        if self.alert_interval_s > 0 and self._alerts is None:
            self._alerts = threading.Thread(
                target=self._alert_loop, name="reportrunner-alert-checks", daemon=True
            )
            self._alerts.start()

    # ---- serving ----------------------------------------------------------------------

    def serve(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> MetricsServer:
        """Start serving in a background thread (and the alert checks); `close()` stops both."""
        server = MetricsServer(self, host, port)
        self.start_alert_checks()
        return server

    def close(self) -> None:
        self._stop.set()
        if self._alerts is not None:
            self._alerts.join(timeout=10)
            self._alerts = None


class _Collector:
    """The registry's one collector: the cached collection's families."""

    def __init__(self, exporter: MetricsExporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        yield from self._exporter.collection().families


def _submit(pool: ThreadPoolExecutor, read: Callable[..., Any], *args: Any) -> Future:
    """`read(*args)` on the pool, in a copy of this thread's context: Prefect's settings
    (`connect()` sets the client's retries) live in context variables."""
    return pool.submit(contextvars.copy_context().run, read, *args)


# ---- reading the item index --------------------------------------------------------------


def _index_figures(index: Any) -> _IndexFigures:
    from sqlalchemy import case, func, select

    from reports.delivery import Ledger
    from reports.index._schema import batch_items, batches, items, renders

    timed = renders.c.duration_s
    with index.transaction() as connection:
        item_rows = connection.execute(
            select(items.c.report, items.c.status, func.count()).group_by(
                items.c.report, items.c.status
            )
        ).all()
        render_rows = connection.execute(
            select(renders.c.report, renders.c.status, func.count()).group_by(
                renders.c.report, renders.c.status
            )
        ).all()
        duration_rows = connection.execute(
            select(
                renders.c.report,
                *[func.sum(case((timed <= bound, 1), else_=0)) for bound in DURATION_BUCKETS],
                func.count(),
                func.sum(timed),
            )
            .where(timed.is_not(None), renders.c.status != "failed")
            .group_by(renders.c.report)
        ).all()
        running = connection.execute(
            select(batches.c.batch_id, batches.c.report, batches.c.total)
            .where(batches.c.state == "running")
            .order_by(batches.c.started_at.desc())
            .limit(MAX_RUNNING_BATCHES)
        ).all()
        unfinished: dict[str, int] = {}
        if running:
            unfinished = dict(
                connection.execute(
                    select(batch_items.c.batch_id, func.count())
                    .where(
                        batch_items.c.batch_id.in_([row.batch_id for row in running]),
                        batch_items.c.status.in_(("pending", "running")),
                    )
                    .group_by(batch_items.c.batch_id)
                ).all()
            )
    return _IndexFigures(
        items=[tuple(row) for row in item_rows],
        renders=[tuple(row) for row in render_rows],
        durations=[tuple(row) for row in duration_rows],
        batches=[
            (row.batch_id, row.report, row.total, row.total - unfinished.get(row.batch_id, 0))
            for row in running
        ],
        deliveries=Ledger(index).counts(),
    )


# ---- reading the Prefect API -------------------------------------------------------------


def _active_filter() -> Any:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    return FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(ACTIVE_STATE_TYPES)))
    )


def _active_totals(api: Any, now: datetime) -> Counter:
    """Active runs per state, counted by the server: one run-history bucket over all time."""
    end = now + timedelta(days=3650)  # runs scheduled years ahead count too
    body = {
        "history_start": _HISTORY_FROM.isoformat(),
        "history_end": end.isoformat(),
        "history_interval_seconds": (end - _HISTORY_FROM).total_seconds(),
        "flow_runs": _active_filter().model_dump(mode="json", exclude_unset=True),
    }
    totals: Counter = Counter()
    for bucket in api.post("/flow_runs/history", body) or []:
        for state in bucket.get("states") or []:
            label = _state_label(state.get("state_type"), state.get("state_name"))
            totals[label] += int(state.get("count_runs") or 0)
    return totals


def _batch_etas(
    api: Any, running: list[tuple[str, str, int, int]], alive: set[str] | None
) -> dict[str, float]:
    """Per report, the largest ETA among its running batches (one call for all)."""
    from dashboard.api._progress import latest_progress, parse_progress

    batch_ids = [batch_id for batch_id, *_ in running if alive is None or batch_id in alive]
    if not batch_ids:
        return {}
    report_of = {batch_id: report for batch_id, report, *_ in running}
    artifacts = latest_progress(api, batch_ids, "batch progress")
    eta: dict[str, float] = {}
    for run_id, artifact in artifacts.items():
        seconds = parse_progress(artifact.data, artifact.description).eta_s
        report = report_of.get(str(run_id))
        if seconds is not None and report is not None:
            eta[report] = max(eta.get(report, 0.0), float(seconds))
    return eta


def _state_label(state_type: Any, state_name: Any) -> str:
    """SCHEDULED, LATE, PENDING, RUNNING, PAUSED, CANCELLING: a bounded set."""
    if state_name == "Late":
        return "LATE"
    return _word(state_type) or "UNKNOWN"


def _run_page(api: Any, flow_runs: Any, limit: int) -> list[dict[str, Any]]:
    """The first `limit` runs matching `flow_runs`, due first, as the API's JSON.

    Plain JSON, not the client's models: a scrape needs seven fields of each run, and
    validating full runs into models costs about as much as the server takes to send them.
    """
    body = {
        "flow_runs": flow_runs.model_dump(mode="json", exclude_unset=True),
        "sort": "EXPECTED_START_TIME_ASC",
        "limit": limit,
    }
    return [
        {
            "id": str(run["id"]),
            "state_type": run.get("state_type"),
            "state_name": run.get("state_name"),
            "deployment_id": run.get("deployment_id"),
            "work_queue_name": run.get("work_queue_name"),
            "next_scheduled_start_time": run.get("next_scheduled_start_time"),
            "expected_start_time": run.get("expected_start_time"),
        }
        for run in api.post("/flow_runs/filter", body) or []
    ]


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _queue(run: dict[str, Any]) -> str:
    return run["work_queue_name"] or ""


def _word(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


# ---- metric families -----------------------------------------------------------------------


def _index_families(figures: _IndexFigures) -> Iterator[Metric]:
    items = GaugeMetricFamily(
        "reportrunner_items_total",
        "Report items (one report with one parameter set) by their current status in the "
        "item index: rendered, unchanged, flagged, failed, running, pending.",
        labels=["report", "status"],
    )
    by_report: dict[str, dict[str, int]] = defaultdict(dict)
    for report, status, count in figures.items:
        by_report[report][status] = count
    for report in sorted(by_report):
        counts = by_report[report]
        for status in [*ITEM_STATUSES, *sorted(set(counts) - set(ITEM_STATUSES))]:
            items.add_metric([report, status], counts.get(status, 0))
    yield items

    renders = CounterMetricFamily(
        "reportrunner_renders",
        "Render records in the item index by report and outcome: rendered = outputs made "
        "and passed the quality gate; flagged = outputs made but the quality gate flagged "
        "them; failed = the render failed, no outputs. Unchanged items are not renders.",
        labels=["report", "status"],
    )
    counted: dict[str, dict[str, int]] = defaultdict(dict)
    for report, status, count in figures.renders:
        counted[report][status] = count
    for report in sorted(counted):
        statuses = counted[report]
        for status in [*RENDER_STATUSES, *sorted(set(statuses) - set(RENDER_STATUSES))]:
            renders.add_metric([report, status], statuses.get(status, 0))
    yield renders

    durations = HistogramMetricFamily(
        "reportrunner_render_duration_seconds",
        "Seconds one item took to render (rendered and flagged renders; failures are not "
        "timed), from the item index's render history.",
        labels=["report"],
    )
    for row in sorted(figures.durations, key=lambda r: r[0]):
        report, cumulative, count, total = row[0], row[1:-2], row[-2], row[-1]
        buckets = [
            (_bound(b), int(n or 0)) for b, n in zip(DURATION_BUCKETS, cumulative, strict=True)
        ]
        durations.add_metric([report], [*buckets, ("+Inf", int(count))], float(total or 0.0))
    yield durations

    deliveries = GaugeMetricFamily(
        "reportrunner_deliveries",
        "Rows of the delivery ledger (one per subscription, item version, recipient and "
        "channel) by their status: queued, sending, sent, failed, held, approved, "
        "discarded, skipped.",
        labels=["subscription", "status"],
    )
    for subscription in sorted(figures.deliveries):
        for status, count in sorted(figures.deliveries[subscription].items()):
            deliveries.add_metric([subscription, status], count)
    yield deliveries


def _batch_families(index: _IndexFigures, api: _ApiFigures | None) -> list[Metric]:
    alive = api.alive if api is not None else None
    done: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for batch_id, report, size, finished in index.batches:
        if alive is None or batch_id in alive:
            done[report] += finished
            total[report] += size
    items = GaugeMetricFamily(
        "reportrunner_batch_items",
        "Items of the running batches, summed per report: state=done (finished however: "
        "rendered, unchanged, flagged or failed) and state=total.",
        labels=["report", "state"],
    )
    for report in sorted(total):
        items.add_metric([report, "done"], done[report])
        items.add_metric([report, "total"], total[report])
    eta = GaugeMetricFamily(
        "reportrunner_batch_eta_seconds",
        "Seconds until the report's running batches are done: the largest ETA among "
        "them, as of their latest progress update.",
        labels=["report"],
    )
    for report, seconds in sorted((api.eta if api is not None else {}).items()):
        eta.add_metric([report], seconds)
    return [items, eta]


def _api_families(figures: _ApiFigures) -> list[Metric]:
    runs = GaugeMetricFamily(
        "reportrunner_flow_runs",
        "Flow runs not in a final state, by state (SCHEDULED, LATE, PENDING, RUNNING, "
        f"PAUSED, CANCELLING), deployment and work queue. Beyond the {ACTIVE_PAGE} due "
        f'first, runs count under deployment="{OTHER}", queue="{OTHER}".',
        labels=["state", "deployment", "queue"],
    )
    for (state, deployment, queue), count in sorted(figures.active.items()):
        runs.add_metric([state, deployment, queue], count)

    queue_names = sorted({q.name for q in figures.queues} | set(figures.late))
    late = GaugeMetricFamily(
        "reportrunner_late_runs",
        f"Flow runs in state Late, or not started {LATE_AFTER_S} s after their scheduled "
        f"time, by work queue (as `reportrunner status` counts them). Beyond the {LATE_PAGE} "
        f'oldest, late runs count under queue="{OTHER}".',
        labels=["queue"],
    )
    oldest = GaugeMetricFamily(
        "reportrunner_oldest_late_run_age_seconds",
        "Seconds since the scheduled start of the queue's oldest late run (0: none).",
        labels=["queue"],
    )
    for name in queue_names:
        late.add_metric([name], figures.late.get(name, 0))
        oldest.add_metric([name], round(figures.oldest_late.get(name, 0.0), 3))

    online = GaugeMetricFamily(
        "reportrunner_workers_online",
        "Workers of the work pool whose last heartbeat is recent (ONLINE).",
        labels=["pool"],
    )
    for pool, count in sorted(figures.online.items()):
        online.add_metric([pool], count)
    pool_paused = GaugeMetricFamily(
        "reportrunner_pool_paused", "1 when the work pool is paused.", labels=["pool"]
    )
    for pool in figures.pools:
        paused = bool(pool.is_paused) or _word(pool.status) == "PAUSED"
        pool_paused.add_metric([pool.name], 1 if paused else 0)
    queue_paused = GaugeMetricFamily(
        "reportrunner_queue_paused", "1 when the work queue is paused.", labels=["pool", "queue"]
    )
    for queue in sorted(figures.queues, key=lambda q: (q.work_pool_name or "", q.name)):
        queue_paused.add_metric(
            [queue.work_pool_name or "", queue.name], 1 if queue.is_paused else 0
        )
    return [runs, late, oldest, online, pool_paused, queue_paused]


def _self_families(*, api_up: bool, index_up: bool, calls: int, duration_s: float) -> list[Metric]:
    up = GaugeMetricFamily(
        "reportrunner_up",
        "1 when the exporter could read the component at the latest collection: "
        "api = the Prefect API, index = the item index database.",
        labels=["component"],
    )
    up.add_metric(["api"], 1 if api_up else 0)
    up.add_metric(["index"], 1 if index_up else 0)
    calls_family = GaugeMetricFamily(
        "reportrunner_scrape_api_calls",
        "Prefect API requests the latest collection made (bounded whatever the history).",
        value=calls,
    )
    seconds = GaugeMetricFamily(
        "reportrunner_scrape_duration_seconds",
        "Seconds the latest collection took (index and API; cached between scrapes).",
        value=round(duration_s, 6),
    )
    return [up, calls_family, seconds]


def _bound(value: float) -> str:
    return str(float(value))


# ---- the HTTP server -----------------------------------------------------------------------


class MetricsServer:
    """The exporter's HTTP server on a background thread."""

    def __init__(self, exporter: MetricsExporter, host: str, port: int) -> None:
        self.exporter = exporter
        self.httpd = _HttpServer((host, port), _Handler)
        self.httpd.exporter = exporter
        self.host, self.port = self.httpd.server_address[:2]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="reportrunner-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)
        self.exporter.close()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    exporter: MetricsExporter


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "reportrunner-metrics"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        exporter = self.server.exporter
        try:
            if path == "/metrics":
                self._send(200, exporter.scrape(), CONTENT_TYPE_PLAIN_0_0_4)
            elif path == "/health":
                code, body = exporter.health()
                self._send(code, json.dumps(body, indent=2).encode(), "application/json")
            elif path == "/":
                text = "reportrunner metrics: /metrics (Prometheus), /health (JSON status)\n"
                self._send(200, text.encode(), "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found: try /metrics or /health\n", "text/plain")
        except Exception as exc:  # never a traceback to a scraper
            log.exception("metrics: %s failed", path)
            self._send(500, f"error: {type(exc).__name__}\n".encode(), "text/plain")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics: %s " + format, self.address_string(), *args)


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    cache_s: float = DEFAULT_CACHE_S,
    say: Callable[[str], None] = print,
) -> int:
    """Serve until SIGTERM or Ctrl-C (the `reportrunner metrics` command)."""
    import signal

    exporter = MetricsExporter(cache_s=cache_s)
    server = exporter.serve(host, port)
    say(f"Metrics: {server.url}/metrics (health: {server.url}/health)")

    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
    return 0
