"""The catalog and the render pipeline on a throwaway report: each user error has one
exact message that names the report and the file, line or table to fix."""

from __future__ import annotations

import posixpath

import pandas as pd
import pytest

from reports.errors import (
    DataError,
    ParameterError,
    QualityError,
    SpecError,
    TemplateError,
    UnknownReportError,
)
from reports.render import render_report

TEN_ITEMS = [{"region": "north", "label": f"item{i:02d}", "amount": i} for i in range(1, 11)]


def template_with(body: str) -> str:
    """The minimal template with `body` in place of its content block (line 3 onward)."""
    return '{% extends "base.html.j2" %}\n{% block content %}\n' + body + "\n{% endblock %}\n"


def render(ws, params=None, name: str = "mini"):
    return render_report(ws.report(name), params or {}, ws.store())


def error_of(kind, ws, params=None, name: str = "mini") -> str:
    with pytest.raises(kind) as caught:
        render(ws, params, name)
    return str(caught.value)


# --- finding reports -------------------------------------------------------------


def test_minimal_report_loads_and_renders(mini, kit):
    report = mini.report("mini")
    assert report.name == "mini"
    assert mini.catalog().names() == ["mini"]
    manifest = render(mini)
    assert manifest["quality"] == {"status": "ok", "issues": []}
    assert manifest["rows"] == {"items": 2}
    names = sorted(entry["name"] for entry in manifest["files"])
    assert names == ["mini_north.html", "mini_north.pdf", "mini_north_items.csv"]
    text = kit.pdf_text(mini.store().read_bytes(f"{manifest['item_dir']}/mini_north.pdf"))
    assert "Total amount: 1,234" in text


def test_unknown_report_suggests_a_close_name(mini):
    with pytest.raises(UnknownReportError) as caught:
        mini.catalog().get("mimi")
    assert str(caught.value) == "unknown report 'mimi'; did you mean 'mini'?"


def test_unknown_report_lists_reports_when_nothing_is_close(mini):
    mini.add_report("other")
    (mini.catalog_dir / "not-a-report").mkdir()  # no spec.yaml: not listed
    with pytest.raises(UnknownReportError) as caught:
        mini.catalog().get("zzzz")
    assert str(caught.value) == "unknown report 'zzzz'; reports: mini, other"


def test_spec_error_surfaces_from_the_catalog(ws):
    folder = ws.add_report("mini", spec="name: mini\ntitle: Mini\ncolour: red\n")
    with pytest.raises(SpecError) as caught:
        ws.report("mini")
    assert str(caught.value) == f"{folder / 'spec.yaml'}: colour: Extra inputs are not permitted"


def test_loader_syntax_error_names_file_and_line(ws):
    loader = "import pandas\n\n\ndef load(params, source)\n    return {}\n"
    folder = ws.add_report("mini", loader=loader)
    with pytest.raises(SpecError) as caught:
        ws.report("mini")
    assert str(caught.value) == f"{folder / 'loader.py'} line 4: syntax error: expected ':'"


def test_loader_failing_on_import_names_file(ws):
    folder = ws.add_report("mini", loader="raise RuntimeError('no config found')\n")
    with pytest.raises(SpecError) as caught:
        ws.report("mini")
    assert str(caught.value) == (
        f"{folder / 'loader.py'}: import failed: RuntimeError: no config found"
    )


def test_loader_without_build_context(ws):
    folder = ws.add_report("mini", loader="def load(params, source):\n    return {}\n")
    with pytest.raises(SpecError) as caught:
        ws.report("mini")
    assert str(caught.value) == f"{folder / 'loader.py'}: must define a function 'build_context'"


def test_loader_file_missing(ws):
    folder = ws.add_report("mini", loader=None)
    with pytest.raises(SpecError) as caught:
        ws.report("mini")
    assert str(caught.value) == f"{folder / 'loader.py'}: loader file is missing"


def test_template_file_missing(ws):
    folder = ws.add_report("mini", template=None)
    with pytest.raises(SpecError) as caught:
        ws.report("mini")
    assert str(caught.value) == f"{folder / 'template.html.j2'}: template file is missing"


# --- templates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<p>{{ total | number }</p>", "template.html.j2 line 3: unexpected '}'"),
        (
            "<p>{{ total | nosuchfilter }}</p>",
            "template.html.j2 line 3: No filter named 'nosuchfilter'.",
        ),
        (
            "{% if total %}\n<p>x</p>",
            "template.html.j2 line 5: Encountered unknown tag 'endblock'. "
            "You probably made a nesting mistake. Jinja is expecting this tag, "
            "but currently looking for 'elif' or 'else' or "
            "'endif'. The innermost block that needs to be closed is 'if'.",
        ),
    ],
)
def test_template_syntax_error_names_line(mini, body, expected):
    mini.add_report("mini", template=template_with(body))
    assert error_of(TemplateError, mini) == f"mini: {expected}"


def test_undefined_variable_names_variable_and_line(mini):
    mini.add_report("mini", template=template_with("<p>ok</p>\n<p>{{ missing_total }}</p>"))
    assert error_of(TemplateError, mini) == (
        "mini: template.html.j2 line 4: 'missing_total' is undefined"
    )


def test_undefined_attribute_names_attribute_and_line(mini):
    mini.add_report("mini", template=template_with("<p>{{ params.regoin }}</p>"))
    assert error_of(TemplateError, mini) == (
        "mini: template.html.j2 line 3: 'dict object' has no attribute 'regoin'"
    )


def test_missing_parent_template_says_not_found(mini):
    mini.add_report("mini", template='{% extends "nobase.html.j2" %}\n')
    with pytest.raises(TemplateError, match=r"^mini: .*template nobase\.html\.j2 not found"):
        render(mini)


# --- data and loader failures -----------------------------------------------------------


def test_loader_exception_becomes_data_error(mini):
    loader = (
        "def load(params, source):\n    raise ValueError('region table is stale')\n\n"
        "def build_context(data, params):\n    return {}\n"
    )
    mini.add_report("mini", loader=loader)
    assert error_of(DataError, mini) == (
        "mini: data loader failed: ValueError: region table is stale"
    )


def test_build_context_exception_becomes_data_error(mini, kit):
    loader = kit.MINIMAL_LOADER.replace('int(items["amount"].sum())', 'items["price"].sum()')
    mini.add_report("mini", loader=loader)
    assert error_of(DataError, mini) == "mini: build_context failed: KeyError: 'price'"


def test_loader_must_return_dataframes(mini):
    loader = (
        "def load(params, source):\n    return {'items': [1, 2]}\n\n"
        "def build_context(data, params):\n    return {}\n"
    )
    mini.add_report("mini", loader=loader)
    assert error_of(DataError, mini) == "mini: loader.load must return a dict of DataFrames"


def test_missing_table_names_table_and_folder(ws):
    ws.add_report("mini")
    ws.data_dir.mkdir()
    assert error_of(DataError, ws) == (
        f"table 'items' not found in {ws.data_dir} "
        "(run `reportrunner data setup` to build the demo data)"
    )


def write_latin1_items(ws) -> bytes:
    ws.data_dir.mkdir()
    content = "region,label,amount\nnorth,Caf\xe9 cr\xe8me,3\n".encode("latin-1")
    (ws.data_dir / "items.csv").write_bytes(content)
    return content


def test_non_utf8_csv_names_the_file(ws):
    ws.add_report("mini")
    write_latin1_items(ws)
    message = error_of(DataError, ws)
    assert message.startswith("items.csv: not valid UTF-8 at byte ")
    assert message.endswith("; save the file as UTF-8")
    assert ws.files() == []


def test_non_utf8_csv_gives_the_file_offset(ws):
    ws.add_report("mini")
    content = write_latin1_items(ws)
    bad = content.index(b"\xe9")
    assert error_of(DataError, ws) == (
        f"items.csv: not valid UTF-8 at byte {bad}; save the file as UTF-8"
    )


def test_choices_from_reads_the_data(mini):
    spec = (
        "name: mini\ntitle: Mini\nparameters:\n"
        "  region: {choices_from: {table: items, column: region}}\n"
        "quality: {min_rows: {items: 1}}\n"
    )
    mini.add_report("mini", spec=spec)
    report = mini.report("mini")
    assert report.choices("region") == ["north", "south"]
    assert report.dimension_values("region") == ["north", "south"]
    with pytest.raises(ParameterError) as caught:
        report.validate({"region": "east"})
    assert str(caught.value) == "mini: parameter 'region' is 'east', not one of: north, south"


# --- quality gate and table limits --------------------------------------------------------


def test_empty_data_fails_the_quality_gate(mini):
    assert error_of(QualityError, mini, {"region": "east"}) == (
        "mini: quality gate failed: table 'items' has 0 rows, fewer than 1"
    )
    assert mini.files() == []


def test_empty_data_with_warn_is_delivered_flagged(mini, kit):
    mini.add_report("mini", spec=kit.spec_text("mini", on_violation="warn"))
    manifest = render(mini, {"region": "east"})
    assert manifest["quality"] == {
        "status": "warning",
        "issues": ["table 'items' has 0 rows, fewer than 1"],
    }
    store = mini.store()
    pdf = store.read_bytes(posixpath.join(manifest["item_dir"], "mini_east.pdf"))
    assert "No rows." in kit.pdf_text(pdf)
    assert store.read_manifest(manifest["item_dir"])["quality"]["status"] == "warning"


def test_table_overflow_fails_when_the_spec_says_so(mini, kit):
    mini.write_table("items", TEN_ITEMS)
    mini.add_report("mini", spec=kit.spec_text("mini", max_table_rows=3, on_table_overflow="fail"))
    assert error_of(QualityError, mini) == (
        "mini: table 'items' has 10 rows, more than the 3 a PDF may show "
        "(pdf.on_table_overflow: fail)"
    )
    assert mini.files() == []


def test_table_overflow_truncates_with_a_note(mini, kit):
    mini.write_table("items", TEN_ITEMS)
    mini.add_report("mini", spec=kit.spec_text("mini", max_table_rows=3))
    manifest = render(mini)
    store, item = mini.store(), manifest["item_dir"]
    html = store.read_bytes(f"{item}/mini_north.html").decode()
    note = "Showing 3 of 10 rows; the CSV output has all of them."
    assert note in html
    assert "item03" in html and "item04" not in html
    assert note in " ".join(kit.pdf_text(store.read_bytes(f"{item}/mini_north.pdf")).split())
    csv = pd.read_csv(store.path(f"{item}/mini_north_items.csv"))
    assert csv["label"].tolist() == [row["label"] for row in TEN_ITEMS]
    assert manifest["table_rows"] == {"items": 10}


def test_table_within_limit_has_no_note(mini):
    manifest = render(mini)
    html = mini.store().read_bytes(f"{manifest['item_dir']}/mini_north.html").decode()
    assert "Widgets" in html and "Showing" not in html


# --- code_version -------------------------------------------------------------------------


def test_code_version_is_stable_and_follows_the_template(mini, kit):
    first = mini.report("mini").code_version
    assert mini.report("mini").code_version == first  # fresh catalog, __pycache__ now exists
    mini.add_report("mini", template=kit.MINIMAL_TEMPLATE.replace("Total amount", "Sum"))
    changed = mini.report("mini").code_version
    assert changed != first
    mini.add_report("mini", template=kit.MINIMAL_TEMPLATE)
    assert mini.report("mini").code_version == first


def test_code_version_follows_assets(mini):
    before = mini.report("mini").code_version
    mini.add_report("mini", assets={"style.css": ".total { color: red; }"})
    assert mini.report("mini").code_version != before


def test_template_change_rerenders_with_skip_unchanged(mini, kit):
    first = render_report(mini.report("mini"), {}, mini.store(), skip_unchanged=True)
    again = render_report(mini.report("mini"), {}, mini.store(), skip_unchanged=True)
    assert (first["skipped"], again["skipped"]) == (False, True)
    mini.add_report("mini", template=kit.MINIMAL_TEMPLATE.replace("Total amount", "Grand total"))
    changed = render_report(mini.report("mini"), {}, mini.store(), skip_unchanged=True)
    assert changed["skipped"] is False
    assert changed["code_version"] != first["code_version"]
    html = mini.store().read_bytes(f"{changed['item_dir']}/mini_north.html").decode()
    assert "Grand total: 1,234" in html
