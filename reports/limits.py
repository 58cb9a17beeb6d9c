"""Time and memory limits for one render, so a pathological template cannot hang a worker.

Used inside dedicated render processes: the memory cap applies to the whole
process (RLIMIT_AS) and the timer needs the main thread (SIGALRM).
"""

from __future__ import annotations

import resource
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from reports.errors import RenderLimitError


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
