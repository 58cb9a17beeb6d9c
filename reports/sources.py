"""Where report data comes from: Parquet/CSV files and SQL databases.

Loaders receive one of these sources and never build file paths or SQL strings
themselves. Both keep per-process state that makes a batch fast: files are read
once per process (keyed by path, size and mtime, so a changed file is re-read)
and each database URL gets one pooled SQLAlchemy engine.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from reports.errors import DataError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_identifier(kind: str, name: str) -> str:
    # Table and column names cannot be bound parameters; allow plain identifiers only.
    if not _IDENTIFIER.match(name):
        raise DataError(f"invalid {kind} name {name!r}")
    return name


class FileSource:
    """Tables stored as `<data_dir>/<table>.parquet` (preferred) or `<table>.csv`."""

    kind = "files"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    def path_of(self, table: str) -> Path:
        _check_identifier("table", table)
        for suffix in (".parquet", ".csv"):
            path = self.data_dir / f"{table}{suffix}"
            if path.exists():
                return path
        raise DataError(
            f"table '{table}' not found in {self.data_dir} "
            "(run `reportrunner data setup` to build the demo data)"
        )

    def table(self, name: str, where: dict[str, Any] | None = None) -> pd.DataFrame:
        """The whole table, or the rows whose columns equal the values in `where`."""
        frame, version = _read_cached(self.path_of(name))
        if not where:
            return frame
        for column in where:
            if column not in frame.columns:
                raise DataError(f"table '{name}' has no column '{column}'")
        columns = tuple(where)
        key = where[columns[0]] if len(columns) == 1 else tuple(where.values())
        positions = _group_index(version, frame, columns).get(key)
        if positions is None:
            return frame.iloc[0:0].reset_index(drop=True)
        return frame.take(positions).reset_index(drop=True)

    def distinct(self, table: str, column: str) -> list[Any]:
        frame = self.table(table)
        if column not in frame.columns:
            raise DataError(f"table '{table}' has no column '{column}'")
        return sorted(frame[column].dropna().unique().tolist())


class SqlSource:
    """A SQL database reached through one pooled SQLAlchemy engine per URL and process."""

    kind = "sql"

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.url)

    def query(self, sql: str, **params: Any) -> pd.DataFrame:
        """Run `sql` with `:name` placeholders bound to `params` (never formatted in)."""
        try:
            with self.engine.connect() as conn:
                return pd.read_sql_query(sa.text(sql), conn, params=params)
        except sa.exc.OperationalError as exc:
            # Connection trouble is transient: let the flow's retries handle it.
            raise ConnectionError(f"database unreachable: {_first_line(exc.orig)}") from None
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"SQL query failed: {exc.__class__.__name__}: {exc.orig}") from None

    def distinct(self, table: str, column: str) -> list[Any]:
        col = sa.column(_check_identifier("column", column))
        stmt = (
            sa.select(col)
            .select_from(sa.table(_check_identifier("table", table)))
            .distinct()
            .order_by(col)
        )
        try:
            with self.engine.connect() as conn:
                return [row[0] for row in conn.execute(stmt) if row[0] is not None]
        except sa.exc.OperationalError as exc:
            # Choices are read while validating parameters: an outage here is the same
            # transient one-line error as in query(), not a multi-line driver message.
            raise ConnectionError(f"database unreachable: {_first_line(exc.orig)}") from None


def _first_line(error: BaseException | None) -> str:
    # Drivers add hints on further lines; the first one says what happened.
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: str) -> sa.Engine:
    """One engine (and so one connection pool) per URL in this process."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            try:
                engine = sa.create_engine(url, pool_pre_ping=True)
            except (sa.exc.ArgumentError, ImportError) as exc:
                raise DataError(f"invalid database URL: {exc}") from None
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (before dropping a database, or at shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


_file_cache: dict[tuple[str, int, int], pd.DataFrame] = {}
_file_cache_lock = threading.Lock()
_index_cache: dict[tuple, dict] = {}


def _read_cached(path: Path) -> tuple[pd.DataFrame, tuple[str, int, int]]:
    """The file's frame and its version key (path, size, mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _file_cache_lock:
        cached = _file_cache.get(key)
    if cached is not None:
        return cached, key
    frame = _read_file(path)
    with _file_cache_lock:
        for old in [k for k in _file_cache if k[0] == key[0]]:
            del _file_cache[old]
        _file_cache[key] = frame
        for old in [k for k in _index_cache if k[0][0] == key[0]]:
            del _index_cache[old]
    return frame, key


def _group_index(version: tuple, frame: pd.DataFrame, columns: tuple[str, ...]) -> dict:
    """Row positions per distinct value of `columns`, built once per file version.

    A batch filters the same table hundreds of times by the same columns (carrier
    and month, say); one groupby replaces a full-table scan per item.
    """
    key = (version, columns)
    with _file_cache_lock:
        index = _index_cache.get(key)
    if index is None:
        index = frame.groupby(list(columns), sort=False, dropna=False).indices
        with _file_cache_lock:
            _index_cache[key] = index
    return index


def _read_file(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError:
        # pandas reports an offset inside the field it was decoding; find the file's own.
        try:
            path.read_bytes().decode("utf-8")
            where = ""
        except UnicodeDecodeError as exc:
            where = f" at byte {exc.start}"
        raise DataError(f"{path.name}: not valid UTF-8{where}; save the file as UTF-8") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"{path.name}: cannot read: {exc}") from None
