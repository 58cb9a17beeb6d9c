"""Overview: health, KPIs against the previous window, runs over time, active batches."""

from __future__ import annotations

import streamlit as st

from dashboard import components, controls
from dashboard.api import ApiUnavailable, Overview, Window, connect, overview
from dashboard.formatting import clock, window_label

_LAST = "overview_last_good"

settings = controls.current()
window_text = window_label(settings.window.total_seconds() / 3600)
st.title("Overview")


def _render(data: Overview) -> None:
    st.subheader("Health")
    components.health_strip(data.health)
    st.subheader(f"Runs in the {window_text}")
    components.kpi_tiles(data.kpis, window_text)
    components.runs_chart(data.history, since=data.window.start)
    st.subheader("Active batches")
    components.active_batches(data.batches)
    st.caption(f"Updated {clock(data.health.checked_at)} with {data.calls} Prefect API calls.")


@st.fragment(run_every=settings.run_every)
def _live() -> None:
    try:
        with connect() as api:
            data = overview(api, Window.last(settings.window))
    except ApiUnavailable as exc:
        last: Overview | None = st.session_state.get(_LAST)
        components.api_banner(str(exc), last.health.checked_at if last else None)
        if last is not None:
            _render(last)
        return
    st.session_state[_LAST] = data
    _render(data)
    if not settings.auto_refresh:
        st.button("Refresh now", help="Auto-refresh is off: read the figures again.")


_live()
