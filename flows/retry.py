"""Retry policy for every task: transient errors back off and retry; user errors fail at once."""

from __future__ import annotations

from prefect.tasks import exponential_backoff

from reports import ReportError

RETRIES = 3


def retry_transient_only(task, task_run, state) -> bool:
    """Prefect retry_condition_fn: False for errors that retrying cannot fix."""
    try:
        state.result()
    except ReportError:
        return False
    except BaseException:
        return True
    return True


# Delays of about 2, 4 and 8 s, each spread by up to ±50% so retries do not stampede.
TASK_RETRY_OPTIONS = {
    "retries": RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_transient_only,
}
