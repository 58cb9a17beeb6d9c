"""The runs page: one page of flow runs, filtered and counted by the server.

API calls per `runs_page()`: 1 CSRF token, 1 count, 1 page of runs (≤ 200), and for
the page's rows 1 flows, 1 deployments (when any row has one), 1 progress artifacts:
at most 6, whatever the number of runs. `filter_choices()` costs 4 or 5; given to
`runs_page(known=…)`, its names spare the flows and deployments reads whenever they
name every run of the page (4 calls).

Deployments are named in full (`batch/carrier-monthly`): `report/carrier-monthly` and
`batch/carrier-monthly` share the name alone. A run's report is read from its name,
which every flow of a report starts with (`carrier-monthly carrier=AA …`, `… batch
over …`, `… chunk 1/4`): unlike the `report:` tag, it is there for runs started from
the CLI too, and Prefect cannot filter on parameters.
"""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID

from dashboard.api._models import FilterChoices, RunQuery, RunRow, RunsPage
from dashboard.api._progress import latest_progress
from prefect_api import Api, utc, word
from reports.contracts import CHUNK_FLOW, REPORT_FLOWS, deployment_name, run_name
from reports.definitions import default_catalog
from reports.errors import ReportError

PAGE = 200


def runs_page(api: Api, query: RunQuery, known: FilterChoices | None = None) -> RunsPage:
    """The runs matching `query`, newest expected start first, and how many there are.

    `known`: the filter choices, whose flow and deployment names are used for the
    runs they name (the others are read)."""
    from prefect.client.schemas.sorting import FlowRunSort

    limit = max(1, min(query.limit, PAGE))
    offset = max(0, query.offset)
    filters = _filters(query)
    with api.guard("flow runs"):
        total = api.client.count_flow_runs(**filters)
        runs = (
            api.client.read_flow_runs(
                **filters, sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit, offset=offset
            )
            if offset < total
            else []
        )
    flows, deployments, progress = _names_and_progress(api, runs, known)
    rows = [
        RunRow(
            id=str(run.id),
            name=display_name(run, flows.get(run.flow_id)),
            flow=flows.get(run.flow_id),
            deployment=_deployment(run, flows.get(run.flow_id), deployments),
            state_type=word(run.state_type) or "UNKNOWN",
            state_name=run.state_name or word(run.state_type) or "Unknown",
            message=run.state.message if run.state else None,
            expected_start=utc(run.expected_start_time),
            start=utc(run.start_time),
            end=utc(run.end_time),
            duration_s=_duration(run),
            work_pool=run.work_pool_name,
            work_queue=run.work_queue_name,
            tags=list(run.tags or []),
            parameters=dict(run.parameters or {}),
            progress=progress.get(run.id),
            nested=run.parent_task_run_id is not None,
        )
        for run in runs
    ]
    return RunsPage(rows=rows, total=total, offset=offset, limit=limit)


def filter_choices(api: Api) -> FilterChoices:
    """Names for the runs page's filter widgets (first 200 of each)."""
    with api.guard("filter choices"):
        flows = api.client.read_flows(limit=PAGE)
        deployments = api.client.read_deployments(limit=PAGE)
        pools = api.client.read_work_pools(limit=PAGE)
        queues = api.client.read_work_queues(limit=PAGE)
    flow_names = {f.id: f.name for f in flows}
    by_full_name = {
        deployment_name(flow_names.get(d.flow_id, "?"), d.name): str(d.id) for d in deployments
    }
    return FilterChoices(
        flows=sorted(set(flow_names.values())),
        deployments=sorted(by_full_name),
        work_pools=sorted({p.name for p in pools}),
        work_queues=sorted({q.name for q in queues}),
        reports=_report_names(deployments),
        deployment_ids=by_full_name,
        # Complete lists only: a name missing from a cut list must be read, not guessed.
        flow_names={str(k): v for k, v in flow_names.items()} if len(flows) < PAGE else {},
        deployment_names={str(d.id): d.name for d in deployments}
        if len(deployments) < PAGE
        else {},
    )


def display_name(run: Any, flow: str | None) -> str:
    """The run's business name. A run waiting for its first start may still carry
    Prefect's random name ("curious-weasel"): its flow renames it on start, by the
    same rule, so that name is shown already."""
    if run.start_time is None:
        return run_name(flow, run.parameters) or run.name
    return run.name


def _report_names(deployments: list) -> list[str]:
    """Reports of the catalog and of the deployments (a report may have left the catalog)."""
    names = {
        str(d.parameters["report"])
        for d in deployments
        if isinstance(d.parameters, dict) and d.parameters.get("report")
    }
    names |= {
        t.removeprefix("report:")
        for d in deployments
        for t in d.tags or ()
        if t.startswith("report:")
    }
    # An unreadable catalog here still leaves the deployments' reports.
    with contextlib.suppress(ReportError, OSError):
        names |= set(default_catalog().names())
    return sorted(n for n in names if n)


def _deployment(run: Any, flow: str | None, names: dict) -> str | None:
    """`report/carrier-monthly`; None when the run has no deployment (started from the CLI)."""
    if run.deployment_id is None:
        return None
    name = names.get(run.deployment_id)
    return deployment_name(flow or "?", name) if name else "(deleted deployment)"


def _filters(query: RunQuery) -> dict[str, Any]:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
        FlowRunFilterWorkQueueName,
        WorkPoolFilter,
        WorkPoolFilterName,
    )

    run_filter: dict[str, Any] = {}
    if query.state_types:
        run_filter["state"] = FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[s.upper() for s in query.state_types])
        )
    name = _name_pattern(query.report, query.search)
    if name:
        run_filter["name"] = FlowRunFilterName(like_=name)
    if query.deployment_ids:
        run_filter["deployment_id"] = FlowRunFilterDeploymentId(
            any_=[UUID(d) for d in query.deployment_ids]
        )
    if query.tags:
        run_filter["tags"] = FlowRunFilterTags(all_=list(query.tags))
    if query.work_queues:
        run_filter["work_queue_name"] = FlowRunFilterWorkQueueName(any_=list(query.work_queues))
    if query.since or query.until:
        run_filter["expected_start_time"] = FlowRunFilterExpectedStartTime(
            after_=query.since, before_=query.until
        )
    filters: dict[str, Any] = {}
    if run_filter:
        filters["flow_run_filter"] = FlowRunFilter(**run_filter)
    flows = list(query.flows)
    if query.report and not flows:  # a report's runs are of its three flows only
        flows = [*REPORT_FLOWS, CHUNK_FLOW]
    if flows:
        filters["flow_filter"] = FlowFilter(name=FlowFilterName(any_=flows))
    if query.deployments:
        filters["deployment_filter"] = DeploymentFilter(
            name=DeploymentFilterName(any_=list(query.deployments))
        )
    if query.work_pools:
        filters["work_pool_filter"] = WorkPoolFilter(
            name=WorkPoolFilterName(any_=list(query.work_pools))
        )
    return filters


def _name_pattern(report: str, search: str) -> str:
    """What the run name must contain. The server matches `%<pattern>%` without escaping,
    so a report's runs, whose names start "<report> ", also match a search typed after it;
    report names hold no LIKE wildcards (`REPORT_NAME_PATTERN`)."""
    report, search = report.strip(), search.strip()
    if report and search.lower().startswith(f"{report} "):
        return search  # the whole name typed: it names the report already
    if report and search:
        return f"{report} %{search}"
    return f"{report} " if report else search


def _names_and_progress(
    api: Api, runs: list, known: FilterChoices | None = None
) -> tuple[dict, dict, dict]:
    """Flow and deployment names and latest progress percent of one page's runs."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowFilter,
        FlowFilterId,
    )

    if not runs:
        return {}, {}, {}
    flow_ids = list({r.flow_id for r in runs})
    deployment_ids = list({r.deployment_id for r in runs if r.deployment_id})
    flow_names = _known(flow_ids, known.flow_names if known else {})
    deployment_names = _known(deployment_ids, known.deployment_names if known else {})
    with api.guard("flow and deployment names"):
        if flow_names is None:
            flows = api.client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)))
            flow_names = {f.id: f.name for f in flows}
        if deployment_names is None:
            deployments = api.client.read_deployments(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids)),
                limit=PAGE,
            )
            deployment_names = {d.id: d.name for d in deployments}
    progress: dict[Any, float] = {}
    for run_id, artifact in latest_progress(api, [r.id for r in runs], "run progress").items():
        try:
            progress[run_id] = float(artifact.data)
        except (TypeError, ValueError):
            continue
    return flow_names, deployment_names, progress


def _known(ids: list, names: dict[str, str]) -> dict | None:
    """Names of all `ids` from `names` (keyed by id as text); None when one is missing."""
    if not all(str(i) in names for i in ids):
        return None
    return {i: names[str(i)] for i in ids}


def _duration(run: Any) -> float | None:
    if run.start_time and run.end_time:
        return (run.end_time - run.start_time).total_seconds()
    if run.total_run_time and run.total_run_time.total_seconds():
        return run.total_run_time.total_seconds()
    estimated = getattr(run, "estimated_run_time", None)
    return estimated.total_seconds() if estimated else None
