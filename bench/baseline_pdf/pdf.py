"""FROZEN BASELINE: reports/pdf.py as it was on 2026-12-01. Do not edit.

bench/pdf_speed.py measures the live code against this copy.

HTML to PDF with WeasyPrint, sandboxed and warm.

One FontConfiguration and one parsed CSS object per stylesheet are kept per
process: re-creating them for every PDF roughly doubles the render time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from reports.fetcher import FetchBlocked, SandboxedFetcher


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int
    text_chars: int  # characters of text laid out: zero means a blank PDF


_lock = threading.Lock()
_font_config: FontConfiguration | None = None
_css_cache: dict[tuple, CSS] = {}


def _fonts() -> FontConfiguration:
    global _font_config
    with _lock:
        if _font_config is None:
            _font_config = FontConfiguration()
        return _font_config


def _stylesheet(path: Path, fetcher: SandboxedFetcher) -> CSS:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, tuple(map(str, fetcher.allowed_roots)))
    with _lock:
        css = _css_cache.get(key)
    if css is None:
        css = CSS(filename=str(path), font_config=_fonts(), url_fetcher=fetcher)
        with _lock:
            _css_cache[key] = css
    return css


def render_pdf(
    report: str,
    html: str,
    *,
    base_dir: Path,
    stylesheets: list[Path],
    allowed_roots: list[Path],
) -> RenderedPdf:
    """Lay out `html` and write a tagged PDF; blocked resources raise BlockedFetchError."""
    fetcher = SandboxedFetcher(allowed_roots)
    try:
        sheets = [_stylesheet(path, fetcher) for path in stylesheets]
        document = HTML(
            string=html, base_url=base_dir.resolve().as_uri() + "/", url_fetcher=fetcher
        ).render(font_config=_fonts(), stylesheets=sheets, pdf_tags=True)
        data = document.write_pdf(pdf_tags=True)
    except FetchBlocked as blocked:
        raise blocked.to_report_error(report) from None
    return RenderedPdf(data=data, pages=len(document.pages), text_chars=_text_chars(document))


def _text_chars(document) -> int:
    """Count laid-out text characters, to flag a PDF that came out blank."""
    total = 0
    stack = [page._page_box for page in document.pages]
    while stack:
        box = stack.pop()
        text = getattr(box, "text", None)
        if isinstance(text, str):
            total += len(text.strip())
        stack.extend(getattr(box, "children", ()))
    return total
