"""The dashboard's answers shared across sessions (`dashboard.components.shared`).

Threads stand in for sessions: the store is process-wide, which is the point of it.
"""

from __future__ import annotations

import threading
import time

import pytest
import streamlit as st

from dashboard.components import shared


@pytest.fixture(autouse=True)
def _empty_store():
    st.cache_data.clear()  # a new generation: nothing from other tests
    yield
    st.cache_data.clear()


class Reads:
    """A read that counts its calls, and can be held open until released."""

    def __init__(self, hold: bool = False) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self) -> int:
        self.calls += 1
        self.started.set()
        self.release.wait(10)
        return self.calls


def test_an_answer_is_shared_within_the_age_and_read_again_after_it():
    read = Reads()
    assert shared.fresh("runs", 5, read) == 1
    assert shared.fresh("runs", 5, read) == 1  # another session, within 5 s
    assert shared.fresh("runs", 0, read) == 2  # a viewer who accepts nothing older than now
    assert read.calls == 2


def test_sessions_asking_during_a_read_wait_for_it_instead_of_asking_again():
    read = Reads(hold=True)
    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(shared.fresh("q", 5, read)))
    first.start()
    assert read.started.wait(5)
    second = threading.Thread(target=lambda: answers.append(shared.fresh("q", 5, read)))
    second.start()
    time.sleep(0.2)  # the second session is waiting now (it has nothing to return yet)
    assert answers == []
    read.release.set()
    first.join(5)
    second.join(5)
    assert answers == [1, 1] and read.calls == 1


def test_a_failed_read_is_not_kept():
    calls = []

    def failing() -> int:
        calls.append(1)
        raise ConnectionError("API down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            shared.fresh("health", 5, failing)
    assert len(calls) == 2  # an outage shows at once, on every load
    assert shared.fresh("health", 5, lambda: "up") == "up"


def test_an_action_drops_every_answer_and_the_reads_under_way():
    read = Reads(hold=True)
    answers: list[int] = []
    reader = threading.Thread(target=lambda: answers.append(shared.fresh("q", 5, read)))
    reader.start()
    assert read.started.wait(5)
    shared.forget()  # an action while the read is answered: its answer predates the action
    read.release.set()
    reader.join(5)
    assert answers == [1]
    assert shared.fresh("q", 5, read) == 2  # read again, after the action


def test_clearing_streamlits_caches_clears_the_store():
    shared.put("k", "old", shared.now())
    assert shared.peek("k", 5) == "old"
    st.cache_data.clear()
    assert shared.peek("k", 5) is None
