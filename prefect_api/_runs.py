"""Which flow runs need attention, counted on the server: late runs and recent failures.

One definition of each, shared by `reportrunner status`, the dashboard's health strip
and the metrics: a count is one call whatever the history; examples are read only
when there is something to show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect_api._connection import Api

PAGE = 200  # the API's largest page


def late_filter(cutoff: datetime) -> Any:
    """Runs in state Late, or still waiting (any Scheduled-type state) past `cutoff`.

    The server clears `next_scheduled_start_time` when a run leaves its scheduled
    state, so the second half only matches runs that have not started yet.
    """
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterNextScheduledStartTime,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )
    from prefect.client.schemas.filters import Operator as FilterOperator

    return FlowRunFilter(
        operator=FilterOperator.or_,
        state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Late"])),
        next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(before_=cutoff),
    )


def failed_filter(since: datetime) -> Any:
    """Runs that ended Failed or Crashed after `since`."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterEndTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    return FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED])
        ),
        end_time=FlowRunFilterEndTime(after_=since),
    )


def count_and_examples(api: Api, flow_runs: Any, sort: Any, examples: int) -> tuple[int, list]:
    """A server-side count, and a few example runs only when there is something to show."""
    count = api.client.count_flow_runs(flow_run_filter=flow_runs)
    found = (
        api.client.read_flow_runs(flow_run_filter=flow_runs, sort=sort, limit=examples)
        if count and examples
        else []
    )
    return count, found


def late_runs(api: Api, cutoff: datetime, examples: int = 0) -> tuple[int, list]:
    from prefect.client.schemas.sorting import FlowRunSort

    return count_and_examples(
        api, late_filter(cutoff), FlowRunSort.EXPECTED_START_TIME_ASC, examples
    )


def failed_runs(api: Api, since: datetime, examples: int = 0) -> tuple[int, list]:
    from prefect.client.schemas.sorting import FlowRunSort

    return count_and_examples(api, failed_filter(since), FlowRunSort.END_TIME_DESC, examples)


def flow_names(api: Api, flow_ids: set | list) -> dict:
    """Flow id → name, in one call."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterId

    ids = list(set(flow_ids))
    if not ids:
        return {}
    flows = api.client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=ids)), limit=PAGE)
    return {flow.id: flow.name for flow in flows}
