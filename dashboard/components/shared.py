"""Reads shared by every session for at most the viewer's refresh interval.

Several people watching a page, or one person opening it again, ask the Prefect API
and the item index the same questions within seconds. `fresh(key, max_age_s, read)`
answers from one process-wide store when the last answer to `key` was read at most
`max_age_s` ago, and otherwise reads once: sessions that ask while that read is under
way wait for it instead of asking again. A viewer passes their own refresh interval
(`max_age()`), so nobody sees figures older than the interval they chose; a failed
read is not kept, so an API outage shows at once.

Values are shared, not copied: pages never change what they get. An action drops the
whole store (`forget()`), so whatever a page shows after it was read after it. The
store also empties whenever Streamlit's data caches are cleared (`st.cache_data.clear()`):
entries carry a generation token kept in `st.cache_data`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

import streamlit as st

from dashboard import controls

T = TypeVar("T")
KEEP_S = max(controls.REFRESH_SECONDS)  # nobody accepts older answers: drop them
MAX_ENTRIES = 256

_lock = threading.Lock()
_entries: dict[Hashable, tuple[float, Any]] = {}  # key → (read started, value)
_reading: dict[Hashable, tuple[float, Future]] = {}  # key → (read started, its answer)
_forgotten = [0.0]  # when `forget()` last ran: answers read before it are not kept


@st.cache_data(show_spinner=False)
def _generation() -> str:
    """A new token after every `st.cache_data.clear()`: the store follows Streamlit's."""
    return uuid.uuid4().hex


def now() -> float:
    """The clock of `put`'s `read_at`."""
    return time.monotonic()


def max_age() -> float:
    """How old an answer this viewer accepts: their refresh interval."""
    return float(controls.current().refresh_s)


def fresh(key: Hashable, max_age_s: float, read: Callable[[], T]) -> T:
    """`read()`'s answer for `key`, read at most `max_age_s` ago by any session."""
    full = (_generation(), key)
    with _lock:
        now_ = time.monotonic()
        found = _entries.get(full)
        if found is not None and now_ - found[0] <= max_age_s:
            return found[1]
        pending = _reading.get(full)
        if pending is not None and now_ - pending[0] <= max_age_s:
            shared = pending[1]
        else:
            shared = None
            mine: Future = Future()
            _reading[full] = (now_, mine)
    if shared is not None:
        return shared.result()  # the same question is being read: share its answer
    started = now_
    try:
        value = read()
    except BaseException as exc:
        _done(full, mine)
        mine.set_exception(exc)
        raise
    _keep(full, started, value)
    _done(full, mine)
    mine.set_result(value)
    return value


def _done(full: Hashable, mine: Future) -> None:
    with _lock:
        if _reading.get(full, (0.0, None))[1] is mine:
            del _reading[full]


def peek(key: Hashable, max_age_s: float) -> Any | None:
    """The answer for `key` if one was read at most `max_age_s` ago; else None."""
    with _lock:
        found = _entries.get((_generation(), key))
    if found is not None and time.monotonic() - found[0] <= max_age_s:
        return found[1]
    return None


def put(key: Hashable, value: Any, read_at: float) -> None:
    """Keep `value` as the answer for `key`, read at `read_at` (`time.monotonic()`)."""
    _keep((_generation(), key), read_at, value)


def forget() -> None:
    """After an action: every page reads again (reads under way are not kept)."""
    with _lock:
        _entries.clear()
        _reading.clear()
        _forgotten[0] = time.monotonic()


def _keep(full: Hashable, read_at: float, value: Any) -> None:
    with _lock:
        if read_at < _forgotten[0]:  # read before an action: not what the pages show now
            return
        now = time.monotonic()
        for old in [k for k, (at, _) in _entries.items() if now - at > KEEP_S]:
            del _entries[old]
        _entries.pop(full, None)
        while len(_entries) >= MAX_ENTRIES:  # the oldest first (dicts keep insertion order)
            del _entries[next(iter(_entries))]
        _entries[full] = (read_at, value)
