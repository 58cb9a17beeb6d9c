"""Reading the batch flow's progress artifact, defensively.

The batch flow writes one progress artifact whose `data` is the percent done and
whose description reads "N of M done (S unchanged), K failed, ETA …" (or
"…, took …" at the end; see flows/progress.py). Anything else yields what could be
read and `None` for the rest: a changed text never breaks the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dashboard.api._models import BatchProgress

_DESCRIPTION = re.compile(
    r"(?P<done>\d+)\s+of\s+(?P<total>\d+)\s+done"
    r"(?:\s*\((?P<unchanged>\d+)\s+unchanged\))?"
    r"(?:,\s*(?P<failed>\d+)\s+failed)?"
    r"(?:,\s*ETA\s+(?P<eta>[^,]+?))?"
    r"(?:,\s*took\s+(?P<took>[^,]+?))?\s*$"
)


@dataclass(frozen=True)
class ParsedProgress:
    percent: float | None
    done: int | None = None
    total: int | None = None
    unchanged: int | None = None
    failed: int | None = None
    eta: str | None = None
    took: str | None = None


def parse_progress(data: Any, description: str | None) -> ParsedProgress:
    percent = _percent(data)
    match = _DESCRIPTION.search((description or "").strip())
    if not match:
        return ParsedProgress(percent=percent)
    groups = match.groupdict()
    done, total = int(groups["done"]), int(groups["total"])
    if percent is None and total:
        percent = round(100.0 * done / total, 1)
    return ParsedProgress(
        percent=percent,
        done=done,
        total=total,
        unchanged=int(groups["unchanged"]) if groups["unchanged"] else 0,
        failed=int(groups["failed"]) if groups["failed"] else 0,
        eta=groups["eta"],
        took=groups["took"],
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
        description=description,
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
