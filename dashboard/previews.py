"""A produced report on screen: first-page preview, its facts, and download buttons.

The preview is the PDF's first page rendered to PNG with pypdfium2 (no browser PDF
plug-in needed, and nothing from the report's HTML runs in the dashboard). Data
values inside reports may hold HTML or script: they are shown only as text, as
table cells or inside the image, never with `unsafe_allow_html`.
"""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard.api import Output, OutputFile, read_output_file
from dashboard.formatting import clock

PREVIEW_WIDTH = 640  # pixels: readable headings, a small PNG
QUALITY_LABELS = {"ok": "✅ ok", "warning": "⚠️ warning", "failed": "❌ failed"}
MIME = {"pdf": "application/pdf", "html": "text/html", "csv": "text/csv"}
_PDFIUM = threading.Lock()  # PDFium is not thread-safe; Streamlit sessions are threads


class PreviewError(Exception):
    """A PDF could not be rendered to an image; the message is one line."""


def first_page_png(pdf: bytes, width: int = PREVIEW_WIDTH) -> bytes:
    """The first page of `pdf` as a PNG `width` pixels wide."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(pdf)
        except pdfium.PdfiumError as exc:
            raise PreviewError(f"not a readable PDF ({exc})") from None
        try:
            if len(document) == 0:
                raise PreviewError("the PDF has no pages")
            page = document[0]
            try:
                page_width, _ = page.get_size()
                image = page.render(scale=width / page_width).to_pil()
            finally:
                page.close()
        finally:
            document.close()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@st.cache_data(max_entries=64, show_spinner=False)
def _cached_png(sha256: str, _pdf: bytes) -> bytes:
    """Keyed by the content's hash: an unchanged PDF is rendered once per process."""
    return first_page_png(_pdf)


def quality_label(status: str) -> str:
    return QUALITY_LABELS.get(status, f"❔ {status}")


def file_size(size: int | None) -> str:
    """'830 B', '33.4 kB', '2.1 MB'."""
    if size is None:
        return "–"
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def outputs_frame(outputs: list[Output]) -> pd.DataFrame:
    """One row per output: its parameters (a column each), pages, size, quality, when."""
    names: list[str] = []
    for output in outputs:
        names += [name for name in output.parameters if name not in names]
    return pd.DataFrame(
        [
            {
                "Report": output.report,
                **{name: output.parameters.get(name, "") for name in names},
                "Pages": output.pages,
                "PDF size": file_size(output.pdf.bytes if output.pdf else None),
                "Files": len(output.files),
                "Quality": quality_label(output.quality),
                "Produced (UTC)": _naive(output),
            }
            for output in outputs
        ],
        columns=["Report", *names, "Pages", "PDF size", "Files", "Quality", "Produced (UTC)"],
    )


def output_card(output: Output, store_url: str, key: str) -> None:
    """Preview, facts and downloads of one output; a missing or broken file is one line."""
    contents = {f.path: _read(store_url, f) for f in output.files}
    preview, facts = st.columns([3, 2])
    with preview:
        _preview(output, contents)
    with facts:
        _facts(output, contents)
        _downloads(output, contents, key)


def _preview(output: Output, contents: dict[str, bytes | None]) -> None:
    pdf = output.pdf
    if pdf is None:
        st.info(f"{output.title} — {output.label}: no PDF was produced (formats chosen).")
        return
    data = contents.get(pdf.path)
    if data is None:
        return  # `_facts` says the file is missing
    try:
        png = _cached_png(hashlib.sha256(data).hexdigest(), data)
    except PreviewError as exc:
        st.error(f"No preview of {pdf.name}: {exc}")
        return
    description = f"First page of {output.title}, {output.label}"
    st.image(
        png,
        caption=f"{description} (page 1 of {output.pages or '?'})",
        alt=description,
        output_format="PNG",  # lossless: small print stays readable
    )


def _facts(output: Output, contents: dict[str, bytes | None]) -> None:
    st.markdown(f"**{output.title}**")
    st.text(output.label)  # a data value: plain text, never markdown or HTML
    lines = [
        f"Pages: {output.pages if output.pages is not None else '–'}",
        f"Quality: {quality_label(output.quality)}",
        f"Produced: {clock(output.created_at)}",
        f"All files: {len(output.files)}, {file_size(output.total_bytes)}",
    ]
    st.markdown("  \n".join(lines))
    for issue in output.issues:
        st.text(f"⚠️ {issue}")
    pdf = output.pdf
    if pdf is not None:
        st.caption(f"PDF: {file_size(pdf.bytes)} ({pdf.bytes:,} bytes)")
        # Wrapped: a horizontally scrolling block cannot be reached by keyboard. (Inline
        # code in a caption would spare the highlighter's bundle, but its grey on grey
        # fails the contrast check.)
        st.code(f"sha256 {pdf.sha256}", language=None, wrap_lines=True)
        data = contents.get(pdf.path)
        if data is not None:
            if hashlib.sha256(data).hexdigest() == pdf.sha256:
                st.caption("✅ The file on disk matches the manifest's sha256.")
            else:
                st.warning("The PDF differs from its manifest: it changed after it was produced.")
    for file in output.files:
        if contents.get(file.path) is None:
            st.warning(f"{file.name} is missing from the output store.")


def _downloads(output: Output, contents: dict[str, bytes | None], key: str) -> None:
    for index, file in enumerate(output.files):
        data = contents.get(file.path)
        if data is None:
            continue
        st.download_button(
            f"Download {_what(output, file)} ({file_size(file.bytes)})",
            data=data,
            file_name=file.name,
            mime=MIME.get(file.kind, "application/octet-stream"),
            key=f"{key}_download_{index}",
            help=f"{file.name}: {file.bytes:,} bytes, sha256 {file.sha256[:16]}…",
            on_click="ignore",  # a download needs no rerun of the page
        )


def _what(output: Output, file: OutputFile) -> str:
    """'PDF', 'HTML', 'CSV daily': a CSV is named after its table (the file's tail)."""
    if file.kind != "csv":
        return file.kind.upper()
    main = output.pdf or output.html
    stem = main.name.rsplit(".", 1)[0] + "_" if main else ""
    table = file.name.removesuffix(".csv")
    return f"CSV {table.removeprefix(stem) if stem and table.startswith(stem) else table}"


def _read(store_url: str, file: OutputFile) -> bytes | None:
    try:
        return read_output_file(store_url, file)
    except OSError:
        return None


def _naive(output: Output) -> datetime | None:
    """UTC without tzinfo: the table shows the time as it is, labelled UTC."""
    moment = output.created_at
    return None if moment is None else moment.replace(tzinfo=None)
