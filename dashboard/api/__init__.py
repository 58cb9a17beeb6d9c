"""The one module that talks to the Prefect API for the dashboard.

    with connect() as api:                 # one per refresh; api.calls counts requests
        data = overview(api, Window.last())
        page = runs_page(api, RunQuery(search="carrier=AA", limit=50))

Counts and aggregates come from the server (run counts, run history); lists are
read in pages of at most 200; a refresh costs a bounded number of calls. Every
failure leaves as `ApiUnavailable` with a one-line message.
"""

from dashboard.api._connection import Api, ApiConfig, ApiUnavailable, connect
from dashboard.api._models import (
    ActiveBatches,
    BatchProgress,
    FilterChoices,
    Health,
    HistoryBucket,
    Kpis,
    Overview,
    PoolHealth,
    RunQuery,
    RunRow,
    RunsPage,
    Window,
    WindowStats,
)
from dashboard.api._overview import (
    MAX_CALLS,
    active_batches,
    health,
    kpis,
    overview,
    run_history,
)
from dashboard.api._progress import ParsedProgress, parse_progress
from dashboard.api._runs import filter_choices, runs_page

__all__ = [
    "MAX_CALLS",
    "ActiveBatches",
    "Api",
    "ApiConfig",
    "ApiUnavailable",
    "BatchProgress",
    "FilterChoices",
    "Health",
    "HistoryBucket",
    "Kpis",
    "Overview",
    "ParsedProgress",
    "PoolHealth",
    "RunQuery",
    "RunRow",
    "RunsPage",
    "Window",
    "WindowStats",
    "active_batches",
    "connect",
    "filter_choices",
    "health",
    "kpis",
    "overview",
    "parse_progress",
    "run_history",
    "runs_page",
]
