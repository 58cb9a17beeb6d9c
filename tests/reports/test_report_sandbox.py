"""What a report folder, a template and a run request may not do.

- Nothing a report reads may resolve outside its own folder (or the shared layout):
  a symlinked `assets/`, template, spec or report folder is refused in one line.
- A template is a pure function of its context: it cannot change the parameters,
  the KPIs or anything else it is handed, and outputs land where the validated
  parameters say.
- Anything a template raises names the template line; unknown output formats are
  refused, and the requested formats are part of what makes an item current.
"""

from __future__ import annotations

import json
import os

import pytest

from reports.errors import ParameterError, SpecError, TemplateError
from reports.render import choose_formats, is_current, render_report

SECRET = "top-secret-outside-the-catalog"


@pytest.fixture
def outside(tmp_path):
    """A folder outside the workspace's catalog holding a file nobody may embed."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "passwd").write_text(SECRET, encoding="utf-8")
    return folder


def attachment_template(kit, href: str) -> str:
    return kit.MINIMAL_TEMPLATE.replace(
        "{% block content %}",
        f'{{% block content %}}<link rel="attachment" href="{href}">',
    )


# ---- containment: links out of the catalog ---------------------------------------------


def test_a_symlinked_assets_folder_is_refused(mini, kit, outside):
    folder = mini.catalog_dir / "mini"
    (folder / "template.html.j2").write_text(attachment_template(kit, "passwd"))
    (folder / "assets").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SpecError) as refused:
        mini.report("mini")
    assert str(refused.value) == (
        f"mini: assets links to {outside}, outside the report folder; "
        "a report may only use files inside its own folder"
    )


@pytest.mark.parametrize("name", ["template.html.j2", "spec.yaml", "loader.py"])
def test_a_symlinked_definition_file_is_refused(mini, outside, name):
    folder = mini.catalog_dir / "mini"
    real = outside / name
    real.write_bytes((folder / name).read_bytes())
    (folder / name).unlink()
    (folder / name).symlink_to(real)
    with pytest.raises(SpecError, match=rf"^mini: {name} links to .*outside the report folder"):
        mini.report("mini")


def test_a_symlinked_folder_inside_the_report_is_refused(mini, outside):
    # Jinja2 would follow it: {% include "partials/passwd" %} would print the file.
    (mini.catalog_dir / "mini" / "partials").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SpecError, match=r"^mini: partials links to .*outside the report folder"):
        mini.report("mini")


def test_a_report_folder_linked_into_the_catalog_is_refused(mini, tmp_path):
    elsewhere = tmp_path / "elsewhere" / "linked"
    elsewhere.parent.mkdir()
    os.rename(mini.catalog_dir / "mini", elsewhere)
    (mini.catalog_dir / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "spec.yaml").write_text(
        (elsewhere / "spec.yaml").read_text().replace("name: mini", "name: linked")
    )
    with pytest.raises(SpecError) as refused:
        mini.report("linked")
    assert str(refused.value).startswith(f"linked: the report folder resolves to {elsewhere}")
    assert "copy the report into the catalog instead of linking it" in str(refused.value)


def test_links_that_stay_inside_the_report_are_fine(mini, kit):
    folder = mini.catalog_dir / "mini"
    (folder / "assets").mkdir()
    (folder / "assets" / "logo.png").write_bytes(kit.tiny_png())
    (folder / "assets" / "same-logo.png").symlink_to(folder / "assets" / "logo.png")
    manifest = render_report(mini.report("mini"), {"region": "north"}, mini.store())
    assert manifest["pages"] >= 1


# ---- templates cannot change what they are given ---------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "{% set _ = params.update({'region': 'south'}) %}",
        "{% set _ = params.__setitem__('region', 'south') %}",
        "{% set _ = params.pop('region') %}",
        "{% set _ = params.setdefault('x', 1) %}",
        "{% set _ = kpis.append({'label': 'forged'}) %}",
        "{% set _ = kpis.clear() %}",
        "{% set _ = tags.add('x') %}",
    ],
)
def test_a_template_cannot_mutate_its_context(mini, kit, statement):
    folder = mini.catalog_dir / "mini"
    loader = kit.MINIMAL_LOADER.replace(
        '"total": int(items["amount"].sum()),',
        '"total": int(items["amount"].sum()), "kpis": [{"label": "a"}], "tags": {"t"},',
    )
    (folder / "loader.py").write_text(loader)
    (folder / "template.html.j2").write_text(
        kit.MINIMAL_TEMPLATE.replace("{% block content %}", "{% block content %}" + statement)
    )
    with pytest.raises(TemplateError, match=r"^mini: template.html.j2 line 2: .*unsafe"):
        render_report(mini.report("mini"), {"region": "north"}, mini.store())
    assert mini.files() == [], "nothing is published for a refused template"


def test_outputs_and_manifest_follow_the_validated_parameters(mini, kit):
    # Even if a template could get hold of a mutable copy, the paths do not follow it.
    manifest = render_report(mini.report("mini"), {"region": "north"}, mini.store())
    assert manifest["parameters"] == {"region": "north"}
    assert manifest["item_dir"] == "mini/region=north"


# ---- anything a template raises names its line ----------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{% for i in range(10**9) %}{% endfor %}", "OverflowError: Range too big"),
        ("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
        ("{{ 'a' + 1 }}", "TypeError: can only concatenate str"),
    ],
)
def test_errors_raised_by_a_template_name_the_line(mini, kit, expression, expected):
    body = kit.MINIMAL_TEMPLATE.replace(
        "{% block content %}", "{% block content %}\n\n" + expression
    )
    (mini.catalog_dir / "mini" / "template.html.j2").write_text(body)
    with pytest.raises(TemplateError) as refused:
        render_report(mini.report("mini"), {"region": "north"}, mini.store())
    assert str(refused.value).startswith(f"mini: template.html.j2 line 4: {expected}")
    assert "\n" not in str(refused.value)


# ---- formats ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        (["exe"], "mini: format 'exe' is not offered; choose from pdf, html, csv"),
        (["pdf", "../../x"], "mini: format '../../x' is not offered; choose from pdf, html, csv"),
        ([], "mini: formats: name at least one of pdf, html, csv"),
    ],
)
def test_unknown_or_no_formats_are_refused(mini, requested, message):
    with pytest.raises(ParameterError) as refused:
        render_report(mini.report("mini"), {"region": "north"}, mini.store(), formats=requested)
    assert str(refused.value) == message
    assert mini.files() == []


def test_formats_are_kept_in_the_spec_order(mini):
    assert choose_formats(mini.report("mini"), ["csv", "pdf"]) == ["pdf", "csv"]
    assert choose_formats(mini.report("mini"), None) == ["pdf", "html", "csv"]


def test_an_item_rendered_in_other_formats_is_not_current(mini):
    report, store = mini.report("mini"), mini.store()
    render_report(report, {"region": "north"}, store, formats=["html"])
    again = render_report(report, {"region": "north"}, store, skip_unchanged=True)
    assert again["skipped"] is False
    assert sorted(f["name"].rsplit(".", 1)[1] for f in again["files"]) == [
        "csv",
        "html",
        "pdf",
    ]
    assert render_report(report, {"region": "north"}, store, skip_unchanged=True)["skipped"]


def test_an_item_whose_manifest_lists_no_files_is_never_current(mini):
    report, store = mini.report("mini"), mini.store()
    manifest = render_report(report, {"region": "north"}, store)
    emptied = {**manifest, "files": []}
    path = mini.out_dir / manifest["item_dir"] / "manifest.json"
    path.write_text(json.dumps(emptied))
    assert is_current(store, report, {"region": "north"}, manifest["fingerprint"]) is None
    assert (
        render_report(report, {"region": "north"}, store, skip_unchanged=True)["skipped"] is False
    )
