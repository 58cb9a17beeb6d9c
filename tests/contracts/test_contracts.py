"""Every value one layer writes and another reads, tied producer to consumer.

The names and shapes live in `reports.contracts`; these tests run the real producer
(the flows' progress tracker, the batch-items table, the chunk outcome files, the
deployment schema) into the real consumer (the dashboard's readers, the run form,
the retry action), so a change on one side without the other fails here.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
import yaml

from dashboard.api import parse_progress
from dashboard.forms import MONTH_PATTERN, check, parameter_fields
from deployments.deploy import deployment_schema, load_deployment_specs
from deployments.notifications import WATCHED_FLOWS
from flows.artifacts import batch_item_rows
from flows.batch_flow import batch
from flows.chunk_flow import render_chunk
from flows.chunk_results import read_outcomes, write_outcomes
from flows.delivery_flow import deliver
from flows.progress import ProgressTracker
from flows.report_flow import report
from reports import contracts
from reports.contracts import (
    BATCH_ITEMS,
    CHUNK_DEPLOYMENT,
    ItemKey,
    Outcome,
    ProgressSnapshot,
    artifact_key,
    is_artifact_of_kind,
    item_key,
    item_row_params,
)
from reports.store import OutputStore

PROJECT = Path(__file__).resolve().parents[2]

TRICKY = [
    {"carrier": "AA", "month": "2013-07"},
    {"city": "New York", "note": "a=b", "pct": "100%"},
    {"city": "Zürich", "tab": "a\tb", "nbsp": "a\u00a0b"},
    {"empty": "", "eq": "=", "space": " "},
    {"n": 5, "x": 1.5, "flag": True, "day": dt.date(2013, 7, 4)},
]


# ---- progress: flows.progress writes, dashboard.api reads ------------------------------


@pytest.mark.parametrize(
    ("rendered", "skipped", "failed", "total"),
    [(0, 0, 0, 12), (2, 1, 2, 12), (0, 3, 0, 3), (5, 0, 1, 6), (0, 0, 0, 0)],
)
def test_the_dashboard_reads_the_counts_the_batch_writes(rendered, skipped, failed, total):
    tracker = ProgressTracker(total=total)
    tracker.rendered, tracker.skipped, tracker.failed = rendered, skipped, failed
    tracker._ends = (time.monotonic() - 30, time.monotonic(), rendered + failed)
    written = tracker.snapshot()
    parsed = parse_progress(written.percent, written.description())
    assert (parsed.done, parsed.total, parsed.unchanged, parsed.failed) == (
        rendered + skipped + failed,
        total,
        skipped,
        failed,
    )
    assert parsed.percent == written.percent
    assert parsed.sentence == tracker.describe()  # the sentence, without the data
    assert "reportrunner-progress" not in parsed.sentence
    if written.finished:
        assert parsed.eta is None and "took" in parsed.sentence
    elif rendered + failed < 3:  # too few renders ended to tell a pace
        assert parsed.eta == "pending"
    else:
        assert parsed.eta == written.eta_text()


def test_a_snapshot_survives_its_description():
    snapshot = ProgressSnapshot(
        total=9,
        rendered=4,
        skipped=2,
        failed=1,
        elapsed_s=8.5,
        eta_s=4.0,
        eta_low_s=3,
        eta_high_s=5,
    )
    assert ProgressSnapshot.from_description(snapshot.description()) == snapshot
    assert contracts.sentence_of(snapshot.description()) == snapshot.sentence()


# ---- the batch-items table: flows.artifacts writes, the dashboard reads -----------------


@pytest.mark.parametrize("params", TRICKY)
def test_a_failed_item_is_retried_with_exactly_its_parameters(params):
    outcomes = [Outcome.failed(params, "boom"), Outcome.skipped({"carrier": "AA"})]
    rows = json.loads(json.dumps(batch_item_rows(outcomes)))  # as the API stores them
    failed = [item_row_params(row) for row in rows if row["status"] == "failed"]
    assert failed == [json.loads(json.dumps(params, default=str))]
    assert rows[0]["item"] == item_key(params)


def test_artifact_keys_are_found_by_their_kind():
    key = artifact_key("Carrier_Monthly", BATCH_ITEMS)
    assert key == "carrier-monthly-batch-items"
    assert is_artifact_of_kind(key, BATCH_ITEMS)
    assert not is_artifact_of_kind(artifact_key("carrier-monthly", "batch-summary"), BATCH_ITEMS)


# ---- chunk outcomes: a chunk on a worker writes, the batch reads ---------------------


def test_chunk_outcomes_survive_the_output_store(tmp_path):
    store = OutputStore(str(tmp_path))
    outcomes = [
        Outcome(item_key(p), p, "rendered", attempts=2, duration_s=1.5, pages=3, files=["a.pdf"])
        for p in TRICKY[:3]
    ] + [Outcome.failed({"carrier": "ZZ"}, "no ZZ", attempts=4)]
    write_outcomes(store, "local", 7, outcomes)
    assert read_outcomes(store, "local", 7) == outcomes
    assert read_outcomes(store, "local", 8) is None


# ---- item keys ------------------------------------------------------------------------


@pytest.mark.parametrize("params", TRICKY)
def test_item_keys_round_trip(params):
    text = item_key(params)
    assert len(text.split()) == len(params)  # one space-free part per parameter
    assert ItemKey.parse(text) == {
        k: v.isoformat() if isinstance(v, dt.date) else str(v) for k, v in params.items()
    }


def test_item_keys_stay_readable():
    assert item_key({"carrier": "AA", "month": "2013-07"}) == "carrier=AA month=2013-07"
    assert item_key({"city": "New York"}) == "city=New%20York"
    with pytest.raises(ValueError, match="not an item key"):
        ItemKey.parse("carrier")


# ---- names: flows, deployments, prefect.yaml --------------------------------------------


def test_flow_names_are_the_contract_names():
    assert report.name == contracts.REPORT_FLOW
    assert batch.name == contracts.BATCH_FLOW
    assert render_chunk.name == contracts.CHUNK_FLOW
    assert deliver.name == contracts.DELIVER_FLOW
    assert set(WATCHED_FLOWS) == {
        contracts.REPORT_FLOW,
        contracts.BATCH_FLOW,
        contracts.DELIVER_FLOW,
    }


def test_prefect_yaml_defines_the_chunk_deployment_the_batch_starts():
    document = yaml.safe_load((PROJECT / "prefect.yaml").read_text())
    names = {
        contracts.deployment_name(
            {"flows.chunk_flow.render_chunk": render_chunk.name}.get(d["entrypoint"], "?"),
            d["name"],
        )
        for d in document["deployments"]
    }
    assert CHUNK_DEPLOYMENT in names
    (chunk,) = [d for d in document["deployments"] if d["entrypoint"].endswith("render_chunk")]
    assert chunk["enforce_parameter_schema"] is True


# ---- month values: the spec, the deployment schema and the run form agree -----------------


def _month_field():
    spec = next(s for s in load_deployment_specs() if s["name"] == "carrier-monthly")
    schema = deployment_schema(spec)
    assert schema["properties"]["parameters"]["properties"]["month"]["pattern"] == MONTH_PATTERN
    (field,) = [f for f in parameter_fields(schema) if f.name == "month"]
    return field


def test_the_run_form_recognises_the_month_parameter_of_a_real_schema(settings):
    assert _month_field().kind == "month"


@pytest.mark.parametrize("value", ["2013-07", "2013-12", "2013-13", "2013-7", "x", "2014-01"])
def test_the_form_and_the_engine_say_the_same_about_a_month(settings, value):
    from reports.definitions import default_catalog
    from reports.errors import ParameterError

    problem = check(_month_field(), value)
    try:
        default_catalog().get("carrier-monthly").validate({"carrier": "AA", "month": value})
        engine = None
    except ParameterError as exc:
        engine = str(exc)
    assert (problem.message if problem else None) == engine
