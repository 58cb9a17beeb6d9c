"""A long-lived pool of render processes shared by every batch in this process.

PDF rendering is CPU-bound, so threads do not help; but Prefect tasks on a
process task runner cost ~100 ms of server CPU each (see docs/BENCHMARKS.md).
So item tasks stay on cheap threads and hand the rendering to these processes,
which keep fonts, parsed CSS and data warm between items.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from reports import OutputStore, get_settings
from reports.catalog import default_catalog
from reports.limits import cap_process_memory, memory_guard, time_limit
from reports.render import fingerprint, is_current, load_data, render_report

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def _start_worker(memory_mb: int) -> None:
    cap_process_memory(memory_mb)


def _pool_for(size: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != size or getattr(_pool, "_broken", False):
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            # spawn, not fork: the flow process runs Prefect's threads and event loops.
            _pool = ProcessPoolExecutor(
                max_workers=size,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(get_settings().render_memory_mb,),
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


# ---- functions that run inside the render processes ---------------------------------


def is_item_current(report_name: str, params: dict[str, Any], output_url: str) -> bool:
    """True when the item's outputs exist and were made from the same inputs."""
    try:
        report = default_catalog().get(report_name)
        typed = report.validate(params)
        data = load_data(report, typed)
        return (
            is_current(OutputStore(output_url), report, typed, fingerprint(report, typed, data))
            is not None
        )
    except Exception:
        return False  # anything odd: let the render step decide and report it


def render_item(
    report_name: str, params: dict[str, Any], output_url: str, force: bool
) -> dict[str, Any]:
    """Render one item under the time and memory caps; return a small outcome record."""
    settings = get_settings()
    started = time.perf_counter()
    what = f"{report_name} {' '.join(f'{k}={v}' for k, v in params.items())}"
    with memory_guard(what, settings.render_memory_mb), time_limit(settings.render_timeout_s, what):
        manifest = render_report(
            default_catalog().get(report_name),
            params,
            OutputStore(output_url),
            skip_unchanged=not force,
        )
    return {
        "status": "skipped" if manifest["skipped"] else "rendered",
        "duration_s": round(time.perf_counter() - started, 3),
        "pages": manifest.get("pages"),
        "item_dir": manifest["item_dir"],
        "quality": manifest["quality"]["status"],
        "files": [entry["path"] for entry in manifest["files"]],
    }
