"""The one layer that reads and acts on the Prefect API.

The dashboard's queries, `reportrunner status`, `deploy`, the local stack, the
metrics and the alert checks all go through it:

    with connect() as api:                  # one per page refresh, command or scrape
        count, examples = late_runs(api, cutoff, examples=5)
        print(api.calls)                    # every HTTP request is counted

It never starts Prefect's ephemeral server, turns every failure into `ApiUnavailable`
with a one-line message without credentials, and takes an httpx transport
(`ApiConfig(transport=httpx.MockTransport(...))`) so that query logic is tested
without a server.
"""

from prefect_api import _actions as actions
from prefect_api._connection import (
    AUTH_HINT,
    Api,
    ApiConfig,
    ApiUnavailable,
    connect,
    describe,
    one_line,
    safe_url,
)
from prefect_api._history import (
    SPIKE_FACTOR,
    SPIKE_MIN_FAILED,
    FailureSpike,
    HistoryBucket,
    Window,
    failure_spikes,
    run_history,
)
from prefect_api._infrastructure import (
    needs_worker,
    pool_status,
    read_pools,
    read_queues,
    read_workers,
)
from prefect_api._runs import (
    count_and_examples,
    failed_filter,
    failed_runs,
    flow_names,
    late_filter,
    late_runs,
)
from prefect_api._values import iso, utc, word

__all__ = [
    "AUTH_HINT",
    "SPIKE_FACTOR",
    "SPIKE_MIN_FAILED",
    "Api",
    "ApiConfig",
    "ApiUnavailable",
    "FailureSpike",
    "HistoryBucket",
    "Window",
    "actions",
    "connect",
    "count_and_examples",
    "describe",
    "failed_filter",
    "failed_runs",
    "failure_spikes",
    "flow_names",
    "iso",
    "late_filter",
    "late_runs",
    "needs_worker",
    "one_line",
    "pool_status",
    "read_pools",
    "read_queues",
    "read_workers",
    "run_history",
    "safe_url",
    "utc",
    "word",
]
