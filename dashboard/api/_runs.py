"""The runs page: one page of flow runs, filtered and counted by the server.

API calls per `runs_page()`: 1 CSRF token, 1 count, 1 page of runs (≤ 200), and for
the page's rows 1 flows, 1 deployments (when any row has one), 1 progress artifacts:
at most 6, whatever the number of runs. `filter_choices()` costs 4 or 5.
"""

from __future__ import annotations

from typing import Any

from dashboard.api._models import FilterChoices, RunQuery, RunRow, RunsPage
from dashboard.api._progress import latest_progress
from prefect_api import Api, utc, word

PAGE = 200


def runs_page(api: Api, query: RunQuery) -> RunsPage:
    """The runs matching `query`, newest expected start first, and how many there are."""
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
    flows, deployments, progress = _names_and_progress(api, runs)
    rows = [
        RunRow(
            id=str(run.id),
            name=run.name,
            flow=flows.get(run.flow_id),
            deployment=deployments.get(run.deployment_id) if run.deployment_id else None,
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
    return FilterChoices(
        flows=sorted({f.name for f in flows}),
        deployments=sorted({d.name for d in deployments}),
        work_pools=sorted({p.name for p in pools}),
        work_queues=sorted({q.name for q in queues}),
    )


def _filters(query: RunQuery) -> dict[str, Any]:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
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
    if query.search.strip():
        run_filter["name"] = FlowRunFilterName(like_=query.search.strip())
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
    if query.flows:
        filters["flow_filter"] = FlowFilter(name=FlowFilterName(any_=list(query.flows)))
    if query.deployments:
        filters["deployment_filter"] = DeploymentFilter(
            name=DeploymentFilterName(any_=list(query.deployments))
        )
    if query.work_pools:
        filters["work_pool_filter"] = WorkPoolFilter(
            name=WorkPoolFilterName(any_=list(query.work_pools))
        )
    return filters


def _names_and_progress(api: Api, runs: list) -> tuple[dict, dict, dict]:
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
    with api.guard("flow and deployment names"):
        flows = api.client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)))
        deployments = (
            api.client.read_deployments(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids)),
                limit=PAGE,
            )
            if deployment_ids
            else []
        )
    progress: dict[Any, float] = {}
    for run_id, artifact in latest_progress(api, [r.id for r in runs], "run progress").items():
        try:
            progress[run_id] = float(artifact.data)
        except (TypeError, ValueError):
            continue
    return (
        {f.id: f.name for f in flows},
        {d.id: d.name for d in deployments},
        progress,
    )


def _duration(run: Any) -> float | None:
    if run.start_time and run.end_time:
        return (run.end_time - run.start_time).total_seconds()
    if run.total_run_time and run.total_run_time.total_seconds():
        return run.total_run_time.total_seconds()
    estimated = getattr(run, "estimated_run_time", None)
    return estimated.total_seconds() if estimated else None
