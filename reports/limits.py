"""Time and memory limits for one render, so a pathological template cannot hang a worker.

Used inside dedicated render processes: the memory cap applies to the whole
process (RLIMIT_AS) and the timer needs the main thread (SIGALRM).
"""

from __future__ import annotations

import os
import resource
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from reports.errors import RenderLimitError


def limit_this_process(megabytes: int) -> None:
    """Make this process a render process: cap its memory, before any render starts.

    Arrow's default allocator reserves about 1 GB of address space on the first
    Parquet read, used or not, and the cap (RLIMIT_AS) counts address space: renders
    failed under a 2 GB cap with memory they never used. The system allocator
    reserves only what it hands out. Arrow reads the variable when it is imported,
    so call this before importing pandas' Parquet reader (spawned render processes
    inherit it from `flows.render_pool`).
    """
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    cap_process_memory(megabytes)


@contextmanager
def render_limits(what: str, *, seconds: float, megabytes: int) -> Iterator[None]:
    """One render under the time limit, with running out of memory as a one-line error."""
    with memory_guard(what, megabytes), time_limit(seconds, what):
        yield


def cap_process_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise RenderLimitError in this (main) thread after `seconds`; a no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expired(signum, frame):
        raise RenderLimitError(f"{what}: render took longer than {seconds:g} s and was stopped")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def memory_guard(what: str, megabytes: int) -> Iterator[None]:
    try:
        yield
    except MemoryError:
        raise RenderLimitError(
            f"{what}: render needed more than the {megabytes} MB memory cap"
        ) from None
