"""Runs: every flow run, filtered, counted and paginated by the Prefect server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard import components, controls
from dashboard.api import (
    ApiConfig,
    ApiUnavailable,
    FilterChoices,
    RunQuery,
    connect,
    filter_choices,
    runs_page,
)
from dashboard.formatting import STATE_TYPES, state_label, window_label

PAGE_SIZES = [25, 50, 100, 200]
RANGES_H = [1, 6, 24, 24 * 7, 24 * 30, 0]  # 0: any time
_PAGE_NO = "runs_page_no"
_QUERY_SEEN = "runs_query_seen"

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

with st.expander("Filters", expanded=True):
    search = st.text_input(
        "Search by business key or name",
        key="runs_search",
        placeholder="carrier=AA",
        help="Part of the run name, e.g. carrier=AA or month=2013-07 (case-insensitive).",
    )
    first, second, third = st.columns(3)
    flows = first.multiselect("Report flow", choices.flows, key="runs_flows")
    deployments = first.multiselect("Deployment", choices.deployments, key="runs_deployments")
    states = second.multiselect(
        "State",
        STATE_TYPES,
        format_func=state_label,
        key="runs_states",
        help="Failed and crashed runs did not deliver; cancelled runs were stopped by someone.",
    )
    hours = second.selectbox(
        "Expected start",
        RANGES_H,
        index=RANGES_H.index(24),
        format_func=lambda h: "any time" if h == 0 else window_label(h),
        key="runs_range_h",
    )
    pools = third.multiselect("Work pool", choices.work_pools, key="runs_pools")
    queues = third.multiselect("Work queue", choices.work_queues, key="runs_queues")
    tags_text = st.text_input(
        "Tags", key="runs_tags", placeholder="chunk, report:carrier-monthly", help="All must match."
    )
    page_size = st.selectbox("Runs per page", PAGE_SIZES, index=1, key="runs_page_size")

filters = RunQuery(
    flows=tuple(flows),
    deployments=tuple(deployments),
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


@st.fragment(run_every=settings.run_every)
def _table() -> None:
    number = st.session_state.get(_PAGE_NO, 0)
    since = datetime.now(UTC) - timedelta(hours=hours) if hours else None
    query = replace(filters, since=since, offset=number * page_size)
    try:
        with connect(config) as api:
            page = runs_page(api, query)
    except ApiUnavailable as exc:
        components.api_banner(str(exc))
        return
    if page.rows:
        shown = f"Runs {page.offset + 1:,}–{page.offset + len(page.rows):,} of {page.total:,}"
    else:
        shown = f"{page.total:,} runs"
    st.markdown(f"**{shown}**")
    components.runs_table(page)
    back, forward, _ = st.columns([1, 1, 6])
    back.button("← Previous", key="runs_prev", disabled=number == 0, on_click=_turn, args=(-1,))
    forward.button("Next →", key="runs_next", disabled=not page.has_next, on_click=_turn, args=(1,))


_table()
