"""Charts of runs over time by state and run time by report; colour never carries a state alone."""

from __future__ import annotations

from datetime import datetime

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.api import HistoryBucket, ReportDuration
from dashboard.formatting import duration, naive_utc, state_label

# Colour backs up the legend's icon and name; it never carries the state alone. Mid-tones
# with at least 3:1 contrast on both Streamlit themes' backgrounds (tests check it).
STATE_COLOURS = {
    "COMPLETED": "#2e8b57",
    "FAILED": "#e53935",
    "CRASHED": "#d81b60",
    "RUNNING": "#2b7bd6",
    "PENDING": "#9b59b6",
    "SCHEDULED": "#c75b00",
    "PAUSED": "#8d6e63",
    "CANCELLING": "#808080",
    "CANCELLED": "#6d6d6d",
}
DURATION_COLOURS = {"Median": "#2b7bd6", "90th percentile": "#c75b00"}
OTHER_COLOUR = "#808080"  # a state type this list does not know (Prefect added one)
TIMELINE_ROW_PX = 30  # a band per task or subflow: one row label fits, none is dropped
# Streamlit fits the whole chart, axis and legend included, into the spec's height: the
# rows get what is left. 26 px a row and nothing for the rest left 3 of 5 labels.
TIMELINE_FRAME_PX = 110


def runs_chart(history: list[HistoryBucket], since: datetime) -> None:
    """Stacked bars of runs per time bucket by state; the legend names every state."""
    rows = [
        {
            "start": naive_utc(b.start),
            "end": naive_utc(b.end),
            "state": state_label(kind),
            "runs": n,
        }
        for b in history
        if b.start >= since
        for kind, n in b.counts.items()
        if n
    ]
    if not rows:
        st.caption("No runs in this window.")
        return
    frame = pd.DataFrame(rows)
    present = {kind for b in history if b.start >= since for kind, n in b.counts.items() if n}
    kinds = [k for k in STATE_COLOURS if k in present] + sorted(present - set(STATE_COLOURS))
    order = [state_label(kind) for kind in kinds]
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "start:T",
                title="Expected start (UTC)",
                scale=alt.Scale(domain=[naive_utc(since), naive_utc(history[-1].end)]),
                axis=alt.Axis(format="%d %b %H:%M", labelAngle=0),
            ),
            x2="end:T",
            y=alt.Y("sum(runs):Q", title="Runs", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "state:N",
                title="State",
                scale=alt.Scale(domain=order, range=[STATE_COLOURS.get(k, "#999") for k in kinds]),
            ),
            tooltip=[
                alt.Tooltip("start:T", title="From", format="%d %b %H:%M"),
                alt.Tooltip("state:N", title="State"),
                alt.Tooltip("sum(runs):Q", title="Runs"),
            ],
        )
        .properties(height=220)
    )
    st.altair_chart(chart, width="stretch", theme="streamlit")


def duration_chart(durations: list[ReportDuration]) -> None:
    """Median run time per report as a bar, its 90th percentile as a mark; slowest on top."""
    if not durations:
        st.caption("No completed runs in this window.")
        return
    rows = []
    for d in durations:
        common = {
            "report": d.report,
            "runs": d.runs,
            "median": duration(d.median_s),
            "p90": duration(d.p90_s),
            "longest": duration(d.max_s),
        }
        rows.append({**common, "measure": "Median", "seconds": d.median_s})
        rows.append({**common, "measure": "90th percentile", "seconds": d.p90_s})
    frame = pd.DataFrame(rows)
    base = alt.Chart(frame).encode(
        y=alt.Y(
            "report:N",
            title=None,
            sort=[d.report for d in durations],
            axis=alt.Axis(labelLimit=0),  # "carrier-monthly · batch" whole, never cut
        ),
        x=alt.X("seconds:Q", title="Run time (s)"),
        color=alt.Color(
            "measure:N",
            title=None,
            scale=alt.Scale(domain=list(DURATION_COLOURS), range=list(DURATION_COLOURS.values())),
            legend=alt.Legend(orient="top"),
        ),
        tooltip=[
            alt.Tooltip("report:N", title="Report"),
            alt.Tooltip("runs:Q", title="Runs in the sample"),
            alt.Tooltip("median:N", title="Median"),
            alt.Tooltip("p90:N", title="90th percentile"),
            alt.Tooltip("longest:N", title="Longest"),
        ],
    )
    bars = base.transform_filter(alt.datum.measure == "Median").mark_bar()
    marks = base.transform_filter(alt.datum.measure == "90th percentile").mark_tick(
        thickness=3, size=18
    )
    # The height holds the axis and legend too: give each report a band of its own.
    chart = (bars + marks).properties(height=110 + 40 * len(durations))
    st.altair_chart(chart, width="stretch", theme="streamlit")


def timeline_chart(bars: list[dict], now: datetime) -> alt.Chart:
    """Start → finish of each task or subflow run, one band per run.

    `bars`: name, kind, state (its label), state_type, attempts, start, end (None:
    still running, drawn up to `now`), duration. Each row is labelled with the run's
    name and state in words, so colour never carries the state alone; the legend sits
    under the chart and lists only the states present.
    """
    frame = pd.DataFrame(
        [
            {
                **bar,
                "row": _timeline_row(bar),
                "start": naive_utc(bar["start"]),
                "end": naive_utc(bar["end"] or now),
            }
            for bar in bars
        ]
    ).sort_values("start", kind="stable")
    present = list(dict.fromkeys(frame["state_type"]))
    kinds = [k for k in STATE_COLOURS if k in present] + [
        k for k in present if k not in STATE_COLOURS
    ]
    frame["legend"] = frame["state_type"].map(state_label)
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("start:T", title="Time (UTC)", axis=alt.Axis(format="%H:%M:%S")),
            x2="end:T",
            y=alt.Y(
                "row:N",
                sort=list(frame["row"]),
                title=None,
                axis=alt.Axis(labelLimit=0, labelOverlap=False),
            ),
            color=alt.Color(
                "legend:N",
                title="State",
                scale=alt.Scale(
                    domain=[state_label(k) for k in kinds],
                    range=[STATE_COLOURS.get(k, OTHER_COLOUR) for k in kinds],
                ),
                legend=alt.Legend(orient="bottom", direction="horizontal"),
            ),
            tooltip=[
                alt.Tooltip("name:N", title="Run"),
                alt.Tooltip("kind:N", title="Kind"),
                alt.Tooltip("state:N", title="State"),
                alt.Tooltip("attempts:Q", title="Attempts"),
                alt.Tooltip("start:T", title="Start (UTC)", format="%H:%M:%S"),
                alt.Tooltip("end:T", title="Finish (UTC)", format="%H:%M:%S"),
                alt.Tooltip("duration:N", title="Duration"),
            ],
        )
        .properties(height=timeline_height(frame["row"].nunique()))
    )


def timeline_height(rows: int) -> int:
    """The chart's height in pixels: a band for each row, plus the time axis and legend."""
    return TIMELINE_ROW_PX * rows + TIMELINE_FRAME_PX


def _timeline_row(bar: dict) -> str:
    """'render-pdf-3a1 · ✅ Completed (2 attempts)': the row's label, state in words."""
    attempts = f" ({bar['attempts']} attempts)" if bar["attempts"] > 1 else ""
    return f"{bar['name']} · {bar['state']}{attempts}"
