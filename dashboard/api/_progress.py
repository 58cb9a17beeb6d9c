"""Reading the batch flow's progress artifact, defensively.

The batch flow writes one progress artifact whose `data` is the percent done and
whose description reads "N of M done (S unchanged), K failed, ETA …" (or
"…, took …" at the end; see flows/progress.py). Anything else yields what could be
read and `None` for the rest: a changed text never breaks the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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


def _percent(data: Any) -> float | None:
    try:
        value = float(data)
    except (TypeError, ValueError):
        return None
    if value != value:  # NaN
        return None
    return min(100.0, max(0.0, value))
