"""The `report` flow against the session's Prefect server, outputs read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.states import StateType

from flows import report
from prefect_helpers import flow_run_artifacts, pdf_text, task_runs_of

pytestmark = pytest.mark.usefixtures("prefect_server")  # a real Prefect server


def test_report_flow_renders_checked_pdf_with_artifacts(output_root: Path, flights):
    state = report(
        report="carrier-monthly",
        parameters={"carrier": "AA", "month": "2013-07"},
        return_state=True,
    )
    assert state.type == StateType.COMPLETED, state.message
    manifest = state.result()

    expected = int(
        ((flights.carrier == "AA") & (flights.year == 2013) & (flights.month == 7)).sum()
    )
    pdf = output_root / manifest["item_dir"] / "carrier-monthly_AA_2013-07.pdf"
    pages, text = pdf_text(pdf)
    assert 2 <= pages <= 4
    assert "American Airlines" in text
    assert f"{expected:,}" in text
    assert manifest["rows"]["flights"] == expected
    assert manifest["quality"]["status"] == "ok"

    flow_run_id = state.state_details.flow_run_id
    tasks = {t.name.rsplit("-", 1)[0] for t in task_runs_of([flow_run_id])}
    assert {"load", "build-context", "render-html", "render-pdf", "publish"} <= tasks

    artifacts = flow_run_artifacts(flow_run_id)
    progress = [a for a in artifacts if a.type == "progress"]
    assert progress and progress[0].data == 100
    # Prefect stores link artifacts as markdown links.
    links = [a.data for a in artifacts if a.type == "markdown" and a.key is None]
    assert f"[carrier-monthly_AA_2013-07.pdf]({pdf.as_uri()})" in links
    summary = next(a for a in artifacts if a.key == "carrier-monthly-summary")
    assert "Pages: **" in summary.data and "carrier=AA" in summary.data


def test_report_flow_fails_at_once_on_bad_parameter():
    state = report(
        report="carrier-monthly",
        parameters={"carrier": "ZZ", "month": "2013-07"},
        return_state=True,
    )
    assert state.type == StateType.FAILED
    assert "parameter 'carrier' is 'ZZ'" in state.message


@pytest.mark.parametrize("name", ["airport-daily", "destination-quarterly"])
def test_other_shipped_reports_run_as_flows(name, output_root: Path):
    from reports.definitions import default_catalog

    sample = default_catalog().get(name).sample_params()
    state = report(report=name, parameters=sample, return_state=True)
    assert state.type == StateType.COMPLETED, state.message
    manifest = state.result()
    pdf = next(f for f in manifest["files"] if f["name"].endswith(".pdf"))
    pages, text = pdf_text(output_root / pdf["path"])
    assert pages >= 1 and manifest["title"].split()[0] in text
