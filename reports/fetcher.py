"""The only door WeasyPrint has to the outside world.

WeasyPrint's default fetcher reads any local file and any URL, so a template or a
data value with `<link rel="attachment" href="file:///etc/passwd">` would embed
that file in the PDF. This fetcher serves `data:` URLs and regular files inside
the allowed asset folders; everything else stops the render.
"""

from __future__ import annotations

import mimetypes
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


class SandboxedFetcher(URLFetcher):
    def __init__(self, allowed_roots: list[Path]) -> None:
        # No redirects, no network handlers are ever reached: fetch() below decides first.
        super().__init__(timeout=5, allowed_protocols={"data", "file"}, allow_redirects=False)
        self.allowed_roots = [root.resolve() for root in allowed_roots]

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme != "file":
            raise FetchBlocked(url, f"{scheme or 'relative'} URLs are not allowed in reports")
        path = Path(unquote(urlsplit(url).path))
        resolved = path.resolve()  # follows symlinks: a link out of the assets is caught here
        if not any(resolved.is_relative_to(root) for root in self.allowed_roots):
            raise FetchBlocked(url, "only files inside the report's assets folder may be used")
        if not resolved.is_file():
            raise FetchBlocked(url, "no such asset file")
        mime, _ = mimetypes.guess_type(resolved.name)
        return URLFetcherResponse(
            resolved.as_uri(),
            body=resolved.read_bytes(),
            headers={"Content-Type": mime or "application/octet-stream"},
        )
