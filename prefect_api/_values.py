"""Turning Prefect's values into plain ones: aware UTC times, enum values as words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utc(moment: datetime | None) -> datetime | None:
    """Aware UTC; the API's naive times are UTC already."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def word(value: Any) -> str | None:
    """An enum's value ("COMPLETED"), or the string itself."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC, to the second."""
    return None if moment is None else utc(moment).isoformat(timespec="seconds")
