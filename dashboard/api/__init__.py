"""The one module that talks to the Prefect API for the dashboard.

    with connect() as api:                 # one per refresh; api.calls counts requests
        data = overview(api, Window.last())
        page = runs_page(api, RunQuery(search="carrier=AA", limit=50))
        detail = run_detail(api, run_id)

Counts and aggregates come from the server (run counts, run history); lists are
read in pages of at most 200; a refresh costs a bounded number of calls. Every
failure leaves as `ApiUnavailable` with a one-line message. Outputs are read from
the output store's manifests, not from Prefect (`list_outputs`, `find_output`).
"""

from dashboard.api._batches import failed_items
from dashboard.api._detail import (
    MAX_DETAIL_CALLS,
    ArtifactView,
    LogLine,
    RunDetail,
    RunHeader,
    RunIdError,
    parse_run_id,
    run_detail,
)
from dashboard.api._insights import SLOW_FACTOR, SLOW_MIN_EXCESS_S, SLOW_MIN_RUNS
from dashboard.api._launch import (
    CreatedRun,
    LaunchableReport,
    LaunchTarget,
    RunRefused,
    create_run,
    launchable_reports,
)
from dashboard.api._models import (
    ActiveBatches,
    BatchProgress,
    FailureGroup,
    FailureSpike,
    FilterChoices,
    Health,
    HistoryBucket,
    Insights,
    Kpis,
    Overview,
    PoolHealth,
    ReportDuration,
    RunQuery,
    RunRow,
    RunSample,
    RunsPage,
    SlowRun,
    Window,
    WindowStats,
)
from dashboard.api._operations import (
    EVENT_PREFIX,
    AuditEntry,
    DeploymentRow,
    Operations,
    PoolRow,
    QueueRow,
    ScheduleRow,
    WorkerRow,
    operations,
    read_audit,
)
from dashboard.api._outputs import (
    Output,
    OutputFile,
    OutputLookupError,
    find_output,
    list_outputs,
    read_output_file,
)
from dashboard.api._overview import (
    MAX_CALLS,
    OverviewReads,
    active_batches,
    finish_overview,
    health,
    kpis,
    overview,
    run_history,
    start_overview,
)
from dashboard.api._progress import ParsedProgress, parse_progress
from dashboard.api._runs import filter_choices, runs_page
from prefect_api import (  # the run history and its spike rule are shared with the alerts
    SPIKE_FACTOR,
    SPIKE_MIN_FAILED,
    Api,
    ApiConfig,
    ApiUnavailable,
    connect,
    one_line,
)

__all__ = [
    "EVENT_PREFIX",
    "MAX_CALLS",
    "MAX_DETAIL_CALLS",
    "SLOW_FACTOR",
    "SLOW_MIN_EXCESS_S",
    "SLOW_MIN_RUNS",
    "SPIKE_FACTOR",
    "SPIKE_MIN_FAILED",
    "ActiveBatches",
    "Api",
    "ApiConfig",
    "ApiUnavailable",
    "ArtifactView",
    "AuditEntry",
    "BatchProgress",
    "CreatedRun",
    "DeploymentRow",
    "FailureGroup",
    "FailureSpike",
    "FilterChoices",
    "Health",
    "HistoryBucket",
    "Insights",
    "Kpis",
    "LaunchTarget",
    "LaunchableReport",
    "LogLine",
    "Operations",
    "Output",
    "OutputFile",
    "OutputLookupError",
    "Overview",
    "OverviewReads",
    "ParsedProgress",
    "PoolHealth",
    "PoolRow",
    "QueueRow",
    "ReportDuration",
    "RunDetail",
    "RunHeader",
    "RunIdError",
    "RunQuery",
    "RunRefused",
    "RunRow",
    "RunSample",
    "RunsPage",
    "ScheduleRow",
    "SlowRun",
    "Window",
    "WindowStats",
    "WorkerRow",
    "active_batches",
    "connect",
    "create_run",
    "failed_items",
    "filter_choices",
    "find_output",
    "finish_overview",
    "health",
    "kpis",
    "launchable_reports",
    "list_outputs",
    "one_line",
    "operations",
    "overview",
    "parse_progress",
    "parse_run_id",
    "read_audit",
    "read_output_file",
    "run_detail",
    "run_history",
    "runs_page",
    "start_overview",
]
