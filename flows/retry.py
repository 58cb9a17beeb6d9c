"""Retry policy for every task: transient errors back off and retry; user errors fail at once."""

from __future__ import annotations

import random

from prefect.tasks import exponential_backoff

from reports import ReportError

RETRIES = 3
BACKOFF_FACTOR = 2  # delays of about 2, 4 and 8 s
JITTER_FACTOR = 0.5  # each spread by up to ±50 % so retries do not stampede


def is_transient(error: BaseException) -> bool:
    """Could the same call succeed later? Not for a ReportError: the input is wrong."""
    return not isinstance(error, ReportError)


def retry_transient_only(task, task_run, state) -> bool:
    """Prefect retry_condition_fn: False for errors that retrying cannot fix."""
    try:
        state.result()
    except BaseException as error:
        return is_transient(error)
    return True


def retry_delay_s(attempt: int) -> float:
    """The pause after failed attempt 1, 2, … — the same curve as the task retries."""
    base = BACKOFF_FACTOR * 2 ** (attempt - 1)
    return base * random.uniform(1 - JITTER_FACTOR, 1 + JITTER_FACTOR)


TASK_RETRY_OPTIONS = {
    "retries": RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=BACKOFF_FACTOR),
    "retry_jitter_factor": JITTER_FACTOR,
    "retry_condition_fn": retry_transient_only,
}
