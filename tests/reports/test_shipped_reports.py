"""The catalog's airport-daily and destination-quarterly reports, end to end.

Each sample is rendered into a temporary output store and read back: the PDF's
text is checked against figures computed here, independently, with pandas from
the Parquet files; the manifest and the CSV files against the same figures.
"""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from pypdf import PdfReader

from reports import Catalog, OutputStore, ParameterError, QualityError, Settings, render_report
from reports.datasets import setup_data
from reports.settings import get_settings
from reports.sources import SqlSource

INJECTION = "ATL' OR '1'='1"


@pytest.fixture(scope="module")
def data_settings() -> Settings:
    """The session's settings, with the demo data built (idempotent, fast once it exists)."""
    settings = get_settings()
    setup_data(settings.resolved_data_dir, settings.resolved_database_url)
    return settings


@pytest.fixture(scope="module")
def catalog(data_settings) -> Catalog:
    return Catalog(settings=data_settings)


@pytest.fixture(scope="module")
def parquet(data_settings):
    def read(table: str) -> pd.DataFrame:
        return pd.read_parquet(data_settings.resolved_data_dir / f"{table}.parquet")

    return read


def _render(report, params, root) -> tuple[dict, str, OutputStore]:
    store = OutputStore(str(root))
    manifest = render_report(report, params, store)
    pdf = _file(store, manifest, ".pdf")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == manifest["pages"]
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    return manifest, text, store


def _file(store: OutputStore, manifest: dict, suffix: str) -> bytes:
    (entry,) = [f for f in manifest["files"] if f["name"].endswith(suffix)]
    return store.fs.cat_file(f"{store.root}/{entry['path']}")


def _csv(store: OutputStore, manifest: dict, table: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(_file(store, manifest, f"_{table}.csv")))


def _assert_charts_have_alt(store: OutputStore, manifest: dict, expected: int) -> None:
    html = _file(store, manifest, ".html").decode("utf-8")
    images = re.findall(r"<img\b[^>]*>", html)
    assert len(images) == expected
    for image in images:
        alt = re.search(r'\balt="([^"]*)"', image)
        assert alt and len(alt.group(1)) > 20, image[:120]


# -- airport-daily ---------------------------------------------------------------------------


def test_airport_daily_sample(catalog, parquet, tmp_path):
    report = catalog.get("airport-daily")
    params = report.loader.SAMPLE
    assert params == {"origin": "JFK", "date": "2013-07-04"}
    flights, weather, airports = parquet("flights"), parquet("weather"), parquet("airports")
    day = (flights["origin"] == "JFK") & (flights["month"] == 7) & (flights["day"] == 4)
    expected = flights[day & (flights["year"] == 2013)]
    observed = weather[
        (weather["origin"] == "JFK") & (weather["month"] == 7) & (weather["day"] == 4)
    ]
    name = airports.loc[airports["faa"] == "JFK", "name"].item()

    manifest, text, store = _render(report, params, tmp_path)

    assert 2 <= manifest["pages"] <= 3
    assert name in text
    assert f"scheduled {len(expected):,} departures" in text
    cancelled = int(expected["dep_time"].isna().sum())
    assert f"{cancelled:,} was cancelled" in text or f"{cancelled:,} were cancelled" in text
    assert manifest["rows"]["flights"] == len(expected)
    assert manifest["rows"]["weather"] == len(observed)
    assert manifest["quality"] == {"status": "ok", "issues": []}

    hours = set(expected["hour"]) | set(observed["hour"])
    assert manifest["table_rows"] == {"hourly": len(hours), "departures": len(expected)}
    hourly = _csv(store, manifest, "hourly")
    assert sorted(hourly["hour"]) == sorted(hours)
    assert hourly["departures"].sum() == len(expected)
    assert hourly["cancelled"].sum() == cancelled
    departures = _csv(store, manifest, "departures")
    assert len(departures) == len(expected)  # the PDF shows 15, the CSV every departure
    assert departures["dep_delay"].iloc[0] == expected["dep_delay"].max()
    assert "Showing 15 of" in text
    _assert_charts_have_alt(store, manifest, expected=5)  # 2 hourly + 3 weather (a dry day)


def test_airport_daily_day_without_data_still_renders(data_settings, parquet, tmp_path):
    """No flights and no weather that day: a readable PDF that says so, flagged as a warning."""
    data = tmp_path / "data"
    data.mkdir()
    for table in ("airlines", "airports", "planes"):
        parquet(table).to_parquet(data / f"{table}.parquet", index=False)
    for table in ("flights", "weather"):
        frame = parquet(table)
        frame[~((frame["month"] == 7) & (frame["day"] == 4))].to_parquet(
            data / f"{table}.parquet", index=False
        )
    catalog = Catalog(settings=Settings(home=data_settings.home, data_dir=data))

    manifest, text, _ = _render(
        catalog.get("airport-daily"), {"origin": "JFK", "date": "2013-07-04"}, tmp_path / "out"
    )

    assert manifest["pages"] == 1
    assert manifest["rows"]["flights"] == 0
    assert manifest["quality"]["status"] == "warning"
    assert manifest["quality"]["issues"] == ["table 'flights' has 0 rows, fewer than 1"]
    assert "No departures from John F Kennedy Intl (JFK)" in text
    assert "No weather observations" in text


@pytest.mark.parametrize(
    ("raw", "parameter"),
    [
        ({"origin": "XYZ", "date": "2013-07-04"}, "origin"),
        ({"origin": "JFK", "date": "2014-01-01"}, "date"),
        ({"origin": "JFK", "date": "4 July"}, "date"),
    ],
)
def test_airport_daily_rejects_bad_parameters(catalog, raw, parameter):
    with pytest.raises(ParameterError, match=f"parameter '{parameter}'"):
        catalog.get("airport-daily").validate(raw)


# -- destination-quarterly -------------------------------------------------------------------


def _quarter(flights: pd.DataFrame, dest: str, months: range) -> pd.DataFrame:
    return flights[
        (flights["dest"] == dest) & flights["month"].isin(months) & (flights["year"] == 2013)
    ]


def test_destination_quarterly_sample(catalog, parquet, tmp_path):
    report = catalog.get("destination-quarterly")
    params = report.loader.SAMPLE
    assert params == {"dest": "ATL", "quarter": "2013-Q3"}
    assert report.source().kind == "sql"
    expected = _quarter(parquet("flights"), "ATL", range(7, 10))
    airports = parquet("airports")
    name = airports.loc[airports["faa"] == "ATL", "name"].item()

    manifest, text, store = _render(report, params, tmp_path)

    assert 1 <= manifest["pages"] <= 3
    assert name in text
    assert f"{len(expected):,} flights were scheduled" in text  # as the template's `number`
    groups = expected.groupby(["month", "origin", "carrier"]).ngroups
    assert manifest["rows"]["flights"] == groups  # aggregated in the database
    assert manifest["rows"]["airport"] == 1
    assert manifest["quality"] == {"status": "ok", "issues": []}

    carriers = _csv(store, manifest, "carriers")
    origins = _csv(store, manifest, "origins")
    months = _csv(store, manifest, "months")
    assert manifest["table_rows"] == {
        "carriers": len(carriers),
        "origins": len(origins),
        "months": 3,
    }
    assert dict(zip(carriers["carrier"], carriers["flights"], strict=True)) == (
        expected["carrier"].value_counts().to_dict()
    )
    assert dict(zip(origins["origin"], origins["flights"], strict=True)) == (
        expected["origin"].value_counts().to_dict()
    )
    assert months["flights"].tolist() == [int((expected["month"] == m).sum()) for m in (7, 8, 9)]
    arrived = expected["arr_delay"].dropna()
    assert f"{arrived.mean():.1f} min" in text
    assert f"{(arrived < 15).mean():.1%}" in text
    _assert_charts_have_alt(store, manifest, expected=3)


def test_destination_quarterly_quarter_without_flights_fails(catalog, parquet, tmp_path):
    flights = parquet("flights")
    served_q1 = set(_quarter(flights, "LEX", range(1, 4))["dest"])
    assert "LEX" in set(flights["dest"]) and not served_q1, "test data changed"
    with pytest.raises(QualityError, match="flights"):
        render_report(
            catalog.get("destination-quarterly"),
            {"dest": "LEX", "quarter": "2013-Q1"},
            OutputStore(str(tmp_path)),
        )


@pytest.mark.parametrize("dest", [INJECTION, "ATL; DROP TABLE flights", "ATL'--", "ZZZ"])
def test_destination_quarterly_rejects_injection_in_validation(catalog, dest):
    with pytest.raises(ParameterError, match="parameter 'dest'"):
        catalog.get("destination-quarterly").validate({"dest": dest, "quarter": "2013-Q3"})


def test_destination_quarterly_binds_values_never_formats_them(catalog, data_settings):
    """Past validation, the loader's SQL still treats the value as data: zero rows."""
    report = catalog.get("destination-quarterly")
    source = SqlSource(data_settings.resolved_database_url)
    frames = report.loader.load({"dest": INJECTION, "quarter": "2013-Q3"}, source)
    assert {name: len(frame) for name, frame in frames.items()} == {
        "airport": 0,
        "flights": 0,
        "daily": 0,
    }
    still_there = source.query("SELECT COUNT(*) AS n FROM flights")["n"].item()
    assert still_there == 336_776


@pytest.mark.postgres
def test_destination_quarterly_same_data_on_postgres(catalog, data_settings, scratch_postgres_url):
    """The queries are portable: PostgreSQL returns the frames SQLite does, types included."""
    url = scratch_postgres_url
    setup_data(data_settings.resolved_data_dir, url)
    loader = catalog.get("destination-quarterly").loader
    for params in ({"dest": "ATL", "quarter": "2013-Q3"}, {"dest": "HNL", "quarter": "2013-Q4"}):
        on_pg = loader.load(params, SqlSource(url))
        on_sqlite = loader.load(params, SqlSource(data_settings.resolved_database_url))
        for name, frame in on_sqlite.items():
            pd.testing.assert_frame_equal(on_pg[name], frame, obj=f"{params} {name}")
    assert all(
        len(f) == 0
        for f in loader.load({"dest": INJECTION, "quarter": "2013-Q3"}, SqlSource(url)).values()
    )
