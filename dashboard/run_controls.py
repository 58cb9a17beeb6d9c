"""Operator buttons for one run: retry, cancel, delete, and "Retry N failed items" of a batch.

Every button asks for a confirmation that states what and how many; the action
itself goes through `dashboard.actions`, which checks the role and writes the audit
entry, so an analyst who reaches a confirmation anyway is refused there.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard import actions, auth
from dashboard.api import ApiUnavailable, connect
from dashboard.components import api_banner
from reports.contracts import BATCH_FLOW

_PENDING = "run_controls_pending"  # (run id, action) awaiting confirmation, per user
_RESULT = "run_controls_result"  # (ok, message) of the last action, shown once


@dataclass(frozen=True)
class RunControlsTarget:
    id: str
    name: str
    state_type: str  # FAILED, RUNNING, …
    flow: str | None = None  # "batch" offers "Retry N failed items"


def run_controls(run: RunControlsTarget) -> None:
    """The buttons, the pending confirmation and the last action's result for `run`."""
    user = auth.current_user()
    _last_result()
    failed = _failed_count(run)
    if user.is_operator:
        _buttons(run, failed)
    else:
        st.caption(f"Retry, cancel and delete need the operator role; you are an {user.role}.")
    pending = auth.pending(_PENDING)
    if pending and pending[0] == run.id:
        _confirm(run, pending[1], failed, user)


def _buttons(run: RunControlsTarget, failed: int | None) -> None:
    kind = run.state_type.upper()
    cols = st.columns(4)
    choices = [
        (
            "retry",
            "🔁 Retry",
            kind not in actions.RETRYABLE,
            "Run it again (failed, crashed or cancelled runs from a deployment).",
        ),
        (
            "cancel",
            "⏹️ Cancel",
            kind not in actions.CANCELLABLE,
            "Stop a run that has not finished; its worker ends the process.",
        ),
        ("delete", "🗑️ Delete", False, "Remove the run with its logs and artifacts."),
    ]
    if run.flow == BATCH_FLOW:
        label = f"🔁 Retry {failed or 0} failed items"
        choices.append(
            (
                "retry-failed",
                label,
                not failed or kind not in actions.RETRYABLE,
                "Render again only the items that failed; unchanged items are skipped.",
            )
        )
    for col, (action, label, disabled, help_text) in zip(cols, choices, strict=False):
        if col.button(label, key=f"run_{action}", disabled=disabled, help=help_text):
            auth.ask(_PENDING, (run.id, action))


def _confirm(run: RunControlsTarget, action: str, failed: int | None, user: auth.User) -> None:
    questions = {
        "retry": f"Retry run '{run.name}'? It runs again from the start.",
        "cancel": f"Cancel run '{run.name}'?",
        "delete": f"Delete 1 run ('{run.name}') with its logs and artifacts? "
        "This cannot be undone.",
        "retry-failed": f"Retry {failed or 0} failed items of '{run.name}'? "
        "Items that succeeded are not rendered again.",
    }
    with st.container(border=True):
        st.warning(questions[action], icon="❓")
        yes, no, _ = st.columns([1, 1, 4])
        if yes.button("Confirm", key="run_confirm", type="primary", help="Do it now."):
            auth.forget(_PENDING)
            result = _perform(run, action, user)
            st.session_state[_RESULT] = (result.ok, result.message)
            st.rerun()
        if no.button("Keep as is", key="run_keep", help="Close this question; nothing changes."):
            auth.forget(_PENDING)
            st.rerun()


def _perform(run: RunControlsTarget, action: str, user: auth.User) -> actions.ActionResult:
    try:
        with connect() as api:
            if action == "retry":
                return actions.retry_run(api, user, run.id)
            if action == "cancel":
                return actions.cancel_run(api, user, run.id)
            if action == "delete":
                return actions.delete_runs(api, user, [run.id])
            return actions.retry_failed_items(api, user, run.id)
    except ApiUnavailable as exc:
        return actions.ActionResult(False, str(exc))


def _failed_count(run: RunControlsTarget) -> int | None:
    """How many items failed, for a finished batch; None when not a batch or unreadable."""
    if run.flow != BATCH_FLOW or run.state_type.upper() not in actions.RETRYABLE:
        return None
    try:
        with connect() as api:
            return len(actions.failed_items(api, run.id))
    except ApiUnavailable as exc:
        api_banner(str(exc))
        return None


def _last_result() -> None:
    result = st.session_state.pop(_RESULT, None)
    if result is not None:
        ok, message = result
        (st.success if ok else st.error)(message)
