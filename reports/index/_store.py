"""Connecting to the item index and writing to it.

The flows write here as items finish: one small transaction per finished item (a
few milliseconds, next to a render's hundreds), so an item is searchable as soon as
its outputs exist. Every write is an upsert keyed by what it describes, so a
retried write, a re-run chunk or a resume that finds the item current records it
once: the same effectively-once rule as the outputs themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, create_engine, event, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from reports.contracts import Outcome, item_key, item_status
from reports.errors import ReportError
from reports.index._schema import batch_items, batches, item_params, items, metadata, renders


class IndexUnavailable(ReportError):
    """The item index's database cannot be reached or written."""


def item_id(report: str, key: str) -> str:
    return f"{report} {key}"


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    moment = dt.datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _hash(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _folded(value: Any) -> str:
    """A parameter value as search compares it: the key's text form, case-folded."""
    text = item_key({"_": value}).partition("=")[2]
    return text.casefold()[:512]


_NO_OUTPUT = dict.fromkeys(("fingerprint", "data_hash", "pages", "rows", "kpis", "quality"))


class ItemIndex:
    """One item index database. Open it with `open_index()`; safe to share across threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        postgres = self.engine.dialect.name == "postgresql"
        self._upsert = postgresql.insert if postgres else sqlite.insert
        self._create_tables()

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def _create_tables(self) -> None:
        for attempt in (1, 2):  # two processes creating at once: the loser retries
            try:
                metadata.create_all(self.engine, checkfirst=True)
                return
            except SQLAlchemyError as error:
                if attempt == 2:
                    raise IndexUnavailable(self._message(error)) from error
                time.sleep(0.2)

    def _message(self, error: BaseException) -> str:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return f"item index {self.safe_url}: {reason}"

    def transaction(self):
        """A connection in a transaction; database errors leave as IndexUnavailable."""
        return _Transaction(self)

    # ---- writes ----------------------------------------------------------------------

    def record(
        self,
        report: str,
        outcomes: Sequence[Outcome],
        *,
        run_id: str | None = None,
        batch_id: str | None = None,
    ) -> None:
        """Record finished items: their latest state, their render history, their batch."""
        if not outcomes:
            return
        now = time.time()
        item_rows, param_rows, render_rows, batch_rows = [], [], [], []
        for outcome in outcomes:
            ident = item_id(report, outcome.key)
            status = item_status(outcome.status, outcome.quality)
            rendered_at = _epoch(outcome.rendered_at)
            item_rows.append(
                {
                    "item_id": ident,
                    "report": report,
                    "key": outcome.key,
                    "params": json.dumps(outcome.params, default=str),
                    "status": status,
                    "updated_at": now,
                    "run_id": run_id,
                    "batch_id": batch_id,
                    "error": outcome.error,
                    "fingerprint": outcome.fingerprint,
                    "rendered_at": rendered_at,
                    "pages": outcome.pages,
                    "item_dir": outcome.item_dir,
                    "files": json.dumps(outcome.files) if outcome.fingerprint else None,
                }
            )
            param_rows += [
                {"item_id": ident, "name": str(name)[:128], "value": _folded(value)}
                for name, value in outcome.params.items()
            ]
            render = self._render_row(report, ident, outcome, status, rendered_at, now)
            if render is not None:
                render_rows.append({**render, "run_id": run_id, "batch_id": batch_id})
            if batch_id:
                batch_rows.append(
                    {
                        "b_id": ident,
                        "b_status": status,
                        "b_error": outcome.error,
                        "b_duration": outcome.duration_s,
                    }
                )
        with self.transaction() as connection:
            connection.execute(self._upsert_items(), item_rows)
            if param_rows:
                connection.execute(self._insert_params(), param_rows)
            if render_rows:
                connection.execute(
                    self._upsert(renders).on_conflict_do_nothing(index_elements=["render_id"]),
                    render_rows,
                )
            if batch_rows:
                connection.execute(
                    _batch_item_update(batch_id, now, run_id),
                    batch_rows,
                )

    @staticmethod
    def _render_row(report, ident, outcome: Outcome, status, rendered_at, now) -> dict | None:
        if outcome.status == "failed":
            return {
                **_NO_OUTPUT,
                "render_id": _hash(ident, "failed", outcome.error, now),
                "item_id": ident,
                "report": report,
                "status": "failed",
                "at": now,
                "attempts": outcome.attempts,
                "duration_s": outcome.duration_s,
                "error": outcome.error,
            }
        if not outcome.fingerprint or rendered_at is None:
            return None  # nothing known about what made the outputs
        return {
            # What a render made identifies it: recording it again is a no-op, and a
            # resume that finds it current restores a record a crash lost.
            "render_id": _hash(ident, outcome.fingerprint, outcome.rendered_at),
            "item_id": ident,
            "report": report,
            "status": "flagged" if status == "flagged" else "rendered",
            "at": rendered_at,
            "fingerprint": outcome.fingerprint,
            "data_hash": outcome.data_hash,
            "pages": outcome.pages,
            "rows": json.dumps(outcome.rows),
            "kpis": json.dumps(outcome.kpis),
            "quality": outcome.quality,
            "duration_s": outcome.duration_s,
            "attempts": outcome.attempts,
            "error": None,
        }

    def _insert_params(self):
        return self._upsert(item_params).on_conflict_do_nothing(index_elements=["item_id", "name"])

    def _upsert_items(self):
        statement = self._upsert(items)
        new = statement.excluded
        keep = items.c
        return statement.on_conflict_do_update(
            index_elements=["item_id"],
            set_={
                "status": new.status,
                "updated_at": new.updated_at,
                "run_id": new.run_id,
                "batch_id": new.batch_id,
                "error": new.error,
                # A failure keeps the last good outputs: the item page still offers them.
                "fingerprint": func.coalesce(new.fingerprint, keep.fingerprint),
                "rendered_at": func.coalesce(new.rendered_at, keep.rendered_at),
                "pages": func.coalesce(new.pages, keep.pages),
                "item_dir": func.coalesce(new.item_dir, keep.item_dir),
                "files": func.coalesce(new.files, keep.files),
            },
        )

    def mark(
        self,
        report: str,
        params_list: Iterable[Mapping[str, Any]],
        status: str,
        *,
        run_id: str | None = None,
        batch_id: str | None = None,
    ) -> None:
        """Set items to "running" or "pending" (in their batch too), keeping their outputs."""
        now = time.time()
        rows = []
        listed = list(params_list)
        for params in listed:
            key = item_key(params)
            rows.append(
                {
                    "item_id": item_id(report, key),
                    "report": report,
                    "key": key,
                    "params": json.dumps(dict(params), default=str),
                    "status": status,
                    "updated_at": now,
                    "run_id": run_id,
                    "batch_id": batch_id,
                    "error": None,
                    "fingerprint": None,
                    "rendered_at": None,
                    "pages": None,
                    "item_dir": None,
                    "files": None,
                }
            )
        if not rows:
            return
        with self.transaction() as connection:
            connection.execute(self._upsert_items(), rows)
            param_rows = [
                {"item_id": row["item_id"], "name": str(name)[:128], "value": _folded(value)}
                for row, params in zip(rows, listed, strict=True)
                for name, value in params.items()
            ]
            if param_rows:
                connection.execute(self._insert_params(), param_rows)
            if batch_id:
                connection.execute(
                    _batch_item_update(batch_id, now, run_id),
                    [
                        {
                            "b_id": row["item_id"],
                            "b_status": status,
                            "b_error": None,
                            "b_duration": None,
                        }
                        for row in rows
                    ],
                )

    def start_batch(
        self,
        batch_id: str,
        report: str,
        name: str,
        dimensions: Sequence[str],
        item_list: Sequence[Mapping[str, Any]],
    ) -> None:
        """Register a batch and its items, all pending. Starting it again changes nothing."""
        now = time.time()
        rows, seen = [], set()
        for position, params in enumerate(item_list):
            key = item_key(params)
            ident = item_id(report, key)
            if ident in seen:
                continue  # the same item listed twice renders once
            seen.add(ident)
            rows.append(
                {
                    "batch_id": batch_id,
                    "item_id": ident,
                    "position": position,
                    "key": key,
                    "params": json.dumps(dict(params), default=str),
                    "status": "pending",
                    "updated_at": now,
                }
            )
        with self.transaction() as connection:
            connection.execute(
                self._upsert(batches).on_conflict_do_nothing(index_elements=["batch_id"]),
                {
                    "batch_id": batch_id,
                    "report": report,
                    "name": name,
                    "dimensions": json.dumps(list(dimensions)),
                    "total": len(rows),
                    "started_at": now,
                    "state": "running",
                },
            )
            for start in range(0, len(rows), 1000):
                connection.execute(
                    self._upsert(batch_items).on_conflict_do_nothing(
                        index_elements=["batch_id", "item_id"]
                    ),
                    rows[start : start + 1000],
                )

    def finish_batch(self, batch_id: str, state: str, summary: str) -> None:
        with self.transaction() as connection:
            connection.execute(
                update(batches)
                .where(batches.c.batch_id == batch_id)
                .values(state=state, summary=summary, finished_at=time.time())
            )


def _batch_item_update(batch_id: str, now: float, run_id: str | None):
    return (
        update(batch_items)
        .where(batch_items.c.batch_id == batch_id)
        .where(batch_items.c.item_id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            error=bindparam("b_error"),
            duration_s=bindparam("b_duration"),
            updated_at=now,
            run_id=run_id,
        )
    )


class _Transaction:
    def __init__(self, index: ItemIndex) -> None:
        self._index = index
        self._context = None

    def __enter__(self):
        try:
            self._context = self._index.engine.begin()
            return self._context.__enter__()
        except SQLAlchemyError as error:
            raise IndexUnavailable(self._index._message(error)) from error

    def __exit__(self, kind, error, traceback):
        try:
            self._context.__exit__(kind, error, traceback)
        except SQLAlchemyError as failure:
            raise IndexUnavailable(self._index._message(failure)) from failure
        if isinstance(error, SQLAlchemyError):
            raise IndexUnavailable(self._index._message(error)) from error
        return False


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8)


def _sqlite_pragmas(connection, _record) -> None:
    # WAL: readers (the dashboard) never block the writers (render processes of every
    # worker on this machine), and one writer waits for another instead of failing.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_opened: dict[tuple[str, int], ItemIndex] = {}
_opening = threading.Lock()


def open_index(url: str | None = None) -> ItemIndex:
    """The item index at `url` (default: the settings' `index_url`), one per process."""
    if url is None:
        from reports.settings import get_settings

        url = get_settings().resolved_index_url
    key = (url, os.getpid())  # a forked render process opens its own connections
    with _opening:
        if key not in _opened:
            _opened[key] = ItemIndex(url)
        return _opened[key]
