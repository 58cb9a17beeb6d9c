"""The table of flow runs, with state icons and links, whose rows can be selected."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.api import RunRow, RunsPage
from dashboard.formatting import deployment_text, duration, naive_utc, state_label

# Widths that keep the run, its state and its message on screen in a 1280 px window
# (the table is 820 px wide there): the rest of the columns scroll.
NAME_PX = 260
MESSAGE_PX = 360  # the state's message, a failed run's error: click a cell for all of it
# What a reader looks for first comes first: which run, how it ended, and why.
COLUMNS = [
    "Detail",
    "State",
    "Name",
    "Message",
    "Start",
    "Duration",
    "Progress",
    "Deployment",
    "Flow",
    "Expected start",
    "Finish",
    "Work pool",
    "Queue",
    "Tags",
]


def runs_frame(rows: list[RunRow]) -> pd.DataFrame:
    """One row per run, in `COLUMNS` order; text cells hold text, never the word 'None'."""
    return pd.DataFrame(
        [
            {
                "Detail": f"run?id={row.id}",
                "State": state_label(row.state_type, row.state_name),
                "Name": row.name,
                "Message": row.message or "",
                "Start": naive_utc(row.start),
                "Duration": duration(row.duration_s),
                "Progress": row.progress,
                "Deployment": deployment_text(row.deployment, row.nested),
                "Flow": row.flow or "–",
                "Expected start": naive_utc(row.expected_start),
                "Finish": naive_utc(row.end),
                "Work pool": row.work_pool or "–",
                "Queue": row.work_queue or "–",
                "Tags": ", ".join(row.tags),
            }
            for row in rows
        ],
        columns=COLUMNS,
    )


def runs_table(page: RunsPage, key: str = "runs_table") -> list[RunRow]:
    """One page of runs, each linked to its detail page; returns the rows selected."""
    if not page.rows:
        st.info("No runs match these filters.")
        return []
    event = st.dataframe(
        runs_frame(page.rows),
        hide_index=True,
        width="stretch",
        key=key,
        on_select="rerun",
        selection_mode="multi-row",
        placeholder="–",  # a time not reached yet, no progress artifact
        column_config={
            "Detail": st.column_config.LinkColumn(
                display_text="Open", help="The run's detail page", width=56
            ),
            "State": st.column_config.TextColumn(
                help="Icon and name of the run's state", width=110
            ),
            "Name": st.column_config.TextColumn(width=NAME_PX),
            "Message": st.column_config.TextColumn(
                "Message / error",
                width=MESSAGE_PX,
                help="The state's message: a failed run's error. Click a cell to read it all.",
            ),
            "Deployment": st.column_config.TextColumn(
                help="flow/deployment; — (CLI): started from the command line, without one"
            ),
            "Expected start": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "Start": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "Finish": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "Progress": st.column_config.ProgressColumn(
                min_value=0, max_value=100, format="%.0f %%", help="Latest progress artifact"
            ),
        },
    )
    chosen = event.selection.rows if event is not None else []
    return [page.rows[i] for i in chosen if 0 <= i < len(page.rows)]
