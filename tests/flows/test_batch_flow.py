"""The `batch` flow: fan-out, failure isolation, progress, resume and retry-only-failed."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from prefect.states import StateType

from flows import batch
from prefect_helpers import child_flow_runs, flow_run_artifacts, pdf_text, task_runs_of

pytestmark = pytest.mark.usefixtures("prefect_server")  # a real Prefect server

CARRIERS = ["AA", "DL", "UA", "ZZ"]  # ZZ is no airline: that item must fail alone
MONTHS = ["2013-01", "2013-02"]


def test_batch_isolates_a_bad_item_and_reports_progress(output_root: Path, flights):
    state = batch(
        report="carrier-monthly",
        over={"carrier": CARRIERS, "month": MONTHS},
        chunk_size=3,
        items_per_task=2,
        max_parallel=2,
        return_state=True,
    )
    assert state.type == StateType.FAILED
    assert state.message.startswith("2 of 8 items failed; first: carrier=ZZ month=2013-01:")
    result = state.result(raise_on_failure=False)
    assert (result["rendered"], result["failed"], result["skipped"]) == (6, 2, 0)

    for carrier in CARRIERS[:3]:
        for month in MONTHS:
            folder = output_root / f"carrier-monthly/carrier={carrier}/month={month}"
            pdf = folder / f"carrier-monthly_{carrier}_{month}.pdf"
            pages, text = pdf_text(pdf)
            count = int(((flights.carrier == carrier) & (flights.month == int(month[-2:]))).sum())
            assert pages >= 2 and f"{count:,}" in text
    assert not (output_root / "carrier-monthly/carrier=ZZ").exists()

    batch_id = state.state_details.flow_run_id
    chunks = child_flow_runs(batch_id)
    assert len(chunks) == 2  # the 6 valid items in chunks of 3: ZZ failed where it expanded
    artifacts = flow_run_artifacts(batch_id)
    progress = next(a for a in artifacts if a.type == "progress")
    assert progress.data == 100
    assert progress.description.startswith("8 of 8 done, 2 failed")
    table = next(a for a in artifacts if a.type == "table")
    assert "carrier=ZZ month=2013-02" in table.data and "not one of" in table.data
    # Bounded progress writes: at most one per cooldown plus start and end.
    assert result["progress_writes"] <= 8 + 2

    # Chunks of 3 in render tasks of 2; the ZZ items never reach a render task.
    tasks = task_runs_of([c.id for c in chunks])
    assert sorted(t.name for t in tasks if t.name.startswith("render ")) == [
        "render carrier=AA month=2013-01 … carrier=AA month=2013-02 (2 items)",
        "render carrier=DL month=2013-01",
        "render carrier=DL month=2013-02 … carrier=UA month=2013-01 (2 items)",
        "render carrier=UA month=2013-02",
    ]
    assert not [t for t in tasks if t.state.is_failed()]
    attempts = {row["item"]: row["attempts"] for row in json.loads(table.data)}
    assert attempts["carrier=ZZ month=2013-01"] == 1, "parameter errors must not be retried"
    assert set(attempts.values()) == {1}


def test_chunks_in_the_batch_process_overlap_and_stay_separate_subflows(output_root: Path):
    """Two local chunks in flight keep the render processes busy between chunks; each is
    still its own subflow run (with its own parent task run) holding exactly its items."""
    over = {"carrier": ["AA", "DL", "UA", "B6"], "month": ["2013-01", "2013-02", "2013-03"]}
    state = batch(report="carrier-monthly", over=over, chunk_size=3, return_state=True)
    assert state.type == StateType.COMPLETED, state.message
    result = state.result()
    assert (result["rendered"], result["failed"]) == (12, 0)
    table = json.loads(
        next(
            a for a in flow_run_artifacts(state.state_details.flow_run_id) if a.type == "table"
        ).data
    )
    assert [row["item"] for row in table][:3] == [  # outcomes in the items' order
        "carrier=AA month=2013-01",
        "carrier=AA month=2013-02",
        "carrier=AA month=2013-03",
    ]

    chunks = sorted(child_flow_runs(state.state_details.flow_run_id), key=lambda r: r.start_time)
    assert sorted(c.name for c in chunks) == [f"carrier-monthly chunk {n}/4" for n in range(1, 5)]
    assert len({c.parent_task_run_id for c in chunks}) == 4
    assert all(c.state.is_completed() for c in chunks)
    tasks = task_runs_of([c.id for c in chunks])
    per_chunk = {c.id: 0 for c in chunks}
    for task in tasks:
        if task.name.startswith("render "):
            per_chunk[task.flow_run_id] += 3 if "(3 items)" in task.name else 1
    assert sorted(per_chunk.values()) == [3, 3, 3, 3]
    overlapping = [
        (a.name, b.name) for a, b in itertools.pairwise(chunks) if b.start_time < a.end_time
    ]
    assert overlapping, "each chunk waited for the previous one to end"


def test_rerun_skips_unchanged_items_and_renders_missing_ones(output_root: Path):
    over = {"carrier": ["AA", "DL"], "month": ["2013-03", "2013-04", "2013-05", "2013-06"]}
    first = batch(report="carrier-monthly", over=over, return_state=True)
    assert first.type == StateType.COMPLETED, first.message
    assert first.result()["rendered"] == 8

    pdf = output_root / "carrier-monthly/carrier=DL/month=2013-04/carrier-monthly_DL_2013-04.pdf"
    before = {p: p.stat().st_mtime_ns for p in output_root.rglob("*.pdf")}
    pdf.unlink()

    second = batch(report="carrier-monthly", over=over, return_state=True).result()
    assert (second["rendered"], second["skipped"]) == (1, 7)
    assert pdf.exists()
    after = {p: p.stat().st_mtime_ns for p in output_root.rglob("*.pdf") if p != pdf}
    assert after == {p: t for p, t in before.items() if p != pdf}, "unchanged PDFs were rewritten"


def test_retried_batch_renders_only_the_failed_item(output_root: Path, settings):
    marker = settings.resolved_data_dir / "broken-DL"
    over = {"carrier": ["AA", "DL", "UA", "B6"], "month": ["2013-01", "2013-02"]}
    marker.touch()
    try:
        first = batch(report="flaky-carrier", over=over, return_state=True)
        assert first.type == StateType.FAILED
        assert first.result(raise_on_failure=False)["failed"] == 2
        assert "source for carrier DL is marked broken" in first.message
    finally:
        marker.unlink()

    retried = batch(report="flaky-carrier", over=over, return_state=True)
    assert retried.type == StateType.COMPLETED, retried.message
    result = retried.result()
    assert (result["rendered"], result["skipped"], result["failed"]) == (2, 6, 0)
    chunks = child_flow_runs(retried.state_details.flow_run_id)
    rendered = [
        t.name for t in task_runs_of([c.id for c in chunks]) if t.name.startswith("render ")
    ]
    assert rendered == ["render carrier=DL month=2013-01 … carrier=DL month=2013-02 (2 items)"]


def test_a_demo_schedule_resolves_previous_month_in_the_data_year(output_root):
    """What `carrier-monthly-batch` does when its 2 December 2026 schedule fires."""
    import datetime as dt

    state = batch(
        report="flaky-carrier",
        over={"carrier": ["AA"], "month": ["previous"]},
        as_of=dt.date(2026, 12, 2),
        as_of_year=2013,
        return_state=True,
    )
    assert state.type == StateType.COMPLETED, state.message
    assert (output_root / "flaky-carrier/carrier=AA/month=2013-11").is_dir()
