"""The sidebar's shared settings: time window and auto-refresh (session state, with defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import streamlit as st

from dashboard.formatting import window_label

WINDOW_HOURS = [1, 6, 24, 24 * 7, 24 * 30]
REFRESH_SECONDS = [2, 5, 10, 30, 60]
DEFAULT_WINDOW_HOURS = 24
DEFAULT_REFRESH_S = 5

_WINDOW = "window_hours"
_AUTO = "auto_refresh"
_EVERY = "refresh_s"


@dataclass(frozen=True)
class ViewSettings:
    window: timedelta
    auto_refresh: bool
    refresh_s: int

    @property
    def run_every(self) -> int | None:
        """What `st.fragment(run_every=…)` takes: seconds, or None when paused."""
        return self.refresh_s if self.auto_refresh else None


def current() -> ViewSettings:
    """The settings chosen in the sidebar, or the defaults when it has not run."""
    state = st.session_state
    return ViewSettings(
        window=timedelta(hours=state.get(_WINDOW, DEFAULT_WINDOW_HOURS)),
        auto_refresh=bool(state.get(_AUTO, True)),
        refresh_s=int(state.get(_EVERY, DEFAULT_REFRESH_S)),
    )


def sidebar() -> None:
    """The window chooser and the refresh controls."""
    with st.sidebar:
        st.selectbox(
            "Time window",
            WINDOW_HOURS,
            index=WINDOW_HOURS.index(DEFAULT_WINDOW_HOURS),
            format_func=window_label,
            key=_WINDOW,
            help="KPIs count the runs expected to start in this window and compare them "
            "with the window of the same length before it.",
        )
        st.toggle(
            "Auto-refresh",
            value=True,
            key=_AUTO,
            help="Reload the figures in the background. Switch off to read a page at rest.",
        )
        # A selectbox, not a select slider: the slider's code costs every page's load.
        st.selectbox(
            "Refresh every",
            REFRESH_SECONDS,
            index=REFRESH_SECONDS.index(DEFAULT_REFRESH_S),
            format_func=lambda s: f"{s} s",
            key=_EVERY,
            disabled=not st.session_state.get(_AUTO, True),
            help="Each refresh costs a small, fixed number of Prefect API calls.",
        )
