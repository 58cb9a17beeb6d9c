"""The flows keep the item index: items are found by business key as soon as they finish.

Real batch and report flows against the session's Prefect server, reading the index
they wrote (SQLite in the session's home).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prefect.states import StateType

from flows import batch, report
from reports.contracts import item_key
from reports.index import (
    ItemQuery,
    get_batch,
    get_item,
    item_history,
    open_index,
    search_items,
)
from reports.index._schema import renders

pytestmark = pytest.mark.usefixtures("prefect_server")  # a real Prefect server

REPORT = "flaky-carrier"
MONTHS = ["2013-04", "2013-05", "2013-06"]
CARRIERS = ["AA", "DL", "UA", "B6", "EV", "MQ", "US", "WN"]  # × 3 months = 24 items


def test_a_batch_is_searchable_by_business_key_as_its_items_finish(output_root, settings):
    broken = settings.resolved_data_dir / "broken-MQ"
    broken.touch()
    try:
        state = batch(
            report=REPORT,
            over={"carrier": CARRIERS, "month": MONTHS},
            chunk_size=12,
            return_state=True,
        )
    finally:
        broken.unlink()
    assert state.type == StateType.FAILED
    batch_id = str(state.state_details.flow_run_id)
    index = open_index()

    # Other tests of the session render AA items of this report too: keep this batch's.
    found = search_items(index, ItemQuery("carrier=AA", report=REPORT, limit=500))
    ours = [row for row in found.rows if row.batch_id == batch_id]
    assert {row.key for row in ours} == {item_key({"carrier": "AA", "month": m}) for m in MONTHS}
    assert all(row.params["carrier"] == "AA" for row in found.rows)
    for row in ours:
        assert row.status == "rendered" and row.batch_id == batch_id
        assert row.files and any(path.endswith(".pdf") for path in row.files)
        assert (output_root / row.files[0]).is_file()
        # Recorded as each item finished, not at the end of the batch.
        assert row.updated_at - row.rendered_at < 5

    failed = search_items(index, ItemQuery("", report=REPORT, statuses=("failed",)))
    assert {row.key for row in failed.rows} >= {
        item_key({"carrier": "MQ", "month": m}) for m in MONTHS
    }
    assert all("marked broken" in row.error for row in failed.rows if row.batch_id == batch_id)

    summary, members = get_batch(index, batch_id)
    assert summary.total == 24 and summary.dimensions == ["carrier", "month"]
    assert summary.counts == {"rendered": 21, "failed": 3}
    assert summary.state == "failed"
    assert [m.params for m in members[:2]] == [
        {"carrier": "AA", "month": "2013-04"},
        {"carrier": "AA", "month": "2013-05"},
    ]

    # A second run of the same batch: every item unchanged, in a new batch of its own.
    again = batch(report=REPORT, over={"carrier": ["AA"], "month": MONTHS}, return_state=True)
    second, _ = get_batch(index, str(again.state_details.flow_run_id))
    assert second.counts == {"unchanged": 3} and second.state == "completed"
    assert get_item(index, REPORT, "carrier=AA month=2013-04").status == "unchanged"


def test_an_item_history_shows_the_kpi_that_changed_with_its_data(output_root, settings):
    params = {"carrier": "B6", "month": "2013-09"}
    key = item_key(params)
    first = report(report=REPORT, parameters=params, return_state=True)
    assert first.type == StateType.COMPLETED
    trim = settings.resolved_data_dir / "trim-B6"
    trim.write_text("25")
    try:
        second = batch(report=REPORT, items=[params], return_state=True)
    finally:
        trim.unlink()
    assert second.type == StateType.COMPLETED, second.message

    history = item_history(open_index(), REPORT, key)
    newest, older = history.renders[:2]
    assert newest.batch_id == str(second.state_details.flow_run_id)
    assert older.run_id == str(first.state_details.flow_run_id) and older.batch_id is None
    assert newest.data_changed and newest.fingerprint != older.fingerprint
    before, after = newest.kpi_changes["Flights"]
    assert int(before.replace(",", "")) - int(after.replace(",", "")) == 25
    assert "Origins" not in newest.kpi_changes or newest.kpi_changes["Origins"][0]


def test_a_failed_single_run_is_recorded_with_its_error(output_root, settings):
    params = {"carrier": "EV", "month": "2013-10"}
    broken = settings.resolved_data_dir / "broken-EV"
    broken.touch()
    try:
        state = report(report=REPORT, parameters=params, return_state=True)
    finally:
        broken.unlink()
    assert state.type == StateType.FAILED
    item = get_item(open_index(), REPORT, item_key(params))
    assert item.status == "failed" and "marked broken" in item.error
    assert item.run_id == str(state.state_details.flow_run_id)


def test_a_render_whose_record_was_lost_is_recorded_by_the_next_run(output_root):
    """A crash between the outputs and the index write loses only the record, for a while."""
    params = {"carrier": "US", "month": "2013-11"}
    key = item_key(params)
    first = batch(report=REPORT, items=[params], return_state=True)
    assert first.type == StateType.COMPLETED
    index = open_index()
    with index.transaction() as connection:  # what a SIGKILL after publishing leaves
        connection.execute(renders.delete().where(renders.c.item_id == f"{REPORT} {key}"))
    assert item_history(index, REPORT, key).renders == []

    resumed = batch(report=REPORT, items=[params], return_state=True)
    assert resumed.result()["skipped"] == 1
    (restored,) = item_history(index, REPORT, key).renders
    manifest = json.loads(
        (Path(output_root) / f"{REPORT}/carrier=US/month=2013-11/manifest.json").read_text()
    )
    assert restored.fingerprint == manifest["fingerprint"]


def test_finished_items_are_prefect_events_with_their_business_key(output_root):
    """The feed beside the index: the Prefect UI and automations see items by key."""
    from prefect_api import actions, connect

    params = {"carrier": "WN", "month": "2013-12"}
    state = batch(report=REPORT, items=[params], force=True, return_state=True)
    assert state.type == StateType.COMPLETED
    resource_id = f"reportrunner.item.{REPORT}.carrier=WN month=2013-12"

    def ours() -> list[dict]:
        with connect() as api:
            events = actions.read_events(api, "reportrunner.item.", limit=200)
        return [e for e in events if e["resource"]["prefect.resource.id"] == resource_id]

    deadline = time.monotonic() + 30  # events reach the server asynchronously
    while not (found := ours()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found, "no reportrunner.item event for the rendered item"
    event = found[0]
    assert event["event"] == "reportrunner.item.rendered"
    assert event["resource"]["reportrunner.param.carrier"] == "WN"
    assert event["resource"]["reportrunner.report"] == REPORT
    assert event["payload"]["pages"] >= 1
