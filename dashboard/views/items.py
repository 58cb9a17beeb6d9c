"""Items: find any report item by its business key, across every batch and single run.

`carrier=AA` finds every item whose carrier is AA; `carrier=AA month=2013-07` the
one; a bare word (`2013-07`) any item with that value. Each row leads to the item
(history, outputs), its run and its batch. Served by the item index: one indexed
query per page, whatever the history's size.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components
from dashboard.api._items import STATUS_ORDER, age, batch_link, item_link, run_link
from reports.contracts import status_label
from reports.definitions import default_catalog
from reports.index import IndexUnavailable, ItemQuery, SearchError, open_index, search_items

PAGE_SIZE = 50
st.title("Items")


@st.cache_data(ttl=300, show_spinner=False)
def _reports() -> list[str]:
    try:
        return sorted(default_catalog().names())
    except Exception:  # a broken catalog must not take the search down
        return []


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Item": [row.label for row in rows],
            "Report": [row.report for row in rows],
            "Status": [status_label(row.status) for row in rows],
            "Updated": [age(row.updated_at) for row in rows],
            "Pages": [row.pages if row.pages is not None else "–" for row in rows],
            "Error": [row.error or "" for row in rows],
            "Open": [item_link(row.report, row.key) for row in rows],
            "Run": [run_link(row.run_id) if row.run_id else None for row in rows],
            "Batch": [batch_link(row.batch_id) if row.batch_id else None for row in rows],
        }
    )


text = st.text_input(
    "Search by business key",
    value=st.query_params.get("q", ""),
    placeholder="carrier=AA month=2013-07",
    key="items_search",
    help="name=value matches that parameter exactly (case-insensitive); a bare word "
    "matches any parameter's value. Combine them to narrow down.",
)
left, right = st.columns(2)
reports = _reports()
preset = st.query_params.get("report")
report = left.selectbox(
    "Report",
    [None, *reports],
    index=(reports.index(preset) + 1) if preset in reports else 0,
    format_func=lambda name: "every report" if name is None else name,
    key="items_report",
)
statuses = right.multiselect("Status", STATUS_ORDER, format_func=status_label, key="items_status")
page_no = st.session_state.get("items_page_no", 1)
query = ItemQuery(
    text=text,
    report=report,
    statuses=tuple(statuses),
    limit=PAGE_SIZE,
    offset=(page_no - 1) * PAGE_SIZE,
)
try:
    found = search_items(open_index(), query)
except SearchError as error:
    st.error(f"Search: {error}", icon="⚠️")
    st.stop()
except IndexUnavailable as error:
    components.api_banner(str(error))
    st.stop()

pages = max(1, -(-found.total // PAGE_SIZE))
st.markdown(
    f"**{found.total:,} items** match" + (f" · page {page_no} of {pages}" if pages > 1 else "")
)
if not found.rows:
    st.caption(
        "Nothing matches. Items appear here as soon as a batch or a single run finishes them."
    )
else:
    st.dataframe(
        _frame(found.rows),
        hide_index=True,
        width="stretch",
        column_config={
            "Item": st.column_config.TextColumn(width="medium"),
            "Error": st.column_config.TextColumn(width="large"),
            "Open": st.column_config.LinkColumn(display_text="open item", width="small"),
            "Run": st.column_config.LinkColumn(display_text="open run", width="small"),
            "Batch": st.column_config.LinkColumn(display_text="open batch", width="small"),
        },
    )
if pages > 1:
    st.number_input(
        "Page", min_value=1, max_value=pages, value=min(page_no, pages), key="items_page_no"
    )
