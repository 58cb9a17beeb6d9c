"""One flow run in depth, for the run detail page: header, tasks, subflows, logs, artifacts.

API calls per `run_detail()`, whatever the size of the run (see `MAX_DETAIL_CALLS`):
1 CSRF token, 1 flow run, 1 flow, ≤ 1 deployment, ≤ 1 parent task run (a subflow's
batch), 2 task runs (count and first page), 3 subflows (count, first page, their task
counts), 2 logs (errors, then the rest), 1 artifacts. Lists stop at one page of 200
and say how many there were.

The reads run side by side where they can: the flow, deployment and parent after the
flow run; the task-run count first among the POSTs (it fetches the CSRF token the
others share), then tasks, subflows, logs and artifacts together. A refresh takes
about four round trips, not thirteen.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from dashboard.api._models import BatchProgress
from dashboard.api._progress import batch_progress
from dashboard.api._runs import display_name
from prefect_api import Api, one_line, utc, word
from reports.contracts import deployment_name

PAGE = 200  # the API's largest page
PARALLEL_READS = 4  # tasks, subflows, logs, artifacts
MAX_DETAIL_CALLS = 1 + 1 + 1 + 1 + 1 + 2 + 3 + 2 + 1  # = 13
ERROR = 40  # logging.ERROR: these lines come first
LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
TRACEBACK_MARK = "Traceback (most recent call last)"
_FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
_LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<url>[^)\s]+)\)")


class RunIdError(ValueError):
    """What was given is not a flow run id; the message is one line, safe to show."""


def parse_run_id(text: str | None) -> str:
    """The canonical form of a pasted flow run id, or `RunIdError`."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise RunIdError("No run id given: paste a flow run id, or open a run from the Runs page.")
    try:
        return str(UUID(cleaned))
    except ValueError:
        shown = (one_line(cleaned, 60) or "").replace("`", "'")
        raise RunIdError(
            f"`{shown}` is not a flow run id; ids look like 0c4f6a3e-5b1d-4a8e-9f2a-7d6c5b4a3e21."
        ) from None


@dataclass(frozen=True)
class RunHeader:
    id: str
    name: str  # the business name, even before the flow has renamed the run on start
    flow: str | None
    deployment: str | None  # full name, "report/carrier-monthly"; None: not from a deployment
    state_type: str
    state_name: str
    message: str | None  # the state's message: for a failed run, its one-line error
    expected_start: datetime | None
    start: datetime | None
    end: datetime | None
    duration_s: float | None
    work_pool: str | None
    work_queue: str | None
    tags: tuple[str, ...]
    parameters: dict
    parent_run_id: str | None  # the flow run this one ran inside (a chunk's batch)
    progress: BatchProgress | None  # from the run's latest progress artifact

    @property
    def is_final(self) -> bool:
        return self.state_type in _FINAL

    @property
    def report(self) -> str | None:
        value = self.parameters.get("report")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class TaskRow:
    id: str
    name: str
    state_type: str
    state_name: str
    run_count: int  # attempts, retries included
    start: datetime | None
    end: datetime | None
    duration_s: float | None


@dataclass(frozen=True)
class SubflowRow:
    id: str
    name: str
    state_type: str
    state_name: str
    start: datetime | None
    end: datetime | None
    duration_s: float | None
    task_count: int


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    level: int
    message: str
    task_run_id: str | None

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, f"LEVEL {self.level}")


@dataclass(frozen=True)
class RunLogs:
    errors: tuple[LogLine, ...]  # ERROR and CRITICAL, newest first
    others: tuple[LogLine, ...]  # below ERROR, at or above the chosen level, newest first
    errors_cut: bool  # a full page: older error lines exist
    others_cut: bool

    @property
    def lines(self) -> tuple[LogLine, ...]:
        """Errors first, then the rest; each part newest first."""
        return self.errors + self.others


@dataclass(frozen=True)
class ArtifactView:
    id: str
    key: str | None
    type: str
    description: str | None
    data: Any  # progress: a number; markdown: text; link: {text, url}; table: a list of rows
    created: datetime | None


@dataclass(frozen=True)
class RunDetail:
    header: RunHeader
    tasks: tuple[TaskRow, ...]
    task_total: int  # counted by the server; more than len(tasks) when cut at a page
    subflows: tuple[SubflowRow, ...]
    subflow_total: int
    logs: RunLogs
    traceback: str | None  # from the run's ERROR logs
    artifacts: tuple[ArtifactView, ...]  # newest first, one per key
    calls: int

    @property
    def task_names(self) -> dict[str, str]:
        return {task.id: task.name for task in self.tasks}

    def artifact(self, type_: str, key_suffix: str = "") -> ArtifactView | None:
        """The newest artifact of a type whose key ends with `key_suffix`."""
        return next(
            (a for a in self.artifacts if a.type == type_ and (a.key or "").endswith(key_suffix)),
            None,
        )


def run_detail(api: Api, run_id: str, min_level: int = 20) -> RunDetail | None:
    """Everything the run detail page shows, or None when no run has this id."""
    header = run_header(api, run_id)
    if header is None:
        return None
    task_total = _task_count(api, run_id)
    with ThreadPoolExecutor(max_workers=PARALLEL_READS) as pool:
        tasks_read = pool.submit(_task_page, api, run_id, task_total)
        subflows_read = pool.submit(subflow_runs, api, run_id)
        logs_read = pool.submit(run_logs, api, run_id, min_level)
        artifacts_read = pool.submit(run_artifacts, api, run_id)
        tasks = tasks_read.result()
        subflows, subflow_total = subflows_read.result()
        logs, artifacts = logs_read.result(), artifacts_read.result()
    progress = next((a for a in artifacts if a.type == "progress"), None)
    if progress is not None:
        header = _with_progress(header, progress)
    return RunDetail(
        header=header,
        tasks=tasks,
        task_total=task_total,
        subflows=subflows,
        subflow_total=subflow_total,
        logs=logs,
        traceback=find_traceback(logs.errors),
        artifacts=artifacts,
        calls=api.calls,
    )


def run_header(api: Api, run_id: str) -> RunHeader | None:
    from prefect.exceptions import ObjectNotFound

    with api.guard("the flow run"):
        try:
            run = api.client.read_flow_run(UUID(run_id))
        except ObjectNotFound:
            return None
        # Three GETs that need only the run: side by side (GETs need no CSRF token).
        with ThreadPoolExecutor(max_workers=3) as pool:
            flow_read = pool.submit(api.client.read_flow, run.flow_id)
            deployment_read = (
                pool.submit(_deployment_name, api, run.deployment_id) if run.deployment_id else None
            )
            parent_read = (
                pool.submit(_parent_run, api, run.parent_task_run_id)
                if run.parent_task_run_id
                else None
            )
            flow = flow_read.result()
            deployment = None
            if deployment_read is not None:
                name = deployment_read.result()
                # Deleted since: the run still shows.
                deployment = deployment_name(flow.name, name) if name else "(deleted deployment)"
            parent = parent_read.result() if parent_read is not None else None
    return RunHeader(
        id=str(run.id),
        name=display_name(run, flow.name),
        flow=flow.name,
        deployment=deployment,
        state_type=word(run.state_type) or "UNKNOWN",
        state_name=run.state_name or word(run.state_type) or "Unknown",
        message=one_line(run.state.message, 500) if run.state else None,
        expected_start=utc(run.expected_start_time),
        start=utc(run.start_time),
        end=utc(run.end_time),
        duration_s=_duration(run.start_time, run.end_time, run.total_run_time),
        work_pool=run.work_pool_name,
        work_queue=run.work_queue_name,
        tags=tuple(run.tags or ()),
        parameters=dict(run.parameters or {}),
        parent_run_id=str(parent) if parent else None,
        progress=None,
    )


def task_runs(api: Api, run_id: str) -> tuple[tuple[TaskRow, ...], int]:
    """The run's own task runs (not its subflows), earliest first: one page and the count."""
    total = _task_count(api, run_id)
    return _task_page(api, run_id, total), total


def _own_tasks(run_id: str) -> tuple[Any, Any]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterSubFlowRuns,
    )

    runs = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)]))
    return runs, TaskRunFilter(subflow_runs=TaskRunFilterSubFlowRuns(exists_=False))


def _task_count(api: Api, run_id: str) -> int:
    """How many task runs the run has of its own (its subflows' not counted)."""
    runs, own = _own_tasks(run_id)
    with api.guard("task runs"):
        return int(
            api.post(
                "/task_runs/count",
                {
                    "flow_runs": runs.model_dump(mode="json", exclude_unset=True),
                    "task_runs": own.model_dump(mode="json", exclude_unset=True),
                },
            )
        )


def _task_page(api: Api, run_id: str, total: int) -> tuple[TaskRow, ...]:
    """The first page of the run's own task runs, earliest first (none read when none)."""
    from prefect.client.schemas.sorting import TaskRunSort

    if not total:
        return ()
    runs, own = _own_tasks(run_id)
    with api.guard("task runs"):
        found = api.client.read_task_runs(
            flow_run_filter=runs,
            task_run_filter=own,
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=PAGE,
        )
    return tuple(
        TaskRow(
            id=str(t.id),
            name=t.name,
            state_type=word(t.state_type) or "UNKNOWN",
            state_name=t.state_name or word(t.state_type) or "Unknown",
            run_count=int(t.run_count or 0),
            start=utc(t.start_time),
            end=utc(t.end_time),
            duration_s=_duration(t.start_time, t.end_time, t.total_run_time),
        )
        for t in found
    )


def _deployment_name(api: Api, deployment_id: Any) -> str | None:
    """The deployment's name; None when it was deleted since the run was made."""
    from prefect.exceptions import ObjectNotFound

    try:
        return api.client.read_deployment(deployment_id).name
    except ObjectNotFound:
        return None


def _parent_run(api: Api, task_run_id: Any) -> Any:
    """The flow run a subflow's parent task run belongs to (None when it is gone)."""
    from prefect.exceptions import ObjectNotFound

    try:
        return api.client.read_task_run(task_run_id).flow_run_id
    except ObjectNotFound:
        return None


def subflow_runs(api: Api, run_id: str) -> tuple[tuple[SubflowRow, ...], int]:
    """Flow runs started inside this one (a batch's chunks), with their task counts."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    children = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(run_id)]))
    with api.guard("subflow runs"):
        total = api.client.count_flow_runs(flow_run_filter=children)
        if not total:
            return (), 0
        found = api.client.read_flow_runs(
            flow_run_filter=children, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=PAGE
        )
        counts = api.post(
            "/ui/flow_runs/count-task-runs", {"flow_run_ids": [str(r.id) for r in found]}
        )
    rows = tuple(
        SubflowRow(
            id=str(r.id),
            name=r.name,
            state_type=word(r.state_type) or "UNKNOWN",
            state_name=r.state_name or word(r.state_type) or "Unknown",
            start=utc(r.start_time),
            end=utc(r.end_time),
            duration_s=_duration(r.start_time, r.end_time, r.total_run_time),
            task_count=int(counts.get(str(r.id), 0)),
        )
        for r in found
    )
    return rows, total


def run_logs(api: Api, run_id: str, min_level: int = 20) -> RunLogs:
    """Error lines first (always), then lines from `min_level` up to warnings; newest first."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
    from prefect.client.schemas.sorting import LogSort

    of_run = LogFilterFlowRunId(any_=[UUID(run_id)])
    with api.guard("logs"):
        errors = api.client.read_logs(
            LogFilter(flow_run_id=of_run, level=LogFilterLevel(ge_=ERROR)),
            limit=PAGE,
            sort=LogSort.TIMESTAMP_DESC,
        )
        others = (
            api.client.read_logs(
                LogFilter(flow_run_id=of_run, level=LogFilterLevel(ge_=min_level, le_=ERROR - 1)),
                limit=PAGE,
                sort=LogSort.TIMESTAMP_DESC,
            )
            if min_level < ERROR
            else []
        )
    return RunLogs(
        errors=tuple(_line(log) for log in errors),
        others=tuple(_line(log) for log in others),
        errors_cut=len(errors) >= PAGE,
        others_cut=len(others) >= PAGE,
    )


def run_artifacts(api: Api, run_id: str) -> tuple[ArtifactView, ...]:
    """The run's artifacts, newest first, keeping only the latest of each key."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort

    with api.guard("artifacts"):
        found = api.client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)])
            ),
            sort=ArtifactSort.UPDATED_DESC,
            limit=PAGE,
        )
    seen: set[str] = set()
    result = []
    for artifact in found:
        if artifact.type in (None, "result"):
            continue  # Prefect's record of where a result is stored: nothing to read there
        if artifact.key:
            if artifact.key in seen:
                continue
            seen.add(artifact.key)
        kind, data = _kind_and_data(artifact.type, artifact.data)
        result.append(
            ArtifactView(
                id=str(artifact.id),
                key=artifact.key,
                type=kind,
                description=artifact.description,
                data=data,
                created=utc(artifact.created),
            )
        )
    return tuple(result)


def find_traceback(errors: tuple[LogLine, ...]) -> str | None:
    """The traceback Prefect logged when the run failed: the flow's own, else a task's."""
    with_traceback = [line for line in errors if TRACEBACK_MARK in line.message]
    flow_level = [line for line in with_traceback if line.task_run_id is None]
    chosen = (flow_level or with_traceback or [None])[0]  # newest first
    if chosen is None:
        return None
    return chosen.message[chosen.message.index(TRACEBACK_MARK) :].rstrip()


def _with_progress(header: RunHeader, artifact: ArtifactView) -> RunHeader:
    progress = batch_progress(
        run_id=header.id,
        name=header.name,
        report=header.report,
        state=header.state_name,
        started_at=header.start,
        ended_at=header.end,
        data=artifact.data,
        description=artifact.description,
    )
    return replace(header, progress=progress)


def _kind_and_data(kind: str, data: Any) -> tuple[str, Any]:
    """Tables arrive as JSON text, links as one markdown link: give both their own shape."""
    if kind == "table" and isinstance(data, str):
        try:
            rows = json.loads(data)
        except ValueError:
            rows = []
        return kind, rows if isinstance(rows, list) else []
    if kind in ("link", "markdown") and isinstance(data, str):
        # Prefect stores a link artifact as the markdown "[text](url)".
        match = _LINK.fullmatch(data.strip())
        if match:
            return "link", {"text": match["text"], "url": match["url"]}
    return kind, data


def _line(log: Any) -> LogLine:
    return LogLine(
        timestamp=utc(log.timestamp) or datetime.now(UTC),
        level=int(log.level),
        message=str(log.message),
        task_run_id=str(log.task_run_id) if log.task_run_id else None,
    )


def _duration(start: datetime | None, end: datetime | None, total: Any) -> float | None:
    if start and end:
        return (end - start).total_seconds()
    if total is not None and total.total_seconds():
        return total.total_seconds()
    return None
