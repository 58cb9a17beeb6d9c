"""One health check of the Prefect side, for people and for monitoring systems.

`collect_status()` asks the Prefect API, through `prefect_api` and in a fixed number of
calls whatever the number of runs, whether it is up, which work pools, queues and
workers it has, how many flow runs are late and how many failed recently, and turns
that into a list of problems that need attention. `exit_code()` maps the report to 0
(ok), 1 (attention) or 2 (API unreachable); `StatusReport.render_text()` (see
`deployments/status_report.py`) and `.as_dict()` are what `reportrunner status [--json]`
prints.

API calls per `collect_status()`: 1 health check, 1 CSRF token (Prefect's client
fetches one before its first POST), 1 work pools, 1 work queues (all pools), 1 workers
per pool, 2 for late runs (count, then up to 5 examples), 2 for failures (count, then
up to 5 examples), 1 for the examples' flow names: at most 9 + the number of pools.
Nothing printed contains credentials (`ApiConfig.redact`).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from deployments.status_report import (
    PoolInfo,
    QueueInfo,
    RunExample,
    RunSummary,
    StatusReport,
    WorkerInfo,
    exit_code,
    span,
)
from prefect_api import (
    ApiConfig,
    ApiUnavailable,
    connect,
    describe,
    failed_runs,
    flow_names,
    iso,
    late_runs,
    needs_worker,
    one_line,
    pool_status,
    read_pools,
    read_queues,
    read_workers,
    utc,
    word,
)

__all__ = ["StatusReport", "collect_status", "exit_code"]

log = logging.getLogger(__name__)

_EXAMPLES = 5


def collect_status(
    api_url: str | None = None,
    *,
    late_after_s: int = 60,
    failure_window_s: int = 3600,
    timeout_s: float = 10.0,
    config: ApiConfig | None = None,
) -> StatusReport:
    """Ask the Prefect API at `api_url` (default: the active PREFECT_API_URL) how it is.

    Never raises for an unreachable or failing API: the report says so instead.
    `config` replaces the environment's connection settings (tests pass a transport).
    """
    config = config or ApiConfig.active(timeout_s=timeout_s, retries=0)  # answer at once
    if api_url:
        config = dataclasses.replace(config, url=api_url.rstrip("/"))
    now = datetime.now(UTC)
    report = StatusReport(
        api_url=config.safe_url if config.url else "",
        api_ready=False,
        checked_at=iso(now) or "",
        late_after_s=late_after_s,
        failure_window_s=failure_window_s,
    )
    if not config.url:
        report.api_error = "PREFECT_API_URL is not set"
        report.problems.append("Prefect API not configured: PREFECT_API_URL is not set")
        return report
    step = "the health check"
    try:
        with connect(config) as api:
            error = api.health_error()
            if error is not None:
                report.api_error = config.redact(describe(error))
                report.problems.append(
                    f"Prefect API unreachable at {report.api_url}: {report.api_error}"
                )
                return report
            report.api_ready = True
            step = "work pools"
            report.pools = _pools(api, now, report.notes)
            step = "late runs"
            late = late_runs(api, now - timedelta(seconds=late_after_s), _EXAMPLES)
            step = "failed runs"
            failed = failed_runs(api, now - timedelta(seconds=failure_window_s), _EXAMPLES)
            step = "flow names"
            names = flow_names(api, {run.flow_id for run in late[1] + failed[1]})
    except (ApiUnavailable, Exception) as exc:  # a monitoring check reports, it does not crash
        log.debug("status: reading %s failed", step, exc_info=True)
        report.api_ready = False
        report.api_error = config.redact(describe(exc))
        report.problems.append(
            f"Prefect API error at {report.api_url} while reading {step}: {report.api_error}"
        )
        return report
    report.late = RunSummary(late[0], [_example(run, names, late=True) for run in late[1]])
    report.failures = RunSummary(failed[0], [_example(run, names, late=False) for run in failed[1]])
    report.problems.extend(_problems(report))
    return report


def _pools(api: Any, now: datetime, notes: list[str]) -> list[PoolInfo]:
    by_pool: dict[str, list[QueueInfo]] = {}
    for queue in sorted(read_queues(api, notes), key=lambda q: (q.priority, q.name)):
        by_pool.setdefault(queue.work_pool_name or "", []).append(
            QueueInfo(
                name=queue.name,
                priority=queue.priority,
                paused=queue.is_paused,
                concurrency_limit=queue.concurrency_limit,
                status=word(queue.status),
            )
        )
    return [
        PoolInfo(
            name=pool.name,
            type=pool.type,
            status=pool_status(pool),
            paused=pool.is_paused,
            concurrency_limit=pool.concurrency_limit,
            needs_worker=needs_worker(pool),
            queues=by_pool.get(pool.name, []),
            workers=[_worker(w, now) for w in read_workers(api, pool.name)],
        )
        for pool in read_pools(api, notes)
    ]


def _worker(worker: Any, now: datetime) -> WorkerInfo:
    beat = utc(worker.last_heartbeat_time)
    return WorkerInfo(
        name=worker.name,
        status=word(worker.status) or "OFFLINE",
        last_heartbeat=iso(beat),
        heartbeat_age_s=None if beat is None else max(0, int((now - beat).total_seconds())),
    )


def _example(run: Any, names: dict, *, late: bool) -> RunExample:
    """A late run with its expected start, or a failed one with its end and message."""
    if late:
        time, message = run.next_scheduled_start_time or run.expected_start_time, None
    else:
        time = run.end_time or (run.state.timestamp if run.state else None)
        message = one_line(run.state.message if run.state else None, limit=160)
    return RunExample(
        id=str(run.id),
        name=run.name,
        flow=names.get(run.flow_id),
        state=run.state_name or "",
        time=iso(time),
        message=message,
    )


def _problems(report: StatusReport) -> list[str]:
    problems = []
    for pool in report.pools:
        no_worker = pool.needs_worker and pool.online_workers == 0
        if pool.paused or pool.status == "PAUSED":
            text = f"work pool {pool.name!r} is PAUSED: none of its runs will start"
            problems.append(text + ("; it has no online worker" if no_worker else ""))
        elif no_worker:
            problems.append(f"work pool {pool.name!r} is {pool.status}: no online worker")
        elif pool.status == "NOT_READY":
            problems.append(f"work pool {pool.name!r} is NOT_READY")
        problems.extend(
            f"work queue {queue.name!r} of pool {pool.name!r} is PAUSED"
            for queue in pool.queues
            if queue.paused
        )
    if report.late and report.late.count:
        n = report.late.count
        problems.append(f"{n} flow run{'s are' if n != 1 else ' is'} late")
    if report.failures and report.failures.count:
        n = report.failures.count
        problems.append(
            f"{n} flow run{'s' if n != 1 else ''} failed or crashed in the last "
            f"{span(report.failure_window_s)}"
        )
    return problems
