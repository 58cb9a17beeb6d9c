"""Words and icons for states, durations and times: status is never told by colour alone."""

from __future__ import annotations

from datetime import UTC, datetime

from reports.contracts import format_duration

STATE_ICONS = {
    "COMPLETED": "✅",
    "FAILED": "❌",
    "CRASHED": "💥",
    "RUNNING": "▶️",
    "PENDING": "⏳",
    "SCHEDULED": "🕒",
    "PAUSED": "⏸️",
    "CANCELLING": "⏹️",
    "CANCELLED": "🚫",
}
STATE_TYPES = list(STATE_ICONS)

POOL_ICONS = {"READY": "✅", "NOT_READY": "⚠️", "PAUSED": "⏸️"}


def state_label(state_type: str, name: str | None = None) -> str:
    """'❌ Failed', '🕒 Late': icon of the type, then the state's own name."""
    icon = STATE_ICONS.get(state_type.upper(), "❔")
    return f"{icon} {name or state_type.capitalize()}"


def pool_label(status: str) -> str:
    return f"{POOL_ICONS.get(status, '❔')} {status.replace('_', ' ')}"


def duration(seconds: float | None) -> str:
    """'850 ms', '42 s', '3 min 05 s', '2 h 07 min', or '–' when unknown."""
    return format_duration(seconds)


def count(value: int) -> str:
    """'950', '12,345', '123 k', '4.5 M', '120 M': short enough for a metric tile."""
    size = abs(value)
    if size < 100_000:
        return f"{value:,}"
    if size < 999_500:  # what rounds to "1000 k" reads "1.0 M"
        return f"{value / 1000:.0f} k"
    return f"{value / 1_000_000:.1f} M" if size < 9_950_000 else f"{value / 1_000_000:.0f} M"


def percent(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def clock(moment: datetime | None) -> str:
    """'2025-03-04 13:05 UTC'."""
    if moment is None:
        return "–"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def short_clock(moment: datetime | None, now: datetime | None = None, seconds: bool = False) -> str:
    """'1 Dec 14:05' (UTC), with the year when it is not this year's: fits a metric tile."""
    if moment is None:
        return "–"
    moment = moment.astimezone(UTC)
    this_year = (now or datetime.now(UTC)).astimezone(UTC).year
    day = f"{moment.day} {moment:%b}" + ("" if moment.year == this_year else f" {moment.year}")
    return f"{day} {moment:%H:%M:%S}" if seconds else f"{day} {moment:%H:%M}"


def deployment_text(deployment: str | None, nested: bool = False) -> str:
    """The deployment's full name, or where a run without one came from: never 'None'."""
    if deployment:
        return deployment
    return "— (inside its batch)" if nested else "— (CLI)"


def window_label(hours: float) -> str:
    if hours < 48:
        return f"last {hours:g} h"
    return f"last {hours / 24:g} d"


def times_slower(ratio: float) -> str:
    """'4.2× its report's median'."""
    return f"{ratio:.1f}×"


def time_span(start: datetime, end: datetime) -> str:
    """'2025-03-04 13:00–14:00 UTC' (the end's date only when it differs)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    tail = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"{start.strftime('%Y-%m-%d %H:%M')}–{tail} UTC"


def escape_markdown(text: str) -> str:
    """Run names and messages shown in markdown as typed, not as formatting."""
    return "".join(f"\\{c}" if c in _MARKDOWN_SPECIAL else c for c in text)


_MARKDOWN_SPECIAL = set("\\`*_{}[]()<>#+-.!|~$:")


def naive_utc(moment: datetime | None) -> datetime | None:
    """UTC without tzinfo: the table shows the times as they are, labelled UTC."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)
