"""Run detail (`run?id=<uuid>`): one run's state, error, timeline, logs, artifacts, outputs.

What the API says of a run is shared by every viewer of it for their refresh interval
(`dashboard.components.shared`); after an action on it, the page reads it again.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard import components, controls, previews
from dashboard.api import (
    ApiConfig,
    ApiUnavailable,
    ArtifactView,
    Output,
    OutputLookupError,
    RunDetail,
    RunHeader,
    RunIdError,
    connect,
    find_output,
    parse_progress,
    parse_run_id,
    run_detail,
)
from dashboard.components import shared
from dashboard.formatting import clock, deployment_text, duration, short_clock, state_label
from dashboard.run_controls import _RESULT as RUN_ACTION_RESULT  # set by an action, shown once
from dashboard.run_controls import RunControlsTarget, run_controls
from reports import get_settings
from reports.contracts import BATCH_FLOW, BATCH_ITEMS, REPORT_FLOW, item_row_params

LOG_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
LEVEL_ICONS = {"CRITICAL": "💥", "ERROR": "❌", "WARNING": "⚠️", "INFO": "ℹ️", "DEBUG": "🐞"}
ITEM_STATUS = {"rendered": "✅ rendered", "skipped": "⏭️ unchanged", "failed": "❌ failed"}
WRAPPED_ROW_PX = 72  # Streamlit wraps cell text in rows taller than 4 rem: three lines
MESSAGE_PX = 380  # log and error messages: with the other columns, 820 px (at 1280 px)
_INPUT = "run_id_input"
_URL_SEEN = "run_id_url_seen"  # the ?id= last copied into the input
_LEVEL = "run_log_level"
_TAB = "run_tab"
TABS = ["Outputs", "Timeline", "Logs", "Artifacts", "Parameters"]
_DRAWN = "run_detail_drawn_at"
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")

settings = controls.current()
st.title("Run detail")


def _follow_url() -> None:
    """A new ?id= in the address (a link was followed) replaces what the input holds.

    Back on this page from another one, the address is the same as before, but the
    input is gone (Streamlit drops the state of widgets a script run did not draw): it
    takes the address's id again, instead of showing "No run id given".
    """
    in_url = st.query_params.get("id", "")
    if st.session_state.get(_URL_SEEN) != in_url or _INPUT not in st.session_state:
        st.session_state[_URL_SEEN] = in_url
        st.session_state[_INPUT] = in_url


def _input_changed() -> None:
    """The address follows a pasted id, so the page can be bookmarked and shared."""
    pasted = st.session_state[_INPUT].strip()
    st.query_params["id"] = pasted
    st.session_state[_URL_SEEN] = pasted


def _md(text: str) -> str:
    """Names are data: shown as written, never read as markdown."""
    return _MARKDOWN.sub(r"\\\1", text)


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def _header(head: RunHeader) -> None:
    st.subheader(_md(head.name))
    # Two tiles a row: a state name or a time in a tile's large type needs the width
    # (four a row cut "✅ Completed" and dates at 1280 px).
    state, took = st.columns(2)
    state.metric("State", state_label(head.state_type, head.state_name), help="Icon and name")
    took.metric("Duration", duration(head.duration_s), help="Finish minus start")
    started, finished = st.columns(2)
    started.metric(
        "Started", short_clock(head.start), help=f"When the run began: {clock(head.start)}"
    )
    finished.metric(
        "Finished", short_clock(head.end), help=f"When it reached a final state: {clock(head.end)}"
    )
    facts = [
        f"Flow: {head.flow or '–'}",
        f"Deployment: {deployment_text(head.deployment, nested=bool(head.parent_run_id))}",
        f"Work pool: {head.work_pool or '–'}, queue: {head.work_queue or '–'}",
        f"Expected start: {clock(head.expected_start)}",
        f"Tags: {', '.join(head.tags) or '–'}",
    ]
    st.caption(_md(" · ".join(facts)))
    if head.parent_run_id:
        st.markdown(f"Part of [its parent run](run?id={head.parent_run_id}).")
    if head.progress is not None:
        percent = head.progress.percent or 0
        st.progress(min(1.0, percent / 100), text=components.batch_text(head.progress))


def _error(detail: RunDetail) -> None:
    head = detail.header
    if head.state_type not in ("FAILED", "CRASHED"):
        return
    st.error(f"{state_label(head.state_type, head.state_name)}: {head.message or 'no message'}")
    with st.expander("Traceback", expanded=False):
        if detail.traceback:
            st.code(detail.traceback, language="python")
        else:
            st.caption("No traceback in the run's error logs (the run may have crashed).")


def _timeline(detail: RunDetail) -> None:
    bars = [
        {
            "name": t.name,
            "kind": "task",
            "state": state_label(t.state_type, t.state_name),
            "state_type": t.state_type,
            "attempts": t.run_count,
            "start": t.start,
            "end": t.end,
            "duration": duration(t.duration_s),
        }
        for t in detail.tasks
    ] + [
        {
            "name": s.name,
            "kind": f"subflow, {s.task_count} task runs",
            "state": state_label(s.state_type, s.state_name),
            "state_type": s.state_type,
            "attempts": 1,
            "start": s.start,
            "end": s.end,
            "duration": duration(s.duration_s),
        }
        for s in detail.subflows
    ]
    if not bars:
        st.caption("This run has no task runs or subflows (yet).")
        return
    _gantt([b for b in bars if b["start"] is not None])
    if detail.tasks:
        _count_heading("Task runs", len(detail.tasks), detail.task_total)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Task": t.name,
                        "State": state_label(t.state_type, t.state_name),
                        "Attempts": t.run_count,
                        "Start": _naive(t.start),
                        "Finish": _naive(t.end),
                        "Duration": duration(t.duration_s),
                    }
                    for t in detail.tasks
                ]
            ),
            hide_index=True,
            width="stretch",
            placeholder="–",
            key="run_tasks",
            column_config={
                "Attempts": st.column_config.NumberColumn(
                    help="Runs of the task, retries included"
                ),
                "Start": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                "Finish": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            },
        )
    if detail.subflows:
        _count_heading("Subflow runs", len(detail.subflows), detail.subflow_total)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Subflow": s.name,
                        "State": state_label(s.state_type, s.state_name),
                        "Task runs": s.task_count,
                        "Start": _naive(s.start),
                        "Finish": _naive(s.end),
                        "Duration": duration(s.duration_s),
                        "Detail": f"run?id={s.id}",
                    }
                    for s in detail.subflows
                ]
            ),
            hide_index=True,
            width="stretch",
            placeholder="–",
            key="run_subflows",
            column_config={
                "Task runs": st.column_config.NumberColumn(help="A chunk's task runs: its items"),
                "Start": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                "Finish": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                "Detail": st.column_config.LinkColumn(display_text="open", help="Its detail page"),
            },
        )


def _count_heading(what: str, shown: int, total: int) -> None:
    """The heading of a list that may have been cut: "Task runs: first 200 of 950"."""
    count = f"first {shown} of {total}" if total > shown else str(shown)
    st.markdown(f"**{what}: {count}**")


def _gantt(bars: list[dict]) -> None:
    """Start → finish per task; each row names its state in words, not by colour alone."""
    if bars:
        st.altair_chart(components.timeline_chart(bars, datetime.now(UTC)), width="stretch")


def _logs(detail: RunDetail) -> None:
    st.selectbox(
        "Show lines from level",
        list(LOG_LEVELS),
        key=_LEVEL,  # INFO until chosen (`_page`)
        help="Error and critical lines are always listed first; the rest follow, newest first.",
    )
    logs = detail.logs
    if not logs.lines:
        st.caption("No log lines at this level.")
        return
    tasks = detail.task_names
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Time (UTC)": _naive(line.timestamp),
                    "Level": f"{LEVEL_ICONS.get(line.level_name, '❔')} {line.level_name}",
                    "Task": tasks.get(line.task_run_id or "", "") if line.task_run_id else "",
                    "Message": line.message,
                }
                for line in logs.lines
            ]
        ),
        hide_index=True,
        width="stretch",
        placeholder="–",
        key="run_logs",
        row_height=WRAPPED_ROW_PX,
        column_order=["Time (UTC)", "Level", "Message", "Task"],  # the message on screen
        column_config={
            "Time (UTC)": st.column_config.DatetimeColumn(
                format="YYYY-MM-DD HH:mm:ss.SSS", width=180
            ),
            "Level": st.column_config.TextColumn(width=105),
            "Message": st.column_config.TextColumn(
                width=MESSAGE_PX, help="Wrapped; click a cell to read all of a long one"
            ),
            "Task": st.column_config.TextColumn(width=140),
        },
    )
    if logs.errors_cut or logs.others_cut:
        st.caption("Only the newest 200 lines of each part are shown; the Prefect UI has all.")


def _artifacts(artifacts: tuple[ArtifactView, ...]) -> None:
    if not artifacts:
        st.caption("This run has no artifacts.")
        return
    links = [a for a in artifacts if a.type == "link"]
    for artifact in artifacts:
        title = artifact.key or artifact.type
        if artifact.type == "progress":
            parsed = parse_progress(artifact.data, artifact.description)
            value = parsed.percent or 0.0
            st.progress(value / 100, text=f"{title}: {parsed.sentence or f'{value:.0f} %'}")
        elif artifact.type == "markdown":
            with st.container(border=True):
                st.caption(_md(f"{title} — {artifact.description or 'markdown'}"))
                st.markdown(str(artifact.data))
        elif artifact.type == "table":
            st.caption(_md(f"{title} — {artifact.description or 'table'}"))
            st.dataframe(
                pd.DataFrame(artifact.data), hide_index=True, width="stretch", placeholder="–"
            )
        elif artifact.type != "link":
            st.caption(_md(f"{title} ({artifact.type})"))
            st.text(str(artifact.data)[:2000])
    if links:
        st.caption("Links to the output files (open them below, under Outputs)")
        st.dataframe(
            pd.DataFrame(
                [
                    {"File": a.data["text"], "Where": a.data["url"], "Size": a.description}
                    for a in links
                ]
            ),
            hide_index=True,
            width="stretch",
            placeholder="–",
            key="run_links",
        )


def _outputs(detail: RunDetail, store_url: str) -> None:
    head = detail.header
    if head.flow == BATCH_FLOW and head.report:
        _batch_outputs(detail, head.report, store_url)
        return
    if head.flow != REPORT_FLOW or not head.report:
        st.caption("Outputs are listed on `report` and `batch` runs; a chunk's are on its batch.")
        return
    raw = head.parameters.get("parameters") or {}
    try:
        output = find_output(store_url, head.report, raw if isinstance(raw, dict) else {})
    except OutputLookupError as exc:
        st.error(str(exc))
        return
    if output is not None and _is_own_output(head, output):
        previews.output_card(output, store_url, key="run_output")
        return
    st.info(_no_outputs_sentence(head, output), icon="ℹ️")
    if output is None:
        return
    # Files this run did not make (or has not finished making): under a label that says so.
    with st.expander(_other_output_label(head, output), expanded=head.state_type == "COMPLETED"):
        previews.output_card(output, store_url, key="run_output")


def _is_own_output(head: RunHeader, output: Output) -> bool:
    """Outputs are this run's only when it completed and they were not made before it started."""
    if head.state_type != "COMPLETED" or output.created_at is None or head.start is None:
        return False
    return not _made_before_start(head, output)


def _other_output_label(head: RunHeader, output: Output) -> str:
    """'Older output, made 30 Nov 14:05 UTC (before this run started)', and the like."""
    if output.created_at is None:
        return "Output of an unknown time (not shown as this run's)"
    made = f"{short_clock(output.created_at, seconds=True)} UTC"  # the run may start that minute
    if _made_before_start(head, output):
        return f"Older output, made {made} (before this run started)"
    if not head.is_final:
        return f"Output made {made} (after this run started; it has not completed yet)"
    return f"Output made {made} (after this run started; the run did not complete)"


def _made_before_start(head: RunHeader, output: Output) -> bool:
    """A run that has not started yet has made nothing. The manifest's time is cut to the
    second: the start is too, before comparing."""
    if head.start is None or output.created_at is None:
        return True
    return output.created_at < head.start.replace(microsecond=0)


def _no_outputs_sentence(head: RunHeader, output: Output | None) -> str:
    if not head.is_final:
        return "This run has not produced its outputs yet: they show here when it completes."
    if head.state_type != "COMPLETED" or output is None:
        return f"No outputs of {head.report} for these parameters: this run produced none."
    return "This run found the existing outputs current and made no new ones."


def _batch_outputs(detail: RunDetail, report: str, store_url: str) -> None:
    if not detail.header.is_final:  # a retried batch still holds its last attempt's table
        st.info("This run has not produced its outputs yet.", icon="ℹ️")
        st.caption("The items table appears when the batch finishes.")
        return
    table = detail.artifact("table", BATCH_ITEMS)
    if table is None or not table.data:
        st.caption("The batch left no items table.")
        return
    rows = [r for r in table.data if isinstance(r, dict)]
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Item": r.get("item", ""),
                    "Status": ITEM_STATUS.get(str(r.get("status")), f"❔ {r.get('status') or '?'}"),
                    "Quality": previews.quality_label(str(r["quality"]))
                    if r.get("quality")
                    else "",
                    "Pages": r.get("pages") or None,
                    "Seconds": r.get("seconds") or None,
                    "Attempts": r.get("attempts") or None,
                    "Error": r.get("error") or "",
                }
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch",
        placeholder="–",
        key="run_items",
        row_height=WRAPPED_ROW_PX,
        column_config={"Error": st.column_config.TextColumn(width=MESSAGE_PX)},
    )
    done = {str(r.get("item")): r for r in rows if r.get("status") != "failed"}
    if not done:
        st.caption("No item produced outputs.")
        return
    chosen = st.selectbox(
        "Preview an item's output",
        list(done),
        key="run_item_choice",
        help="Shows the first page, facts and downloads of one item of this batch.",
    )
    try:
        output = find_output(store_url, report, item_row_params(done[chosen]))
    except OutputLookupError as exc:
        st.error(str(exc))
        return
    if output is None:
        st.warning(f"{chosen}: no outputs in the store any more (removed since the batch ran).")
        return
    previews.output_card(output, store_url, key="run_item_output")


def _live(head: RunHeader) -> None:
    """While the run is not final, reload the page at the sidebar's refresh interval."""
    st.session_state[_DRAWN] = time.monotonic()
    every = settings.run_every
    if head.is_final or every is None:
        return

    @st.fragment(run_every=every)
    def _tick() -> None:
        if time.monotonic() - st.session_state.get(_DRAWN, 0.0) >= every:
            st.rerun()

    _tick()


def _read(config: ApiConfig, run_id: str, level: int) -> RunDetail | None:
    with connect(config) as api:
        return run_detail(api, run_id, min_level=level)


def _page() -> None:
    # The level's widget is in the Logs tab, drawn only when open: its choice is kept.
    st.session_state[_LEVEL] = st.session_state.get(_LEVEL, "INFO")
    _follow_url()
    st.text_input(
        "Flow run id",
        key=_INPUT,
        on_change=_input_changed,
        placeholder="0c4f6a3e-5b1d-4a8e-9f2a-7d6c5b4a3e21",
        help="Paste a flow run id from the Runs page or the Prefect UI; the address follows it.",
    )
    try:
        run_id = parse_run_id(st.session_state.get(_INPUT))
    except RunIdError as exc:
        (st.error if st.session_state.get(_INPUT, "").strip() else st.info)(str(exc))
        return
    level = LOG_LEVELS.get(st.session_state.get(_LEVEL, "INFO"), 20)
    # An action on the run was just done (its result waits to be shown): read it again.
    acted = st.session_state.get(RUN_ACTION_RESULT) is not None
    if acted:
        shared.forget()
    config = ApiConfig.from_env()
    try:
        detail = shared.fresh(
            ("run", config, run_id, level),
            0.0 if acted else shared.max_age(),
            lambda: _read(config, run_id, level),
        )
    except ApiUnavailable as exc:
        components.api_banner(str(exc))
        return
    if detail is None:
        st.error(f"No flow run {run_id} on this Prefect server: it may have been deleted.")
        return
    head = detail.header
    _header(head)
    run_controls(
        RunControlsTarget(id=head.id, name=head.name, state_type=head.state_type, flow=head.flow)
    )
    _error(detail)
    # Only the open tab is drawn (a chart, tables and a JSON viewer cost the browser
    # more than everything else on the page); choosing another tab draws it.
    outputs, timeline, logs, artifacts, parameters = st.tabs(TABS, key=_TAB, on_change="rerun")
    with outputs:
        if outputs.open:
            _outputs(detail, get_settings().resolved_output_url)
    with timeline:
        if timeline.open:
            _timeline(detail)
    with logs:
        if logs.open:
            _logs(detail)
    with artifacts:
        if artifacts.open:
            _artifacts(detail.artifacts)
    with parameters:
        if parameters.open:
            st.json(head.parameters, expanded=True)
    st.caption(f"Read at {clock(datetime.now(UTC))} with {detail.calls} Prefect API calls.")
    _live(head)


_page()
