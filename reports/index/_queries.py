"""Reading the item index: search by business key, an item's history, a batch's items.

Each function is one or two indexed queries whatever the history's size; the
dashboard and the CLI call them, the benchmark (bench/item_index.py) times them at
100,000 items.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select

from reports.contracts import ITEM_STATUSES, ItemKey
from reports.index._schema import batch_items, batches, item_params, items, renders
from reports.index._store import ItemIndex, _folded, item_id

MAX_PAGE = 500


@dataclass(frozen=True)
class ItemQuery:
    """What the Items page asks: `carrier=AA month=2013-07`, a report, some statuses."""

    text: str = ""
    report: str | None = None
    statuses: tuple[str, ...] = ()
    limit: int = 50
    offset: int = 0


class SearchError(ValueError):
    """A search text that cannot be understood; the message says why, in one line."""


def parse_search(text: str) -> tuple[dict[str, str], list[str]]:
    """`carrier=AA 2013-07` → ({"carrier": "AA"}, ["2013-07"]): exact values and loose words."""
    exact: dict[str, str] = {}
    words: list[str] = []
    for part in text.split():
        name, sep, value = part.partition("=")
        if not sep:
            words.append(part)
        elif not name or not value:
            raise SearchError(f"'{part}': write name=value, e.g. carrier=AA")
        else:
            exact[name] = value
    return exact, words


@dataclass(frozen=True)
class ItemRow:
    report: str
    key: str
    params: dict[str, Any]
    status: str
    updated_at: float
    run_id: str | None
    batch_id: str | None
    error: str | None
    fingerprint: str | None
    rendered_at: float | None
    pages: int | None
    item_dir: str | None
    files: list[str]

    @property
    def label(self) -> str:
        return ItemKey.of(self.params).label


@dataclass(frozen=True)
class ItemPage:
    rows: list[ItemRow]
    total: int  # every item that matches, not only this page


def _item_row(row: Any) -> ItemRow:
    return ItemRow(
        report=row.report,
        key=row.key,
        params=json.loads(row.params),
        status=row.status,
        updated_at=row.updated_at,
        run_id=row.run_id,
        batch_id=row.batch_id,
        error=row.error,
        fingerprint=row.fingerprint,
        rendered_at=row.rendered_at,
        pages=row.pages,
        item_dir=row.item_dir,
        files=json.loads(row.files) if row.files else [],
    )


def search_items(index: ItemIndex, query: ItemQuery) -> ItemPage:
    """Items matching every `name=value` exactly (case-insensitive) and every loose word."""
    exact, words = parse_search(query.text)
    conditions = []
    for name, value in exact.items():
        conditions.append(
            items.c.item_id.in_(
                select(item_params.c.item_id).where(
                    item_params.c.name == name, item_params.c.value == _folded(value)
                )
            )
        )
    for word in words:  # a value of any parameter, or part of the key
        conditions.append(
            or_(
                items.c.item_id.in_(
                    select(item_params.c.item_id).where(item_params.c.value == _folded(word))
                ),
                # the key holds values encoded as `item_key` writes them
                func.lower(items.c.key).contains(_folded(word), autoescape=True),
            )
        )
    if query.report:
        conditions.append(items.c.report == query.report)
    if query.statuses:
        unknown = set(query.statuses) - set(ITEM_STATUSES)
        if unknown:
            raise SearchError(f"unknown status {sorted(unknown)[0]!r}")
        conditions.append(items.c.status.in_(query.statuses))
    where = and_(*conditions) if conditions else None
    listing = select(items).order_by(items.c.updated_at.desc(), items.c.item_id)
    counting = select(func.count()).select_from(items)
    if where is not None:
        listing, counting = listing.where(where), counting.where(where)
    limit = max(1, min(query.limit, MAX_PAGE))
    with index.transaction() as connection:
        rows = connection.execute(listing.limit(limit).offset(max(0, query.offset))).all()
        total = connection.execute(counting).scalar_one()
    return ItemPage(rows=[_item_row(row) for row in rows], total=total)


def get_item(index: ItemIndex, report: str, key: str) -> ItemRow | None:
    with index.transaction() as connection:
        row = connection.execute(
            select(items).where(items.c.item_id == item_id(report, key))
        ).first()
    return _item_row(row) if row else None


@dataclass(frozen=True)
class RenderRow:
    status: str
    at: float
    run_id: str | None
    batch_id: str | None
    fingerprint: str | None
    data_hash: str | None
    pages: int | None
    rows: dict[str, int]
    kpis: dict[str, str]
    quality: str | None
    duration_s: float | None
    attempts: int | None
    error: str | None
    # label → (before, after), against the previous successful render
    kpi_changes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    data_changed: bool = False


@dataclass(frozen=True)
class ItemHistory:
    item: ItemRow | None
    renders: list[RenderRow]  # newest first


def item_history(index: ItemIndex, report: str, key: str, limit: int = 200) -> ItemHistory:
    """An item's latest state and its renders, each compared with the one before it."""
    with index.transaction() as connection:
        found = connection.execute(
            select(items).where(items.c.item_id == item_id(report, key))
        ).first()
        rows = connection.execute(
            select(renders)
            .where(renders.c.item_id == item_id(report, key))
            .order_by(renders.c.at.desc())
            .limit(limit)
        ).all()
    history: list[RenderRow] = []
    previous: Any = None  # the next older successful render, walking newest → oldest
    for row in reversed(rows):  # oldest first, so each render meets its predecessor
        kpis = json.loads(row.kpis) if row.kpis else {}
        changes, data_changed = {}, False
        if row.status != "failed" and previous is not None:
            before = json.loads(previous.kpis) if previous.kpis else {}
            changes = {
                label: (before.get(label), kpis.get(label))
                for label in sorted(set(before) | set(kpis))
                if before.get(label) != kpis.get(label)
            }
            data_changed = previous.data_hash != row.data_hash
        history.append(
            RenderRow(
                status=row.status,
                at=row.at,
                run_id=row.run_id,
                batch_id=row.batch_id,
                fingerprint=row.fingerprint,
                data_hash=row.data_hash,
                pages=row.pages,
                rows=json.loads(row.rows) if row.rows else {},
                kpis=kpis,
                quality=row.quality,
                duration_s=row.duration_s,
                attempts=row.attempts,
                error=row.error,
                kpi_changes=changes,
                data_changed=data_changed,
            )
        )
        if row.status != "failed":
            previous = row
    history.reverse()
    return ItemHistory(item=_item_row(found) if found else None, renders=history)


# ---- batches -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRow:
    batch_id: str
    report: str
    name: str
    dimensions: list[str]
    total: int
    started_at: float
    finished_at: float | None
    state: str  # as the batch flow last wrote it: running, completed, failed
    summary: str | None
    counts: dict[str, int]  # item status → items

    @property
    def done(self) -> int:
        """Items that finished, however (rendered, unchanged, flagged or failed)."""
        return self.total - self.counts.get("pending", 0) - self.counts.get("running", 0)


@dataclass(frozen=True)
class BatchItem:
    position: int
    key: str
    params: dict[str, Any]
    status: str
    updated_at: float
    run_id: str | None
    error: str | None
    duration_s: float | None

    @property
    def label(self) -> str:
        return ItemKey.of(self.params).label


def _batch_row(row: Any, counts: dict[str, int]) -> BatchRow:
    return BatchRow(
        batch_id=row.batch_id,
        report=row.report,
        name=row.name,
        dimensions=json.loads(row.dimensions),
        total=row.total,
        started_at=row.started_at,
        finished_at=row.finished_at,
        state=row.state,
        summary=row.summary,
        counts=counts,
    )


def _counts(connection, batch_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    counted: dict[str, dict[str, int]] = {batch_id: {} for batch_id in batch_ids}
    if not batch_ids:
        return counted
    rows = connection.execute(
        select(batch_items.c.batch_id, batch_items.c.status, func.count())
        .where(batch_items.c.batch_id.in_(list(batch_ids)))
        .group_by(batch_items.c.batch_id, batch_items.c.status)
    ).all()
    for batch_id, status, count in rows:
        counted[batch_id][status] = count
    return counted


def get_batch(index: ItemIndex, batch_id: str) -> tuple[BatchRow, list[BatchItem]] | None:
    """A batch and every one of its items, in the order it expanded them (one query each)."""
    with index.transaction() as connection:
        row = connection.execute(select(batches).where(batches.c.batch_id == batch_id)).first()
        if row is None:
            return None
        listed = connection.execute(
            select(batch_items)
            .where(batch_items.c.batch_id == batch_id)
            .order_by(batch_items.c.position)
        ).all()
    members = [
        BatchItem(
            position=item.position,
            key=item.key,
            params=json.loads(item.params),
            status=item.status,
            updated_at=item.updated_at,
            run_id=item.run_id,
            error=item.error,
            duration_s=item.duration_s,
        )
        for item in listed
    ]
    return _batch_row(row, dict(Counter(m.status for m in members))), members


def recent_batches(index: ItemIndex, limit: int = 10, report: str | None = None) -> list[BatchRow]:
    """The newest batches with their counts by status (two queries)."""
    listing = select(batches).order_by(batches.c.started_at.desc()).limit(limit)
    if report:
        listing = listing.where(batches.c.report == report)
    with index.transaction() as connection:
        rows = connection.execute(listing).all()
        counts = _counts(connection, [row.batch_id for row in rows])
    return [_batch_row(row, counts[row.batch_id]) for row in rows]


# ---- figures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportActivity:
    """What happened to one report's items in a time window."""

    report: str
    rendered: int = 0
    flagged: int = 0
    unchanged: int = 0
    failed: int = 0
    median_render_s: float | None = None


def report_activity(index: ItemIndex, since: float, until: float) -> list[ReportActivity]:
    """Per report: items rendered, flagged, unchanged and failed in [since, until)."""
    in_window = and_(renders.c.at >= since, renders.c.at < until)
    with index.transaction() as connection:
        by_status = connection.execute(
            select(renders.c.report, renders.c.status, func.count())
            .where(in_window)
            .group_by(renders.c.report, renders.c.status)
        ).all()
        unchanged = connection.execute(
            select(batches.c.report, func.count())
            .select_from(batch_items.join(batches, batch_items.c.batch_id == batches.c.batch_id))
            .where(
                batch_items.c.status == "unchanged",
                batch_items.c.updated_at >= since,
                batch_items.c.updated_at < until,
            )
            .group_by(batches.c.report)
        ).all()
        durations = connection.execute(
            select(renders.c.report, renders.c.duration_s).where(
                in_window, renders.c.duration_s.is_not(None), renders.c.status != "failed"
            )
        ).all()
    figures: dict[str, dict[str, Any]] = {}
    for report, status, count in by_status:
        figures.setdefault(report, {})[status] = count
    for report, count in unchanged:
        figures.setdefault(report, {})["unchanged"] = count
    seconds: dict[str, list[float]] = {}
    for report, duration in durations:
        seconds.setdefault(report, []).append(duration)
    return [
        ReportActivity(
            report=report,
            rendered=counts.get("rendered", 0),
            flagged=counts.get("flagged", 0),
            unchanged=counts.get("unchanged", 0),
            failed=counts.get("failed", 0),
            median_render_s=statistics.median(seconds[report]) if report in seconds else None,
        )
        for report, counts in sorted(figures.items())
    ]


def render_durations(index: ItemIndex, report: str, last: int = 200) -> list[float]:
    """The report's most recent render durations, in seconds (for a batch's first ETA)."""
    with index.transaction() as connection:
        rows = connection.execute(
            select(renders.c.duration_s)
            .where(
                renders.c.report == report,
                renders.c.status != "failed",
                renders.c.duration_s.is_not(None),
                renders.c.at >= time.time() - 90 * 86400,
            )
            .order_by(renders.c.at.desc())
            .limit(last)
        ).all()
    return [row.duration_s for row in rows]


def earlier_pages(index: ItemIndex, report: str, keys: Sequence[str], last: int = 20):
    """Per item key: the page counts of its recent renders, as (fingerprint, pages), newest
    first; one query for all of them (delivery compares a new PDF with these)."""
    ids = [item_id(report, key) for key in keys]
    found: dict[str, list[tuple[str | None, int]]] = {key: [] for key in keys}
    if not ids:
        return found
    by_id = dict(zip(ids, keys, strict=True))
    with index.transaction() as connection:
        for start in range(0, len(ids), 500):
            rows = connection.execute(
                select(renders.c.item_id, renders.c.fingerprint, renders.c.pages)
                .where(
                    renders.c.item_id.in_(ids[start : start + 500]),
                    renders.c.status != "failed",
                    renders.c.pages.is_not(None),
                )
                .order_by(renders.c.at.desc())
            ).all()
            for row in rows:
                kept = found[by_id[row.item_id]]
                if len(kept) < last:
                    kept.append((row.fingerprint, row.pages))
    return found
