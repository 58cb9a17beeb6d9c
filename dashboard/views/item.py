"""Item: one report with one parameter set, across every run that rendered it.

Opened as `item?report=<report>&key=<item key>` from Items, a batch's matrix or a
link. Shows its latest status and outputs (saying when they are older than a render
under way), and its history: when, which run, fingerprint, data, pages, rows,
quality, and which headline figures changed from the render before.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components, previews
from dashboard.api import OutputLookupError, find_output
from dashboard.api._items import age, batch_link, items_link, run_link, when
from dashboard.formatting import clock, duration
from reports import get_settings
from reports.contracts import ItemKey, status_label
from reports.index import IndexUnavailable, ItemHistory, RenderRow, item_history, open_index

st.title("Item")

report = st.query_params.get("report", "")
key = st.query_params.get("key", "")


def _changes(render: RenderRow) -> str:
    parts = [
        f"{label}: {old or '–'} → {new or '–'}" for label, (old, new) in render.kpi_changes.items()
    ]
    if render.data_changed and not parts:
        parts.append("data changed, figures the same")
    return "; ".join(parts)


def _history_frame(history: ItemHistory) -> pd.DataFrame:
    rows = history.renders
    return pd.DataFrame(
        {
            "When": [clock(when(r.at)) for r in rows],
            "Status": [status_label(r.status) for r in rows],
            "What changed": [_changes(r) for r in rows],
            "Pages": [r.pages if r.pages is not None else "–" for r in rows],
            "Rows": [", ".join(f"{t} {n:,}" for t, n in r.rows.items()) or "–" for r in rows],
            "Render time": [duration(r.duration_s) for r in rows],
            "Data": [(r.data_hash or "–")[:10] for r in rows],
            "Fingerprint": [(r.fingerprint or "–")[:10] for r in rows],
            "Error": [r.error or "" for r in rows],
            "Run": [run_link(r.run_id) if r.run_id else None for r in rows],
            "Batch": [batch_link(r.batch_id) if r.batch_id else None for r in rows],
        }
    )


def _outputs(history: ItemHistory, params: dict) -> None:
    item = history.item
    st.markdown("#### Outputs")
    if item.status in ("running", "pending"):
        st.info(
            "A render of this item is under way: its new outputs are not there yet."
            + (" The files below are from an earlier render." if item.rendered_at else ""),
            icon="⏳",
        )
    elif item.status == "failed" and item.rendered_at:
        st.warning(
            "The latest render failed: the files below are from the last good render.",
            icon="⚠️",
        )
    if not item.rendered_at:
        st.caption("No outputs yet.")
        return
    try:
        output = find_output(get_settings().resolved_output_url, report, params)
    except OutputLookupError as error:
        st.error(str(error))
        return
    if output is None:
        st.caption("The outputs are no longer in the output store.")
        return
    made = when(item.rendered_at)
    st.caption(f"Made {clock(made)} ({age(item.rendered_at)}).")
    previews.output_card(output, get_settings().resolved_output_url, key="item_output")


if not report or not key:
    st.info("Open an item from **Items** (search by business key) or from a batch's matrix.")
    st.page_link("views/items.py", label="Search items", icon="🔍")
    st.stop()

try:
    history = item_history(open_index(), report, key)
except IndexUnavailable as error:
    components.api_banner(str(error))
    st.stop()

if history.item is None:
    st.warning(f"No item '{key}' of report '{report}' in the item index.")
    st.page_link("views/items.py", label="Search items", icon="🔍")
    st.stop()

item = history.item
st.subheader(f"{report} · {ItemKey.of(item.params).label}")
facts = [
    status_label(item.status),
    f"updated {age(item.updated_at)}",
]
if item.run_id:
    facts.append(f"[latest run]({run_link(item.run_id)})")
if item.batch_id:
    facts.append(f"[its batch]({batch_link(item.batch_id)})")
first = key.split()[0]
facts.append(f"[every {report} item with {first}]({items_link(first, report)})")
st.markdown(" · ".join(facts))
if item.error:
    st.error(item.error, icon="❌")

_outputs(history, item.params)

latest = next((r for r in history.renders if r.status != "failed"), None)
if latest and latest.kpis:
    st.markdown("#### Headline figures (latest render)")
    st.dataframe(
        pd.DataFrame({"Figure": list(latest.kpis), "Value": list(latest.kpis.values())}),
        hide_index=True,
    )

st.markdown(f"#### History ({len(history.renders)} renders)")
if history.renders:
    st.dataframe(
        _history_frame(history),
        hide_index=True,
        width="stretch",
        column_config={
            "What changed": st.column_config.TextColumn(width="large"),
            "Error": st.column_config.TextColumn(width="large"),
            "Run": st.column_config.LinkColumn(display_text="open run"),
            "Batch": st.column_config.LinkColumn(display_text="open batch"),
        },
    )
else:
    st.caption("No render recorded yet.")


def _deliveries() -> None:
    """Who received which version of this item: its rows in the delivery ledger."""
    from dashboard.api._deliveries import item_deliveries, open_ledger, status_label

    st.markdown("#### Deliveries")
    try:
        rows = item_deliveries(open_ledger(), report, key)
    except IndexUnavailable as error:
        components.api_banner(str(error))
        return
    if not rows:
        st.caption("Not delivered to anyone: no subscription has planned this item yet.")
        return
    st.caption(
        f"{len(rows)} delivery(ies), newest first: one per recipient and version "
        "(fingerprint) of this item."
    )
    st.dataframe(
        pd.DataFrame(
            {
                "Recipient": [r.recipient for r in rows],
                "Channel": [r.channel for r in rows],
                "Status": [status_label(r.status) for r in rows],
                "Fingerprint": [r.fingerprint[:10] for r in rows],
                "Sent": [clock(when(r.sent_at)) for r in rows],
                "Attempts": [r.attempts for r in rows],
                "Error / reason": [r.last_error or r.reason or "" for r in rows],
                "Subscription": [r.subscription for r in rows],
                "Decided by": [r.decided_by or "" for r in rows],
            }
        ),
        hide_index=True,
        width="stretch",
        key="item_deliveries",
        column_config={"Error / reason": st.column_config.TextColumn(width="large")},
    )


_deliveries()
