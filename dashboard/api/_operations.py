"""The operations page's queries: pools, queues, deployments with schedules, workers, audit.

API calls per `operations()`: 1 work pools, 1 work queues, 1 CSRF token, 1 deployments,
1 flows (names), and 1 worker list for each of at most `MAX_WORKER_POOLS` pools:
bounded whatever the number of runs. `read_audit()` costs one call per 50 events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prefect_api import (
    Api,
    actions,
    flow_names,
    pool_status,
    read_pools,
    read_queues,
    read_workers,
    utc,
    word,
)

PAGE = 200
MAX_WORKER_POOLS = 10
EVENT_PAGE = 50  # the server's largest page of events
EVENT_PREFIX = "reportrunner.dashboard."


@dataclass(frozen=True)
class PoolRow:
    id: str
    name: str
    type: str
    status: str  # READY / NOT_READY / PAUSED
    paused: bool
    concurrency_limit: int | None


@dataclass(frozen=True)
class QueueRow:
    id: str
    name: str
    pool: str | None
    priority: int | None
    concurrency_limit: int | None
    paused: bool


@dataclass(frozen=True)
class ScheduleRow:
    id: str
    text: str  # "cron 0 6 2 * *", "every 1 h"
    timezone: str | None
    active: bool


@dataclass(frozen=True)
class DeploymentRow:
    id: str
    name: str
    flow: str | None
    paused: bool
    work_queue: str | None
    schedules: list[ScheduleRow]


@dataclass(frozen=True)
class WorkerRow:
    name: str
    pool: str
    status: str  # ONLINE / OFFLINE
    last_heartbeat: datetime | None


@dataclass(frozen=True)
class Operations:
    pools: list[PoolRow]
    queues: list[QueueRow]
    deployments: list[DeploymentRow]
    workers: list[WorkerRow]
    calls: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AuditEntry:
    occurred: datetime
    user: str
    role: str
    action: str  # "run.cancel", "pool.pause", …
    target: str
    outcome: str  # ok / failed / denied
    message: str


def operations(api: Api) -> Operations:
    """Everything the operations page lists, in a bounded number of calls."""
    notes: list[str] = []
    with api.guard("work pools and queues"):
        pools = read_pools(api, notes)
        queues = read_queues(api, notes)
    with api.guard("deployments"):
        deployments = api.client.read_deployments(limit=PAGE)
        flows = flow_names(api, {d.flow_id for d in deployments})
    workers: list[WorkerRow] = []
    with api.guard("workers"):
        for pool in pools[:MAX_WORKER_POOLS]:
            for worker in read_workers(api, pool.name):
                workers.append(
                    WorkerRow(
                        name=worker.name,
                        pool=pool.name,
                        status=word(worker.status) or "UNKNOWN",
                        last_heartbeat=utc(worker.last_heartbeat_time),
                    )
                )
    if len(pools) > MAX_WORKER_POOLS:
        notes.append(f"workers are listed for the first {MAX_WORKER_POOLS} work pools only")
    if len(deployments) >= PAGE:
        notes.append(f"only the first {PAGE} deployments are shown")
    pool_names = {p.id: p.name for p in pools}
    return Operations(
        pools=[
            PoolRow(
                id=str(p.id),
                name=p.name,
                type=p.type,
                status=pool_status(p),
                paused=bool(p.is_paused),
                concurrency_limit=p.concurrency_limit,
            )
            for p in pools
        ],
        queues=sorted(
            (
                QueueRow(
                    id=str(q.id),
                    name=q.name,
                    pool=q.work_pool_name or pool_names.get(q.work_pool_id),
                    priority=q.priority,
                    concurrency_limit=q.concurrency_limit,
                    paused=bool(q.is_paused),
                )
                for q in queues
            ),
            key=lambda q: (q.pool or "", q.priority or 0, q.name),
        ),
        deployments=sorted(
            (
                DeploymentRow(
                    id=str(d.id),
                    name=d.name,
                    flow=flows.get(d.flow_id),
                    paused=bool(d.paused),
                    work_queue=d.work_queue_name,
                    schedules=[_schedule(s) for s in d.schedules or []],
                )
                for d in deployments
            ),
            key=lambda d: (d.flow or "", d.name),
        ),
        workers=sorted(workers, key=lambda w: (w.pool, w.name)),
        calls=api.calls,
        notes=notes,
    )


def read_audit(api: Api, limit: int = 100) -> list[AuditEntry]:
    """Dashboard actions recorded as Prefect events, newest first (at most `limit`)."""
    with api.guard("the audit log"):
        events = actions.read_events(api, EVENT_PREFIX, limit, page_size=min(limit, EVENT_PAGE))
    return [_audit_entry(event) for event in events]


def _audit_entry(event: dict[str, Any]) -> AuditEntry:
    payload = event.get("payload") or {}
    resource = event.get("resource") or {}
    return AuditEntry(
        occurred=utc(datetime.fromisoformat(event["occurred"])) or datetime.now(UTC),
        user=str(payload.get("user") or resource.get("prefect.resource.name") or "?"),
        role=str(payload.get("role") or "?"),
        action=str(event.get("event", "")).removeprefix(EVENT_PREFIX),
        target=str(payload.get("target") or ""),
        outcome=str(payload.get("outcome") or "?"),
        message=str(payload.get("message") or ""),
    )


def _schedule(item: Any) -> ScheduleRow:
    schedule = item.schedule
    cron = getattr(schedule, "cron", None)
    interval = getattr(schedule, "interval", None)
    rrule = getattr(schedule, "rrule", None)
    if cron:
        text = f"cron {cron}"
    elif interval is not None:
        text = f"every {interval}"
    else:
        text = f"rrule {rrule}" if rrule else "unknown"
    return ScheduleRow(
        id=str(item.id),
        text=text,
        timezone=getattr(schedule, "timezone", None),
        active=bool(item.active),
    )
