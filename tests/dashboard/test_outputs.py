"""The outputs browser on the real output store: the manifests `real_runs` published.

`archived` adds 55 copies of a real output under a report that is no longer in the
catalog (one with HTML in a parameter value): enough for a second table page, and
proof that values are shown as text.
"""

from __future__ import annotations

import io
import json
import posixpath
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader
from streamlit.testing.v1 import AppTest

from dashboard.api import OutputLookupError, find_output, list_outputs
from dashboard.previews import PREVIEW_WIDTH
from reports.store import OutputStore

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
HOSTILE = '<img src=x onerror="alert(1)">'
COPIES = 55


@pytest.fixture(scope="module")
def archived(real_runs, settings):
    store = OutputStore(settings.resolved_output_url)
    source = store.read_manifest("carrier-monthly/carrier=AS/month=2013-01")
    pdf = next(f for f in source["files"] if f["name"].endswith(".pdf"))
    for n in range(COPIES):
        params = {"edition": HOSTILE if n == 0 else f"{n:03d}"}
        item_dir = store.item_dir("archived-report", params)
        path = posixpath.join(item_dir, f"archived-report_{n:03d}.pdf")
        store.write_bytes(path, store.read_bytes(pdf["path"]))
        store.write_manifest(
            item_dir,
            {
                **source,
                "report": "archived-report",
                "title": "Archived report",
                "parameters": params,
                "files": [{**pdf, "name": posixpath.basename(path), "path": path}],
                "item_dir": item_dir,
            },
        )
    yield store
    shutil.rmtree(Path(settings.resolved_output_url) / "archived-report")


def _outputs_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/outputs.py").run()
    return at


def _table(at: AppTest):
    return next(d.value for d in at.dataframe if "Produced (UTC)" in d.value.columns)


def _texts(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in [*at.markdown, *at.caption, *at.text])


def _served(media: dict[str, bytes], url: str) -> bytes:
    return media[url.rsplit("/", 1)[-1].split(".")[0]]


def test_lists_the_produced_outputs_of_a_report(real_runs, archived):
    at = _outputs_page()
    assert not at.exception and not at.error
    at.selectbox(key="outputs_report").set_value("carrier-monthly").run()
    table = _table(at)
    ours = table[table["carrier"] == "AS"]
    assert {"2013-01", "2013-02", "2013-03"} <= set(ours["month"])
    assert list(table.columns) == [
        "Report",
        "carrier",
        "month",
        "Pages",
        "PDF size",
        "Files",
        "Quality",
        "Produced (UTC)",
    ]
    assert set(ours["Pages"]) == {2} and set(ours["Quality"]) == {"✅ ok"}
    assert all(size.endswith("kB") for size in ours["PDF size"])


def test_filters_by_a_parameter_and_previews_the_one_left(real_runs, archived, media, settings):
    at = _outputs_page()
    at.selectbox(key="outputs_report").set_value("carrier-monthly").run()
    at.selectbox(key="outputs_param_carrier-monthly_carrier").set_value("AS").run()
    at.selectbox(key="outputs_param_carrier-monthly_month").set_value("2013-02").run()
    assert not at.exception and not at.error
    table = _table(at)
    assert list(zip(table["carrier"], table["month"], strict=True)) == [("AS", "2013-02")]
    assert "Outputs 1–1 of 1" in _texts(at)
    image = at.get("image")[0].proto.imgs[0]
    assert image.caption.startswith(
        "First page of Carrier monthly performance, carrier=AS month=2013-02"
    )
    png = Image.open(io.BytesIO(_served(media, image.url)))
    assert png.format == "PNG" and png.width == PREVIEW_WIDTH
    button = next(b for b in at.download_button if b.label.startswith("Download PDF"))
    folder = Path(settings.resolved_output_url) / "carrier-monthly/carrier=AS/month=2013-02"
    pdf = _served(media, button.proto.url)
    assert pdf == (folder / "carrier-monthly_AS_2013-02.pdf").read_bytes()
    assert "Alaska Airlines" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    labels = [b.label.split(" (")[0] for b in at.download_button]
    assert labels == [
        "Download PDF",
        "Download HTML",
        *(label for label in labels if label.startswith("Download CSV")),
    ]
    assert len(labels) >= 5  # PDF, HTML and one CSV per table


def test_filters_by_produced_date(real_runs, archived):
    today = datetime.now(UTC).date()
    at = _outputs_page()
    at.selectbox(key="outputs_report").set_value("carrier-monthly").run()
    before = len(_table(at))
    produced = at.date_input(key="outputs_produced_carrier-monthly")
    produced.set_value((today - timedelta(days=3), today - timedelta(days=1))).run()
    assert not at.exception
    assert [i.value for i in at.info] == ["No outputs match these filters."]
    at.date_input(key="outputs_produced_carrier-monthly").set_value((today, today)).run()
    assert len(_table(at)) == before


def test_pages_through_many_outputs_and_shows_values_as_text(archived):
    at = _outputs_page()
    at.selectbox(key="outputs_report").set_value("archived-report").run()
    assert not at.exception and not at.error
    assert f"Outputs 1–50 of {COPIES}" in _texts(at)
    first = set(_table(at)["edition"])
    at.button(key="outputs_next").click().run()
    assert f"Outputs 51–{COPIES} of {COPIES}" in _texts(at)
    second = set(_table(at)["edition"])
    assert not first & second and len(first | second) == COPIES
    assert HOSTILE in first | second  # kept as the text it is
    at.button(key="outputs_prev").click().run()
    at.selectbox(key="outputs_param_archived-report_edition").set_value(HOSTILE).run()
    assert not at.exception
    assert f"edition={HOSTILE}" in [t.value for t in at.text]
    assert not any(m.proto.allow_html for m in [*at.markdown, *at.caption])


def test_a_missing_file_is_one_line_and_the_rest_still_downloads(archived):
    manifest = archived.read_manifest(archived.item_dir("archived-report", {"edition": "007"}))
    path = manifest["files"][0]["path"]
    kept = archived.read_bytes(path)
    archived.remove(path)
    try:
        at = _outputs_page()
        at.selectbox(key="outputs_report").set_value("archived-report").run()
        at.selectbox(key="outputs_param_archived-report_edition").set_value("007").run()
    finally:
        archived.write_bytes(path, kept)
    assert not at.exception and not at.error
    assert "archived-report_007.pdf is missing from the output store." in [
        w.value for w in at.warning
    ]
    assert not at.download_button and not at.get("image")


def test_store_reading_skips_damaged_manifests_and_locates_items(tmp_path, real_runs, settings):
    assert list_outputs(str(tmp_path)) == []
    good = Path(settings.resolved_output_url) / "carrier-monthly/carrier=AS/month=2013-01"
    shutil.copytree(good, tmp_path / "carrier-monthly/carrier=AS/month=2013-01")
    (tmp_path / "carrier-monthly/carrier=XX").mkdir()
    (tmp_path / "carrier-monthly/carrier=XX/manifest.json").write_text("{not json")
    (tmp_path / "carrier-monthly/carrier=YY").mkdir()
    (tmp_path / "carrier-monthly/carrier=YY/manifest.json").write_text(json.dumps({"x": 1}))
    found = list_outputs(str(tmp_path))
    assert [o.key for o in found] == ["carrier=AS month=2013-01"]
    assert found[0].pdf is not None and found[0].pages == 2 and len(found[0].csvs) == 3
    located = find_output(str(tmp_path), "carrier-monthly", {"month": "2013-01", "carrier": "AS"})
    assert located == found[0]
    assert (
        find_output(str(tmp_path), "carrier-monthly", {"carrier": "AA", "month": "2013-01"}) is None
    )
    with pytest.raises(OutputLookupError, match="unknown report 'nope'"):
        find_output(str(tmp_path), "nope", {})
