"""Overview pieces about report items: figures in reports, and the recent batches."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.api._items import RecentBatch, ReportFigures, age, batch_link
from dashboard.formatting import count, duration, state_label
from reports.contracts import status_label


def report_figure_tiles(figures: ReportFigures, window_text: str) -> None:
    """Reports, not runs: a 192-item batch counts 192 here, whatever runs it took."""
    tiles = [
        (status_label("rendered"), figures.rendered, "items rendered (new or changed outputs)"),
        (status_label("unchanged"), figures.unchanged, "items found current and skipped"),
        (status_label("failed"), figures.failed, "items that failed"),
        (status_label("flagged"), figures.flagged, "items rendered with a quality warning"),
    ]
    cols = st.columns(len(tiles) + 1)
    for col, (label, value, meaning) in zip(cols, tiles, strict=False):
        col.metric(label, count(value), help=f"Report {meaning} in the {window_text}.")
    cols[-1].metric(
        "Median render",
        duration(figures.median_render_s),
        help="The median, over reports, of each report's median render time in the window.",
    )
    if len(figures.by_report) > 1:
        by_report = st.expander("By report", key="report_figures_by_report", on_change="rerun")
        with by_report:
            if not by_report.open:  # drawn only when opened
                return
            st.dataframe(
                pd.DataFrame(
                    {
                        "Report": [r.report for r in figures.by_report],
                        "Rendered": [r.rendered for r in figures.by_report],
                        "Unchanged": [r.unchanged for r in figures.by_report],
                        "Failed": [r.failed for r in figures.by_report],
                        "Flagged": [r.flagged for r in figures.by_report],
                        "Median render": [duration(r.median_render_s) for r in figures.by_report],
                    }
                ),
                hide_index=True,
            )


def recent_batches_table(batches: list[RecentBatch]) -> None:
    """Running batches first, then the latest ended ones with their outcome."""
    if not batches:
        st.caption("No batch has run yet.")
        return
    frame = pd.DataFrame(
        {
            "Batch": [b.batch.name for b in batches],
            "State": [state_label(b.state.type, b.state.name) for b in batches],
            "Done": [f"{b.batch.done:,} of {b.batch.total:,}" for b in batches],
            "Failed": [b.batch.counts.get("failed", 0) for b in batches],
            "Started": [age(b.batch.started_at) for b in batches],
            "Open": [batch_link(b.batch.batch_id) for b in batches],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "Batch": st.column_config.TextColumn(width="large"),
            "Open": st.column_config.LinkColumn(display_text="open batch", width="small"),
        },
    )
