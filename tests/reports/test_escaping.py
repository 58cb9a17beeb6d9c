"""Data values are text, never markup: HTML/JS in the data is escaped in the HTML output
and shows literally in the PDF; templates run in Jinja2's sandbox."""

from __future__ import annotations

import pytest

from reports.errors import TemplateError
from reports.render import render_report

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
HOSTILE_ITEMS = [
    {"region": "north", "label": SCRIPT, "amount": 1},
    {"region": "north", "label": IMG, "amount": 2},
    {"region": "north", "label": 'Tom & "Jerry"', "amount": 3},
    {"region": "<i>x</i>", "label": "Plain", "amount": 4},
]


@pytest.fixture
def hostile(mini):
    mini.write_table("items", HOSTILE_ITEMS)
    return mini


def rendered(ws, kit, params):
    manifest = render_report(ws.report("mini"), params, ws.store())
    store = ws.store()
    by_suffix = {entry["name"].rsplit(".", 1)[1]: entry["path"] for entry in manifest["files"]}
    html = store.read_bytes(by_suffix["html"]).decode("utf-8")
    text = kit.pdf_text(store.read_bytes(by_suffix["pdf"]))
    return html, text


def test_markup_in_data_is_escaped_in_the_html(hostile, kit):
    html, _ = rendered(hostile, kit, {"region": "north"})
    assert "<script" not in html.lower()  # the layout has no script; the data adds none
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Tom &amp; &#34;Jerry&#34;" in html


def test_markup_in_data_shows_literally_in_the_pdf(hostile, kit):
    _, text = rendered(hostile, kit, {"region": "north"})
    assert SCRIPT in text
    assert IMG in text
    assert 'Tom & "Jerry"' in text


def test_markup_in_a_parameter_is_escaped(hostile, kit):
    html, text = rendered(hostile, kit, {"region": "<i>x</i>"})
    assert "<i>x</i>" not in html
    assert "<title>Unit test report — region=&lt;i&gt;x&lt;/i&gt;</title>" in html
    assert 'content="mini, region=&lt;i&gt;x&lt;/i&gt;"' in html
    assert "region=<i>x</i>" in text


def test_csv_output_keeps_the_raw_values(hostile):
    manifest = render_report(hostile.report("mini"), {"region": "north"}, hostile.store())
    (csv_path,) = [e["path"] for e in manifest["files"] if e["name"].endswith(".csv")]
    csv = hostile.store().read_bytes(csv_path).decode("utf-8")
    assert SCRIPT in csv and IMG in csv


# --- the Jinja2 sandbox -----------------------------------------------------------------


def template_with(body: str) -> str:
    return '{% extends "base.html.j2" %}\n{% block content %}\n' + body + "\n{% endblock %}\n"


@pytest.mark.parametrize(
    ("expression", "blocked"),
    [
        ("''.__class__.__mro__[1].__subclasses__()", "'__class__' of 'str' object"),
        ("total.__class__.__subclasses__()", "'__class__' of 'int' object"),
        ("items.__class__", "'__class__' of 'Table' object"),
        ("cycler.__init__.__globals__", "'__init__' of 'type' object"),
        ("items.frame", "'frame' of 'Table' object"),  # DataFrames stay out of templates
    ],
)
def test_sandbox_blocks_python_internals(mini, expression, blocked):
    mini.add_report("mini", template=template_with("<p>{{ " + expression + " }}</p>"))
    with pytest.raises(TemplateError) as caught:
        render_report(mini.report("mini"), {}, mini.store())
    assert str(caught.value) == (
        f"mini: template.html.j2 line 3: access to attribute {blocked} is unsafe."
    )
    assert mini.files() == []


def test_sandbox_blocks_writing_files_through_dataframes(mini, kit, tmp_path):
    target = tmp_path / "written-by-template.csv"
    call = "{{ items.frame.to_csv('" + str(target) + "') }}"
    template = kit.MINIMAL_TEMPLATE.replace("{% block content %}", "{% block content %}" + call)
    assert call in template
    mini.add_report("mini", template=template)
    with pytest.raises(TemplateError) as refused:
        render_report(mini.report("mini"), {}, mini.store())
    assert str(refused.value) == (
        "mini: template.html.j2 line 2: access to attribute 'frame' of 'Table' object is unsafe."
    )
    assert not target.exists()
    assert mini.files() == []
