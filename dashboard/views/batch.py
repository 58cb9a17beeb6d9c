"""Batch: one batch as one object — its matrix, its counts, its failures, its ETA.

Opened as `batch?id=<batch run id>` (from Overview, Runs, an item, or a link). The
items come from the item index; whether the run is alive comes from Prefect. The
part that changes refreshes on its own while the batch runs. What is read is shared by
every viewer for their refresh interval (`dashboard.components.shared`); the list of
all items is drawn only when opened.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components, controls
from dashboard.api import ApiConfig, ApiUnavailable, connect
from dashboard.api._items import (
    STATUS_ORDER,
    BatchView,
    age,
    batch_view,
    item_link,
    recent_batch_views,
    run_link,
)
from dashboard.api._matrix import axis_values, status_matrix
from dashboard.components import shared
from dashboard.components.matrix import status_matrix as matrix_table
from dashboard.formatting import clock, duration, state_label
from dashboard.run_controls import _RESULT as RUN_ACTION_RESULT  # set by an action, shown once
from dashboard.run_controls import RunControlsTarget, run_controls
from reports import get_settings
from reports.contracts import BATCH_FLOW, ITEM_STATUS_ICONS, status_label
from reports.index import IndexUnavailable

MATRIX_ROWS_PER_PAGE = 40
settings = controls.current()
config = ApiConfig.from_env()
index_url = get_settings().resolved_index_url
st.title("Batch")


def _fresh_for() -> float:
    """How old a shared answer may be; none right after an action on the batch."""
    if st.session_state.get(RUN_ACTION_RESULT) is not None:
        shared.forget()
        return 0.0
    return shared.max_age()


def _recent() -> list:
    with connect(config) as api:
        return recent_batch_views(api, limit=20)


def _view(batch_id: str) -> BatchView | None:
    with connect(config) as api:
        return batch_view(api, batch_id)


def _choose_batch() -> str | None:
    """The batch in the URL, or one picked from the recent ones."""
    chosen = st.query_params.get("id", "")
    if chosen:
        return chosen
    try:
        recent = shared.fresh(("recent batches", config, index_url), _fresh_for(), _recent)
    except (ApiUnavailable, IndexUnavailable) as error:
        components.api_banner(str(error))
        return None
    if not recent:
        st.info("No batch has run yet. Start one from **Run a report** or `reportrunner batch`.")
        return None
    labels = {
        b.batch.batch_id: f"{state_label(b.state.type, b.state.name)} · {b.batch.name} · "
        f"{age(b.batch.started_at)}"
        for b in recent
    }
    picked = st.selectbox("Batch", list(labels), format_func=labels.get, key="batch_pick")
    return picked


def _load(batch_id: str) -> BatchView | None:
    key = ("batch", config, index_url, batch_id)
    try:
        return shared.fresh(key, _fresh_for(), lambda: _view(batch_id))
    except (ApiUnavailable, IndexUnavailable) as error:
        components.api_banner(str(error))
        return None


def _header(view: BatchView) -> None:
    batch, state = view.batch, view.state
    st.subheader(batch.name)
    done = batch.done
    line = (
        f"{state_label(state.type, state.name)} · report **{batch.report}** · "
        f"started {clock(pd.Timestamp(batch.started_at, unit='s', tz='UTC'))} · "
        f"[open run]({run_link(batch.batch_id)})"
    )
    st.markdown(line)
    if state.stopped_early:
        st.warning(
            f"This batch was {state.name.lower()}: {done} of {batch.total} items finished; "
            "the rest did not run. No ETA. Retry it to render what is missing.",
            icon="⚠️",
        )
    elif not state.final:
        eta = view.eta or "pending"
        st.progress(
            done / batch.total if batch.total else 1.0,
            text=f"{done} of {batch.total} done · ETA {eta}",
        )
    else:
        took = duration((batch.finished_at or batch.started_at) - batch.started_at)
        st.progress(1.0, text=f"{done} of {batch.total} done · took {took}")


def _counts(view: BatchView) -> None:
    statuses = [s for s in STATUS_ORDER if view.batch.counts.get(s)]
    cols = st.columns(max(1, len(statuses)))
    for col, status in zip(cols, statuses, strict=False):
        col.metric(status_label(status), f"{view.batch.counts[status]:,}")


def _failures(view: BatchView) -> None:
    failed = [item for item in view.items if item.status == "failed"]
    if not failed:
        return
    st.markdown(f"#### {ITEM_STATUS_ICONS['failed']} {len(failed):,} failed items")
    frame = pd.DataFrame(
        {
            "Item": [item.label for item in failed],
            "Error": [item.error or "–" for item in failed],
            "Open": [item_link(view.batch.report, item.key) for item in failed],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "Error": st.column_config.TextColumn(width="large"),
            "Open": st.column_config.LinkColumn(display_text="open item", width="small"),
        },
    )


def _matrix(view: BatchView) -> None:
    dims = view.dimensions or list(view.items[0].params)[:1]
    st.markdown("#### Matrix")
    left, right = st.columns(2)
    rows_dim = left.selectbox("Rows", dims, index=0, key="batch_rows_dim")
    others = [d for d in dims if d != rows_dim]
    cols_dim = right.selectbox(
        "Columns", others or ["—"], index=0, key="batch_cols_dim", disabled=not others
    )
    cols_dim = cols_dim if others else None
    facet = {}
    rest = [d for d in dims if d not in (rows_dim, cols_dim)]
    if rest:  # a 3-D batch: one slice at a time
        facet_cols = st.columns(len(rest))
        for col, dim in zip(facet_cols, rest, strict=True):
            facet[dim] = col.selectbox(
                f"{dim} (slice)", axis_values(view.items, dim), key=f"batch_facet_{dim}"
            )
    grid = status_matrix(view.items, rows_dim, cols_dim, facet)
    pages = max(1, -(-len(grid.row_values) // MATRIX_ROWS_PER_PAGE))
    page = 1
    if pages > 1:
        page = st.number_input(
            f"Rows page (of {pages}, {MATRIX_ROWS_PER_PAGE} rows each)",
            min_value=1,
            max_value=pages,
            value=1,
            key="batch_matrix_page",
        )
    start = (int(page) - 1) * MATRIX_ROWS_PER_PAGE
    matrix_table(grid, view.batch.report, grid.row_values[start : start + MATRIX_ROWS_PER_PAGE])
    st.caption(
        f"{grid.shown:,} of {len(view.items):,} items in this view. Hover a cell for the item "
        "and its status; select it to open the item."
    )


def _all_items(view: BatchView) -> None:
    listing = st.expander(
        f"All {len(view.items):,} items", key="batch_all_items", on_change="rerun"
    )
    with listing:
        if not listing.open:  # drawn only when opened: a table of every item is heavy
            return
        wanted = st.multiselect(
            "Status", STATUS_ORDER, format_func=status_label, key="batch_items_status"
        )
        shown = [i for i in view.items if not wanted or i.status in wanted]
        frame = pd.DataFrame(
            {
                "Item": [i.label for i in shown],
                "Status": [status_label(i.status) for i in shown],
                "Render time": [duration(i.duration_s) for i in shown],
                "Error": [i.error or "" for i in shown],
                "Open": [item_link(view.batch.report, i.key) for i in shown],
            }
        )
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            column_config={
                "Error": st.column_config.TextColumn(width="large"),
                "Open": st.column_config.LinkColumn(display_text="open item", width="small"),
            },
        )


batch_id = _choose_batch()
if batch_id:

    @st.fragment(run_every=settings.run_every)
    def _live() -> None:
        view = _load(batch_id)
        if view is None:
            st.info(
                "No batch with this id in the item index. Batches appear here once they "
                "start; older batches from before the index existed are on the Runs page."
            )
            return
        _header(view)
        _counts(view)
        _failures(view)
        if view.state.final and view.batch.counts.get("failed"):
            run_controls(
                RunControlsTarget(
                    id=view.batch.batch_id,
                    name=view.batch.name,
                    state_type=view.state.type,
                    flow=BATCH_FLOW,
                )
            )
        if view.items:
            _matrix(view)
            _all_items(view)

    _live()
