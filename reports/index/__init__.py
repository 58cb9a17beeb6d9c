"""The item index: every report item, its latest state, its history and its batches.

An *item* is one report with one parameter set (`carrier-monthly`,
`carrier=AA month=2013-07`), across every run that ever rendered it. The flows
record items as they finish; the dashboard and the CLI search them by business key.

    index = open_index()                       # REPORTRUNNER_INDEX_URL, or SQLite in home
    index.record("carrier-monthly", outcomes, run_id=..., batch_id=...)
    search_items(index, ItemQuery("carrier=AA"))

Why a database of our own and not Prefect events or the manifests alone: see the
README ("Where item state lives").
"""

from reports.index._queries import (
    BatchItem,
    BatchRow,
    ItemHistory,
    ItemPage,
    ItemQuery,
    ItemRow,
    RenderRow,
    ReportActivity,
    SearchError,
    earlier_pages,
    get_batch,
    get_item,
    item_history,
    parse_search,
    recent_batches,
    render_durations,
    report_activity,
    search_items,
)
from reports.index._store import IndexUnavailable, ItemIndex, item_id, open_index

__all__ = [
    "BatchItem",
    "BatchRow",
    "IndexUnavailable",
    "ItemHistory",
    "ItemIndex",
    "ItemPage",
    "ItemQuery",
    "ItemRow",
    "RenderRow",
    "ReportActivity",
    "SearchError",
    "earlier_pages",
    "get_batch",
    "get_item",
    "item_history",
    "item_id",
    "open_index",
    "parse_search",
    "recent_batches",
    "render_durations",
    "report_activity",
    "search_items",
]
