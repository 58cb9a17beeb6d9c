"""Checks that the Prefect server cannot make on its own, announced as events.

The server's automations react to events; nothing in Prefect emits "this report fails
more than usual". `emit_failure_spikes` looks for that and emits `FAILURE_SPIKE_EVENT`,
which the `reportrunner-alert-failure-spike` automation (deployments/alerts.py) turns
into a message. The metrics exporter (`reportrunner metrics`) calls it every minute.

The rule is the dashboard's, from the one implementation in `prefect_api`
(`failure_spikes`): per report, its runs' history of the last 24 hours in clock-hour
buckets; the current hour is a spike when it has at least `SPIKE_MIN_FAILED` failed
(or crashed) runs and at least `SPIKE_FACTOR` × the median of the 24 hours.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from prefect_api import Api, FailureSpike, Window, failure_spikes, iso, run_history, utc
from reports.contracts import FAILURE_SPIKE_EVENT, report_resource

__all__ = ["HISTORY_HOURS", "SPIKE_EVENT_NAMESPACE", "emit_failure_spikes", "spike_event_id"]

HISTORY_HOURS = 24
HOUR = timedelta(hours=1)
# Event ids are uuid5(namespace, "<report>|<hour>"): the same spike has the same id.
SPIKE_EVENT_NAMESPACE = uuid.UUID("5d0c2f55-3f43-4c83-9b7e-5b1f7bd6a0f1")
# The server's largest page of events; past it (50 reports spiking in one hour), the event
# ids still keep each spike one event.
_READ_LIMIT = 50


def emit_failure_spikes(
    api: Api, now: datetime | None = None, reports: Iterable[str] | None = None
) -> list[str]:
    """Emit `FAILURE_SPIKE_EVENT` for each report failing far more than usual this hour,
    once per report and clock hour; return the reports announced by this call.

    `reports`: the catalog's (`default_catalog().names()`) unless given; a report's runs
    are those tagged `report:<name>`.

    API calls: one run history per report (the server counts; 24 buckets whatever the
    number of runs), plus, only when some report spikes, one read of this hour's spike
    events and one POST of the new ones; and the client's one CSRF-token request
    before its first POST on a new connection. With nothing wrong, a call costs
    `len(reports)` (+1) calls.

    Announced once: a spike this hour already among the server's events is skipped,
    and each event's id is derived from the report and the hour, so an event posted
    twice before the first was stored is still one event (the server drops repeated
    ids), and an automation fires once. Raises `ApiUnavailable` (one line) when the API
    cannot answer.
    """
    now = utc(now) if now is not None else datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    window = Window(end=hour + HOUR, length=HOUR)  # the current clock hour, so far
    start = window.end - HISTORY_HOURS * HOUR
    if reports is None:
        from reports.definitions import default_catalog

        reports = default_catalog().names()
    spikes: dict[str, FailureSpike] = {}
    for report in sorted(set(reports)):
        history = run_history(api, start, window.end, HOUR, flow_runs=_tagged(report))
        found = failure_spikes(history, window)
        if found:
            spikes[report] = found[-1]
    if not spikes:
        return []
    announced = _announced_this_hour(api, hour, list(spikes))
    fresh = {report: spike for report, spike in spikes.items() if report not in announced}
    if fresh:
        events = [_event(report, spike, hour, now) for report, spike in fresh.items()]
        with api.guard("failure-spike events"):
            api.post("/events", [event.model_dump(mode="json") for event in events])
    return sorted(fresh)


def spike_event_id(report: str, hour: datetime) -> uuid.UUID:
    """The id of the spike event of `report` in the clock hour starting at `hour` (UTC)."""
    return uuid.uuid5(SPIKE_EVENT_NAMESPACE, f"{report}|{iso(hour)}")


def _tagged(report: str) -> Any:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    return FlowRunFilter(tags=FlowRunFilterTags(all_=[f"report:{report}"]))


def _announced_this_hour(api: Api, hour: datetime, reports: list[str]) -> set[str]:
    """The reports among `reports` whose spike this hour is stored already (one call)."""
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    wanted = {report_resource(report): report for report in reports}
    event_filter = EventFilter(
        occurred=EventOccurredFilter(since=hour, until=hour + HOUR),
        event=EventNameFilter(name=[FAILURE_SPIKE_EVENT]),
        resource=EventResourceFilter(id=list(wanted)),
    )
    with api.guard("failure-spike events"):
        page = api.client.read_events(filter=event_filter, limit=_READ_LIMIT)
    return {wanted[e.resource.id] for e in page.events if e.resource.id in wanted}


def _figure(value: float) -> int | float:
    """2.0 → 2, 2.25 → 2.2: as a message shows it."""
    return int(value) if float(value).is_integer() else round(value, 1)


def _event(report: str, spike: FailureSpike, hour: datetime, now: datetime) -> Any:
    from prefect.events import Event

    from reports.settings import get_settings

    query = urlencode({"report": report, "q": ""})
    return Event(
        id=spike_event_id(report, hour),
        occurred=now,
        event=FAILURE_SPIKE_EVENT,
        resource={
            "prefect.resource.id": report_resource(report),
            "prefect.resource.name": report,
        },
        payload={
            "report": report,
            "failed": spike.failed,
            "typical": _figure(spike.typical),
            "since": iso(spike.start),
            "link": f"{get_settings().dashboard_url.rstrip('/')}/items?{query}",
        },
    )
