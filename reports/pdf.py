"""HTML to PDF with WeasyPrint, sandboxed and warm.

One FontConfiguration and one parsed CSS object per stylesheet are kept per
process: re-creating them for every PDF roughly doubles the render time.

Python's cyclic garbage collector is paused while WeasyPrint lays out and writes a
PDF, and what the render allocated is collected in one pass at its end. Otherwise its
few hundred thousand allocations trigger dozens of collections that each walk the
render's live boxes again (and now and then the whole heap): about 15 % of the CPU of
a carrier-monthly render (docs/BENCHMARKS.md, "PDF render speed (second round)"). The
same garbage is freed, at the end of the render instead of along the way.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
_gc_lock = threading.Lock()
_gc_renders = 0  # renders under way in this process, across threads
_gc_was_enabled = False


def _fonts() -> FontConfiguration:
    global _font_config
    with _lock:
        if _font_config is None:
            _font_config = FontConfiguration()
        return _font_config


def warm_up() -> None:
    """Build the font configuration (fontconfig's cache) now, before the first render."""
    _fonts()


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
    with _gc_paused():
        try:
            return _render(
                html, base_dir, [_stylesheet(path, fetcher) for path in stylesheets], fetcher
            )
        except FetchBlocked as blocked:
            raise blocked.to_report_error(report) from None


def _render(html: str, base_dir: Path, sheets: list[CSS], fetcher: SandboxedFetcher) -> RenderedPdf:
    document = HTML(
        string=html, base_url=base_dir.resolve().as_uri() + "/", url_fetcher=fetcher
    ).render(font_config=_fonts(), stylesheets=sheets, pdf_tags=True)
    data = document.write_pdf(pdf_tags=True)
    return RenderedPdf(data=data, pages=len(document.pages), text_chars=_text_chars(document))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No automatic cyclic collection while a render runs; one of its objects after it.

    Threads may render at once: automatic collection stays off until the last of them
    ends, and is switched back on only if it was on before the first began. Every
    render still collects at its end, so overlapping renders never let garbage pile up.
    """
    global _gc_renders, _gc_was_enabled
    with _gc_lock:
        if _gc_renders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_renders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_renders -= 1
            if _gc_renders == 0 and _gc_was_enabled:
                gc.enable()
        # Everything allocated since the pause is still in the youngest generation: one
        # pass over it frees the render's reference cycles (its boxes, pages, layouts),
        # and nothing older is walked.
        gc.collect(0)


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
