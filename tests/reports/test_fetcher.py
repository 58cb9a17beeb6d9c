"""The WeasyPrint sandbox: only `data:` URLs and files inside the assets folder load.

Each blocked case stops the render with one exact BlockedFetchError, so no PDF exists
that could carry the fetched content. Positive controls (an asset image, an attachment
from the assets folder) show the same HTML constructs do load when allowed.
"""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import HTTPRedirectHandler, build_opener

import pytest

from reports.errors import BlockedFetchError
from reports.fetcher import SandboxedFetcher
from reports.pdf import render_pdf
from reports.render import render_report

ASSETS_ONLY = "only files inside the report's assets folder may be used"
NOTE = "Attached notes for the unit test."


@pytest.fixture
def assets(tmp_path: Path, kit) -> Path:
    """<tmp>/report/assets with a PNG, an SVG and a text file; a secret beside the report."""
    folder = (tmp_path / "report" / "assets").resolve()
    folder.mkdir(parents=True)
    (folder / "dot.png").write_bytes(kit.tiny_png())
    (folder / "box.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        '<rect width="10" height="10" fill="red"/></svg>',
        encoding="utf-8",
    )
    (folder / "notes.txt").write_text(NOTE, encoding="utf-8")
    (tmp_path / "secret.txt").write_text("root:x:0:0:TOPSECRET", encoding="utf-8")
    return folder


def page(body: str) -> str:
    return f"<!doctype html><html><head></head><body><p>Sandbox test page.</p>{body}</body></html>"


def render(assets: Path, body: str):
    return render_pdf(
        "sandbox", page(body), base_dir=assets, stylesheets=[], allowed_roots=[assets]
    )


def blocked(assets: Path, body: str) -> str:
    with pytest.raises(BlockedFetchError) as caught:
        render(assets, body)
    return str(caught.value)


class CountingServer:
    """An HTTP server on 127.0.0.1 that counts requests and redirects to /etc/passwd."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server():
    srv = CountingServer()
    srv.thread.start()
    yield srv
    srv.server.shutdown()
    srv.server.server_close()


# --- allowed --------------------------------------------------------------------------


def test_asset_png_renders(assets, kit):
    pdf = render(assets, '<img src="dot.png" alt="dot">')
    assert len(kit.pdf_reader(pdf.data).pages[0].images) == 1
    assert "Sandbox test page." in kit.pdf_text(pdf.data)


def test_asset_svg_renders(assets, kit):
    pdf = render(assets, '<img src="box.svg" alt="box">')
    assert pdf.pages == 1
    assert "Sandbox test page." in kit.pdf_text(pdf.data)


def test_data_url_renders(assets, kit):
    encoded = base64.b64encode(kit.tiny_png()).decode("ascii")
    pdf = render(assets, f'<img src="data:image/png;base64,{encoded}" alt="dot">')
    assert len(kit.pdf_reader(pdf.data).pages[0].images) == 1


def test_attachment_inside_assets_is_embedded(assets, kit):
    # The control for the blocked attachment below: attachments really are fetched.
    pdf = render(assets, '<link rel="attachment" href="notes.txt">')
    assert kit.pdf_reader(pdf.data).attachments == {"notes.txt": [NOTE.encode()]}


def test_shared_layout_folder_is_allowed(assets):
    from reports.templating import LAYOUT_DIR

    fetched = SandboxedFetcher([assets, LAYOUT_DIR]).fetch((LAYOUT_DIR / "base.css").as_uri())
    assert b"@page" in fetched.read()


# --- blocked --------------------------------------------------------------------------


def test_attachment_of_etc_passwd_is_blocked(assets):
    assert blocked(assets, '<link rel="attachment" href="file:///etc/passwd">') == (
        f"sandbox: blocked resource file:///etc/passwd: {ASSETS_ONLY}"
    )


def test_image_from_etc_is_blocked(assets):
    assert blocked(assets, '<img src="file:///etc/passwd">') == (
        f"sandbox: blocked resource file:///etc/passwd: {ASSETS_ONLY}"
    )


def test_css_url_outside_assets_is_blocked(assets):
    body = '<style>body { background: url("file:///etc/passwd"); }</style>'
    assert blocked(assets, body) == f"sandbox: blocked resource file:///etc/passwd: {ASSETS_ONLY}"


@pytest.mark.parametrize("scheme", ["http", "https", "ftp"])
def test_network_urls_are_blocked(assets, scheme):
    url = f"{scheme}://127.0.0.1:9/x.png"
    assert blocked(assets, f'<img src="{url}">') == (
        f"sandbox: blocked resource {url}: {scheme} URLs are not allowed in reports"
    )


def test_redirect_to_a_local_file_is_never_requested(assets, server):
    url = server.url("/x.png")
    for body in (f'<img src="{url}">', f'<link rel="attachment" href="{url}">'):
        assert blocked(assets, body) == (
            f"sandbox: blocked resource {url}: http URLs are not allowed in reports"
        )
    assert server.hits == 0
    # Control: the server is up and does answer with the redirect.
    opener = build_opener(
        type(
            "NoRedirect",
            (HTTPRedirectHandler,),
            {
                "redirect_request": lambda *args, **kwargs: None,
            },
        )
    )
    with pytest.raises(HTTPError) as caught:
        opener.open(url, timeout=5)
    assert caught.value.code == 302 and server.hits == 1


def test_symlink_out_of_the_assets_is_blocked(assets):
    (assets / "link.txt").symlink_to(assets.parent.parent / "secret.txt")
    url = (assets / "link.txt").as_uri()
    assert blocked(assets, '<link rel="attachment" href="link.txt">') == (
        f"sandbox: blocked resource {url}: {ASSETS_ONLY}"
    )


def test_symlinked_folder_out_of_the_assets_is_blocked(assets):
    (assets / "etc").symlink_to("/etc")
    url = (assets / "etc" / "passwd").as_uri()
    assert blocked(assets, '<img src="etc/passwd">') == (
        f"sandbox: blocked resource {url}: {ASSETS_ONLY}"
    )


def test_relative_path_escaping_the_assets_is_blocked(assets):
    url = (assets.parent.parent / "secret.txt").as_uri()  # WeasyPrint resolves the ../..
    assert blocked(assets, '<link rel="attachment" href="../../secret.txt">') == (
        f"sandbox: blocked resource {url}: {ASSETS_ONLY}"
    )


def test_encoded_dot_dot_escaping_the_assets_is_blocked(assets):
    url = assets.as_uri() + "/..%2F..%2Fsecret.txt"
    assert blocked(assets, '<link rel="attachment" href="..%2F..%2Fsecret.txt">') == (
        f"sandbox: blocked resource {url}: {ASSETS_ONLY}"
    )


def test_missing_asset_is_reported(assets):
    url = (assets / "nope.png").as_uri()
    assert blocked(assets, '<img src="nope.png">') == (
        f"sandbox: blocked resource {url}: no such asset file"
    )


def test_long_urls_are_shortened_in_the_message(assets):
    url = "https://example.invalid/" + "a" * 200
    assert blocked(assets, f'<img src="{url}">') == (
        f"sandbox: blocked resource {url[:117]}...: https URLs are not allowed in reports"
    )


# --- through the whole pipeline ------------------------------------------------------


def test_blocked_attachment_in_a_report_writes_nothing(mini, kit):
    template = kit.MINIMAL_TEMPLATE.replace(
        "{% block content %}",
        '{% block content %}\n<link rel="attachment" href="file:///etc/passwd">',
    )
    mini.add_report("mini", template=template)
    with pytest.raises(BlockedFetchError) as caught:
        render_report(mini.report("mini"), {}, mini.store())
    assert str(caught.value) == f"mini: blocked resource file:///etc/passwd: {ASSETS_ONLY}"
    assert mini.files() == []


def test_passwd_never_reaches_an_output(mini, kit):
    # A data value cannot inject the link at all: it is escaped (tests/reports/test_escaping.py).
    mini.write_table(
        "items",
        [
            {
                "region": "north",
                "label": '<link rel="attachment" href="file:///etc/passwd">',
                "amount": 1,
            },
        ],
    )
    render_report(mini.report("mini"), {}, mini.store())
    pdf_files = [p for p in mini.files() if p.suffix == ".pdf"]
    assert len(pdf_files) == 1
    assert kit.pdf_reader(pdf_files[0].read_bytes()).attachments == {}
    passwd_line = Path("/etc/passwd").read_bytes().splitlines()[0]
    for path in mini.files():
        assert passwd_line not in path.read_bytes()
