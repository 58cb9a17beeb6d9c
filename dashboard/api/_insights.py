"""What the overview reads between the lines: run time by report, slow runs, failure spikes,
failures grouped by error signature.

The reads reuse the overview's samples (the latest ≤ 200 completed and ≤ 200 failed runs
of the window, and the run history already fetched); the rest is pure functions over
them, so the rules below are tested on constructed data:

- slow run: more than `SLOW_FACTOR` × its report's median in the sample, at least
  `SLOW_MIN_EXCESS_S` above it, for reports with at least `SLOW_MIN_RUNS` runs;
- failure spike: a bucket of this window with at least `SPIKE_MIN_FAILED` failed runs
  and at least `SPIKE_FACTOR` × the median failed runs per bucket of both windows
  (`prefect_api.failure_spikes`, which the alert checks share);
- error signature: the state message with values (numbers, ids, quoted values, paths,
  URLs, times, `key=value` values) replaced by placeholders.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard.api._models import (
    FailureGroup,
    HistoryBucket,
    Insights,
    ReportDuration,
    RunSample,
    SlowRun,
    Window,
)
from prefect_api import Api, failure_spikes, one_line, utc, word  # spikes: shared with alerts
from reports.contracts import BATCH_FLOW, CHUNK_FLOW, REPORT_FLOW, run_name

PAGE = 200  # the API's largest page
KINDS = {REPORT_FLOW: "single", BATCH_FLOW: "batch", CHUNK_FLOW: "chunk"}  # by flow
SLOW_FACTOR = 3.0
SLOW_MIN_RUNS = 5
SLOW_MIN_EXCESS_S = 1.0  # sub-second differences are scheduling noise, not slowness
SIGNATURE_CHARS = 200
NO_MESSAGE = "(no message)"

COMPLETED = ("COMPLETED",)
FAILED = ("FAILED", "CRASHED")

# Order matters: whole URLs and quoted values first, so their insides are not rewritten.
_VALUE_PATTERNS = [
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+"), "<url>"),
    (re.compile(r"(?<!\w)'[^'\n]*'(?!\w)"), "'<value>'"),
    (re.compile(r'(?<!\w)"[^"\n]*"(?!\w)'), '"<value>"'),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<id>",
    ),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}\b"), "<id>"),
    (re.compile(r"(?<![\w.<>/])(?:~|\.{1,2})?(?:/[\w.@%+-]+)+/?"), "<path>"),
    (re.compile(r"\b[A-Za-z]:\\[^\s'\",;]+"), "<path>"),
    (
        re.compile(
            r"\b\d{4}-\d{2}(?:-\d{2})?(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?\b"
        ),
        "<time>",
    ),
    (re.compile(r"\b([A-Za-z_][\w-]*)=(?!<)[^\s,;:()]+"), r"\1=<value>"),
    (re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:ms|s|min|h|[kKMG]i?B|%)?\b"), "<n>"),
]


def signature(message: str | None) -> str:
    """The message with its values replaced: runs that failed the same way share it."""
    text = one_line(message, limit=10_000)
    if not text:
        return NO_MESSAGE
    for pattern, placeholder in _VALUE_PATTERNS:
        text = pattern.sub(placeholder, text)
    return one_line(text, limit=SIGNATURE_CHARS) or NO_MESSAGE


def report_label(flow: str | None, parameters: dict[str, Any] | None) -> str:
    """The report and the kind of run: 'carrier-monthly · single', 'carrier-monthly · batch',
    'carrier-monthly · chunk' (a batch and its chunks take far longer than one report);
    the flow's name for runs of other flows."""
    report = (parameters or {}).get("report")
    if isinstance(report, str) and report:
        return f"{report} · {KINDS.get(flow, flow)}" if flow else report
    return flow or "unknown flow"


def report_durations(samples: Iterable[RunSample]) -> list[ReportDuration]:
    """Median, 90th percentile and maximum run time per report; slowest median first."""
    result = [
        ReportDuration(
            report=report,
            runs=len(seconds),
            median_s=statistics.median(seconds),
            p90_s=_p90(seconds),
            max_s=max(seconds),
        )
        for report, seconds in _durations_by_report(samples).items()
    ]
    return sorted(result, key=lambda d: (-d.median_s, d.report))


def slow_runs(samples: Iterable[RunSample]) -> list[SlowRun]:
    """Completed runs far slower than their report's median; slowest relative first."""
    samples = [s for s in samples if s.state_type == "COMPLETED" and s.duration_s is not None]
    by_report = _durations_by_report(samples)
    medians = {r: statistics.median(d) for r, d in by_report.items() if len(d) >= SLOW_MIN_RUNS}
    slow = [
        SlowRun(
            run_id=s.id,
            name=s.name,
            report=s.report,
            duration_s=s.duration_s,
            report_median_s=medians[s.report],
        )
        for s in samples
        if s.report in medians
        and s.duration_s is not None
        and s.duration_s > SLOW_FACTOR * medians[s.report]
        and s.duration_s - medians[s.report] >= SLOW_MIN_EXCESS_S
    ]
    return sorted(slow, key=lambda r: (-r.ratio, r.run_id))


def failure_groups(samples: Iterable[RunSample]) -> list[FailureGroup]:
    """Failed runs grouped by `signature`: largest group first, then the most recent."""
    members: dict[str, list[RunSample]] = {}
    for sample in samples:
        members.setdefault(signature(sample.message), []).append(sample)
    groups = []
    for sig, runs in members.items():
        runs.sort(key=lambda s: s.finished_at or _EPOCH, reverse=True)
        groups.append(
            FailureGroup(
                signature=sig,
                count=len(runs),
                example=one_line(runs[0].message) or NO_MESSAGE,
                reports=sorted({s.report for s in runs}),
                run_ids=[s.id for s in runs],
                latest=runs[0].finished_at,
                retryable_ids=[s.id for s in runs if s.from_deployment],
                run_names=[s.name for s in runs],
            )
        )
    return sorted(groups, key=lambda g: (-g.count, -(g.latest or _EPOCH).timestamp()))


def insights(
    history: list[HistoryBucket],
    window: Window,
    completed: list[RunSample],
    failed: list[RunSample],
) -> Insights:
    return Insights(
        durations=report_durations(completed),
        slow_runs=slow_runs(completed),
        spikes=failure_spikes(history, window),
        failure_groups=failure_groups(failed),
        completed_sample=len(completed),
        failed_sample=len(failed),
    )


# ---- reads --------------------------------------------------------------------------


def latest_finished(api: Api, window: Window, state_types: tuple[str, ...], what: str) -> list:
    """The latest ≤ 200 flow runs of the window in these state types (one call)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    flow_runs = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(state_types))),
        expected_start_time=FlowRunFilterExpectedStartTime(
            after_=window.start, before_=window.end - timedelta(microseconds=1)
        ),
    )
    with api.guard(what):
        return api.client.read_flow_runs(
            flow_run_filter=flow_runs, sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=PAGE
        )


def samples(api: Api, runs: list) -> list[RunSample]:
    """Runs as samples labelled by report; the flows' names cost one call for all of them."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterId

    flow_ids = list({run.flow_id for run in runs})
    names: dict[Any, str] = {}
    if flow_ids:
        with api.guard("flow names"):
            flows = api.client.read_flows(
                flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)), limit=PAGE
            )
        names = {f.id: f.name for f in flows}
    return [
        RunSample(
            id=str(run.id),
            # What people call the run, even if it failed before its flow renamed it.
            name=run_name(names.get(run.flow_id), run.parameters) or run.name,
            report=report_label(names.get(run.flow_id), run.parameters),
            state_type=word(run.state_type) or "UNKNOWN",
            duration_s=run.estimated_run_time.total_seconds()
            if run.estimated_run_time is not None
            else None,
            message=run.state.message if run.state else None,
            finished_at=utc(run.end_time or run.expected_start_time),
            from_deployment=run.deployment_id is not None,
        )
        for run in runs
    ]


# ---- helpers --------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _durations_by_report(samples: Iterable[RunSample]) -> dict[str, list[float]]:
    by_report: dict[str, list[float]] = {}
    for sample in samples:
        if sample.state_type == "COMPLETED" and sample.duration_s is not None:
            by_report.setdefault(sample.report, []).append(sample.duration_s)
    return by_report


def _p90(values: list[float]) -> float:
    """The 90th percentile, interpolated between the sample's values."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]
