"""Runs: every flow run, filtered, counted and paginated by the Prefect server.

Select one run to open its detail page; operators select several for bulk retry,
cancel or delete, each confirmed with the count and audited by `dashboard.actions`.
A page of runs is shared by every viewer of the same filters for their refresh
interval (`dashboard.components.shared`); an action reads it again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard import actions, auth, components, controls
from dashboard.api import (
    ApiConfig,
    ApiUnavailable,
    FilterChoices,
    RunQuery,
    RunRow,
    RunsPage,
    connect,
    filter_choices,
    runs_page,
)
from dashboard.components import shared
from dashboard.formatting import STATE_TYPES, state_label, window_label
from reports.contracts import BATCH_FLOW, CHUNK_FLOW, REPORT_FLOW

PAGE_SIZES = [25, 50, 100, 200]
WINDOW, ANY_TIME = -1, 0  # expected start: the sidebar's time window, or any time
KINDS = {REPORT_FLOW: "single report", BATCH_FLOW: "batch", CHUNK_FLOW: "chunk of a batch"}
_PAGE_NO = "runs_page_no"
_QUERY_SEEN = "runs_query_seen"
_PENDING = "runs_pending"  # {"action", "ids", "skipped"} awaiting confirmation, per user
_RESULT = "runs_result"  # (ok, message) of the last bulk action, shown once
_GENERATION = "runs_table_generation"  # a new table key drops the selection after an action
BULK = {  # action → (button label, which states it applies to; None: any)
    "retry": ("🔁 Retry", actions.RETRYABLE),
    "cancel": ("⏹️ Cancel", actions.CANCELLABLE),
    "delete": ("🗑️ Delete", None),
}

settings = controls.current()
st.title("Runs")


@st.cache_data(ttl=60, show_spinner=False)
def _choices(config: ApiConfig) -> FilterChoices:
    """Names for the filters; cached a minute for every viewer (they rarely change)."""
    with connect(config) as api:
        return filter_choices(api)


config = ApiConfig.from_env()
try:
    choices = _choices(config)
except ApiUnavailable as exc:
    components.api_banner(str(exc))
    choices = FilterChoices(flows=[], deployments=[], work_pools=[], work_queues=[])

window_text = window_label(settings.window.total_seconds() / 3600)


def _kind(flow: str) -> str:
    """'batch (flow batch)'; flows that are not a report's keep their own name."""
    return f"{KINDS[flow]} (flow {flow})" if flow in KINDS else f"other flow: {flow}"


def _when(choice: int) -> str:
    return "any time" if choice == ANY_TIME else f"in the time window ({window_text})"


with st.expander("Filters", expanded=True):
    search = st.text_input(
        "Search by business key or name",
        key="runs_search",
        placeholder="carrier=AA",
        help="Part of the run name, e.g. carrier=AA or month=2013-07 (case-insensitive).",
    )
    first, second, third = st.columns(3)
    report = first.selectbox(
        "Report",
        ["", *choices.reports],
        format_func=lambda name: name or "every report",
        key="runs_report",
        help="Single runs, batches and chunks of one report, from a deployment or the CLI "
        "(by run name: a run waiting for its schedule is named when it starts).",
    )
    flows = first.multiselect(
        "Kind",
        [f for f in KINDS if f in choices.flows] + [f for f in choices.flows if f not in KINDS],
        format_func=_kind,
        key="runs_flows",
        help="A single report run, a batch, or one chunk of a batch (each a Prefect flow).",
    )
    deployments = first.multiselect(
        "Deployment",
        choices.deployments,
        key="runs_deployments",
        help="flow/deployment: report/… runs one report, batch/… runs a batch. Runs "
        "started from the CLI have no deployment.",
    )
    states = second.multiselect(
        "State",
        STATE_TYPES,
        format_func=state_label,
        key="runs_states",
        help="Failed and crashed runs did not deliver; cancelled runs were stopped by someone.",
    )
    when = second.selectbox(
        "Expected start",
        [WINDOW, ANY_TIME],
        format_func=_when,
        key="runs_range_h",
        help="The time window is the sidebar's: change it there.",
    )
    pools = third.multiselect("Work pool", choices.work_pools, key="runs_pools")
    queues = third.multiselect("Work queue", choices.work_queues, key="runs_queues")
    tags_text = st.text_input(
        "Tags", key="runs_tags", placeholder="chunk, report:carrier-monthly", help="All must match."
    )
    page_size = st.selectbox("Runs per page", PAGE_SIZES, index=1, key="runs_page_size")

hours = 0.0 if when == ANY_TIME else settings.window.total_seconds() / 3600
filters = RunQuery(
    flows=tuple(flows),
    deployment_ids=tuple(
        choices.deployment_ids[d] for d in deployments if d in choices.deployment_ids
    ),
    report=report,
    state_types=tuple(states),
    work_pools=tuple(pools),
    work_queues=tuple(queues),
    tags=tuple(t.strip() for t in tags_text.split(",") if t.strip()),
    search=search.strip(),
    limit=page_size,
)
if st.session_state.get(_QUERY_SEEN) != (filters, hours):  # new filters: back to page 1
    st.session_state[_QUERY_SEEN] = (filters, hours)
    st.session_state[_PAGE_NO] = 0


def _turn(step: int) -> None:
    st.session_state[_PAGE_NO] = max(0, st.session_state.get(_PAGE_NO, 0) + step)


def _read_page(offset: int) -> RunsPage:
    since = datetime.now(UTC) - timedelta(hours=hours) if hours else None
    with connect(config) as api:
        return runs_page(api, replace(filters, since=since, offset=offset), known=choices)


@st.fragment(run_every=settings.run_every)
def _table() -> None:
    number = st.session_state.get(_PAGE_NO, 0)
    # Just acted: read again (the action also dropped every shared answer).
    fresh_for = 0.0 if st.session_state.get(_RESULT) else shared.max_age()
    key = ("runs", config, filters, hours, number * page_size)
    try:
        page = shared.fresh(key, fresh_for, lambda: _read_page(number * page_size))
    except ApiUnavailable as exc:
        components.api_banner(str(exc))
        return
    if page.rows:
        shown = f"Runs {page.offset + 1:,}–{page.offset + len(page.rows):,} of {page.total:,}"
    else:
        shown = f"{page.total:,} runs"
    st.markdown(f"**{shown}** expected to start {_when(when)}")
    _last_result()
    selected = components.runs_table(page, key=f"runs_table_{st.session_state.get(_GENERATION, 0)}")
    _selection_bar(selected)
    back, forward, _ = st.columns([1, 1, 6])
    back.button("← Previous", key="runs_prev", disabled=number == 0, on_click=_turn, args=(-1,))
    forward.button("Next →", key="runs_next", disabled=not page.has_next, on_click=_turn, args=(1,))


def _selection_bar(rows: list[RunRow]) -> None:
    """Open one selected run; for operators, bulk actions over every selected run."""
    if not rows:
        st.caption("Select a run to open it; operators select several to act on them.")
        return
    user = auth.current_user()
    cols = st.columns(4)
    if len(rows) == 1 and cols[0].button(
        "🔎 Open", key="runs_open", help="Show this run's detail page."
    ):
        st.switch_page("views/run_detail.py", query_params={"id": rows[0].id})
    if not user.is_operator:
        st.caption(f"Bulk retry, cancel and delete need the operator role; you are an {user.role}.")
        return
    for col, (action, (label, states)) in zip(cols[1:], BULK.items(), strict=True):
        eligible = [r for r in rows if states is None or r.state_type in states]
        if col.button(
            f"{label} {len(eligible)}",
            key=f"runs_bulk_{action}",
            disabled=not eligible,
            help=f"{label[2:]} the selected runs this applies to ({len(eligible)} of {len(rows)}).",
        ):
            auth.ask(
                _PENDING,
                {
                    "action": action,
                    "ids": [r.id for r in eligible],
                    "skipped": len(rows) - len(eligible),
                },
            )
    _confirm_bulk(user)


def _confirm_bulk(user: auth.User) -> None:
    pending = auth.pending(_PENDING)
    if not pending:
        return
    count, skipped = len(pending["ids"]), pending["skipped"]
    question = {
        "retry": f"Retry {count} run(s)? They run again from the start.",
        "cancel": f"Cancel {count} run(s)?",
        "delete": f"Delete {count} run(s) with their logs and artifacts? This cannot be undone.",
    }[pending["action"]]
    if skipped:
        question += f" {skipped} selected run(s) do not apply and are left alone."
    with st.container(border=True):
        st.warning(question, icon="❓")
        yes, no, _ = st.columns([1, 1, 4])
        if yes.button("Confirm", key="runs_confirm", type="primary", help="Do it now."):
            auth.forget(_PENDING)
            st.session_state[_RESULT] = _bulk(user, pending["action"], pending["ids"])
            st.session_state[_GENERATION] = st.session_state.get(_GENERATION, 0) + 1
            st.rerun()
        if no.button("Keep as is", key="runs_keep", help="Close this question; nothing changes."):
            auth.forget(_PENDING)
            st.rerun()


def _bulk(user: auth.User, action: str, ids: list[str]) -> tuple[bool, str]:
    """Each run is its own audited action, except delete (one call, one audit entry)."""
    try:
        with connect(config) as api:
            if action == "delete":
                result = actions.delete_runs(api, user, ids)
                return result.ok, result.message
            act = actions.retry_run if action == "retry" else actions.cancel_run
            results = [act(api, user, run_id) for run_id in ids]
    except ApiUnavailable as exc:
        return False, str(exc)
    finally:
        shared.forget()  # every page shows the runs as they are after the action
    done = sum(r.ok for r in results)
    verb = "Retried" if action == "retry" else "Cancelling"
    message = f"{verb} {done} of {len(ids)} run(s)."
    refused = next((r.message for r in results if not r.ok), None)
    if refused:
        message += f" First refusal: {refused}"
    return done == len(ids), message


def _last_result() -> None:
    result = st.session_state.pop(_RESULT, None)
    if result is not None:
        (st.success if result[0] else st.error)(result[1])


_table()
