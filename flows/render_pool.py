"""A long-lived pool of render processes shared by every batch in this process.

What runs inside the processes is `reports.jobs` (no Prefect there, so a render
process starts without importing Prefect).

PDF rendering is CPU-bound, so threads do not help; but Prefect tasks on a
process task runner cost ~100 ms of server CPU each (see docs/BENCHMARKS.md).
So item tasks stay on cheap threads and hand the rendering to these processes,
which keep fonts, parsed CSS and data warm between items.

A new render process spends about 1.4 s of CPU importing pandas, WeasyPrint and
matplotlib and on its first render, while nothing renders. In a flow run started warm
(`flows.warm_start`), render processes are instead forked by a fork server that the
warm process started once and that has done all of that (`reports.render_preload`);
elsewhere (a cold start, the CLI, tests calling flows directly) they are spawned.
"""

from __future__ import annotations

import logging
import multiprocessing.context
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from reports import get_settings, jobs

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
# How render processes start: spawned, or forked by the warm process's fork server.
_context: multiprocessing.context.BaseContext = jobs.RenderProcessContext()
# Modules the fork server imports before it forks anything (the last one warms up).
FORKSERVER_PRELOAD = ("reports.jobs", "reports.render_preload")
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
    started, left = time.perf_counter(), [size]

    def one_ready(_future: Future) -> None:
        with _lock:
            left[0] -= 1
            if new and left[0] == 0:
                _stats["start_s"] += time.perf_counter() - started

    for _ in range(size):
        _submit(size, jobs.ready).add_done_callback(one_ready)


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
            # Never a plain fork: the flow process runs Prefect's threads and event loops.
            _pool = ProcessPoolExecutor(
                max_workers=size,
                mp_context=_context,
                initializer=jobs.start_render_process,
                initargs=(get_settings().render_memory_mb, os.getpid(), _settings_environment()),
            )
            _pool_size = size
        return _pool


def _settings_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("REPORTRUNNER_")}


def submit(size: int, fn, *args: Any) -> Future:
    """Run `fn(*args)` in the pool; a broken pool (a worker was killed) is replaced."""
    try:
        return _submit(size, fn, *args)
    except BrokenProcessPool:
        with _lock:
            global _pool
            _pool = None
        return _submit(size, fn, *args)


def _submit(size: int, fn, *args: Any) -> Future:
    try:
        return _pool_for(size).submit(fn, *args)
    except OSError as error:  # the fork server is gone: spawn from now on
        if not isinstance(_context, jobs.RenderForkContext):
            raise
        log.warning("render fork server unreachable (%s): spawning render processes", error)
        _use(jobs.RenderProcessContext())
        return _pool_for(size).submit(fn, *args)


def _use(context: multiprocessing.context.BaseContext) -> None:
    global _context, _pool
    with _lock:
        _context = context
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None


def start_forkserver() -> bool:
    """In the warm process, before it forks flow runs: start the render fork server.

    It imports and warms up what a render needs once (`FORKSERVER_PRELOAD`). Flow runs
    forked from the warm process inherit its address and call `adopt_forkserver`. It
    ends when the warm process and every flow run forked from it have ended.
    """
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(list(FORKSERVER_PRELOAD))
    # Arrow reads this at import (see _pool_for); only the server's environment gets it,
    # so that flow runs still compare equal to the worker's (warm_start._cold_reason).
    before = os.environ.get("ARROW_DEFAULT_MEMORY_POOL")
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    try:
        forkserver.ensure_running()
        return True
    except OSError as error:
        log.warning("render fork server not started (%s): render processes spawn", error)
        return False
    finally:
        if before is None:
            os.environ.pop("ARROW_DEFAULT_MEMORY_POOL")
        else:
            os.environ["ARROW_DEFAULT_MEMORY_POOL"] = before


def adopt_forkserver() -> None:
    """In a flow run forked from the warm process: fork render processes from its server.

    The server is the warm process's child, not ours, so the standard library's check
    that it still runs (a `waitpid`) cannot work here: only the resource tracker is
    checked, and a server that has gone is found when a process fails to start (`_submit`).
    """
    from multiprocessing import forkserver, resource_tracker

    server = forkserver._forkserver
    if server._forkserver_address is None:
        return
    server.ensure_running = resource_tracker.ensure_running
    _use(jobs.RenderForkContext())


def shutdown() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None
