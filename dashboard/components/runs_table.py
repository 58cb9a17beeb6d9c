"""The table of flow runs, with state icons and links, whose rows can be selected."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.api import RunRow, RunsPage
from dashboard.formatting import duration, naive_utc, state_label


def runs_table(page: RunsPage, key: str = "runs_table") -> list[RunRow]:
    """One page of runs, each linked to its detail page; returns the rows selected."""
    if not page.rows:
        st.info("No runs match these filters.")
        return []
    frame = pd.DataFrame(
        [
            {
                "Detail": f"run?id={row.id}",
                "State": state_label(row.state_type, row.state_name),
                "Name": row.name,
                "Flow": row.flow,
                "Deployment": row.deployment,
                "Expected start": naive_utc(row.expected_start),
                "Start": naive_utc(row.start),
                "Finish": naive_utc(row.end),
                "Duration": duration(row.duration_s),
                "Progress": row.progress,
                "Work pool": row.work_pool,
                "Queue": row.work_queue,
                "Tags": ", ".join(row.tags),
                "Message": row.message,
            }
            for row in page.rows
        ]
    )
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key=key,
        on_select="rerun",
        selection_mode="multi-row",
        column_config={
            "Detail": st.column_config.LinkColumn(
                display_text="Open", help="The run's detail page", width="small"
            ),
            "State": st.column_config.TextColumn(help="Icon and name of the run's state"),
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
