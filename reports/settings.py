"""One settings object for the engine, read from `REPORTRUNNER_*` environment variables.

The README's configuration table documents every field; keep the two in step.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from reports.contracts import MAX_CHUNK_SIZE, MAX_ITEMS_PER_TASK, MAX_PARALLEL

# The checkout this package runs from; var/ beside it holds data and outputs by default.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTRUNNER_", extra="ignore")

    home: Path = Field(
        default=PROJECT_ROOT / "var",
        description="Folder for local state: data, outputs, logs, the local Prefect home.",
    )
    data_dir: Path | None = Field(
        default=None, description="Where `reportrunner data setup` writes Parquet files."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the reports' SQL database (default: SQLite in data_dir).",
    )
    output_url: str | None = Field(
        default=None,
        description="Output root: a local folder or any fsspec URL (default: home/outputs).",
    )
    index_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the item index (default: SQLite in home; "
        "PostgreSQL when workers run on several hosts).",
    )
    deliveries_dir: Path = Field(
        default=PROJECT_ROOT / "deliveries",
        description="Folder of subscription files (one YAML file per subscription).",
    )
    dashboard_url: str = Field(
        default="http://127.0.0.1:8501",
        description="The dashboard's address as recipients reach it: links in messages.",
    )
    catalog_dir: Path = Field(
        default=Path(__file__).resolve().parent / "catalog",
        description="Folder holding one sub-folder per report definition.",
    )
    max_parallel: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=MAX_PARALLEL,
        description="Render processes per batch, and the most a run may ask for "
        "(default: number of cores).",
    )
    chunk_size: int = Field(
        default=48, ge=1, le=MAX_CHUNK_SIZE, description="Items per batch chunk flow run."
    )
    items_per_task: int = Field(
        default=24,
        ge=1,
        le=MAX_ITEMS_PER_TASK,
        description="Items one render task run renders side by side (1: a task run per item).",
    )
    max_batch_items: int = Field(
        default=50_000, ge=1, description="Most items one batch may expand to."
    )
    progress_cooldown_s: float = Field(
        default=2.0, ge=0, description="Minimum seconds between two progress-artifact writes."
    )
    render_timeout_s: float = Field(
        default=120.0, gt=0, description="Wall-clock limit of one render in a worker process."
    )
    render_memory_mb: int = Field(
        default=2048, ge=256, description="Address-space cap of each render worker process."
    )
    failure_webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack/Teams-compatible webhook that hears about failed runs (a secret).",
    )
    # Alerts, posted to the same webhook (none without it); `reportrunner deploy` applies them.
    alert_backlog_minutes: float = Field(
        default=10,
        gt=0,
        description="Alert when a Late run has not started this many minutes later; "
        "also the window of `alert_late_runs` (at least 10 s, Prefect's minimum).",
    )
    alert_late_runs: int = Field(
        default=5,
        ge=1,
        description="Alert when this many runs turned Late within `alert_backlog_minutes`.",
    )
    alert_no_worker_minutes: float = Field(
        default=5,
        gt=0,
        description="Alert when the work pool has had no online worker this many minutes "
        "(at least 10 s, Prefect's minimum).",
    )

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir or self.home / "data"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'nycflights13.sqlite'}"

    @property
    def resolved_index_url(self) -> str:
        return self.index_url or f"sqlite:///{self.home / 'index.sqlite'}"

    @property
    def resolved_output_url(self) -> str:
        return self.output_url or str(self.home / "outputs")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
