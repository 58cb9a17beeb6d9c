"""A long-lived pool of render processes shared by every batch in this process.

What runs inside the processes is `reports.jobs` (no Prefect there, so a render
process starts without importing Prefect).

PDF rendering is CPU-bound, so threads do not help; but Prefect tasks on a
process task runner cost ~100 ms of server CPU each (see docs/BENCHMARKS.md).
So item tasks stay on cheap threads and hand the rendering to these processes,
which keep fonts, parsed CSS and data warm between items.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from reports import get_settings, jobs

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
# Pools started in this process, and the seconds from starting one to all its processes
# being ready (the batch logs these; see bench/batch_throughput.py).
_stats = {"pools_started": 0, "start_s": 0.0}


def stats() -> dict[str, float]:
    with _lock:
        return dict(_stats)


def pool_size(requested: int | None) -> int:
    """Render processes for a run: what it asks for, capped by this worker's ceiling.

    The ceiling is the worker's REPORTRUNNER_MAX_PARALLEL (default: its cores), so a
    run asking for 12 processes on a 2-core worker gets 2: a run request must not be
    able to overload the host that picks it up.
    """
    ceiling = get_settings().max_parallel
    return ceiling if requested is None else max(1, min(requested, ceiling))


def warm_up(size: int) -> None:
    """Start the render processes now, without waiting for them."""
    with _lock:
        new = _pool is None or _pool_size != size or getattr(_pool, "_broken", False)
    pool = _pool_for(size)
    started, left = time.perf_counter(), [size]

    def one_ready(_future: Future) -> None:
        with _lock:
            left[0] -= 1
            if new and left[0] == 0:
                _stats["start_s"] += time.perf_counter() - started

    for _ in range(size):
        pool.submit(jobs.ready).add_done_callback(one_ready)


def _pool_for(size: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != size or getattr(_pool, "_broken", False):
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            # Read by Arrow at import, so it must be in the environment the processes
            # start with (see reports.limits.limit_this_process for why).
            os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
            _stats["pools_started"] += 1
            # spawn, not fork: the flow process runs Prefect's threads and event loops.
            _pool = ProcessPoolExecutor(
                max_workers=size,
                mp_context=jobs.RenderProcessContext(),
                initializer=jobs.start_render_process,
                initargs=(get_settings().render_memory_mb, os.getpid()),
            )
            _pool_size = size
        return _pool


def submit(size: int, fn, *args: Any) -> Future:
    """Run `fn(*args)` in the pool; a broken pool (a worker was killed) is replaced."""
    try:
        return _pool_for(size).submit(fn, *args)
    except BrokenProcessPool:
        with _lock:
            global _pool
            _pool = None
        return _pool_for(size).submit(fn, *args)


def shutdown() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None
