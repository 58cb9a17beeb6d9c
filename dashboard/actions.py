"""What an operator may do from the dashboard, each action checked and audited.

Pure Python, no Streamlit: pages render and call; tests call the same functions.
Every mutating function first checks the role with `auth.require` (a hidden
button is not a permission), never raises into the page (the result carries a
one-line message) and records who did what to which target as a Prefect event
`reportrunner.dashboard.<action>`, denials and failures included.

    with connect() as api:
        result = cancel_run(api, current_user(), run_id)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dashboard.api import (
    EVENT_PREFIX,
    Api,
    ApiUnavailable,
    AuditEntry,
    failed_items,
    one_line,
    read_audit,
)
from dashboard.auth import OPERATOR, PermissionDenied, User, require
from prefect_api import actions as prefect_actions
from reports.contracts import (
    BATCH_FLOW,
    DELIVER_FLOW,
    deployment_name,
)
from reports.delivery import Ledger
from reports.errors import ReportError
from reports.index import open_index

log = logging.getLogger(__name__)

RETRYABLE = ("FAILED", "CRASHED", "CANCELLED")
CANCELLABLE = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED")
MAX_DELETE = 200  # one confirmation deletes at most one page of runs


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str  # one line, shown as st.success / st.error


# ---- audit ------------------------------------------------------------------------------


def record(
    api: Api,
    user: User,
    action: str,
    target: str,
    ok: bool,
    message: str,
    resource: str | None = None,
    outcome: str | None = None,
) -> bool:
    """Write one audit event; False (and a log line) when the API would not take it.

    action: dotted name after the prefix, e.g. "run.trigger". target: what it was
    done to, in words ("carrier-monthly carrier=AA"). resource: the target's
    Prefect resource id when it has one ("prefect.flow-run.<uuid>").
    """
    try:
        prefect_actions.emit_event(
            api,
            f"{EVENT_PREFIX}{action}",
            resource={
                "prefect.resource.id": f"reportrunner.dashboard.user.{user.name}",
                "prefect.resource.name": user.name,
            },
            related=[
                {
                    "prefect.resource.id": resource or f"reportrunner.target.{target}",
                    "prefect.resource.role": "target",
                    "prefect.resource.name": target,
                }
            ],
            payload={
                "user": user.name,
                "role": user.role,
                "target": target,
                "outcome": outcome or ("ok" if ok else "failed"),
                "message": one_line(message) or "",
            },
        )
    except Exception as exc:  # the action's own result must still reach the page
        log.warning("dashboard: audit event %s not recorded: %s", action, exc)
        return False
    return True


def audit_log(api: Api, limit: int = 100) -> list[AuditEntry]:
    """The latest dashboard actions, newest first (raises `ApiUnavailable`)."""
    return read_audit(api, limit)


# ---- runs -------------------------------------------------------------------------------


def retry_run(api: Api, user: User, run_id: str) -> ActionResult:
    """Like the Prefect UI's Retry: AwaitingRetry, forced, on a finished unsuccessful run."""

    def act() -> ActionResult:
        run = prefect_actions.read_run(api, run_id)
        reason = _not_retryable(run)
        if reason:
            return ActionResult(False, reason)
        refusal = prefect_actions.retry_run(api, run)
        if refusal:
            return ActionResult(False, refusal)
        return ActionResult(True, f"Retry of '{run.name}' queued: it will run again.")

    return _perform(api, user, "run.retry", "Retry run", _run_target(run_id), act)


def cancel_run(api: Api, user: User, run_id: str) -> ActionResult:
    """Cancelling, which the worker turns into Cancelled once the run's process stops."""

    def act() -> ActionResult:
        run = prefect_actions.read_run(api, run_id)
        kind = prefect_actions.state_type(run)
        if kind not in CANCELLABLE:
            return ActionResult(
                False,
                f"'{run.name}' is {run.state_name or kind}: only runs not yet finished "
                "can be cancelled.",
            )
        refusal, now = prefect_actions.cancel_run(api, run)
        if refusal:
            return ActionResult(False, refusal)
        if now == "CANCELLED":  # it had not started: nothing to stop
            return ActionResult(True, f"Cancelled '{run.name}'.")
        return ActionResult(True, f"Cancelling '{run.name}': its worker stops it.")

    return _perform(api, user, "run.cancel", "Cancel run", _run_target(run_id), act)


def delete_runs(api: Api, user: User, run_ids: Iterable[str]) -> ActionResult:
    """Delete flow runs with their logs and artifacts; runs already gone count as deleted."""
    ids = list(dict.fromkeys(str(i) for i in run_ids))
    target = f"{len(ids)} run(s)" if len(ids) != 1 else f"run {ids[0]}"

    def act() -> ActionResult:
        if not ids:
            return ActionResult(False, "No runs selected to delete.")
        if len(ids) > MAX_DELETE:
            return ActionResult(False, f"Select at most {MAX_DELETE} runs to delete at once.")
        return ActionResult(True, f"Deleted {prefect_actions.delete_runs(api, ids)} run(s).")

    resource = f"prefect.flow-run.{ids[0]}" if len(ids) == 1 else None
    return _perform(api, user, "runs.delete", "Delete runs", (target, resource), act)


# ---- batches ----------------------------------------------------------------------------


def retry_failed_items(api: Api, user: User, batch_run_id: str) -> ActionResult:
    """Render again only the items that failed in a finished batch run.

    A batch from a deployment is retried in place (AwaitingRetry): the re-run skips
    every unchanged item. A batch started elsewhere (CLI) gets a new run of the
    report's batch deployment with exactly the failed items.
    """

    def act() -> ActionResult:
        run = prefect_actions.read_run(api, batch_run_id)
        if prefect_actions.flow_name(api, run) != BATCH_FLOW:
            return ActionResult(False, f"'{run.name}' is not a batch run.")
        reason = _not_retryable(run, need_deployment=False)
        if reason:
            return ActionResult(False, reason)
        items = failed_items(api, batch_run_id)
        if not items:
            return ActionResult(False, f"'{run.name}' recorded no failed items to retry.")
        count = f"{len(items)} failed item(s)"
        if run.deployment_id:
            refusal = prefect_actions.retry_run(api, run)
            if refusal:
                return ActionResult(False, refusal)
            return ActionResult(True, f"Retrying {count} of '{run.name}'; unchanged items skip.")
        report = (run.parameters or {}).get("report")
        deployment = (
            prefect_actions.read_deployment(api, deployment_name(BATCH_FLOW, report))
            if report
            else None
        )
        if deployment is None:
            return ActionResult(
                False, f"No batch deployment for report '{report}': run `reportrunner deploy`."
            )
        new = prefect_actions.start_run(
            api, deployment.id, {"report": report, "items": items}, tags=["retry-failed-items"]
        )
        return ActionResult(True, f"Started '{new.name}' for the {count} of '{run.name}'.")

    return _perform(
        api, user, "batch.retry-failed", "Retry failed items", _run_target(batch_run_id), act
    )


# ---- pools, queues, deployments, schedules ---------------------------------------------


def set_pool_paused(api: Api, user: User, pool_name: str, paused: bool) -> ActionResult:
    verb = "Paused" if paused else "Resumed"

    def act() -> ActionResult:
        prefect_actions.set_pool_paused(api, pool_name, paused)
        return ActionResult(True, f"{verb} work pool '{pool_name}'.")

    action = "pool.pause" if paused else "pool.resume"
    label = "Pause work pool" if paused else "Resume work pool"
    return _perform(api, user, action, label, (f"work pool {pool_name}", None), act)


def set_queue_paused(
    api: Api, user: User, queue_id: str, paused: bool, queue_name: str = ""
) -> ActionResult:
    verb = "Paused" if paused else "Resumed"
    name = queue_name or queue_id

    def act() -> ActionResult:
        prefect_actions.set_queue_paused(api, queue_id, paused)
        return ActionResult(True, f"{verb} work queue '{name}'.")

    action = "queue.pause" if paused else "queue.resume"
    label = "Pause work queue" if paused else "Resume work queue"
    target = (f"work queue {name}", f"prefect.work-queue.{queue_id}")
    return _perform(api, user, action, label, target, act)


def set_deployment_paused(
    api: Api, user: User, deployment_id: str, paused: bool, deployment_name: str = ""
) -> ActionResult:
    """Pausing a deployment stops all its schedules; runs started by hand still run."""
    verb = "Paused" if paused else "Resumed"
    name = deployment_name or deployment_id

    def act() -> ActionResult:
        prefect_actions.set_deployment_paused(api, deployment_id, paused)
        return ActionResult(True, f"{verb} deployment '{name}'.")

    action = "deployment.pause" if paused else "deployment.resume"
    label = "Pause deployment" if paused else "Resume deployment"
    target = (f"deployment {name}", f"prefect.deployment.{deployment_id}")
    return _perform(api, user, action, label, target, act)


def set_schedule_active(
    api: Api,
    user: User,
    deployment_id: str,
    schedule_id: str,
    active: bool,
    deployment_name: str = "",
) -> ActionResult:
    verb = "Activated" if active else "Paused"
    name = deployment_name or deployment_id

    def act() -> ActionResult:
        prefect_actions.set_schedule_active(api, deployment_id, schedule_id, active)
        return ActionResult(True, f"{verb} a schedule of deployment '{name}'.")

    action = "schedule.resume" if active else "schedule.pause"
    label = "Resume schedule" if active else "Pause schedule"
    target = (f"schedule of {name}", f"prefect.deployment.{deployment_id}")
    return _perform(api, user, action, label, target, act)


# ---- deliveries -------------------------------------------------------------------------


def approve_held(
    api: Api,
    user: User,
    ids: Iterable[str],
    subscription: str | None = None,
    ledger: Ledger | None = None,
) -> ActionResult:
    """Approve held ledger rows: they are sent on the subscription's next run, not now.

    Only rows still `held` change; `decided_by` records the user. `subscription` names
    where the rows belong, for the message and the audit entry.
    """
    return _decide_held(api, user, ids, True, subscription, ledger)


def discard_held(
    api: Api,
    user: User,
    ids: Iterable[str],
    subscription: str | None = None,
    ledger: Ledger | None = None,
) -> ActionResult:
    """Discard held ledger rows: this version is never sent to those recipients."""
    return _decide_held(api, user, ids, False, subscription, ledger)


def resend_failed(
    api: Api, user: User, subscription: str, ledger: Ledger | None = None
) -> ActionResult:
    """Queue a subscription's failed deliveries again and start a run of its deployment."""
    full_name = deployment_name(DELIVER_FLOW, subscription)

    def act() -> ActionResult:
        try:
            ids = (ledger or Ledger(open_index())).requeue_failed(subscription)
        except ReportError as exc:
            return ActionResult(False, f"Item index unavailable — {exc}")
        if not ids:
            return ActionResult(False, f"'{subscription}' has no failed deliveries to resend.")
        count = f"{len(ids)} failed delivery(ies) of '{subscription}'"
        deployment = prefect_actions.read_deployment(api, full_name)
        if deployment is None:
            return ActionResult(
                False,
                f"Requeued {count}, but no deployment '{full_name}' exists to send them: "
                "run `reportrunner deploy`.",
            )
        run = prefect_actions.start_run(
            api, deployment.id, {"subscription": subscription}, tags=["resend-failed"]
        )
        return ActionResult(True, f"Requeued {count} and started '{run.name}' to send them.")

    target = (f"subscription {subscription}", _subscription_resource(subscription))
    return _perform(api, user, "delivery.resend-failed", "Resend failed deliveries", target, act)


def start_delivery(api: Api, user: User, subscription: str) -> ActionResult:
    """A run of `deliver/<subscription>` now: it sends every row not yet sent (approved too)."""
    full_name = deployment_name(DELIVER_FLOW, subscription)

    def act() -> ActionResult:
        deployment = prefect_actions.read_deployment(api, full_name)
        if deployment is None:
            return ActionResult(
                False, f"No deployment '{full_name}' exists: run `reportrunner deploy`."
            )
        run = prefect_actions.start_run(
            api, deployment.id, {"subscription": subscription}, tags=["dashboard-delivery"]
        )
        return ActionResult(True, f"Started '{run.name}': it sends what '{subscription}' owes.")

    target = (f"subscription {subscription}", _subscription_resource(subscription))
    return _perform(api, user, "delivery.run", "Start a delivery run", target, act)


def _decide_held(
    api: Api,
    user: User,
    ids: Iterable[str],
    approve: bool,
    subscription: str | None,
    ledger: Ledger | None,
) -> ActionResult:
    listed = list(dict.fromkeys(str(i) for i in ids))
    of = f" of '{subscription}'" if subscription else ""
    target = f"{len(listed)} held delivery(ies)" + (f" of {subscription}" if subscription else "")
    verb = "approve" if approve else "discard"

    def act() -> ActionResult:
        if not listed:
            return ActionResult(False, f"No held deliveries selected to {verb}.")
        try:
            book = ledger or Ledger(open_index())
            rows = book.get(listed)
            changed = book.decide(listed, approve, who=user.name)
        except ReportError as exc:
            return ActionResult(False, f"Item index unavailable — {exc}")
        if not changed:
            return ActionResult(
                False,
                f"None of the {len(listed)} deliveries{of} is held any more: nothing changed.",
            )
        left = len(listed) - changed
        rest = f" ({left} no longer held, left as they were)" if left else ""
        which = _which(r for r in rows.values() if r.status == "held")
        if approve:
            return ActionResult(
                True,
                f"{changed} held delivery(ies){of} approved: sent on the subscription's next "
                f"run{rest}. {which}",
            )
        return ActionResult(
            True, f"{changed} held delivery(ies){of} discarded: never sent{rest}. {which}"
        )

    resource = _subscription_resource(subscription) if subscription else None
    label = "Approve held deliveries" if approve else "Discard held deliveries"
    action = "delivery.approve" if approve else "delivery.discard"
    return _perform(api, user, action, label, (target, resource), act)


def _which(rows: Iterable[Any], shown: int = 3) -> str:
    """'To a@x.org: carrier-monthly carrier=AA month=2013-07; …' for the message and audit."""
    listed = sorted(rows, key=lambda r: (r.recipient, r.item_id))
    parts = [f"{r.recipient}: {r.item_id}" for r in listed[:shown]]
    more = f"; and {len(listed) - shown} more" if len(listed) > shown else ""
    return f"To {'; '.join(parts)}{more}." if parts else ""


def _subscription_resource(subscription: str) -> str:
    return f"reportrunner.subscription.{subscription}"


# ---- helpers ----------------------------------------------------------------------------


def _perform(
    api: Api,
    user: User,
    action: str,
    label: str,
    target: tuple[str, str | None],
    act: Callable[[], ActionResult],
) -> ActionResult:
    """Check the role, act, audit the outcome; every failure becomes a one-line result."""
    what, resource = target
    try:
        require(user, OPERATOR, label)
    except PermissionDenied as exc:
        record(api, user, action, what, False, str(exc), resource, outcome="denied")
        return ActionResult(False, str(exc))
    try:
        with api.guard(f"{label.lower()} ({what})"):
            result = act()
    except ApiUnavailable as exc:
        result = ActionResult(False, str(exc))
    if not record(api, user, action, what, result.ok, result.message, resource):
        result = ActionResult(result.ok, f"{result.message} (audit entry not recorded)")
    return result


def _not_retryable(run: Any, need_deployment: bool = True) -> str | None:
    kind = prefect_actions.state_type(run)
    if kind not in RETRYABLE:
        return (
            f"'{run.name}' is {run.state_name or kind}: only failed, crashed or cancelled "
            "runs can be retried."
        )
    if need_deployment and not run.deployment_id:
        return (
            f"'{run.name}' was not started from a deployment, so no worker can pick a retry "
            "up; start it again instead."
        )
    return None


def _run_target(run_id: str) -> tuple[str, str]:
    return f"flow run {run_id}", f"prefect.flow-run.{run_id}"
