"""Reading the batch flow's progress artifact, defensively.

The batch flow writes one progress artifact whose `data` is the percent done and
whose description carries a `reports.contracts.ProgressSnapshot`: a sentence for
people and the counts as data. The counts are read from the data, never parsed out
of the sentence; an artifact without them (another flow's, or an older run's)
yields its percent and `None` for the rest, so it never breaks the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dashboard.api._models import BatchProgress
from reports.contracts import ProgressSnapshot, sentence_of


@dataclass(frozen=True)
class ParsedProgress:
    percent: float | None
    done: int | None = None
    total: int | None = None
    unchanged: int | None = None
    failed: int | None = None
    eta: str | None = None  # "3 min 05 s", "pending"; None when finished or unknown
    eta_s: float | None = None
    sentence: str | None = None  # the description without its data


def parse_progress(data: Any, description: str | None) -> ParsedProgress:
    percent = _percent(data)
    sentence = sentence_of(description) or None
    snapshot = ProgressSnapshot.from_description(description)
    if snapshot is None:
        return ParsedProgress(percent=percent, sentence=sentence)
    eta_s = None if snapshot.finished else snapshot.eta_s
    eta = None  # a finished batch has none
    if not snapshot.finished:
        eta = snapshot.eta_text()
    return ParsedProgress(
        percent=snapshot.percent if percent is None else percent,
        done=snapshot.done,
        total=snapshot.total,
        unchanged=snapshot.skipped,
        failed=snapshot.failed,
        eta=eta,
        eta_s=eta_s,
        sentence=sentence,
    )


def batch_progress(
    *,
    run_id: str,
    name: str,
    report: str | None,
    state: str,
    started_at: datetime | None,
    ended_at: datetime | None,
    data: Any,
    description: str | None,
) -> BatchProgress:
    """A batch run as the dashboard shows it: its progress artifact read, its age counted."""
    parsed = parse_progress(data, description)
    until = ended_at or datetime.now(UTC)
    return BatchProgress(
        run_id=run_id,
        name=name,
        report=report,
        state=state,
        started_at=started_at,
        elapsed_s=(until - started_at).total_seconds() if started_at else None,
        percent=parsed.percent,
        done=parsed.done,
        total=parsed.total,
        unchanged=parsed.unchanged,
        failed=parsed.failed,
        eta=parsed.eta,
        description=parsed.sentence,
    )


def _percent(data: Any) -> float | None:
    try:
        value = float(data)
    except (TypeError, ValueError):
        return None
    if value != value:  # NaN
        return None
    return min(100.0, max(0.0, value))


def latest_progress(api: Any, run_ids: list[Any], what: str) -> dict[Any, Any]:
    """The newest progress artifact of each run, in one API call."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    if not run_ids:
        return {}
    with api.guard(what):
        found = api.client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=list(run_ids)),
                type=ArtifactFilterType(any_=["progress"]),
            ),
            sort=ArtifactSort.UPDATED_DESC,
            limit=200,  # the API's largest page
        )
    latest: dict[Any, Any] = {}
    for artifact in found:  # newest first: keep the first per run
        latest.setdefault(artifact.flow_run_id, artifact)
    return latest
