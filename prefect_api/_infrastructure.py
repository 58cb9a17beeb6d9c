"""Work pools, their queues and their workers, read in a bounded number of calls."""

from __future__ import annotations

from typing import Any

from prefect_api._connection import Api
from prefect_api._values import word

PAGE = 200  # the API's largest page


def read_pools(api: Api, notes: list[str]) -> list[Any]:
    """Every work pool (one page), by name; a note when the page was cut."""
    pools = api.client.read_work_pools(limit=PAGE)
    if len(pools) >= PAGE:
        notes.append(f"only the first {PAGE} work pools are shown")
    return sorted(pools, key=lambda pool: pool.name)


def read_queues(api: Api, notes: list[str]) -> list[Any]:
    """Every work queue of every pool (one page); a note when the page was cut."""
    queues = api.client.read_work_queues(limit=PAGE)
    if len(queues) >= PAGE:
        notes.append(f"only the first {PAGE} work queues are shown")
    return queues


def read_workers(api: Api, pool: str, online_only: bool = False) -> list[Any]:
    """A pool's workers, newest heartbeat first (one call)."""
    from prefect.client.schemas.filters import WorkerFilter, WorkerFilterStatus

    worker_filter = (
        WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"])) if online_only else None
    )
    return api.client.read_workers_for_work_pool(pool, worker_filter=worker_filter, limit=PAGE)


def pool_status(pool: Any) -> str:
    """READY / NOT_READY / PAUSED, as the server says it (paused wins)."""
    if pool.is_paused:
        return "PAUSED"
    return word(pool.status) or "NOT_READY"


def needs_worker(pool: Any) -> bool:
    """Push and managed pools run without workers."""
    return not (pool.is_push_pool or pool.is_managed_pool)
