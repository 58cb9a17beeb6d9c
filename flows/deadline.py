"""A batch's deadline, and the one warning when its ETA says it will miss it.

A deadline is a duration after the batch's scheduled start (`45m`, `1h30m`, `90s`) or a
time of day (`06:30`, `06:30 America/New_York`: the first such moment at or after the
scheduled start). While the batch runs, every progress update compares the projected
end (now + ETA) with the deadline; the first time it lands past it — and the deadline
has not passed yet — the batch emits `reportrunner.batch.deadline-at-risk` once, with
the ETA, the items left and the throughput. A Prefect automation (`reportrunner
deploy`) turns that event into an alert, before the deadline, not after.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect.events import emit_event

from flows.progress import ProgressTracker
from reports.contracts import DEADLINE_EVENT, batch_resource, format_duration
from reports.errors import ParameterError

_DURATION = re.compile(r"^\+?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?:\s+(\S+))?$")
# What the flow's `deadline` parameter accepts (the deployment schema enforces it).
DEADLINE_PATTERN = r"^(\+?(\d+h)?(\d+m)?(\d+s)?|([01]\d|2[0-3]):[0-5]\d(\s+\S+)?)$"

_logger = logging.getLogger(__name__)


def parse_deadline(text: str, start: dt.datetime) -> dt.datetime:
    """The moment `text` names, for a batch scheduled to start at `start` (aware)."""
    text = text.strip()
    if match := _DURATION.match(text):
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        if hours == minutes == seconds == 0:
            raise ParameterError(f"deadline {text!r}: give a duration like 45m or 1h30m")
        return start + dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if match := _TIME_OF_DAY.match(text):
        hour, minute, zone = int(match.group(1)), int(match.group(2)), match.group(3) or "UTC"
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ParameterError(f"deadline {text!r}: unknown time zone {zone!r}") from None
        local = start.astimezone(tz)
        moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if moment < local:
            moment += dt.timedelta(days=1)
        return moment
    raise ParameterError(
        f"deadline {text!r}: give a duration after the start (45m, 1h30m) "
        "or a time of day (06:30, 06:30 America/New_York)"
    )


class DeadlineWatch:
    """A progress listener that warns once when the projected end passes the deadline."""

    def __init__(self, *, report: str, batch_id: str, deadline: dt.datetime, link: str) -> None:
        self.report = report
        self.batch_id = batch_id
        self.deadline = deadline
        self.link = link
        self.warned = False
        self._lock = threading.Lock()

    def __call__(self, progress: ProgressTracker) -> None:
        if self.warned:
            return
        eta = progress.eta_seconds()
        now = dt.datetime.now(dt.UTC)
        if eta is None or now >= self.deadline:
            return  # nothing to project yet, or too late to warn *before* it
        projected = now + dt.timedelta(seconds=eta)
        if projected <= self.deadline:
            return
        with self._lock:  # progress arrives from many threads: one warning only
            if self.warned:
                return
            self.warned = True
        self._warn(progress, projected, now)

    def _warn(self, progress: ProgressTracker, projected: dt.datetime, now: dt.datetime) -> None:
        left = progress.total - progress.finished
        elapsed_min = max(1e-9, (time.monotonic() - progress.started_at) / 60)
        payload = {
            "report": self.report,
            "batch": self.batch_id,
            "deadline": self.deadline.isoformat(timespec="seconds"),
            "eta": projected.isoformat(timespec="seconds"),
            "late_by": format_duration((projected - self.deadline).total_seconds()),
            "items_left": left,
            "per_minute": round((progress.rendered + progress.failed) / elapsed_min, 1),
            "link": self.link,
        }
        _logger.warning(
            "%s: the batch will miss its deadline %s (ETA %s, %d items left)",
            self.report,
            payload["deadline"],
            payload["eta"],
            left,
        )
        try:
            emit_event(
                DEADLINE_EVENT,
                resource={
                    "prefect.resource.id": batch_resource(self.batch_id),
                    "prefect.resource.name": f"{self.report} batch",
                    "reportrunner.report": self.report,
                },
                related=[
                    {
                        "prefect.resource.id": f"prefect.flow-run.{self.batch_id}",
                        "prefect.resource.role": "flow-run",
                    }
                ],
                payload=payload,
            )
        except Exception as error:  # the warning above still says it
            _logger.warning("deadline event not emitted: %s", error)
