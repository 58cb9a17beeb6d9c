"""What `reportrunner status` reports: the model, its JSON and its terminal table.

The JSON has the same keys whatever the state of the server; the text spells every
state out in words. `deployments/status.py` fills the model from the Prefect API.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

EXIT_OK, EXIT_ATTENTION, EXIT_UNREACHABLE = 0, 1, 2
_WORKERS_SHOWN = 5  # per pool in the table (all of them in the JSON)


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
        return render_text(self)


def exit_code(report: StatusReport) -> int:
    """0 when all is well, 1 when something needs attention, 2 when the API is unreachable."""
    if not report.api_ready:
        return EXIT_UNREACHABLE
    return EXIT_OK if report.ok else EXIT_ATTENTION


class _Nothing:
    count = 0
    examples: tuple = ()


_NOTHING = _Nothing()  # a count the API could not give: shown as 0


def render_text(report: StatusReport) -> str:
    """A plain-text table for a terminal; every state is spelled out in words."""
    if report.ok:
        verdict = "OK"
    elif not report.api_ready:
        verdict = "UNREACHABLE"
    else:
        n = len(report.problems)
        verdict = f"ATTENTION ({n} problem{'s' if n != 1 else ''})"
    lines = [f"Prefect status: {verdict}   (checked {report.checked_at})"]
    api_state = "READY" if report.api_ready else "DOWN"
    lines.append(f"API: {report.api_url or '(PREFECT_API_URL not set)'}  {api_state}")
    if not report.api_ready:
        lines += ["", "PROBLEMS", *(f"  ! {p}" for p in report.problems)]
        return "\n".join(lines) + "\n"

    lines += ["", f"WORK POOLS ({len(report.pools)})"]
    if not report.pools:
        lines.append("  none")
    for pool in report.pools:
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

    late = report.late or _NOTHING
    lines += [
        "",
        f"LATE RUNS: {late.count}  (state Late, or not started {report.late_after_s} s"
        " after the scheduled time)",
    ]
    lines += _table(
        [
            [
                e.name,
                e.flow or "",
                e.state,
                f"expected {e.time}",
                _behind(report.checked_at, e.time),
            ]
            for e in late.examples
        ],
        indent=2,
    )
    failed = report.failures or _NOTHING
    lines += ["", f"FAILED RUNS: {failed.count}  (last {span(report.failure_window_s)})"]
    lines += _table(
        [[e.name, e.flow or "", e.state, e.message or ""] for e in failed.examples],
        indent=2,
    )
    lines += ["", "PROBLEMS" if report.problems else "PROBLEMS: none"]
    lines += [f"  ! {p}" for p in report.problems]
    if report.notes:
        lines += ["", "NOTES", *(f"  - {n}" for n in report.notes)]
    return "\n".join(lines) + "\n"


def _behind(checked_at: str, expected: str | None) -> str:
    if not expected:
        return ""
    delay = datetime.fromisoformat(checked_at) - datetime.fromisoformat(expected)
    return f"({span(max(0, int(delay.total_seconds())))} late)"


def _ago(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    return f"{span(seconds)} ago"


def span(seconds: int) -> str:
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
