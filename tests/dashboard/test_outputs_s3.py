"""The dashboard reads outputs from S3 (moto): it lists, previews and downloads a PDF.

The same code as for a local folder (`dashboard.api._outputs`, `dashboard.previews`),
with `REPORTRUNNER_OUTPUT_URL=s3://…`: the dashboard needs only the URL and the
standard AWS variables that the `s3` fixture sets.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader
from streamlit.testing.v1 import AppTest

from dashboard.api import find_output, list_outputs, read_output_file
from dashboard.previews import PREVIEW_WIDTH, first_page_png
from reports.definitions import default_catalog
from reports.render import render_report
from reports.settings import get_settings
from reports.store import OutputStore

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PARAMS = {"carrier": "AS", "month": "2013-02"}
PDF = "carrier-monthly/carrier=AS/month=2013-02/carrier-monthly_AS_2013-02.pdf"


@pytest.fixture(scope="module")
def bucket_outputs(s3, settings) -> str:
    """One carrier-monthly item rendered into a prefix of the bucket: its output URL."""
    url = s3.output_url("dashboard-outputs")
    render_report(default_catalog().get("carrier-monthly"), PARAMS, OutputStore(url))
    return url


@pytest.fixture
def outputs_on_s3(bucket_outputs, monkeypatch) -> str:
    """The dashboard's settings point at the bucket for one test."""
    monkeypatch.setenv("REPORTRUNNER_OUTPUT_URL", bucket_outputs)
    get_settings.cache_clear()
    yield bucket_outputs
    get_settings.cache_clear()  # read again after monkeypatch restores the variable


def test_the_api_finds_reads_and_previews_a_pdf_in_the_bucket(bucket_outputs, s3):
    [listed] = list_outputs(bucket_outputs, "carrier-monthly")
    found = find_output(bucket_outputs, "carrier-monthly", {"month": "2013-02", "carrier": "AS"})
    assert found == listed and found.pdf is not None and found.pages == 2
    assert found.pdf.path == PDF

    pdf = read_output_file(bucket_outputs, found.pdf)
    client = s3.client()
    stored = client.get_object(Bucket=s3.bucket, Key=f"dashboard-outputs/{PDF}")["Body"].read()
    assert pdf == stored and len(pdf) == found.pdf.bytes
    assert "Alaska Airlines" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    png = Image.open(io.BytesIO(first_page_png(pdf)))
    assert png.format == "PNG" and png.width == PREVIEW_WIDTH


def test_the_outputs_page_previews_and_downloads_a_pdf_from_the_bucket(outputs_on_s3, media, s3):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/outputs.py").run()
    at.selectbox(key="outputs_report").set_value("carrier-monthly").run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "Produced (UTC)" in d.value.columns)
    assert list(zip(table["carrier"], table["month"], strict=True)) == [("AS", "2013-02")]

    image = at.get("image")[0].proto.imgs[0]
    assert image.caption.startswith(
        "First page of Carrier monthly performance, carrier=AS month=2013-02"
    )
    png = Image.open(io.BytesIO(media[image.url.rsplit("/", 1)[-1].split(".")[0]]))
    assert png.format == "PNG" and png.width == PREVIEW_WIDTH
    button = next(b for b in at.download_button if b.label.startswith("Download PDF"))
    pdf = media[button.proto.url.rsplit("/", 1)[-1].split(".")[0]]
    key = f"dashboard-outputs/{PDF}"
    assert pdf == s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read()
