"""The item index's tables: one database, SQLite on one machine, PostgreSQL beyond.

    items        the latest state of every item (report + business key), one row each
    item_params  an item's parameter values, one row each: what search by `carrier=AA` uses
    renders      every render (and failure) of an item: its history, with KPIs
    batches      one row per batch run: report, dimensions, totals, state
    batch_items  a batch's items with their status in that batch: its matrix

Times are UTC epoch seconds (floats): the same on both databases, and cheap to compare.
JSON values are text, so that nothing depends on one database's JSON support.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# "<report> <key text>": report names have no spaces, so this splits back unambiguously.
ITEM_ID = String(1024)

items = Table(
    "rr_items",
    metadata,
    Column("item_id", ITEM_ID, primary_key=True),
    Column("report", String(128), nullable=False),
    Column("key", Text, nullable=False),
    Column("params", Text, nullable=False),  # JSON object
    Column("status", String(16), nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("run_id", String(64)),
    Column("batch_id", String(64)),
    Column("error", Text),
    # The latest outputs (kept when a later attempt fails, so the last good PDF is found).
    Column("fingerprint", String(64)),
    Column("rendered_at", Float),
    Column("pages", Integer),
    Column("item_dir", Text),
    Column("files", Text),  # JSON list of paths in the output store
    Index("rr_items_report_status", "report", "status"),
    Index("rr_items_updated", "updated_at"),
)

item_params = Table(
    "rr_item_params",
    metadata,
    Column("item_id", ITEM_ID, primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("value", String(512), nullable=False),
    Index("rr_item_params_lookup", "name", "value"),
)

renders = Table(
    "rr_renders",
    metadata,
    # A render is identified by what it made (fingerprint and time of its manifest), so
    # recording it twice (a retried write, a resume that finds it current) is one row.
    Column("render_id", String(64), primary_key=True),
    Column("item_id", ITEM_ID, nullable=False),
    Column("report", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # rendered, flagged, failed
    Column("at", Float, nullable=False),
    Column("run_id", String(64)),
    Column("batch_id", String(64)),
    Column("fingerprint", String(64)),
    Column("data_hash", String(64)),
    Column("pages", Integer),
    Column("rows", Text),  # JSON: table → rows
    Column("kpis", Text),  # JSON: label → value
    Column("quality", String(16)),
    Column("duration_s", Float),
    Column("attempts", Integer),
    Column("error", Text),
    Index("rr_renders_item", "item_id", "at"),
    Index("rr_renders_report_at", "report", "at"),
)

batches = Table(
    "rr_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("report", String(128), nullable=False),
    Column("name", Text, nullable=False),
    Column("dimensions", Text, nullable=False),  # JSON list: the parameters that vary
    Column("total", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("state", String(16), nullable=False),  # running, completed, failed
    Column("summary", Text),
    Index("rr_batches_started", "started_at"),
)

batch_items = Table(
    "rr_batch_items",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("item_id", ITEM_ID, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("key", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("run_id", String(64)),
    Column("error", Text),
    Column("duration_s", Float),
    Index("rr_batch_items_status", "batch_id", "status"),
    Index("rr_batch_items_updated", "updated_at", "status"),
)

# The delivery ledger: one row per (subscription, item version, recipient, channel).
# Written before and after each send, so a re-run sends only what is not `sent`.
deliveries = Table(
    "rr_deliveries",
    metadata,
    Column("delivery_id", String(64), primary_key=True),
    Column("subscription", String(128), nullable=False),
    Column("report", String(128), nullable=False),
    Column("item_id", ITEM_ID, nullable=False),
    Column("key", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("recipient", String(512), nullable=False),
    Column("channel", String(32), nullable=False),
    # queued, sending, sent, failed, held, approved, discarded, skipped
    Column("status", String(16), nullable=False),
    Column("reason", Text),  # why skipped or held
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("message_id", Text),
    Column("run_id", String(64)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("sent_at", Float),
    Column("decided_by", String(128)),  # who approved or discarded a held item
    Index("rr_deliveries_sub_status", "subscription", "status"),
    Index("rr_deliveries_item", "item_id", "recipient"),
    Index("rr_deliveries_recipient", "recipient"),
)
