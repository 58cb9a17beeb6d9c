"""Items, Batch and Item detail pages (AppTest) over a real batch and the real item index."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from prefect import flow, get_client
from prefect.states import Crashed
from streamlit.testing.v1 import AppTest

from reports.contracts import Outcome, item_key
from reports.index import open_index

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
REPORT = "flaky-carrier"
CARRIERS = ["AA", "DL", "UA"]
MONTHS = ["2013-07", "2013-08"]


@pytest.fixture(scope="module")
def real_batch(prefect_server, settings):
    """A 6-item batch in which DL's two items fail."""
    from flows import batch

    broken = settings.resolved_data_dir / "broken-DL"
    broken.touch()
    try:
        state = batch(report=REPORT, over={"carrier": CARRIERS, "month": MONTHS}, return_state=True)
    finally:
        broken.unlink()
    return str(state.state_details.flow_run_id)


def _page(path: str, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def _follow(link: str) -> dict[str, str]:
    """A page link's query, as the browser hands it to the page it opens."""
    return {name: values[0] for name, values in parse_qs(urlsplit(link).query).items()}


def _frame(at: AppTest, first_column: str):
    return next(d.value for d in at.dataframe if d.value.columns[0] == first_column)


def test_items_page_finds_a_batch_by_business_key(real_batch):
    at = _page("views/items.py", q="carrier=AA", report=REPORT)
    frame = _frame(at, "Item")
    assert all(item.startswith("carrier=AA month=") for item in frame["Item"])
    # Other tests of the session may have rendered other AA months: keep this batch's.
    ours = frame[frame["Batch"] == f"batch?id={real_batch}"]
    assert sorted(ours["Item"]) == [f"carrier=AA month={m}" for m in MONTHS]
    assert set(ours["Status"]) == {"✅ rendered"}
    item = _follow(frame["Open"].iloc[0])
    assert item["report"] == REPORT and item["key"].startswith("carrier=AA month=")

    at.text_input(key="items_search").set_value("carrier=").run()
    assert "write name=value" in at.error[0].value  # one line, no traceback
    assert not at.exception


def test_batch_page_shows_the_matrix_failures_first_and_leads_to_the_item(real_batch):
    at = _page("views/batch.py", id=real_batch)
    tiles = {m.label: m.value for m in at.metric}
    assert tiles == {"❌ failed": "2", "✅ rendered": "4"}
    failures = _frame(at, "Item")
    assert sorted(failures["Item"]) == [f"carrier=DL month={m}" for m in MONTHS]
    assert all("marked broken" in error for error in failures["Error"])
    matrix = at.html[0].value
    assert "carrier ╲ month" in matrix and matrix.count('class="rr-s-failed"><a') == 2
    assert 'title="carrier=DL month=2013-07: failed — flaky-carrier: source for carrier DL' in (
        matrix
    )
    assert "No ETA" not in " ".join(w.value for w in at.warning)

    # The failed cell's link opens that item, with its error and its history.
    start = matrix.index('class="rr-s-failed"><a href="') + len('class="rr-s-failed"><a href="')
    link = matrix[start : matrix.index('"', start)].replace("&amp;", "&")
    item = _page("views/item.py", **_follow(link))
    assert item.subheader[0].value == f"{REPORT} · carrier=DL month=2013-07"
    assert "marked broken" in item.error[0].value
    history = _frame(item, "When")
    # Newest first; other modules may have rendered this item before (one shared index).
    assert history["Status"].iloc[0] == "❌ failed"
    assert history["Batch"].iloc[0] == f"batch?id={real_batch}"


def test_item_history_shows_the_kpi_that_changed():
    report, params = "history-probe", {"carrier": "AA", "month": "2013-07"}
    index = open_index()
    for fingerprint, at, flights in (
        ("f1", "2026-11-01T10:00:00+00:00", "1,200"),
        ("f2", "2026-11-02T10:00:00+00:00", "1,150"),
    ):
        index.record(
            report,
            [
                Outcome(
                    key=item_key(params),
                    params=params,
                    status="rendered",
                    fingerprint=fingerprint,
                    data_hash="d" + fingerprint,
                    rendered_at=at,
                    pages=4,
                    rows={"flights": int(flights.replace(",", ""))},
                    kpis={"Flights": flights, "Routes": "20"},
                )
            ],
            run_id=str(uuid.uuid4()),
        )
    at = _page("views/item.py", report=report, key=item_key(params))
    history = _frame(at, "When")
    assert list(history["What changed"]) == ["Flights: 1,200 → 1,150", ""]
    assert list(history["Rows"]) == ["flights 1,150", "flights 1,200"]
    figures = _frame(at, "Figure")
    assert dict(zip(figures["Figure"], figures["Value"], strict=True)) == {
        "Flights": "1,150",
        "Routes": "20",
    }


def _three_dimensional_batch(batch_id: str) -> list[dict]:
    items = [
        {"carrier": c, "month": m, "origin": o}
        for c in ("AA", "B6")
        for m in ("2013-01", "2013-02", "2013-03")
        for o in ("JFK", "LGA")
    ]
    index = open_index()
    index.start_batch(
        batch_id, "cube-probe", "cube-probe batch", ["carrier", "month", "origin"], items
    )
    index.record("cube-probe", [Outcome.failed(items[3], "no flights from LGA")], batch_id=batch_id)
    return items


def test_a_three_dimensional_batch_is_shown_a_slice_at_a_time():
    batch_id = str(uuid.uuid4())
    _three_dimensional_batch(batch_id)
    at = _page("views/batch.py", id=batch_id)
    assert at.selectbox(key="batch_facet_origin").value == "JFK"
    matrix = at.html[0].value
    assert matrix.count("<td") == 6 and 'rr-s-failed"><a' not in matrix  # JFK slice: 2 × 3
    at.selectbox(key="batch_facet_origin").set_value("LGA").run()
    assert at.html[0].value.count('class="rr-s-failed"><a') == 1
    at.selectbox(key="batch_rows_dim").set_value("month").run()
    assert "month ╲ carrier" in at.html[0].value


def _crashed_run() -> str:
    @flow(name="batch")
    def batch_stub(report: str) -> None:  # never called: it names the run's flow
        return None

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(
            batch_stub, parameters={"report": "cube-probe"}, state=Crashed(message="worker lost")
        )
    return str(run.id)


def test_a_crashed_batch_shows_its_final_state_and_no_eta():
    batch_id = _crashed_run()
    _three_dimensional_batch(batch_id)
    at = _page("views/batch.py", id=batch_id)
    warning = " ".join(w.value for w in at.warning)
    assert "crashed" in warning and "1 of 12 items finished" in warning and "No ETA" in warning
    assert not [p for p in at.get("progress")]
    assert _frame(at, "Item")["Item"].tolist() == ["carrier=AA month=2013-02 origin=LGA"]


def test_an_unreachable_index_is_one_line_on_every_item_page(monkeypatch):
    from reports.settings import get_settings

    monkeypatch.setenv("REPORTRUNNER_INDEX_URL", "postgresql+psycopg2://u:secret@127.0.0.1:9/x")
    get_settings.cache_clear()
    try:
        for path, query in (
            ("views/items.py", {"q": "carrier=AA"}),
            ("views/batch.py", {"id": str(uuid.uuid4())}),
            ("views/item.py", {"report": REPORT, "key": "carrier=AA month=2013-07"}),
        ):
            started = time.monotonic()
            at = _page(path, **query)
            shown = " ".join(e.value for e in at.error) + " ".join(w.value for w in at.warning)
            assert "item index postgresql" in shown and "secret" not in shown, path
            assert time.monotonic() - started < 60
    finally:
        monkeypatch.delenv("REPORTRUNNER_INDEX_URL")
        get_settings.cache_clear()


def test_overview_lists_recent_batches_and_counts_reports_not_runs(real_batch):
    at = _page("views/overview.py")
    batches = _frame(at, "Batch")
    mine = batches[batches["Open"] == f"batch?id={real_batch}"]
    assert len(mine) == 1, "a finished batch stays reachable from Overview"
    row = mine.iloc[0]
    assert row["State"] == "❌ Failed" and row["Done"] == "6 of 6" and row["Failed"] == 2
    tiles = {m.label: m.value for m in at.metric}
    # The 6-item batch counts 4 rendered reports and 2 failed ones (not 2 runs).
    assert int(tiles["✅ rendered"].replace(",", "")) >= 4
    assert int(tiles["❌ failed"].replace(",", "")) >= 2
    labels = [m.label for m in at.metric]
    assert labels.index("✅ rendered") < labels.index("Running")  # reports first, runs after
