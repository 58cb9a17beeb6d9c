"""Alerts as Prefect automations: backlog, no worker, batch deadline, failure spike.

Like the failure notifications (deployments/notifications.py), each alert is an
automation the Prefect server evaluates and delivers through the one webhook block
(`REPORTRUNNER_FAILURE_WEBHOOK_URL`): no alerting code runs in the flows, the alerts
work whatever state the flows' processes are in, and operators see, pause or edit them
in the UI. `reportrunner deploy` calls `ensure_alerts`, which creates, updates or
removes them by name, idempotently; without a webhook there are none.

- `reportrunner-alert-backlog`, runs wait (either of two triggers): a `report`,
  `batch` or `deliver` run of the `reports` pool turned Late and has not started
  (Pending, Running or ended) within `alert_backlog_minutes` (proactive, one per run;
  chunk runs are left out, they wait in dozens); or `alert_late_runs` runs of the
  pool, chunks included, turned Late within `alert_backlog_minutes` (reactive). Says
  which run, when it was due and turned Late, with a link to `/run?id=…`; or how many
  and the latest, with `/runs`.
- `reportrunner-alert-no-worker`: the `reports` pool turned NOT_READY (no online
  worker) and was not READY again (nor paused or deleted) within
  `alert_no_worker_minutes` (proactive). Says the pool and since when; `/operations`.
- `reportrunner-alert-batch-deadline`: each `reportrunner.batch.deadline-at-risk`
  event (reactive; the batch flow emits one per batch). Says the report, deadline,
  ETA, items left, throughput and since when; the batch page (`/batch?id=…`).
- `reportrunner-alert-failure-spike`: each `reportrunner.report.failure-spike` event
  (reactive; `alert_checks.emit_failure_spikes` emits one per report and hour). Says
  the report, failed runs since when, a typical hour; `/items?report=…&q=`.

Messages are Jinja templates the server renders with the triggering event (see
prefect/server/events/actions.py, `JinjaTemplateAction._template_context`: `event`,
`firing`, `labels`, and objects read from the event's resources, e.g. `flow_run`), so
figures and links come from the event. Proactive triggers fire with the event that
opened their window (the Late run, the NOT_READY pool). The dashboard's address
(`REPORTRUNNER_DASHBOARD_URL`) is written into the templates when `deploy` runs.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from deployments.topology import WORK_POOL
from reports.contracts import DEADLINE_EVENT, DELIVER_FLOW, FAILURE_SPIKE_EVENT, REPORT_FLOWS

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.events.schemas.automations import AutomationCore

    from reports.settings import Settings

__all__ = [
    "ALERT_NAMES",
    "BACKLOG",
    "DEADLINE",
    "FAILURE_SPIKE",
    "NO_WORKER",
    "alert_automations",
    "backlog_alert",
    "deadline_alert",
    "ensure_alerts",
    "failure_spike_alert",
    "no_worker_alert",
]

BACKLOG = "reportrunner-alert-backlog"
NO_WORKER = "reportrunner-alert-no-worker"
DEADLINE = "reportrunner-alert-batch-deadline"
FAILURE_SPIKE = "reportrunner-alert-failure-spike"
ALERT_NAMES = (BACKLOG, NO_WORKER, DEADLINE, FAILURE_SPIKE)

PROACTIVE_MINIMUM = timedelta(seconds=10)  # Prefect refuses shorter proactive windows
_MANAGED_BY = "Managed by `reportrunner deploy`: edits here are overwritten."
# A Late run stops waiting when it leaves its scheduled state: picked up, or ended.
_STARTED = (
    "prefect.flow-run.Pending",
    "prefect.flow-run.Running",
    "prefect.flow-run.Cancelling",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Scheduled",  # rescheduled by a person: a new Late starts anew
)
_ON_OUR_POOL = {"prefect.resource.role": "work-pool", "prefect.resource.name": WORK_POOL}
# Runs a person or a schedule starts get a message each; a batch's chunks, which wait in
# dozens when workers are short, count only towards the number of Late runs.
_ALERTED_FLOWS = {
    "prefect.resource.role": "flow",
    "prefect.resource.name": [*REPORT_FLOWS, DELIVER_FLOW],
}

# When the event occurred, to the second (ISO 8601, as the event's time zone says).
_OCCURRED = "{{ event.occurred.isoformat(timespec='seconds') }}"


def backlog_alert(block_id: UUID, settings: Settings) -> AutomationCore:
    """Runs wait: one run Late and not started N minutes later, or M runs Late within N."""
    from prefect.events.schemas.automations import (
        AutomationCore,
        CompoundTrigger,
        EventTrigger,
        Posture,
    )

    window = _minutes(settings.alert_backlog_minutes)
    minutes, late_runs = _number(settings.alert_backlog_minutes), settings.alert_late_runs
    waiting = EventTrigger(
        type="event",  # set explicitly: the client's update sends only the fields set
        after={"prefect.flow-run.Late"},
        expect=set(_STARTED),
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=[_ON_OUR_POOL, _ALERTED_FLOWS],  # both
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=max(window, PROACTIVE_MINIMUM),
    )
    many_late = EventTrigger(
        type="event",
        expect={"prefect.flow-run.Late"},
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=_ON_OUR_POOL,
        posture=Posture.Reactive,
        threshold=late_runs,
        within=window,
    )
    # Which of the two fired: the per-run one is the proactive child.
    per_run = (
        "{% set per_run = firing.triggering_firings"
        " and firing.triggering_firings[0].trigger.posture == 'Proactive' %}"
    )
    run_name = "{{ flow_run.name or event.resource.name }}"
    run_id = "{{ flow_run.id or event.resource.id | replace('prefect.flow-run.', '') }}"
    subject = (
        per_run + "reportrunner: {% if per_run %}run `" + run_name + "` has waited "
        f"{minutes} min for a worker{{% else %}}{late_runs} runs turned Late "
        f"within {minutes} min{{% endif %}}"
    )
    body = (
        per_run + "{% if per_run %}"
        f"`{run_name}` turned Late at {_OCCURRED} and has not started {minutes} min later: "
        f"no worker of pool `{WORK_POOL}` took it (none online, all busy, or its queue paused)."
        "{% if flow_run.expected_start_time %} It was due at "
        "{{ flow_run.expected_start_time.isoformat(timespec='seconds') }}"
        "{% if flow_run.work_queue_name %}, queue `{{ flow_run.work_queue_name }}`{% endif %}."
        "{% endif %}\n" + _link(settings, "/run?id=" + run_id) + "{% else %}"
        f"{late_runs} runs of pool `{WORK_POOL}` turned Late within {minutes} min, "
        f"the latest at {_OCCURRED} (`{run_name}`): runs wait longer than usual for a worker.\n"
        + _link(settings, "/runs")
        + "{% endif %}"
    )
    return AutomationCore(
        name=BACKLOG,
        description=(
            f"Runs waiting on pool {WORK_POOL}: a report, batch or deliver run Late and not "
            f"started {minutes} min later, or {late_runs} runs Late within {minutes} min. "
            + _MANAGED_BY
        ),
        enabled=True,
        # `type` and `within` set explicitly: `update_automation` sends only the fields set,
        # and the server cannot tell a compound trigger without them.
        trigger=CompoundTrigger(
            type="compound", triggers=[waiting, many_late], require="any", within=None
        ),
        actions=[_notification(block_id, subject, body)],
    )


def no_worker_alert(block_id: UUID, settings: Settings) -> AutomationCore:
    """The pool has had no online worker for N minutes: NOT_READY, and not READY since."""
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    minutes = _number(settings.alert_no_worker_minutes)
    pool = "{{ event.resource.name }}"
    subject = f"reportrunner: no worker online for pool `{pool}` for {minutes} min"
    body = (
        f"Work pool `{pool}` has had no online worker since {_OCCURRED}: its runs wait "
        "and turn Late. Start one with `reportrunner worker`, or see why they stopped.\n"
        + _link(settings, "/operations")
    )
    return AutomationCore(
        name=NO_WORKER,
        description=f"Pool {WORK_POOL} without an online worker for {minutes} min. {_MANAGED_BY}",
        enabled=True,
        trigger=EventTrigger(
            type="event",
            after={"prefect.work-pool.not-ready"},
            expect={
                "prefect.work-pool.ready",
                "prefect.work-pool.paused",  # paused on purpose: nobody is missing
                "prefect.work-pool.deleted",
            },
            match={
                "prefect.resource.id": "prefect.work-pool.*",
                "prefect.resource.name": WORK_POOL,
            },
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=max(_minutes(settings.alert_no_worker_minutes), PROACTIVE_MINIMUM),
        ),
        actions=[_notification(block_id, subject, body)],
    )


def deadline_alert(block_id: UUID, settings: Settings) -> AutomationCore:
    """A batch will miss its deadline: one message per `DEADLINE_EVENT`."""
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    batch_id = "(event.payload.batch or event.resource.id | replace('reportrunner.batch.', ''))"
    fallback = json.dumps(_dashboard(settings) + "/batch?id=")
    subject = "reportrunner: the {{ event.payload.report }} batch will miss its deadline"
    body = (
        "ETA {{ event.payload.eta }}, deadline {{ event.payload.deadline }}"
        "{% if event.payload.late_by %} (late by {{ event.payload.late_by }}){% endif %}: "
        "{{ event.payload.items_left }} items left at {{ event.payload.per_minute }} per minute. "
        f"At risk since {_OCCURRED}.\n"
        "{{ event.payload.link or (" + fallback + " ~ " + batch_id + ") }}"
    )
    return AutomationCore(
        name=DEADLINE,
        description=f"A batch whose ETA passed its deadline ({DEADLINE_EVENT}). {_MANAGED_BY}",
        enabled=True,
        trigger=EventTrigger(
            type="event",
            expect={DEADLINE_EVENT},
            match={"prefect.resource.id": "reportrunner.batch.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[_notification(block_id, subject, body)],
    )


def failure_spike_alert(block_id: UUID, settings: Settings) -> AutomationCore:
    """A report fails far more than usual: one message per `FAILURE_SPIKE_EVENT`."""
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    report = "event.payload.report or event.resource.id | replace('reportrunner.report.', '')"
    fallback = json.dumps(_dashboard(settings) + "/items?report=")
    subject = "reportrunner: {{ " + report + " }} is failing more than usual"
    body = (
        "{{ event.payload.failed }} runs of {{ " + report + " }} failed since "
        "{{ event.payload.since }}; a typical hour has {{ event.payload.typical }}. "
        f"Noticed at {_OCCURRED}.\n"
        "{{ event.payload.link or (" + fallback + " ~ (" + report + ") | urlencode ~ '&q=') }}"
    )
    return AutomationCore(
        name=FAILURE_SPIKE,
        description=(
            f"A report failing far more than usual ({FAILURE_SPIKE_EVENT}, emitted by the "
            f"alert checks). {_MANAGED_BY}"
        ),
        enabled=True,
        trigger=EventTrigger(
            type="event",
            expect={FAILURE_SPIKE_EVENT},
            match={"prefect.resource.id": "reportrunner.report.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[_notification(block_id, subject, body)],
    )


def alert_automations(block_id: UUID, settings: Settings) -> list[AutomationCore]:
    """Every alert, as `ensure_alerts` applies it."""
    return [
        backlog_alert(block_id, settings),
        no_worker_alert(block_id, settings),
        deadline_alert(block_id, settings),
        failure_spike_alert(block_id, settings),
    ]


def ensure_alerts(client: Any, block_id: UUID | None, settings: Settings) -> list[str]:
    """Create or update the alert automations to post through `block_id`; None removes them.

    `client`: a Prefect sync client. `block_id`: the webhook block's id
    (`notifications.webhook_block_id`), None when no webhook is set. Returns one note
    per alert for the deploy summary (or one saying there is no webhook).
    """
    if block_id is None:
        removed = []
        for name in ALERT_NAMES:
            found = client.read_automations_by_name(name)
            for automation in found:
                client.delete_automation(automation.id)
            if found:
                removed.append(name)
        what = f"removed {', '.join(removed)}" if removed else "none configured"
        return [f"alerts: no webhook set (REPORTRUNNER_FAILURE_WEBHOOK_URL); {what}"]
    return [
        f"alerts: {_apply(client, desired)} {desired.name}"
        for desired in alert_automations(block_id, settings)
    ]


# ---- helpers ------------------------------------------------------------------------------


def _apply(client: Any, desired: AutomationCore) -> str:
    """Make the one automation named like `desired` equal to it: created/updated/unchanged."""
    existing = client.read_automations_by_name(desired.name)
    for extra in existing[1:]:  # self-heal duplicates made by hand
        client.delete_automation(extra.id)
    if not existing:
        client.create_automation(desired)
        return "created"
    if _comparable(existing[0]) != _comparable(desired):
        client.update_automation(existing[0].id, desired)
        return "updated"
    return "updated" if len(existing) > 1 else "unchanged"


def _comparable(automation: AutomationCore) -> Any:
    """The managed fields as JSON, sets sorted: equal means no update is needed."""
    from prefect.events.schemas.automations import AutomationCore

    core = AutomationCore.model_validate(automation.model_dump(include=_MANAGED))
    return _sorted_sets(core.model_dump(mode="json", include=_MANAGED))


def _sorted_sets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: sorted(item)
            if key in _SET_FIELDS and isinstance(item, list)
            else _sorted_sets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_sorted_sets(item) for item in value]
    return value


_MANAGED = {"name", "description", "enabled", "trigger", "actions"}
_SET_FIELDS = {"expect", "after", "for_each"}


def _notification(block_id: UUID, subject: str, body: str) -> Any:
    from prefect.events.actions import SendNotification

    return SendNotification(block_document_id=block_id, subject=subject, body=body)


def _minutes(minutes: float) -> timedelta:
    return timedelta(seconds=round(minutes * 60, 3))


def _number(minutes: float) -> str:
    """10 → '10', 0.2 → '0.2': as people write it."""
    return f"{minutes:g}"


def _dashboard(settings: Settings) -> str:
    return settings.dashboard_url.rstrip("/")


def _link(settings: Settings, path: str) -> str:
    """The dashboard page; `path` may hold template expressions."""
    return _dashboard(settings) + path
