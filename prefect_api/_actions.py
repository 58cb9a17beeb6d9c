"""What may be done to Prefect objects: run states, deletions, pausing, new runs, events.

Each function is one small step with a plain result; who may do it, and the audit
record of it, are the caller's business (see dashboard/actions.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prefect_api._connection import Api, one_line
from prefect_api._values import word


def read_run(api: Api, run_id: str) -> Any:
    return api.client.read_flow_run(uuid.UUID(str(run_id)))


def flow_name(api: Api, run: Any) -> str:
    return api.client.read_flow(run.flow_id).name


def state_type(run: Any) -> str:
    return word(run.state_type) or "UNKNOWN"


def set_run_state(api: Api, run: Any, state: Any, force: bool) -> tuple[str | None, str]:
    """(refusal or None, the state type the run is in now) after asking for `state`.

    The server may answer a proposal with another state: Cancelling a run that has
    not started is answered with Cancelled, which is what the operator wanted.
    """
    from prefect.client.schemas.responses import SetStateStatus

    outcome = api.client.set_flow_run_state(run.id, state, force=force)
    now = str(outcome.state.type.value) if outcome.state is not None else "UNKNOWN"
    wanted = {str(state.type.value), *(("CANCELLED",) if state.type.value == "CANCELLING" else ())}
    if outcome.status == SetStateStatus.ACCEPT or now in wanted:
        return None, now
    reason = getattr(outcome.details, "reason", None) or outcome.status.value
    return one_line(f"The server refused the change of '{run.name}': {reason}"), now


def retry_run(api: Api, run: Any) -> str | None:
    """AwaitingRetry, forced, as the Prefect UI's Retry does; a refusal or None."""
    from prefect.states import AwaitingRetry

    refusal, _ = set_run_state(api, run, AwaitingRetry(), force=True)
    return refusal


def cancel_run(api: Api, run: Any) -> tuple[str | None, str]:
    """Cancelling, which the worker turns into Cancelled once the run's process stops."""
    from prefect.states import Cancelling

    return set_run_state(api, run, Cancelling(), force=False)


def delete_runs(api: Api, run_ids: list[str]) -> int:
    """Delete flow runs with their logs and artifacts; runs already gone count as deleted."""
    from prefect.exceptions import ObjectNotFound

    for run_id in run_ids:
        try:
            api.client.delete_flow_run(uuid.UUID(run_id))
        except ObjectNotFound:
            continue
    return len(run_ids)


def set_pool_paused(api: Api, pool: str, paused: bool) -> None:
    from prefect.client.schemas.actions import WorkPoolUpdate

    api.client.update_work_pool(pool, WorkPoolUpdate(is_paused=paused))


def set_queue_paused(api: Api, queue_id: str, paused: bool) -> None:
    api.client.update_work_queue(uuid.UUID(queue_id), is_paused=paused)


def set_deployment_paused(api: Api, deployment_id: str, paused: bool) -> None:
    """Pausing a deployment stops all its schedules; runs started by hand still run."""
    if paused:
        api.client.pause_deployment(deployment_id)
    else:
        api.client.resume_deployment(deployment_id)


def set_schedule_active(api: Api, deployment_id: str, schedule_id: str, active: bool) -> None:
    api.client.update_deployment_schedule(
        uuid.UUID(deployment_id), uuid.UUID(schedule_id), active=active
    )


def read_deployment(api: Api, full_name: str) -> Any | None:
    """A deployment by `flow/name`, or None."""
    from prefect.exceptions import ObjectNotFound

    try:
        return api.client.read_deployment_by_name(full_name)
    except ObjectNotFound:
        return None


def start_run(
    api: Api, deployment_id: Any, parameters: dict[str, Any], tags: list[str] | None = None
) -> Any:
    """A new flow run of a deployment, at once (the worker picks it up)."""
    return api.client.create_flow_run_from_deployment(
        deployment_id, parameters=parameters, tags=tags or []
    )


def emit_event(
    api: Api,
    event: str,
    resource: dict[str, str],
    payload: dict[str, Any],
    related: list[dict[str, str]] | None = None,
) -> None:
    """One Prefect event (shown in the Prefect UI's event feed; automations see it)."""
    api.post(
        "/events",
        [
            {
                "id": str(uuid.uuid4()),
                "occurred": datetime.now(UTC).isoformat(),
                "event": event,
                "resource": resource,
                "related": related or [],
                "payload": payload,
            }
        ],
    )


def read_events(api: Api, prefix: str, limit: int, page_size: int = 50) -> list[dict[str, Any]]:
    """Events whose name starts with `prefix`, newest first (one call per page)."""
    body = {"filter": {"event": {"prefix": [prefix]}, "order": "DESC"}, "limit": page_size}
    events: list[dict[str, Any]] = []
    page = api.post("/events/filter", body)
    while True:
        events += page.get("events") or []
        following = page.get("next_page")
        if len(events) >= limit or not following:
            break
        response = api.client.request("GET", following)  # type: ignore[arg-type]
        response.raise_for_status()
        page = response.json()
    return events[:limit]
