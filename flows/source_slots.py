"""Cluster-wide limits the flows respect; `reportrunner deploy` creates them.

The SQL source limit bounds how many renders of SQL-backed reports run at once
across every worker, and with them the connections to the source database.
Without the limit on the server (a local `reportrunner batch`), nothing is limited.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from prefect.concurrency.sync import concurrency

from reports.definitions import default_catalog

SQL_SOURCE_LIMIT = "reportrunner-sql-source"


@contextmanager
def source_slot(report: str) -> Iterator[None]:
    """Hold one slot of the source limit while a SQL-backed report loads and renders."""
    uses_sql = default_catalog().get(report).spec.source == "sql"
    with concurrency(SQL_SOURCE_LIMIT, occupy=1, strict=False) if uses_sql else nullcontext():
        yield
