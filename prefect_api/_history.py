"""Flow runs over time, and the failure spikes in them: one definition for every reader.

The dashboard's overview charts `run_history` and lists `failure_spikes`; the alert
evaluator (`deployments/alert_checks.py`) runs the same rule per report and announces
what it finds as an event. The rule:

- failure spike: a bucket of the window with at least `SPIKE_MIN_FAILED` failed runs
  (Failed or Crashed) and at least `SPIKE_FACTOR` × the median failed runs per bucket
  of the whole history read.

`run_history` is one call whatever the number of runs (the server counts); the rest
are pure functions over plain values, tested on constructed data.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect_api._connection import Api
from prefect_api._values import utc

SPIKE_FACTOR = 3.0
SPIKE_MIN_FAILED = 3
FAILED = ("FAILED", "CRASHED")


@dataclass(frozen=True)
class Window:
    """A time window [start, end); `previous` is the window of the same length before it."""

    end: datetime
    length: timedelta

    @classmethod
    def last(cls, length: timedelta = timedelta(hours=24), now: datetime | None = None) -> Window:
        return cls(end=now or datetime.now(UTC), length=length)

    @property
    def start(self) -> datetime:
        return self.end - self.length

    @property
    def previous(self) -> Window:
        return Window(end=self.start, length=self.length)


@dataclass(frozen=True)
class HistoryBucket:
    start: datetime
    end: datetime
    counts: dict[str, int]  # state type (COMPLETED, FAILED, …) → runs


@dataclass(frozen=True)
class FailureSpike:
    """A history bucket with far more failed runs than the history's typical bucket."""

    start: datetime
    end: datetime
    failed: int  # Failed and Crashed
    typical: float  # median failed runs per bucket over the whole history read


def run_history(
    api: Api,
    start: datetime,
    end: datetime,
    interval: timedelta,
    flow_runs: Any = None,
) -> list[HistoryBucket]:
    """Flow runs by expected start time in buckets of `interval`, by current state type.

    One call. `flow_runs`: a `FlowRunFilter` narrowing the runs counted (e.g. by tag).
    Buckets start at `start`.
    """
    body: dict[str, Any] = {
        "history_start": start.isoformat(),
        "history_end": end.isoformat(),
        "history_interval_seconds": max(1.0, interval.total_seconds()),
    }
    if flow_runs is not None:
        body["flow_runs"] = flow_runs.model_dump(mode="json", exclude_unset=True)
    with api.guard("run history"):
        rows = api.post("/flow_runs/history", body)
        buckets = []
        for row in rows:
            counts: dict[str, int] = {}
            for state in row.get("states") or []:
                kind = str(state.get("state_type") or "UNKNOWN")
                counts[kind] = counts.get(kind, 0) + int(state.get("count_runs") or 0)
            buckets.append(
                HistoryBucket(
                    start=_parse_time(row["interval_start"]),
                    end=_parse_time(row["interval_end"]),
                    counts=counts,
                )
            )
    return buckets


def failure_spikes(history: list[HistoryBucket], window: Window) -> list[FailureSpike]:
    """Buckets of `window` with far more failed runs than the typical bucket of the history."""
    failed = [(bucket, failed_runs(bucket)) for bucket in history]
    if not failed:
        return []
    typical = statistics.median(n for _, n in failed)
    threshold = max(SPIKE_MIN_FAILED, SPIKE_FACTOR * typical)
    return [
        FailureSpike(start=bucket.start, end=bucket.end, failed=n, typical=typical)
        for bucket, n in failed
        if n >= threshold and window.start <= middle(bucket) < window.end
    ]


def failed_runs(bucket: HistoryBucket) -> int:
    """Failed and Crashed runs of the bucket."""
    return sum(bucket.counts.get(kind, 0) for kind in FAILED)


def middle(bucket: HistoryBucket) -> datetime:
    return bucket.start + (bucket.end - bucket.start) / 2


def _parse_time(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return utc(moment)
