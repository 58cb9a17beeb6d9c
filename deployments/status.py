"""One health check of the Prefect side, for people and for monitoring systems.

`collect_status()` asks the Prefect API, in a fixed number of calls whatever the
number of runs, whether it is up, which work pools, queues and workers it has, how
many flow runs are late and how many failed recently, and turns that into a list of
problems that need attention. `exit_code()` maps the report to 0 (ok), 1 (attention)
or 2 (API unreachable); `StatusReport.render_text()` and `.as_dict()` are what
`reportrunner status [--json]` prints.

API calls per `collect_status()`, whatever the number of runs: 1 health check, 1 CSRF
token (Prefect's client fetches one before its first POST), 1 work pools, 1 work
queues (all pools), 1 workers per pool, 2 for late runs (count, then up to 5
examples), 2 for failures (count, then up to 5 examples), 1 for the examples' flow
names: at most 9 + the number of pools (examples are not read when a count is 0).
Lists are read as one page of at most 200 items; a note says when a list was cut.

Nothing printed contains credentials: URLs lose their user info and query, and the
configured auth string or API key is blanked out of any error message.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

__all__ = [
    "PoolInfo",
    "QueueInfo",
    "RunExample",
    "RunSummary",
    "StatusReport",
    "WorkerInfo",
    "collect_status",
    "exit_code",
]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ATTENTION = 1
EXIT_UNREACHABLE = 2

_PAGE = 200  # the API's maximum page size
_EXAMPLES = 5
_MESSAGE_CHARS = 160
_WORKERS_SHOWN = 5  # per pool in the text table (all of them in as_dict)
# A server started with PREFECT_SERVER_API_AUTH_STRING answers 401 to anyone without it.
_AUTH_HINT = "authentication failed: set PREFECT_API_AUTH_STRING to the server's user:password"


# ---- the report -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueueInfo:
    name: str
    priority: int
    paused: bool
    concurrency_limit: int | None
    status: str | None  # READY / NOT_READY / PAUSED as the server reports it


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    status: str  # ONLINE / OFFLINE
    last_heartbeat: str | None  # ISO 8601, UTC
    heartbeat_age_s: int | None


@dataclass(frozen=True)
class PoolInfo:
    name: str
    type: str
    status: str  # READY / NOT_READY / PAUSED
    paused: bool
    concurrency_limit: int | None
    needs_worker: bool  # False for push and managed pools, which run without workers
    queues: list[QueueInfo] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)

    @property
    def online_workers(self) -> int:
        return sum(worker.status == "ONLINE" for worker in self.workers)


@dataclass(frozen=True)
class RunExample:
    id: str
    name: str
    flow: str | None
    state: str
    time: str | None  # late runs: expected start; failures: end time (ISO 8601, UTC)
    message: str | None = None


@dataclass(frozen=True)
class RunSummary:
    count: int
    examples: list[RunExample] = field(default_factory=list)


@dataclass
class StatusReport:
    api_url: str  # without credentials
    api_ready: bool
    checked_at: str
    late_after_s: int
    failure_window_s: int
    api_error: str | None = None
    pools: list[PoolInfo] = field(default_factory=list)
    late: RunSummary | None = None  # None when the API could not be asked
    failures: RunSummary | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """JSON-serializable, with the same keys whatever the state of the server."""
        return {
            "ok": self.ok,
            "exit_code": exit_code(self),
            "checked_at": self.checked_at,
            "api": {"url": self.api_url, "ready": self.api_ready, "error": self.api_error},
            "work_pools": [
                {**asdict(pool), "online_workers": pool.online_workers} for pool in self.pools
            ],
            "late_runs": {
                "late_after_s": self.late_after_s,
                "count": self.late.count if self.late else None,
                "examples": [asdict(e) for e in self.late.examples] if self.late else [],
            },
            "failed_runs": {
                "window_s": self.failure_window_s,
                "count": self.failures.count if self.failures else None,
                "examples": [asdict(e) for e in self.failures.examples] if self.failures else [],
            },
            "problems": list(self.problems),
            "notes": list(self.notes),
        }

    def render_text(self) -> str:
        """A plain-text table for a terminal; every state is spelled out in words."""
        if self.ok:
            verdict = "OK"
        elif not self.api_ready:
            verdict = "UNREACHABLE"
        else:
            n = len(self.problems)
            verdict = f"ATTENTION ({n} problem{'s' if n != 1 else ''})"
        lines = [f"Prefect status: {verdict}   (checked {self.checked_at})"]
        api_state = "READY" if self.api_ready else "DOWN"
        lines.append(f"API: {self.api_url or '(PREFECT_API_URL not set)'}  {api_state}")
        if not self.api_ready:
            lines += ["", "PROBLEMS", *(f"  ! {p}" for p in self.problems)]
            return "\n".join(lines) + "\n"

        lines += ["", f"WORK POOLS ({len(self.pools)})"]
        if not self.pools:
            lines.append("  none")
        for pool in self.pools:
            workers = (
                f"{pool.online_workers} of {len(pool.workers)} workers online"
                if pool.needs_worker
                else "no workers needed"
            )
            limit = _limit(pool.concurrency_limit)
            lines.append(f"  {pool.name}  [{pool.type}]  {pool.status}  {workers}  limit {limit}")
            queue_rows = [
                [
                    f"queue {q.name}",
                    f"priority {q.priority}",
                    "PAUSED" if q.paused else "ACTIVE",
                    f"limit {_limit(q.concurrency_limit)}",
                ]
                for q in pool.queues
            ]
            shown = pool.workers[:_WORKERS_SHOWN]
            worker_rows = [
                [
                    f"worker {w.name}",
                    w.status,
                    f"heartbeat {_ago(w.heartbeat_age_s)}",
                    w.last_heartbeat or "",
                ]
                for w in shown
            ]
            lines += _table(queue_rows, indent=4) + _table(worker_rows, indent=4)
            if len(pool.workers) > len(shown):
                lines.append(f"    … {len(pool.workers) - len(shown)} more workers")
            if pool.needs_worker and not pool.workers:
                lines.append("    no workers have ever polled this pool")

        late = self.late or RunSummary(0)
        lines += [
            "",
            f"LATE RUNS: {late.count}  (state Late, or not started {self.late_after_s} s"
            " after the scheduled time)",
        ]
        lines += _table(
            [
                [e.name, e.flow or "", e.state, f"expected {e.time}", self._behind(e.time)]
                for e in late.examples
            ],
            indent=2,
        )
        failed = self.failures or RunSummary(0)
        lines += ["", f"FAILED RUNS: {failed.count}  (last {_span(self.failure_window_s)})"]
        lines += _table(
            [[e.name, e.flow or "", e.state, e.message or ""] for e in failed.examples],
            indent=2,
        )
        lines += ["", "PROBLEMS" if self.problems else "PROBLEMS: none"]
        lines += [f"  ! {p}" for p in self.problems]
        if self.notes:
            lines += ["", "NOTES", *(f"  - {n}" for n in self.notes)]
        return "\n".join(lines) + "\n"

    def _behind(self, expected: str | None) -> str:
        if not expected:
            return ""
        delay = datetime.fromisoformat(self.checked_at) - datetime.fromisoformat(expected)
        return f"({_span(max(0, int(delay.total_seconds())))} late)"


def exit_code(report: StatusReport) -> int:
    """0 when all is well, 1 when something needs attention, 2 when the API is unreachable."""
    if not report.api_ready:
        return EXIT_UNREACHABLE
    return EXIT_OK if report.ok else EXIT_ATTENTION


# ---- collecting -----------------------------------------------------------------------


def collect_status(
    api_url: str | None = None,
    *,
    late_after_s: int = 60,
    failure_window_s: int = 3600,
    timeout_s: float = 10.0,
) -> StatusReport:
    """Ask the Prefect API at `api_url` (default: the active PREFECT_API_URL) how it is.

    Never raises for an unreachable or failing API: the report says so instead.
    Never starts Prefect's ephemeral server when no URL is configured.
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings().api
    url = (api_url or settings.url or "").rstrip("/")
    secrets = [s for s in (_secret(settings.auth_string), _secret(settings.key)) if s]
    redact = _Redactor(url, secrets)
    now = datetime.now(UTC)
    report = StatusReport(
        api_url=redact.url,
        api_ready=False,
        checked_at=_iso(now),
        late_after_s=late_after_s,
        failure_window_s=failure_window_s,
    )
    if not url:
        report.api_error = "PREFECT_API_URL is not set"
        report.problems.append("Prefect API not configured: PREFECT_API_URL is not set")
        return report

    headers = _auth_headers(auth_string=_secret(settings.auth_string), key=_secret(settings.key))
    error = _health(url, headers, timeout_s)
    if error:
        report.api_error = redact(error)
        report.problems.append(f"Prefect API unreachable at {redact.url}: {report.api_error}")
        return report
    report.api_ready = True

    from prefect.client.orchestration import SyncPrefectClient

    client = SyncPrefectClient(
        url,
        auth_string=_secret(settings.auth_string),
        api_key=_secret(settings.key),
        httpx_settings={"timeout": timeout_s},
    )
    step = "work pools"
    try:
        with client:
            report.pools = _pools(client, now, report.notes)
            step = "late runs"
            late_count, late = _late_runs(client, now - timedelta(seconds=late_after_s))
            step = "failed runs"
            failed_count, failed = _failed_runs(client, now - timedelta(seconds=failure_window_s))
            step = "flow names"
            late_examples, failed_examples = _examples(client, late, failed)
            report.late = RunSummary(late_count, late_examples)
            report.failures = RunSummary(failed_count, failed_examples)
    except Exception as exc:  # a monitoring check reports, it does not crash
        log.debug("status: reading %s failed", step, exc_info=True)
        report.api_ready = False
        report.api_error = redact(_describe(exc))
        report.problems.append(
            f"Prefect API error at {redact.url} while reading {step}: {report.api_error}"
        )
        return report

    report.problems.extend(_problems(report))
    return report


def _health(url: str, headers: dict[str, str], timeout_s: float) -> str | None:
    """None when GET /health answers 200, else why not (one line, no retries)."""
    try:
        response = httpx.get(f"{url}/health", headers=headers, timeout=timeout_s)
    except Exception as exc:  # connection refused, timeout, malformed URL …
        return _describe(exc)
    if response.status_code != 200:
        return f"GET /health answered HTTP {response.status_code}"
    return None


def _pools(client: Any, now: datetime, notes: list[str]) -> list[PoolInfo]:
    pools = client.read_work_pools(limit=_PAGE)
    if len(pools) >= _PAGE:
        notes.append(f"only the first {_PAGE} work pools are shown")
    queues = client.read_work_queues(limit=_PAGE)
    if len(queues) >= _PAGE:
        notes.append(f"only the first {_PAGE} work queues are shown")
    by_pool: dict[str, list[QueueInfo]] = {}
    for queue in sorted(queues, key=lambda q: (q.priority, q.name)):
        by_pool.setdefault(queue.work_pool_name or "", []).append(
            QueueInfo(
                name=queue.name,
                priority=queue.priority,
                paused=queue.is_paused,
                concurrency_limit=queue.concurrency_limit,
                status=_word(queue.status),
            )
        )
    result = []
    for pool in sorted(pools, key=lambda p: p.name):
        workers = client.read_workers_for_work_pool(pool.name, limit=_PAGE)
        if len(workers) >= _PAGE:
            notes.append(f"work pool {pool.name!r}: only the {_PAGE} latest workers are shown")
        result.append(
            PoolInfo(
                name=pool.name,
                type=pool.type,
                status=_word(pool.status) or ("PAUSED" if pool.is_paused else "NOT_READY"),
                paused=pool.is_paused,
                concurrency_limit=pool.concurrency_limit,
                needs_worker=not (pool.is_push_pool or pool.is_managed_pool),
                queues=by_pool.get(pool.name, []),
                workers=[_worker(w, now) for w in workers],  # newest heartbeat first
            )
        )
    return result


def _worker(worker: Any, now: datetime) -> WorkerInfo:
    beat = worker.last_heartbeat_time
    age = None if beat is None else max(0, int((now - _utc(beat)).total_seconds()))
    return WorkerInfo(
        name=worker.name,
        status=_word(worker.status) or "OFFLINE",
        last_heartbeat=_iso(beat),
        heartbeat_age_s=age,
    )


def _late_runs(client: Any, cutoff: datetime) -> tuple[int, list]:
    """Runs in state Late, or still waiting (any Scheduled-type state) past `cutoff`.

    The server clears `next_scheduled_start_time` when a run leaves its scheduled
    state, so the second half only matches runs that have not started yet.
    """
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterNextScheduledStartTime,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )
    from prefect.client.schemas.filters import Operator as FilterOperator
    from prefect.client.schemas.sorting import FlowRunSort

    flow_runs = FlowRunFilter(
        operator=FilterOperator.or_,
        state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Late"])),
        next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(before_=cutoff),
    )
    return _count_and_examples(client, flow_runs, FlowRunSort.EXPECTED_START_TIME_ASC)


def _count_and_examples(client: Any, flow_runs: Any, sort: Any) -> tuple[int, list]:
    """A server-side count, and a few examples only when there is something to show."""
    count = client.count_flow_runs(flow_run_filter=flow_runs)
    examples = (
        client.read_flow_runs(flow_run_filter=flow_runs, sort=sort, limit=_EXAMPLES)
        if count
        else []
    )
    return count, examples


def _failed_runs(client: Any, since: datetime) -> tuple[int, list]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterEndTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    flow_runs = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED])
        ),
        end_time=FlowRunFilterEndTime(after_=since),
    )
    return _count_and_examples(client, flow_runs, FlowRunSort.END_TIME_DESC)


def _examples(client: Any, late: list, failed: list) -> tuple[list, list]:
    """The example flow runs as `RunExample`s, with their flows' names (one call)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterId

    flow_ids = list({run.flow_id for run in [*late, *failed]})
    names = {}
    if flow_ids:
        flows = client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)))
        names = {flow.id: flow.name for flow in flows}
    late_examples = [
        RunExample(
            id=str(run.id),
            name=run.name,
            flow=names.get(run.flow_id),
            state=run.state_name or "",
            time=_iso(run.next_scheduled_start_time or run.expected_start_time),
        )
        for run in late
    ]
    failed_examples = [
        RunExample(
            id=str(run.id),
            name=run.name,
            flow=names.get(run.flow_id),
            state=run.state_name or "",
            time=_iso(run.end_time or (run.state.timestamp if run.state else None)),
            message=_one_line(run.state.message if run.state else None),
        )
        for run in failed
    ]
    return late_examples, failed_examples


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
        problems.append(
            f"{report.late.count} flow run{'s are' if report.late.count != 1 else ' is'} late"
        )
    if report.failures and report.failures.count:
        n = report.failures.count
        problems.append(
            f"{n} flow run{'s' if n != 1 else ''} failed or crashed in the last "
            f"{_span(report.failure_window_s)}"
        )
    return problems


# ---- small helpers --------------------------------------------------------------------


class _Redactor:
    """Removes credentials from text: the URL's user info and query, auth strings, keys."""

    def __init__(self, url: str, secrets: list[str]) -> None:
        self.raw_url = url
        self.url = _safe_url(url)
        self.secrets = [s for s in secrets if s]
        for secret in list(self.secrets):
            self.secrets.append(base64.b64encode(secret.encode()).decode())

    def __call__(self, text: str) -> str:
        if self.raw_url and self.raw_url != self.url:
            text = text.replace(self.raw_url, self.url)
        parts = urlsplit(self.raw_url) if self.raw_url else None
        if parts and parts.password:
            text = text.replace(parts.password, "***")
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _safe_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _auth_headers(*, auth_string: str | None, key: str | None) -> dict[str, str]:
    """The Authorization header the Prefect client would send."""
    if auth_string:
        return {"Authorization": f"Basic {base64.b64encode(auth_string.encode()).decode()}"}
    if key:
        return {"Authorization": f"Bearer {key}"}
    return {}


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter else str(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        request, code = exc.request, exc.response.status_code
        answer = f"{request.method} {request.url.path} answered HTTP {code}"
        return f"{answer} ({_AUTH_HINT})" if code in (401, 403) else answer
    text = _one_line(str(exc), limit=200) or ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str | None, limit: int = _MESSAGE_CHARS) -> str | None:
    if not text:
        return text
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _word(value: Any) -> str | None:
    """An enum's value ('READY'), never its repr."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _utc(moment).isoformat(timespec="seconds")


def _ago(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    return f"{_span(seconds)} ago"


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _limit(value: int | None) -> str:
    return "none" if value is None else str(value)


def _table(rows: list[list[str]], indent: int) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        " " * indent
        + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
