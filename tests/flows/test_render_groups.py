"""Render groups: their failure carries every item's outcome; item retries back off."""

from __future__ import annotations

import pickle

import pytest

from flows.chunk_flow import ItemsFailed, _task_name
from flows.retry import BACKOFF_FACTOR, JITTER_FACTOR, RETRIES, is_transient, retry_delay_s
from reports import DataError
from reports.contracts import Outcome

OUTCOMES = [
    Outcome("carrier=AA month=2013-01", {"carrier": "AA", "month": "2013-01"}, "rendered"),
    Outcome.failed({"carrier": "ZZ", "month": "2013-01"}, "no ZZ"),
    Outcome.failed({"carrier": "ZZ", "month": "2013-02"}, "no ZZ"),
]


def test_items_failed_names_the_count_and_the_first_failure():
    assert str(ItemsFailed(OUTCOMES)) == (
        "2 of 3 items failed; first: carrier=ZZ month=2013-01: no ZZ"
    )


def test_items_failed_keeps_its_outcomes_when_copied():
    # Prefect may copy a task's exception; the batch reads the outcomes from it.
    copied = pickle.loads(pickle.dumps(ItemsFailed(OUTCOMES)))
    assert copied.outcomes == OUTCOMES
    assert str(copied) == str(ItemsFailed(OUTCOMES))


def test_task_names_show_the_first_and_last_item_and_the_count():
    items = [{"carrier": "AA", "month": m} for m in ("2013-01", "2013-02", "2013-03")]
    assert _task_name(items[:1]) == "render carrier=AA month=2013-01"
    assert _task_name(items) == (
        "render carrier=AA month=2013-01 … carrier=AA month=2013-03 (3 items)"
    )


@pytest.mark.parametrize("attempt", range(1, RETRIES + 1))
def test_item_retry_delays_follow_the_task_backoff_with_jitter(attempt):
    base = BACKOFF_FACTOR * 2 ** (attempt - 1)  # 2, 4, 8 s
    delays = [retry_delay_s(attempt) for _ in range(200)]
    assert all(base * (1 - JITTER_FACTOR) <= d <= base * (1 + JITTER_FACTOR) for d in delays)
    assert max(delays) - min(delays) > base * JITTER_FACTOR  # spread, not one fixed value


def test_only_errors_outside_the_report_are_retried():
    assert is_transient(ConnectionError("database unreachable"))
    assert not is_transient(DataError("carrier-monthly: no rows"))
