"""The only door WeasyPrint has to the outside world.

WeasyPrint's default fetcher reads any local file and any URL, so a template or a
data value with `<link rel="attachment" href="file:///etc/passwd">` would embed
that file in the PDF. This fetcher serves `data:` URLs and regular files inside
the allowed asset folders; everything else stops the render. `resolve_allowed` is
that rule on its own: the HTML output (`reports.html_output`) applies it too.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from reports.errors import BlockedFetchError


class FetchBlocked(FatalURLFetchingError):
    """Raised inside WeasyPrint; `reports.pdf` turns it into BlockedFetchError."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason)
        self.url, self.reason = url, reason

    def to_report_error(self, report: str) -> BlockedFetchError:
        shown = self.url if len(self.url) <= 120 else self.url[:117] + "..."
        return BlockedFetchError(f"{report}: blocked resource {shown}: {self.reason}")


def resolve_allowed(url: str, allowed_roots: Sequence[Path]) -> Path:
    """The regular file an absolute `file:` URL names, if it lies inside `allowed_roots`.

    The one allow-decision of the sandbox, shared by the PDF (`SandboxedFetcher`) and the
    HTML output (`reports.html_output`); `data:` URLs are the callers' business. Raises
    FetchBlocked for any other scheme, a file outside the roots (symlinks resolved) or a
    missing file.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "file":
        raise FetchBlocked(url, f"{scheme or 'relative'} URLs are not allowed in reports")
    resolved = Path(unquote(parts.path)).resolve()  # follows symlinks: a link out is caught
    if not any(resolved.is_relative_to(root.resolve()) for root in allowed_roots):
        raise FetchBlocked(url, "only files inside the report's assets folder may be used")
    if not resolved.is_file():
        raise FetchBlocked(url, "no such asset file")
    return resolved


class SandboxedFetcher(URLFetcher):
    def __init__(self, allowed_roots: list[Path]) -> None:
        # No redirects, no network handlers are ever reached: fetch() below decides first.
        super().__init__(timeout=5, allowed_protocols={"data", "file"}, allow_redirects=False)
        self.allowed_roots = [root.resolve() for root in allowed_roots]

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        if urlsplit(url).scheme.lower() == "data":
            return super().fetch(url, headers)
        resolved = resolve_allowed(url, self.allowed_roots)
        mime, _ = mimetypes.guess_type(resolved.name)
        return URLFetcherResponse(
            resolved.as_uri(),
            body=resolved.read_bytes(),
            headers={"Content-Type": mime or "application/octet-stream"},
        )
