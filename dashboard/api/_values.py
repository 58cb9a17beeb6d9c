"""Turning Prefect's values into the plain ones the query layer returns."""

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
