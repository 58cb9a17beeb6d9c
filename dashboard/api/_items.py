"""Items and batches for the dashboard: the item index, joined with Prefect's run states.

The index (`reports.index`) knows every item and batch; Prefect knows whether a
batch's run is still alive (a crashed or cancelled batch never wrote its end). So a
batch page costs one index read and two API calls (its run, its progress artifact),
and the recent-batches list one index read and one API call, whatever their size.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, urlencode

from dashboard.api._progress import ParsedProgress, latest_progress, parse_progress
from prefect_api import Api
from reports.index import (
    BatchItem,
    BatchRow,
    ReportActivity,
    get_batch,
    open_index,
    recent_batches,
    report_activity,
)

# Statuses in the order pages list them: what needs attention first.
STATUS_ORDER = ("failed", "flagged", "running", "pending", "rendered", "unchanged")


def item_link(report: str, key: str) -> str:
    # quote_plus, not urlencode: a 5,000-cell matrix builds 5,000 of these per refresh.
    return f"item?report={quote_plus(report)}&key={quote_plus(key)}"


def batch_link(batch_id: str) -> str:
    return "batch?" + urlencode({"id": batch_id})


def run_link(run_id: str) -> str:
    return "run?" + urlencode({"id": run_id})


def items_link(text: str, report: str | None = None) -> str:
    query = {"q": text, **({"report": report} if report else {})}
    return "items?" + urlencode(query)


@dataclass(frozen=True)
class BatchState:
    """A batch's run as Prefect last saw it."""

    type: str  # RUNNING, COMPLETED, FAILED, CRASHED, CANCELLED, … ("UNKNOWN": no run found)
    name: str

    @property
    def final(self) -> bool:
        return self.type in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

    @property
    def stopped_early(self) -> bool:
        """Crashed or cancelled: the items that did not finish never will in this run."""
        return self.type in {"CRASHED", "CANCELLED"}


@dataclass(frozen=True)
class BatchView:
    batch: BatchRow
    items: list[BatchItem]
    state: BatchState
    progress: ParsedProgress | None
    dimensions: list[str] = field(default_factory=list)  # every parameter that varies

    @property
    def eta(self) -> str | None:
        """The ETA range while the batch runs; none once it ended, however it ended."""
        if self.state.final or self.progress is None:
            return None
        return self.progress.eta


def _state(run: Any) -> BatchState:
    if run is None or run.state is None:
        return BatchState("UNKNOWN", "Unknown")
    return BatchState(run.state.type.value, run.state.name)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _read_runs(api: Api, ids: Sequence[str]) -> dict[str, Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    wanted = [u for u in (_uuid(i) for i in ids) if u is not None]
    if not wanted:
        return {}
    with api.guard("the batches' runs"):
        runs = api.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=wanted)), limit=200
        )
    return {str(run.id): run for run in runs}


def batch_view(api: Api, batch_id: str) -> BatchView | None:
    """One batch with every item, its run's state and its progress (None: no such batch)."""
    found = get_batch(open_index(), batch_id)
    if found is None:
        return None
    batch, members = found
    run = _read_runs(api, [batch_id]).get(batch_id)
    progress = None
    if run is not None:
        artifact = latest_progress(api, [run.id], "the batch's progress").get(run.id)
        if artifact is not None:
            progress = parse_progress(artifact.data, artifact.description)
    return BatchView(
        batch=batch,
        items=members,
        state=_state(run),
        progress=progress,
        dimensions=varying_dimensions(batch, members),
    )


def varying_dimensions(batch: BatchRow, members: Sequence[BatchItem]) -> list[str]:
    """The batch's dimensions, then any other parameter whose value differs between items."""
    names = list(batch.dimensions)
    for member in members[:1]:
        names += [name for name in member.params if name not in names]
    return [
        name
        for name in names
        if name in batch.dimensions or len({str(m.params.get(name)) for m in members}) > 1
    ]


@dataclass(frozen=True)
class RecentBatch:
    batch: BatchRow
    state: BatchState


def recent_batch_views(api: Api | None, limit: int = 10) -> list[RecentBatch]:
    """The newest batches, running ones first, each with its run's state from Prefect.

    Without an API (it is down), the states are the index's own ("running" may then be
    a batch that crashed).
    """
    rows = recent_batches(open_index(), limit=limit)
    runs = _read_runs(api, [row.batch_id for row in rows]) if api is not None else {}
    listed = []
    for row in rows:
        run = runs.get(row.batch_id)
        state = _state(run) if run is not None else BatchState(row.state.upper(), row.state)
        listed.append(RecentBatch(row, state))
    return sorted(listed, key=lambda b: (b.state.final, -b.batch.started_at))


def age(epoch: float | None, now: datetime | None = None) -> str:
    """'3 min ago', '2 h ago', '4 d ago' for an epoch time."""
    if epoch is None:
        return "–"
    seconds = ((now or datetime.now(UTC)).timestamp()) - epoch
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class ReportFigures:
    """What happened to report items in a window: the figures users count in."""

    rendered: int
    unchanged: int
    failed: int
    flagged: int
    by_report: list[ReportActivity]

    @property
    def median_render_s(self) -> float | None:
        medians = [r.median_render_s for r in self.by_report if r.median_render_s is not None]
        return statistics.median(medians) if medians else None


def report_figures(since: datetime, until: datetime) -> ReportFigures:
    """Items rendered, unchanged, failed and flagged in [since, until), per report (3 queries)."""
    rows = report_activity(open_index(), since.timestamp(), until.timestamp())
    return ReportFigures(
        rendered=sum(r.rendered for r in rows),
        unchanged=sum(r.unchanged for r in rows),
        failed=sum(r.failed for r in rows),
        flagged=sum(r.flagged for r in rows),
        by_report=rows,
    )
