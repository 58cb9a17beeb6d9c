"""Batch deadlines: parsed in one place; one warning, before the deadline, only when missed."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from prefect.states import StateType

from flows import batch
from flows.deadline import parse_deadline
from prefect_api import actions, connect
from reports.contracts import DEADLINE_EVENT, batch_resource
from reports.errors import ParameterError

START = dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC)  # 06:00 in New York


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45m", START + dt.timedelta(minutes=45)),
        ("+1h30m", START + dt.timedelta(hours=1, minutes=30)),
        ("20s", START + dt.timedelta(seconds=20)),
        ("12:30", START.replace(hour=12, minute=30)),
        ("06:30 America/New_York", START + dt.timedelta(minutes=30)),
        ("05:00 America/New_York", START + dt.timedelta(hours=23)),  # already past: next day
    ],
)
def test_a_deadline_is_a_duration_or_a_time_of_day(text, expected):
    assert parse_deadline(text, START) == expected


@pytest.mark.parametrize("text", ["soon", "0m", "25:00", "06:30 Mars/Olympus"])
def test_a_bad_deadline_is_one_line(text):
    with pytest.raises(ParameterError, match=rf"^deadline {text!r}: "):
        parse_deadline(text, START)


def _deadline_events(batch_id: str) -> list[dict]:
    with connect() as api:
        events = actions.read_events(api, DEADLINE_EVENT, limit=200)
    return [e for e in events if e["resource"]["prefect.resource.id"] == batch_resource(batch_id)]


# A batch that cannot meet its deadline, end to end (event → automation → webhook):
# tests/deployments/test_alerts.py::test_a_batch_that_cannot_meet_its_deadline_alerts_once_before_it


@pytest.mark.usefixtures("prefect_server")
def test_a_batch_that_meets_its_deadline_says_nothing(output_root):
    state = batch(
        report="flaky-carrier",
        over={"carrier": ["AA", "DL", "UA", "B6"], "month": ["2013-07"]},
        deadline="10m",
        force=True,
        return_state=True,
    )
    assert state.type == StateType.COMPLETED, state.message
    time.sleep(3)  # give a (wrong) event time to arrive: absence cannot be waited for
    assert _deadline_events(str(state.state_details.flow_run_id)) == []
