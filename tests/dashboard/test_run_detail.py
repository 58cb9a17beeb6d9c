"""The run detail page against real runs on the session's Prefect server.

`real_runs` (tests/dashboard/conftest.py) ran, in-process, a carrier-monthly report
that completed, one that failed on a bad carrier, and a two-item batch. The page is
run by AppTest; the bytes it hands the browser (preview PNG, downloads) are caught
where Streamlit stores them, and compared with the files on disk.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader
from streamlit.testing.v1 import AppTest

from dashboard.api import connect
from dashboard.api._detail import (
    MAX_DETAIL_CALLS,
    RunIdError,
    find_traceback,
    parse_run_id,
    run_detail,
)
from dashboard.previews import PREVIEW_WIDTH

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PROGRESS_TEXT = "5 of 12 done (1 unchanged), 2 failed, ETA 1 min 05 s"  # as `seeded` wrote it
STAGES = ["load", "build-context", "render-html", "render-pdf", "publish"]


def _served(media: dict[str, bytes], url: str) -> bytes:
    return media[url.rsplit("/", 1)[-1].split(".")[0]]


def _run_id(state) -> str:
    return str(state.state_details.flow_run_id)


def _detail_page(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.query_params["id"] = run_id
    at.switch_page("views/run_detail.py").run()
    return at


def _tab(at: AppTest, name: str) -> AppTest:
    """Open a tab of the page: only the open one is drawn."""
    at.session_state["run_tab"] = name
    return at.run()


def _frame(at: AppTest, first_column: str):
    return next(d.value for d in at.dataframe if d.value.columns[0] == first_column)


def _texts(at: AppTest) -> str:
    parts = (
        [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.text]
    )
    return "\n".join(str(p) for p in parts)


def test_completed_report_shows_state_parameters_timeline_artifacts(real_runs):
    at = _detail_page(_run_id(real_runs["report-ok"]))
    assert not at.exception and not at.error
    state = next(m for m in at.metric if m.label == "State")
    assert state.value == "✅ Completed"
    assert not at.json and not at.get("vega_lite_chart")  # only the open tab is drawn
    _tab(at, "Parameters")
    assert '"carrier": "AS"' in at.json[0].value and '"month": "2013-01"' in at.json[0].value
    _tab(at, "Timeline")
    tasks = _frame(at, "Task")
    assert [name.rsplit("-", 1)[0] for name in tasks["Task"]] == STAGES  # in start order
    assert set(tasks["State"]) == {"✅ Completed"} and set(tasks["Attempts"]) == {1}
    assert at.get("vega_lite_chart"), "the task gantt chart is drawn"
    _tab(at, "Artifacts")
    texts = _texts(at)
    assert "Carrier monthly performance" in texts  # the markdown summary artifact
    assert "carrier-monthly-progress: publish done" in [p.proto.text for p in at.get("progress")]
    links = _frame(at, "File")
    assert "carrier-monthly_AS_2013-01.pdf" in set(links["File"])
    assert all(url.startswith("file://") for url in links["Where"])
    assert "Prefect API calls" in texts


def test_completed_report_previews_and_downloads_its_pdf(real_runs, media, settings):
    at = _detail_page(_run_id(real_runs["report-ok"]))
    assert not at.exception and not at.error
    image = at.get("image")[0]
    caption = image.proto.imgs[0].caption
    assert caption.startswith("First page of Carrier monthly performance, carrier=AS")
    assert image.proto.imgs[0].alt.startswith("First page of")  # read out by screen readers
    png = Image.open(io.BytesIO(_served(media, image.proto.imgs[0].url)))
    assert png.format == "PNG" and png.width == PREVIEW_WIDTH
    assert 1.3 < png.height / png.width < 1.5  # an A4 page, upright
    buttons = {b.label.split(" (")[0]: b for b in at.download_button}
    assert {"Download PDF", "Download HTML", "Download CSV daily"} <= set(buttons)
    folder = Path(settings.resolved_output_url) / "carrier-monthly" / "carrier=AS" / "month=2013-01"
    pdf = _served(media, buttons["Download PDF"].proto.url)
    assert pdf == (folder / "carrier-monthly_AS_2013-01.pdf").read_bytes()
    assert "Alaska Airlines" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    csv = _served(media, buttons["Download CSV daily"].proto.url)
    assert csv == (folder / "carrier-monthly_AS_2013-01_daily.csv").read_bytes()
    assert "✅ The file on disk matches the manifest's sha256." in _texts(at)


def test_failed_report_shows_its_one_line_error_traceback_and_errors_first(real_runs):
    at = _detail_page(_run_id(real_runs["report-bad"]))
    assert not at.exception
    assert len(at.error) == 1
    error = at.error[0].value
    assert at.error[0].icon == "❌" and error.startswith("Failed: ")  # icon and text
    assert "parameter 'carrier' is 'ZZ'" in error
    assert "\n" not in error
    assert [e.label for e in at.expander] == ["Traceback"]
    traceback = at.expander[0].code[0].value
    assert traceback.startswith("Traceback (most recent call last)")
    assert traceback.rstrip().endswith(
        "not one of: 9E, AA, AS, B6, DL, EV, F9, FL, HA, MQ, OO, UA, US, VX, WN, YV"
    )
    assert "this run produced none" in " ".join(i.value for i in at.info)
    logs = _frame(_tab(at, "Logs"), "Time (UTC)")
    assert logs["Level"].iloc[0] == "❌ ERROR"
    assert "ParameterError" in logs["Message"].iloc[0]
    assert set(logs["Level"].iloc[1:]) == {"ℹ️ INFO"}
    assert logs["Time (UTC)"].iloc[1] > logs["Time (UTC)"].iloc[2]  # the rest newest first


def test_log_level_filter_keeps_errors_first(real_runs):
    at = _tab(_detail_page(_run_id(real_runs["report-bad"])), "Logs")
    at.selectbox(key="run_log_level").set_value("ERROR").run()
    assert not at.exception
    assert set(_frame(at, "Time (UTC)")["Level"]) == {"❌ ERROR"}
    at.selectbox(key="run_log_level").set_value("WARNING").run()
    assert set(_frame(at, "Time (UTC)")["Level"]) == {"❌ ERROR"}  # no warnings were logged
    _tab(_tab(at, "Parameters"), "Logs")  # the chosen level outlives its tab being closed
    assert at.selectbox(key="run_log_level").value == "WARNING"


def test_batch_shows_progress_chunk_subflow_items_and_an_item_preview(real_runs, media):
    at = _detail_page(_run_id(real_runs["batch"]))
    assert not at.exception and not at.error
    progress = [p.proto.text for p in at.get("progress")]
    assert "2 of 2 done, 0 failed" in progress
    items = _frame(at, "Item")
    assert list(items["Item"]) == ["carrier=AS month=2013-02", "carrier=AS month=2013-03"]
    assert set(items["Status"]) <= {"✅ rendered", "⏭️ unchanged"}
    at.selectbox(key="run_item_choice").set_value("carrier=AS month=2013-03").run()
    assert not at.exception and not at.error
    assert "carrier=AS month=2013-03" in at.get("image")[0].proto.imgs[0].caption
    pdf_button = next(b for b in at.download_button if b.label.startswith("Download PDF"))
    pdf = PdfReader(io.BytesIO(_served(media, pdf_button.proto.url)))
    assert "in 2013-03." in pdf.pages[0].extract_text()
    chunks = _frame(_tab(at, "Timeline"), "Subflow")
    assert list(chunks["Subflow"]) == ["carrier-monthly chunk 1/1"]
    assert list(chunks["Task runs"]) == [2]  # items_per_task=1: a render task per item
    assert chunks["Detail"].iloc[0].startswith("run?id=")


def test_running_batch_shows_its_live_progress(seeded):
    at = _detail_page(seeded.running_batch)
    assert not at.exception and not at.error
    assert next(m for m in at.metric if m.label == "State").value == "▶️ Running"
    assert next(p.proto.text for p in at.get("progress")) == PROGRESS_TEXT
    assert "The items table appears when the batch finishes." in _texts(at)
    assert next(m for m in at.metric if m.label == "Finished").value == "–"


def test_chunk_links_back_to_its_batch(real_runs):
    with connect() as api:
        batch = run_detail(api, _run_id(real_runs["batch"]))
    assert batch is not None
    at = _detail_page(batch.subflows[0].id)
    assert not at.exception and not at.error
    assert f"[its parent run](run?id={batch.header.id})" in _texts(at)
    tasks = _frame(_tab(at, "Timeline"), "Task")
    assert sorted(tasks["Task"]) == [
        "render carrier=AS month=2013-02",
        "render carrier=AS month=2013-03",
    ]


def test_detail_reads_are_bounded_and_cut_at_one_page(real_runs):
    with connect() as api:
        detail = run_detail(api, _run_id(real_runs["report-ok"]))
    assert detail is not None
    assert detail.calls <= MAX_DETAIL_CALLS
    assert detail.task_total == len(detail.tasks) == len(STAGES)
    assert detail.header.progress is not None and detail.header.progress.percent == 100


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("not-a-run", "`not-a-run` is not a flow run id"),
        ("1234", "`1234` is not a flow run id"),
    ],
)
def test_malformed_id_is_one_line_not_an_exception(typed, expected):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.query_params["id"] = typed
    at.switch_page("views/run_detail.py").run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith(expected)
    assert "\n" not in at.error[0].value
    with pytest.raises(RunIdError):
        parse_run_id(typed)


def test_unknown_id_says_so_and_a_pasted_id_opens_the_run(real_runs):
    missing = str(uuid.uuid4())
    at = _detail_page(missing)
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"No flow run {missing} on this Prefect server: it may have been deleted."
    ]
    run_id = _run_id(real_runs["report-ok"])
    at.text_input(key="run_id_input").input(f"  {run_id.upper()} ").run()
    assert not at.exception and not at.error
    assert at.query_params["id"] == run_id.upper()  # the address follows the input
    assert next(m for m in at.metric if m.label == "State").value == "✅ Completed"


def test_api_down_shows_the_banner(real_runs, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    at = _detail_page(_run_id(real_runs["report-ok"]))
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Prefect API unavailable")


def test_traceback_prefers_the_flows_own_over_a_tasks():
    from datetime import UTC, datetime

    from dashboard.api import LogLine

    now = datetime.now(UTC)
    task_line = LogLine(now, 40, "Task failed\nTraceback (most recent call last):\n  task", "t1")
    flow_line = LogLine(now, 40, "Encountered\nTraceback (most recent call last):\n  flow", None)
    plain = LogLine(now, 40, "Finished in state Failed", None)
    assert find_traceback((task_line, plain, flow_line)).endswith("flow")
    assert find_traceback((task_line, plain)).endswith("task")
    assert find_traceback((plain,)) is None
