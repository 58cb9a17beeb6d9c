"""One consolidated progress record per batch, written to Prefect at most once per cooldown.

Every progress write is an HTTP call (~34 ms); a 1,000-item batch that wrote on
every item would spend half a minute just reporting. `ProgressTracker` counts in
memory and writes when the cooldown has passed, plus once at the end.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from reports.contracts import ProgressSnapshot

Listener = Callable[["ProgressTracker"], None]


@dataclass
class ProgressTracker:
    """Counts a batch's finished items and writes its progress artifact, throttled."""

    total: int
    artifact_key: str | None = None
    cooldown_s: float = 2.0
    listeners: list[Listener] = field(default_factory=list)
    rendered: int = 0
    skipped: int = 0
    failed: int = 0
    writes: int = 0
    # Seconds per item (low, high) from the report's history: the ETA before any render
    # has finished. None: no history, so no estimate until renders finish.
    history_item_s: tuple[float, float] | None = None
    started_at: float = field(default_factory=time.monotonic)
    # When the first and the latest rendered (or failed) item ended, and how many have.
    _ends: tuple[float, float, int] = (0.0, 0.0, 0)
    _artifact_id: UUID | None = None
    _last_write: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _io_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def finished(self) -> int:
        return self.rendered + self.skipped + self.failed

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else round(100.0 * self.finished / self.total, 1)

    def eta_range(self) -> tuple[float, float] | None:
        """Remaining seconds, low and high; None while there is nothing to go on.

        The rate comes from the items that were rendered (not those found unchanged,
        which take no time) and from the gaps between their ends, so the start-up of
        render processes does not count as the pace. With few items seen the range is
        wide (±1/√n), and before three have ended it comes from the report's history.
        """
        remaining = self.total - self.finished
        if remaining <= 0:
            return (0.0, 0.0)
        with self._lock:
            first, last, ended = self._ends
        if ended >= 3:
            pace = (last - first) / (ended - 1)  # seconds per item, once rendering runs
            behind = max(0.0, time.monotonic() - last)  # the next item is under way
            central = max(0.0, remaining * pace - min(behind, pace))
            spread = 1.0 / math.sqrt(ended - 1)
            return (central / (1 + spread), central * (1 + spread))
        if self.history_item_s is not None:
            low, high = self.history_item_s
            return (remaining * low, remaining * high)
        return None

    def eta_seconds(self) -> float | None:
        """The middle of `eta_range`."""
        span = self.eta_range()
        return None if span is None else (span[0] + span[1]) / 2

    def snapshot(self) -> ProgressSnapshot:
        """The counts as the dashboard and the CLI read them (see reports.contracts)."""
        with self._lock:
            rendered, skipped, failed = self.rendered, self.skipped, self.failed
        span = self.eta_range()
        return ProgressSnapshot(
            total=self.total,
            rendered=rendered,
            skipped=skipped,
            failed=failed,
            elapsed_s=round(time.monotonic() - self.started_at, 1),
            eta_s=None if span is None else round((span[0] + span[1]) / 2, 1),
            eta_low_s=None if span is None else round(span[0], 1),
            eta_high_s=None if span is None else round(span[1], 1),
        )

    def describe(self) -> str:
        return self.snapshot().sentence()

    def start(self) -> None:
        self._write(force=True)

    def record(self, status: str) -> None:
        """Count one finished item: 'rendered', 'skipped' or 'failed'."""
        with self._lock:
            setattr(self, status, getattr(self, status) + 1)
            if status != "skipped":
                self._count_ends(1)
        self._write(force=self.finished == self.total)

    def _count_ends(self, items: int) -> None:
        if items <= 0:
            return
        now = time.monotonic()
        first, _, ended = self._ends
        self._ends = (now if ended == 0 else first, now, ended + items)

    def set_counts(self, rendered: int, skipped: int, failed: int) -> None:
        """Replace the counts (a batch whose chunks run elsewhere polls them)."""
        with self._lock:
            changed = (rendered, skipped, failed) != (self.rendered, self.skipped, self.failed)
            self._count_ends(rendered + failed - (self.rendered + self.failed))
            self.rendered, self.skipped, self.failed = rendered, skipped, failed
        if changed:
            self._write(force=self.finished == self.total)

    def _write(self, force: bool) -> None:
        for listener in self.listeners:
            listener(self)
        if not force and time.monotonic() - self._last_write < self.cooldown_s:
            return
        with self._io_lock:  # one writer at a time; the artifact is created exactly once
            now = time.monotonic()
            if not force and now - self._last_write < self.cooldown_s:
                return
            self._last_write = now
            self.writes += 1
            snapshot = self.snapshot()
            if self._artifact_id is None:
                self._artifact_id = create_progress_artifact(
                    progress=snapshot.percent,
                    key=self.artifact_key,
                    description=snapshot.description(),
                )
            else:
                update_progress_artifact(
                    artifact_id=self._artifact_id,
                    progress=snapshot.percent,
                    description=snapshot.description(),
                )


# Listeners every new batch in this process gets (the CLI's terminal progress bar).
_subscribers: list[Listener] = []


def subscribe(listener: Listener) -> None:
    _subscribers.append(listener)


def subscribers() -> list[Listener]:
    return list(_subscribers)


# Batches running in this process, by batch id: in-process chunk flows report here.
_active: dict[str, ProgressTracker] = {}


def register(batch_id: str, progress: ProgressTracker) -> None:
    _active[batch_id] = progress


def unregister(batch_id: str) -> None:
    _active.pop(batch_id, None)


def lookup(batch_id: str | None) -> ProgressTracker | None:
    return _active.get(batch_id) if batch_id else None
