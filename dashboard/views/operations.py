"""Operations: work pools, queues, deployments with schedules, workers, and the audit log.

Operators pause and resume pools, queues, deployments and schedules, each after a
confirmation; analysts read the same page without the buttons. Every action goes
through `dashboard.actions`, which checks the role and writes the audit entry.
What is read is shared by every viewer for their refresh interval
(`dashboard.components.shared`); "Refresh" and every action read it again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import actions, auth
from dashboard.api import (
    ApiConfig,
    ApiUnavailable,
    AuditEntry,
    DeploymentRow,
    Operations,
    connect,
    operations,
)
from dashboard.components import api_banner, shared
from dashboard.formatting import clock, pool_label

_PENDING = "ops_pending"  # {"kind", "args", "question"} awaiting confirmation, per user
_RESULT = "ops_result"  # (ok, message) of the last action, shown once
AUDIT_ROWS = 100
OUTCOME_LABELS = {"ok": "✅ done", "failed": "❌ failed", "denied": "⛔ denied"}
WORKER_LABELS = {"ONLINE": "✅ online", "OFFLINE": "⚠️ offline"}

user = auth.current_user()
st.title("Operations")
if not user.is_operator:
    st.info(f"Read-only: pausing and resuming need the operator role; you are an {user.role}.")
refresh = st.button(
    "Refresh", key="ops_refresh", help="Read pools, queues, workers and the audit again."
)
config = ApiConfig.from_env()


def _ask(kind: str, question: str, **args: Any) -> None:
    auth.ask(_PENDING, {"kind": kind, "args": args, "question": question})
    st.rerun()  # the confirmation is drawn at the top of the page


def _toggle(
    slot: Any, label: str, *, key: str, help: str, kind: str, question: str, **args: Any
) -> None:
    """An operator's pause/resume button; the action waits for a confirmation."""
    if user.is_operator and slot.button(label, key=key, help=help):
        _ask(kind, question, **args)


def _act(api: Any, pending: dict) -> actions.ActionResult:
    args = pending["args"]
    kind = pending["kind"]
    if kind == "pool":
        return actions.set_pool_paused(api, user, args["name"], args["paused"])
    if kind == "queue":
        return actions.set_queue_paused(api, user, args["id"], args["paused"], args["name"])
    if kind == "deployment":
        return actions.set_deployment_paused(api, user, args["id"], args["paused"], args["name"])
    return actions.set_schedule_active(
        api, user, args["deployment_id"], args["id"], args["active"], args["name"]
    )


def _confirmation() -> None:
    pending = auth.pending(_PENDING)
    if not pending:
        return
    with st.container(border=True):
        st.warning(pending["question"], icon="❓")
        yes, no, _ = st.columns([1, 1, 4])
        if yes.button("Confirm", key="ops_confirm", type="primary", help="Do it now."):
            auth.forget(_PENDING)
            try:
                with connect(config) as api:
                    result = _act(api, pending)
            except ApiUnavailable as exc:
                result = actions.ActionResult(False, str(exc))
            shared.forget()  # every page shows what the action changed
            st.session_state[_RESULT] = (result.ok, result.message)
            st.rerun()
        if no.button("Keep as is", key="ops_keep", help="Close this question; nothing changes."):
            auth.forget(_PENDING)
            st.rerun()


def _pools(data: Operations) -> None:
    st.subheader("Work pools")
    if not data.pools:
        st.caption("No work pool exists: run `reportrunner deploy`.")
    for pool in data.pools:
        name, status, limit, button = st.columns([3, 2, 2, 2])
        name.markdown(f"**{pool.name}** · {pool.type}")
        status.markdown(pool_label(pool.status))
        limit.caption(f"Concurrency: {pool.concurrency_limit or 'unlimited'}")
        verb = "Resume" if pool.paused else "Pause"
        _toggle(
            button,
            verb,
            key=f"pool_toggle_{pool.name}",
            help=f"{verb} work pool {pool.name}: while paused, workers start none of its runs.",
            kind="pool",
            question=f"{verb} work pool '{pool.name}'?",
            name=pool.name,
            paused=not pool.paused,
        )


def _queues(data: Operations) -> None:
    st.subheader("Work queues")
    if not data.queues:
        st.caption("No work queue.")
    for queue in data.queues:
        name, priority, limit, status, button = st.columns([3, 1, 2, 2, 2])
        name.markdown(f"**{queue.name}** · {queue.pool or '–'}")
        priority.caption(f"Priority {queue.priority if queue.priority is not None else '–'}")
        limit.caption(f"Concurrency: {queue.concurrency_limit or 'unlimited'}")
        status.markdown("⏸️ paused" if queue.paused else "▶️ active")
        verb = "Resume" if queue.paused else "Pause"
        _toggle(
            button,
            verb,
            key=f"queue_toggle_{queue.id}",
            help=f"{verb} queue {queue.name}: while paused, its runs wait.",
            kind="queue",
            question=f"{verb} work queue '{queue.name}' of pool '{queue.pool}'?",
            id=queue.id,
            name=queue.name,
            paused=not queue.paused,
        )


def _deployments(data: Operations) -> None:
    st.subheader("Deployments and schedules")
    if not data.deployments:
        st.caption("No deployment: run `reportrunner deploy`.")
    for deployment in data.deployments:
        _deployment(deployment)


def _deployment(deployment: DeploymentRow) -> None:
    title = f"{deployment.flow}/{deployment.name}" if deployment.flow else deployment.name
    name, status, schedules, button = st.columns([3, 2, 4, 2])
    name.markdown(f"**{title}**")
    status.markdown("⏸️ paused" if deployment.paused else "▶️ active")
    if not deployment.schedules:
        schedules.caption("On demand (no schedule)")
    for schedule in deployment.schedules:
        state = "▶️ active" if schedule.active else "⏸️ paused"
        schedules.caption(f"{schedule.text} ({schedule.timezone or 'UTC'}) — {state}")
        verb = "Pause" if schedule.active else "Resume"
        _toggle(
            schedules,
            f"{verb} schedule",
            key=f"schedule_toggle_{schedule.id}",
            help=f"{verb} this schedule only; runs started by hand are not affected.",
            kind="schedule",
            question=f"{verb} the schedule '{schedule.text}' of deployment '{title}'?",
            deployment_id=deployment.id,
            id=schedule.id,
            name=title,
            active=not schedule.active,
        )
    verb = "Resume" if deployment.paused else "Pause"
    _toggle(
        button,
        verb,
        key=f"deployment_toggle_{deployment.id}",
        help=f"{verb} deployment {title} with all its schedules.",
        kind="deployment",
        question=f"{verb} deployment '{title}' with all its schedules?",
        id=deployment.id,
        name=title,
        paused=not deployment.paused,
    )


def _workers(data: Operations) -> None:
    st.subheader("Workers")
    if not data.workers:
        st.caption("No worker has ever polled these pools: start one with `reportrunner worker`.")
        return
    frame = pd.DataFrame(
        [
            {
                "Status": WORKER_LABELS.get(w.status, f"❔ {w.status.lower()}"),
                "Worker": w.name,
                "Work pool": w.pool,
                "Last heartbeat": clock(w.last_heartbeat),
            }
            for w in data.workers
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="ops_workers")


def _audit(entries: list[AuditEntry]) -> None:
    st.subheader("Audit")
    st.caption(
        "Dashboard actions, newest first, recorded as Prefect events `reportrunner.dashboard.*` "
        f"(latest {AUDIT_ROWS}; new entries appear within a few seconds)."
    )
    if not entries:
        st.caption("No dashboard action recorded yet.")
        return
    frame = pd.DataFrame(
        [
            {
                "When": clock(e.occurred),
                "Who": e.user,
                "Role": e.role,
                "Action": e.action,
                "Target": e.target,
                "Outcome": OUTCOME_LABELS.get(e.outcome, f"❔ {e.outcome}"),
                "Message": e.message,
            }
            for e in entries
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="ops_audit")


def _read() -> tuple[Operations, list[AuditEntry]]:
    with connect(config) as api:
        return operations(api), actions.audit_log(api, AUDIT_ROWS)


def _page() -> None:
    result = st.session_state.pop(_RESULT, None)
    if result is not None:
        (st.success if result[0] else st.error)(result[1])
    _confirmation()
    fresh_for = 0.0 if refresh or result is not None else shared.max_age()
    try:
        data, entries = shared.fresh(("operations", config), fresh_for, _read)
    except ApiUnavailable as exc:
        api_banner(str(exc))
        return
    _pools(data)
    _queues(data)
    _deployments(data)
    _workers(data)
    for note in data.notes:
        st.caption(note)
    _audit(entries)


_page()
