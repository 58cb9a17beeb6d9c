"""Outputs: every produced report, from the output store's manifests; preview and download."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import streamlit as st

from dashboard import previews
from dashboard.api import Output, OutputLookupError, list_outputs
from dashboard.formatting import clock
from reports import ReportError, get_settings
from reports.definitions import default_catalog

PAGE_SIZE = 50
CACHE_S = 30
ANY = "(any)"
_PAGE_NO = "outputs_page_no"
_SEEN = "outputs_filters_seen"
_PREVIEW = "outputs_preview"
_TABLE = "outputs_table"

st.title("Outputs")


@st.cache_data(ttl=CACHE_S, show_spinner="Reading the output store…")
def _outputs(store_url: str) -> tuple[list[Output], datetime]:
    """One walk of the store serves every filter and viewer for `CACHE_S` seconds."""
    return list_outputs(store_url), datetime.now(UTC)


def _parameter_names(report: str, outputs: list[Output]) -> dict[str, str]:
    """The report's parameters (name → description) from its spec, else from its outputs."""
    try:
        spec = default_catalog().get(report).spec
        return {name: p.description for name, p in spec.parameters.items()}
    except ReportError:  # no longer in the catalog: its outputs still list
        names: dict[str, str] = {}
        for output in outputs:
            names.update({name: "" for name in output.parameters})
        return names


def _turn(step: int) -> None:
    st.session_state[_PAGE_NO] = max(0, st.session_state.get(_PAGE_NO, 0) + step)


def _follow_table(item_dirs: list[str]) -> None:
    """A row picked in the table becomes the one previewed."""
    rows = st.session_state[_TABLE].selection.rows
    if rows and rows[0] < len(item_dirs):
        st.session_state[_PREVIEW] = item_dirs[rows[0]]


def _filters(outputs: list[Output]) -> tuple[list[Output], tuple]:
    """The outputs the filter widgets let through, and the filters' values."""
    reports = sorted({o.report for o in outputs})
    report = st.selectbox(
        "Report", reports, key="outputs_report", help="Outputs of one report definition."
    )
    chosen = [o for o in outputs if o.report == report]
    names = _parameter_names(report, chosen)
    cols = st.columns(max(1, len(names)) + 1)
    for col, (name, description) in zip(cols, names.items(), strict=False):
        options = [ANY, *sorted({o.parameters[name] for o in chosen if name in o.parameters})]
        key = f"outputs_param_{report}_{name}"
        if st.session_state.get(key, ANY) not in options:
            st.session_state[key] = ANY  # its outputs are gone since it was picked
        value = col.selectbox(
            name,
            options,
            key=key,
            help=(description + " " if description else "") + "Values that have outputs.",
        )
        if value != ANY:
            chosen = [o for o in chosen if o.parameters.get(name) == value]
    produced = cols[-1].date_input(
        "Produced between",
        value=(),
        key=f"outputs_produced_{report}",
        help="Days (UTC) on which the outputs were written; leave empty for any day.",
    )
    filters = (report, tuple(st.session_state.get(f"outputs_param_{report}_{n}") for n in names))
    if isinstance(produced, tuple) and len(produced) == 2:
        start, end = produced
        chosen = [o for o in chosen if o.created_at and start <= o.created_at.date() <= end]
        filters += (start, end)
    return chosen, filters


def _page() -> None:
    store_url = get_settings().resolved_output_url
    try:
        outputs, read_at = _outputs(store_url)
    except OutputLookupError as exc:
        st.error(str(exc))
        return
    top = st.columns([5, 1])
    top[0].caption(f"Output store listed at {clock(read_at)}; it is read again every {CACHE_S} s.")
    if top[1].button("Read again", key="outputs_reload", help="List the output store now."):
        _outputs.clear()
        st.rerun()
    if not outputs:
        st.info("No outputs yet: run a report (Run a report) or a batch, and they appear here.")
        return
    chosen, filters = _filters(outputs)
    if st.session_state.get(_SEEN) != filters:  # new filters: back to page 1
        st.session_state[_SEEN] = filters
        st.session_state[_PAGE_NO] = 0
    if not chosen:
        st.info("No outputs match these filters.")
        return
    number = st.session_state.get(_PAGE_NO, 0)
    page = chosen[number * PAGE_SIZE : (number + 1) * PAGE_SIZE]
    first = number * PAGE_SIZE + 1
    st.markdown(f"**Outputs {first:,}–{first + len(page) - 1:,} of {len(chosen):,}**")
    dirs = [o.item_dir for o in page]
    st.dataframe(
        previews.outputs_frame(page),
        hide_index=True,
        width="stretch",
        key=_TABLE,
        on_select=partial(_follow_table, dirs),
        selection_mode="single-row",
        column_config={
            "Produced (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "Pages": st.column_config.NumberColumn(help="Pages of the PDF"),
        },
    )
    back, forward, _ = st.columns([1, 1, 6])
    back.button("← Previous", key="outputs_prev", disabled=number == 0, on_click=_turn, args=(-1,))
    forward.button(
        "Next →",
        key="outputs_next",
        disabled=first + len(page) - 1 >= len(chosen),
        on_click=_turn,
        args=(1,),
    )
    if st.session_state.get(_PREVIEW) not in dirs:
        st.session_state[_PREVIEW] = dirs[0]
    by_dir = {o.item_dir: o for o in page}
    shown = st.selectbox(
        "Preview",
        dirs,
        key=_PREVIEW,
        format_func=lambda d: by_dir[d].label,
        help="Pick an output of this page (or a row in the table) to see its first page.",
    )
    previews.output_card(by_dir[shown], store_url, key="outputs_card")


_page()
