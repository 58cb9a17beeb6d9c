"""Rendering pieces of the dashboard, one job each; they draw what the query layer returns."""

from __future__ import annotations

from datetime import UTC, datetime

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.api import (
    ActiveBatches,
    BatchProgress,
    FailureGroup,
    FailureSpike,
    Health,
    HistoryBucket,
    Kpis,
    ReportDuration,
    RunRow,
    RunsPage,
    SlowRun,
)
from dashboard.formatting import (
    clock,
    duration,
    escape_markdown,
    percent,
    pool_label,
    state_label,
    time_span,
    times_slower,
)

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
EXAMPLE_RUNS = 5  # example runs linked per failure group
KPI_LABELS = ["Running", "Queued", "Completed", "Failed", "Success rate", "Median duration"]


def api_banner(message: str, last_good: datetime | None = None) -> None:
    """The API failed: say so in one line, and how old any figures still shown are."""
    st.error(f"Prefect API unavailable — {message}", icon="⚠️")
    if last_good is not None:
        st.caption(f"Figures below are from {clock(last_good)} and may be out of date.")
    else:
        st.caption("The page retries on its own at each refresh.")


def health_strip(health: Health) -> None:
    cols = st.columns(4)
    cols[0].metric(
        "Prefect API",
        "✅ reachable" if health.api_ok else "❌ down",
        help=f"GET {health.api_url}/health answered. Checked {clock(health.checked_at)}.",
    )
    ready = sum(p.status == "READY" for p in health.pools)
    if not health.pools:
        pools = "⚠️ none"
    elif ready == len(health.pools):
        pools = f"✅ {ready} ready"
    else:
        pools = f"⚠️ {ready} of {len(health.pools)} ready"
    cols[1].metric(
        "Work pools",
        pools,
        help="READY: a worker polls the pool. NOT READY: no worker online. "
        "PAUSED: runs wait until the pool is resumed.",
    )
    cols[1].caption(
        "  \n".join(
            f"{p.name}: {pool_label(p.status)}"
            + ("" if p.online_workers is None else f", {p.online_workers} worker(s)")
            for p in health.pools
        )
    )
    online = health.workers_online
    cols[2].metric(
        "Workers online",
        "–" if online is None else f"{'✅' if online else '⚠️'} {online}",
        help="Workers that sent a heartbeat recently, over all pools that need workers.",
    )
    cols[3].metric(
        "Late runs",
        f"{'⚠️' if health.late_runs else '✅'} {health.late_runs}",
        help="Runs in state Late, or still waiting more than a minute after their scheduled start.",
    )
    for note in health.notes:
        st.caption(note)


def kpi_tiles(kpis: Kpis, window_text: str) -> None:
    now, before = kpis.current, kpis.previous
    counts = [
        ("Running", now.running, before.running, False, "are running now"),
        ("Queued", now.queued, before.queued, True, "are scheduled or pending"),
        ("Completed", now.completed, before.completed, False, "completed"),
        ("Failed", now.failed, before.failed, True, "failed or crashed"),
    ]
    cols = st.columns(6)
    for col, (label, value, previous, inverse, meaning) in zip(cols, counts, strict=False):
        change = value - previous
        col.metric(
            label,
            f"{value:,}",
            **_delta(f"{change:+,}" if change else "±0", change, inverse),
            help=f"Flow runs expected to start in the {window_text} that {meaning}; "
            f"the previous window had {previous:,}.",
        )
    rate, rate_before = now.success_rate, before.success_rate
    rate_delta = {}
    if rate is not None and rate_before is not None:
        points = round(100 * (rate - rate_before), 1)
        rate_delta = _delta(f"{points:+.1f} pt" if points else "±0 pt", points, False)
    cols[4].metric(
        "Success rate",
        percent(rate, 1),
        **rate_delta,
        help="Completed ÷ (completed + failed + crashed) in the window; the change is in "
        f"percentage points against the previous window ({percent(rate_before, 1)}).",
    )
    med, med_before = now.median_duration_s, before.median_duration_s
    med_delta = {}
    if med is not None and med_before is not None:
        med_delta = _delta(_signed_duration(med - med_before), round(med - med_before), True)
    cols[5].metric(
        "Median duration",
        duration(med),
        **med_delta,
        help=f"Median run time of the latest {now.duration_sample} completed runs in the "
        f"window (at most 200); the previous window's was {duration(med_before)}.",
    )


def _delta(text: str, change: float, inverse: bool) -> dict:
    """st.metric's delta arguments; no change reads '±0' in grey, without an arrow."""
    if not change:
        return {"delta": text, "delta_color": "off", "delta_arrow": "off"}
    return {"delta": text, "delta_color": "inverse" if inverse else "normal"}


def _signed_duration(seconds: float) -> str:
    return ("+" if seconds >= 0 else "−") + duration(abs(seconds))


def active_batches(batches: ActiveBatches) -> None:
    if not batches.batches:
        st.caption("No batch is running.")
        return
    for batch in batches.batches:
        batch_card(batch)
    if batches.total > len(batches.batches):
        st.caption(f"{len(batches.batches)} of {batches.total} running batches shown.")


def batch_card(batch: BatchProgress) -> None:
    with st.container(border=True):
        st.markdown(f"**{batch.name}**  \n{state_label('RUNNING', batch.state)}")
        st.progress(min(1.0, (batch.percent or 0) / 100), text=batch_text(batch))
        ran = f", running for {duration(batch.elapsed_s)}" if batch.elapsed_s is not None else ""
        st.caption(f"Started {clock(batch.started_at)}{ran}")


def batch_text(batch: BatchProgress) -> str:
    """'5 of 12 done, 2 failed, ETA 1 min 05 s' from the parsed progress artifact."""
    if batch.total is None:
        if batch.percent is not None:
            return f"{batch.percent:.0f} % done" + (
                f" — {batch.description}" if batch.description else ""
            )
        return "Waiting for the first progress report"
    text = f"{batch.done} of {batch.total} done"
    if batch.unchanged:
        text += f" ({batch.unchanged} unchanged)"
    text += f", {batch.failed or 0} failed"
    if batch.eta:
        text += f", ETA {batch.eta}"
    return text


def runs_chart(history: list[HistoryBucket], since: datetime) -> None:
    """Stacked bars of runs per time bucket by state; the legend names every state."""
    rows = [
        {"start": _naive(b.start), "end": _naive(b.end), "state": state_label(kind), "runs": n}
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
                scale=alt.Scale(domain=[_naive(since), _naive(history[-1].end)]),
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
        y=alt.Y("report:N", title=None, sort=[d.report for d in durations]),
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


def slow_runs_list(slow: list[SlowRun], limit: int = 10) -> None:
    """Each slow run linked to its detail page, with how much slower it was."""
    if not slow:
        st.caption("✅ No run took more than three times its report's median.")
        return
    lines = [
        f"- 🐢 [{escape_markdown(r.name)}](run?id={r.run_id}) — {duration(r.duration_s)}, "
        f"{times_slower(r.ratio)} the median of {escape_markdown(r.report)} "
        f"({duration(r.report_median_s)})"
        for r in slow[:limit]
    ]
    st.markdown("\n".join(lines))
    if len(slow) > limit:
        st.caption(f"{limit} of {len(slow)} slow runs shown, slowest relative first.")


def failure_spikes_list(spikes: list[FailureSpike]) -> None:
    if not spikes:
        st.caption("✅ No time slot with far more failures than usual.")
        return
    st.markdown(
        "\n".join(
            f"- 🔺 {time_span(s.start, s.end)}: **{s.failed} failed or crashed** "
            f"(typically {s.typical:g} per slot)"
            for s in spikes
        )
    )


def failure_group_card(group: FailureGroup) -> st.delta_generator.DeltaGenerator:
    """One error signature: how often, where, the latest message and example runs.

    Returns the card, so the page can add its controls inside it.
    """
    card = st.container(border=True)
    with card:
        runs = "run" if group.count == 1 else "runs"
        code = group.signature.replace("`", "'")  # a backtick would end the code span
        st.markdown(f"❌ **{group.count} failed {runs}** · `{code}`")
        st.caption(
            f"Reports: {escape_markdown(', '.join(group.reports))} · "
            f"latest {clock(group.latest)}  \n"
            f"Latest message: {escape_markdown(group.example)}"
        )
        links = ", ".join(
            f"[{n}](run?id={run_id})"
            for n, run_id in enumerate(group.run_ids[:EXAMPLE_RUNS], start=1)
        )
        more = f" and {group.count - EXAMPLE_RUNS} more" if group.count > EXAMPLE_RUNS else ""
        st.markdown(f"Example runs: {links}{more}")
    return card


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
                "Expected start": _naive(row.expected_start),
                "Start": _naive(row.start),
                "Finish": _naive(row.end),
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


def _naive(moment: datetime | None) -> datetime | None:
    """UTC without tzinfo: the table shows the times as they are, labelled UTC."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)
