"""The item index on real SQLite and real PostgreSQL: writes are upserts, reads find by key."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from reports.contracts import Outcome, item_key
from reports.index import (
    IndexUnavailable,
    ItemIndex,
    ItemQuery,
    SearchError,
    get_batch,
    get_item,
    item_history,
    recent_batches,
    render_durations,
    report_activity,
    search_items,
)

REPORT = "carrier-monthly"


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request, tmp_path) -> ItemIndex:
    if request.param == "sqlite":
        return ItemIndex(f"sqlite:///{tmp_path / 'index.sqlite'}")
    return ItemIndex(request.getfixturevalue("scratch_postgres_url"))


def rendered(params, *, fingerprint="f1", at="2026-11-30T10:00:00+00:00", **extra) -> Outcome:
    return Outcome(
        key=item_key(params),
        params=params,
        status="rendered",
        fingerprint=fingerprint,
        data_hash=extra.pop("data_hash", "d-" + fingerprint),
        rendered_at=at,
        pages=3,
        quality=extra.pop("quality", "ok"),
        files=[f"{REPORT}/{item_key(params)}/report.pdf"],
        duration_s=extra.pop("duration_s", 0.5),
        **extra,
    )


def grid(carriers=("AA", "DL", "UA"), months=("2013-01", "2013-02")):
    return [{"carrier": c, "month": m} for c in carriers for m in months]


def test_search_by_business_key_finds_the_items_exactly(index):
    index.record(REPORT, [rendered(p) for p in grid()], run_id="run-1")
    page = search_items(index, ItemQuery("carrier=AA"))
    assert page.total == 2
    assert {row.key for row in page.rows} == {
        "carrier=AA month=2013-01",
        "carrier=AA month=2013-02",
    }
    assert all(row.run_id == "run-1" and row.files for row in page.rows)
    both = search_items(index, ItemQuery("carrier=aa month=2013-02"))  # case-insensitive
    assert [row.key for row in both.rows] == ["carrier=AA month=2013-02"]
    loose = search_items(index, ItemQuery("2013-02"))  # a value of any parameter
    assert loose.total == 3
    assert search_items(index, ItemQuery("carrier=A")).total == 0  # exact, not a prefix
    assert search_items(index, ItemQuery("", report="other")).total == 0


def test_a_bad_search_is_one_line_not_a_crash(index):
    with pytest.raises(SearchError, match="write name=value"):
        search_items(index, ItemQuery("carrier="))
    with pytest.raises(SearchError, match="unknown status 'gone'"):
        search_items(index, ItemQuery("", statuses=("gone",)))
    # Characters that mean something to SQL are just characters.
    index.record(REPORT, [rendered({"carrier": "A%_'\"; --", "month": "2013-01"})])
    assert search_items(index, ItemQuery("%_'")).total == 1
    assert search_items(index, ItemQuery("%")).total == 1


def test_recording_twice_is_one_render_and_a_failure_keeps_the_last_outputs(index):
    params = {"carrier": "AA", "month": "2013-01"}
    index.record(REPORT, [rendered(params)], run_id="run-1")
    index.record(REPORT, [rendered(params)], run_id="run-1")  # a retried write
    index.record(REPORT, [Outcome.failed(params, "source unreachable")], run_id="run-2")
    item = get_item(index, REPORT, item_key(params))
    assert (item.status, item.error, item.run_id) == ("failed", "source unreachable", "run-2")
    assert item.fingerprint == "f1" and item.files  # the last good PDF is still offered
    history = item_history(index, REPORT, item_key(params))
    assert [r.status for r in history.renders] == ["failed", "rendered"]


def test_history_shows_what_changed_in_the_kpis(index):
    params = {"carrier": "AA", "month": "2013-01"}
    index.record(REPORT, [rendered(params, kpis={"Flights": "1,200", "Routes": "20"})])
    index.record(
        REPORT,
        [
            rendered(
                params,
                fingerprint="f2",
                at="2026-11-30T11:00:00+00:00",
                kpis={"Flights": "1,150", "Routes": "20"},
                quality="warning",
            )
        ],
    )
    newest, oldest = item_history(index, REPORT, item_key(params)).renders
    assert newest.status == "flagged" and newest.data_changed
    assert newest.kpi_changes == {"Flights": ("1,200", "1,150")}
    assert oldest.kpi_changes == {} and not oldest.data_changed
    assert get_item(index, REPORT, item_key(params)).status == "flagged"


def test_a_resume_that_finds_an_item_current_restores_a_lost_record(index):
    params = {"carrier": "DL", "month": "2013-03"}
    found_current = rendered(params, fingerprint="f9")
    found_current.status = "skipped"  # the render happened; its record was lost in a crash
    index.record(REPORT, [found_current], run_id="run-resume")
    item = get_item(index, REPORT, item_key(params))
    assert item.status == "unchanged"
    (render,) = item_history(index, REPORT, item_key(params)).renders
    assert render.fingerprint == "f9" and render.status == "rendered"


def test_a_batch_is_its_items_with_their_status(index):
    items = grid(carriers=("AA", "DL", "UA", "B6"))
    index.start_batch("batch-1", REPORT, "carrier-monthly batch", ["carrier", "month"], items)
    index.start_batch("batch-1", REPORT, "carrier-monthly batch", ["carrier", "month"], items)
    index.mark(REPORT, items[:2], "running", run_id="chunk-1", batch_id="batch-1")
    index.record(
        REPORT,
        [rendered(items[0]), Outcome.failed(items[1], "no data")],
        run_id="chunk-1",
        batch_id="batch-1",
    )
    batch, members = get_batch(index, "batch-1")
    assert batch.total == 8 and batch.dimensions == ["carrier", "month"]
    assert batch.counts == {"rendered": 1, "failed": 1, "pending": 6}
    assert [m.key for m in members] == [item_key(p) for p in items]  # expansion order
    assert members[1].error == "no data"
    index.finish_batch("batch-1", "failed", "8 of 8 done, 1 failed")
    (listed,) = recent_batches(index, report=REPORT)
    assert listed.state == "failed" and listed.counts["failed"] == 1


def test_figures_per_report_in_a_window(index):
    now = time.time()
    at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 60))
    index.record(REPORT, [rendered(p, at=at, duration_s=2.0) for p in grid()[:3]])
    index.record(REPORT, [Outcome.failed(grid()[3], "boom")])
    (figures,) = report_activity(index, now - 3600, now + 60)
    assert (figures.rendered, figures.failed, figures.median_render_s) == (3, 1, 2.0)
    assert report_activity(index, now - 7200, now - 3600) == []
    assert render_durations(index, REPORT) == [2.0, 2.0, 2.0]


def _write_items(url: str, worker: int) -> None:
    index = ItemIndex(url)
    for n in range(40):
        index.record(
            REPORT, [rendered({"carrier": f"W{worker}", "month": f"2013-{n % 12 + 1:02d}", "n": n})]
        )


def test_several_processes_write_at_once_and_lose_nothing(index):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_items, args=(index.url, w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert search_items(index, ItemQuery("")).total == 4 * 40


def test_an_unreachable_database_is_one_line():
    with pytest.raises(IndexUnavailable, match=r"^item index postgresql\S*:\S*@127\.0\.0\.1:9/"):
        ItemIndex("postgresql+psycopg2://someone:secret@127.0.0.1:9/nowhere")
    try:
        ItemIndex("postgresql+psycopg2://someone:secret@127.0.0.1:9/nowhere")
    except IndexUnavailable as error:
        assert "secret" not in str(error) and "\n" not in str(error)
