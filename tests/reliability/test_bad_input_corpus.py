"""The bad-input corpus: every mistake a user can make, and the exact line they see.

Most cases run `reportrunner` as a subprocess, the way a user meets the error: exit
code 2, one line on stderr, no traceback. The rest go through the engine where the
CLI cannot reach (an output path leaving its root, a bad cron in prefect.yaml).

The broken report folders live in tests/fixtures/bad-catalog/, outside the session
catalog (a broken spec there would break `list`, `validate` and `deploy` for every
other test); each test here points REPORTRUNNER_CATALOG_DIR at a catalog of its own.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
from pypdf import PdfReader

PROJECT = Path(__file__).resolve().parents[2]
BAD_CATALOG = PROJECT / "tests" / "fixtures" / "bad-catalog"
HOSTILE = '<script>alert("pwned")</script><b>bold</b>'


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    """The shipped reports and the broken ones side by side, copied (links are refused)."""
    folder = tmp_path_factory.mktemp("corpus-catalog")
    for report in [*(PROJECT / "reports" / "catalog").iterdir(), *BAD_CATALOG.iterdir()]:
        shutil.copytree(report, folder / report.name, ignore=shutil.ignore_patterns("__pycache__"))
    # A report whose assets folder is a link to /etc: its template attaches "passwd".
    linked = folder / "linked-assets"
    shutil.copytree(BAD_CATALOG / "probe", linked, ignore=shutil.ignore_patterns("__pycache__"))
    spec = linked / "spec.yaml"
    spec.write_text(spec.read_text().replace("name: probe", "name: linked-assets"))
    template = linked / "template.html.j2"
    template.write_text(
        template.read_text().replace(
            "{% block content %}", '{% block content %}<link rel="attachment" href="passwd">'
        )
    )
    (linked / "assets").symlink_to("/etc", target_is_directory=True)
    return folder


def run_cli(catalog: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "REPORTRUNNER_CATALOG_DIR": str(catalog), **(env or {})},
    )


def pdf_text(path: Path) -> str:
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


# ---- the corpus ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cli:
    """`reportrunner <args>` must exit 2 with exactly one line on stderr."""

    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def observe(self, catalog: Path, tmp_path: Path) -> str:
        args = [a.format(tmp=tmp_path) for a in self.args]
        if args[0] == "render" and "--out" not in args:
            args += ["--out", str(tmp_path / "out")]
        result = run_cli(catalog, *args, env=self.env)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 2, (result.returncode, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        return lines[0]


@dataclass(frozen=True)
class Engine:
    """A call into the engine that must raise a ReportError with the message."""

    call: Callable[[Path, Path], object]

    def observe(self, catalog: Path, tmp_path: Path) -> str:
        from reports.errors import ReportError

        with pytest.raises(ReportError) as raised:
            self.call(catalog, tmp_path)
        assert "\n" not in str(raised.value)
        return f"error: {raised.value}"


def _leave_the_output_root(catalog: Path, tmp_path: Path) -> None:
    from reports.store import OutputStore

    OutputStore(str(tmp_path / "out")).write_bytes("../../escaped.pdf", b"%PDF")


def _invalid_cron(catalog: Path, tmp_path: Path) -> None:
    from deployments.deploy import load_deployment_specs

    path = tmp_path / "prefect.yaml"
    path.write_text(
        "deployments:\n"
        "  - name: nightly\n"
        "    entrypoint: flows.batch_flow.batch\n"
        "    schedules:\n"
        "      - cron: '61 25 * * *'\n",
        encoding="utf-8",
    )
    load_deployment_specs(path)


def _unreadable_prefect_yaml(catalog: Path, tmp_path: Path) -> None:
    from deployments.deploy import load_deployment_specs

    path = tmp_path / "prefect.yaml"
    path.write_text("deployments: [\n", encoding="utf-8")
    load_deployment_specs(path)


CM = ("render", "carrier-monthly")
ALL_REPORTS = (
    "airport-daily, bad-dimension, bad-field, bad-loader-syntax, bad-name, "
    "bad-template-syntax, bad-yaml, carrier-monthly, destination-quarterly, linked-assets, "
    "probe, strict-tables"
)
LINKED_ASSETS = (
    "linked-assets: assets links to /etc, outside the report folder; "
    "a report may only use files inside its own folder"
)
CARRIERS = "9E, AA, AS, B6, DL, EV, F9, FL, HA, MQ, OO, UA, US, VX, WN, YV"
DOWN = "http://127.0.0.1:9/api"

CASES = [
    # -- which report, which parameters
    ("unknown-report", Cli(("render", "nope")), f"unknown report 'nope'; reports: {ALL_REPORTS}"),
    (
        "misspelt-report",
        Cli(("render", "carrier-montly")),
        "unknown report 'carrier-montly'; did you mean 'carrier-monthly'?",
    ),
    (
        "unknown-parameter",
        Cli((*CM, "-p", "carrier=AA", "-p", "month=2013-07", "-p", "airline=AA")),
        "carrier-monthly: unknown parameter 'airline' (parameters: carrier, month)",
    ),
    (
        "missing-parameter",
        Cli((*CM, "-p", "carrier=AA")),
        "carrier-monthly: missing required parameter 'month'",
    ),
    ("parameter-without-value", Cli((*CM, "-p", "carrier")), "-p expects key=value, got 'carrier'"),
    (
        "wrong-type-month",
        Cli((*CM, "-p", "carrier=AA", "-p", "month=July")),
        "carrier-monthly: parameter 'month' must be a month as YYYY-MM, got 'July'",
    ),
    (
        "wrong-type-date",
        Cli(("render", "airport-daily", "-p", "origin=JFK", "-p", "date=2013-02-30")),
        "airport-daily: parameter 'date' must be a date as YYYY-MM-DD, got '2013-02-30'",
    ),
    (
        "outside-choices",
        Cli((*CM, "-p", "carrier=ZZ", "-p", "month=2013-07")),
        f"carrier-monthly: parameter 'carrier' is 'ZZ', not one of: {CARRIERS}",
    ),
    (
        "above-maximum",
        Cli((*CM, "-p", "carrier=AA", "-p", "month=2014-01")),
        "carrier-monthly: parameter 'month' is '2014-01', above the maximum '2013-12'",
    ),
    (
        "sql-injection-in-parameter",
        Cli(
            (
                "render",
                "destination-quarterly",
                "-p",
                "dest=ATL' OR '1'='1",
                "-p",
                "quarter=2013-Q3",
            )
        ),
        "destination-quarterly: parameter 'dest' must be a string matching [A-Z0-9]{{3}}, "
        "got \"ATL' OR '1'='1\"",
    ),
    (
        "unknown-format",
        Cli((*CM, "--format", "docx")),
        "--format: unknown format 'docx' (use pdf, html, csv)",
    ),
    # -- malformed report definitions
    (
        "spec-invalid-yaml",
        Cli(("render", "bad-yaml")),
        "{catalog}/bad-yaml/spec.yaml: line 6 invalid YAML: expected ',' or '}}', but got "
        "'<stream end>'",
    ),
    (
        "spec-unknown-field",
        Cli(("render", "bad-field")),
        "{catalog}/bad-field/spec.yaml: colour: Extra inputs are not permitted",
    ),
    (
        "spec-name-not-folder",
        Cli(("render", "bad-name")),
        "{catalog}/bad-name/spec.yaml: name 'other-name' must match its folder name 'bad-name'",
    ),
    (
        "spec-dimension-not-parameter",
        Cli(("validate", "bad-dimension")),
        "{catalog}/bad-dimension/spec.yaml: spec: Value error, batch dimension 'carrier' is "
        "not a parameter",
    ),
    (
        "loader-syntax-error",
        Cli(("render", "bad-loader-syntax")),
        "{catalog}/bad-loader-syntax/loader.py line 4: syntax error: expected ':'",
    ),
    (
        "template-syntax-error",
        Cli(("render", "bad-template-syntax")),
        "bad-template-syntax: template.html.j2 line 6: Encountered unknown tag 'endblock'. "
        "You probably made a nesting mistake. Jinja is expecting this tag, but currently "
        "looking for 'endfor' or 'else'. The innermost block that needs to be closed is 'for'.",
    ),
    (
        "template-undefined-variable",
        Cli(("render", "probe", "-p", "case=undefined")),
        "probe: template.html.j2 line 6: 'missing_total' is undefined",
    ),
    (
        "template-range-too-big",
        Cli(("render", "probe", "-p", "case=range-overflow")),
        "probe: template.html.j2 line 14: OverflowError: Range too big. The sandbox blocks "
        "ranges larger than MAX_RANGE (100000).",
    ),
    (
        "template-mutates-its-parameters",
        Cli(("render", "probe", "-p", "case=mutate-params")),
        "probe: template.html.j2 line 15: access to attribute 'update' of 'dict' object is unsafe.",
    ),
    # -- limits: the local commands stop a render like a batch does
    (
        "render-time-limit",
        Cli(("render", "probe", "-p", "case=slow"), env={"REPORTRUNNER_RENDER_TIMEOUT_S": "5"}),
        "probe case=slow: render took longer than 5 s and was stopped",
    ),
    (
        "render-memory-limit",
        Cli(
            ("render", "probe", "-p", "case=memory"),
            env={"REPORTRUNNER_RENDER_MEMORY_MB": "1024"},
        ),
        "probe case=memory: render needed more than the 1024 MB memory cap",
    ),
    # -- data
    (
        "data-loader-exception",
        Cli(("render", "probe", "-p", "case=loader-error")),
        "probe: data loader failed: ZeroDivisionError: division by zero",
    ),
    (
        "empty-data",
        Cli(("render", "probe", "-p", "case=empty")),
        "probe: quality gate failed: table 'items' has 0 rows, fewer than 1",
    ),
    (
        "table-too-long-for-pdf",
        Cli(("render", "strict-tables")),
        "strict-tables: table 'items' has 100 rows, more than the 40 a PDF may show "
        "(pdf.on_table_overflow: fail)",
    ),
    (
        "csv-not-utf8",
        Cli(("render", "probe", "-p", "case=latin1")),
        "latin1_names.csv: not valid UTF-8 at byte 16; save the file as UTF-8",
    ),
    # -- the rendering sandbox
    (
        "file-url-outside-assets",
        Cli(("render", "probe", "-p", "case=blocked-file")),
        "probe: blocked resource file:///etc/hostname: only files inside the report's assets "
        "folder may be used",
    ),
    (
        "relative-path-out-of-assets",
        # Enough ".." to climb from any checkout depth to the root.
        Cli(("render", "probe", "-p", "case=ok", "-p", "url=" + "../" * 40 + "etc/hostname")),
        "probe: blocked resource file:///etc/hostname: only files inside the report's assets "
        "folder may be used",
    ),
    (
        "http-url",
        Cli(("render", "probe", "-p", "case=ok", "-p", "url=http://example.com/pixel.png")),
        "probe: blocked resource http://example.com/pixel.png: http URLs are not allowed in "
        "reports",
    ),
    (
        "https-url",
        Cli(("render", "probe", "-p", "case=ok", "-p", "url=https://example.com/track.gif")),
        "probe: blocked resource https://example.com/track.gif: https URLs are not allowed in "
        "reports",
    ),
    (
        "assets-folder-links-out-of-the-catalog",
        Cli(("render", "linked-assets", "-p", "case=ok")),
        LINKED_ASSETS,
    ),
    ("validate-assets-folder-links-out", Cli(("validate", "linked-assets")), LINKED_ASSETS),
    (
        "output-path-leaves-root",
        Engine(_leave_the_output_root),
        "output path '../../escaped.pdf' would leave the output root",
    ),
    # -- deployments and the Prefect API
    (
        "invalid-cron",
        Engine(_invalid_cron),
        "prefect.yaml: deployment 'nightly': invalid schedule '61 25 * * *': "
        'Invalid cron string: "61 25 * * *"',
    ),
    (
        "prefect-yaml-not-yaml",
        Engine(_unreadable_prefect_yaml),
        "{tmp}/prefect.yaml: line 2 invalid YAML: expected the node content, but found "
        "'<stream end>'",
    ),
    (
        "batch-unknown-dimension",
        Cli(("batch", "carrier-monthly", "--all", "airline")),
        "carrier-monthly: unknown parameter 'airline' to batch over",
    ),
    (
        "batch-too-large",
        Cli(
            ("batch", "carrier-monthly", "--all", "carrier", "--all", "month"),
            env={"REPORTRUNNER_MAX_BATCH_ITEMS": "100"},
        ),
        "carrier-monthly: the batch has 192 items, more than the 100 one batch may have "
        "(REPORTRUNNER_MAX_BATCH_ITEMS); split it into several batches",
    ),
    (
        "batch-prefect-api-unreachable",
        Cli(("batch", "carrier-monthly", "--all", "carrier"), env={"PREFECT_API_URL": DOWN}),
        f"Prefect API at {DOWN} is unreachable: is the server running?",
    ),
    (
        "batch-prefect-api-unset",
        Cli(("batch", "carrier-monthly", "--all", "carrier"), env={"PREFECT_API_URL": ""}),
        "PREFECT_API_URL is not set: point it at a Prefect server "
        "(e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api) or run `reportrunner up`",
    ),
    (
        "deploy-prefect-api-unreachable",
        Cli(("deploy",), env={"PREFECT_API_URL": DOWN}),
        f"Prefect API at {DOWN} is unreachable: is the server running?",
    ),
]


@pytest.mark.parametrize(
    ("how", "expected"),
    [pytest.param(how, expected, marks=marks, id=name) for name, how, expected, *marks in CASES],
)
def test_bad_input_gets_one_exact_line(how, expected, catalog, tmp_path, prefect_server):
    line = how.observe(catalog, tmp_path)
    assert line == "error: " + expected.format(catalog=catalog, tmp=tmp_path)
    assert not list(tmp_path.rglob("*.pdf")), "a rejected render must not leave a PDF"


def test_corpus_is_big_enough():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


BROKEN = {
    "bad-dimension",
    "bad-field",
    "bad-loader-syntax",
    "bad-name",
    "bad-template-syntax",
    "bad-yaml",
    "linked-assets",
    "strict-tables",
}


def test_validate_reports_every_broken_report_in_one_line_each(catalog):
    result = run_cli(catalog, "validate")
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    failed = {line.split()[1].rstrip(":") for line in lines if line.startswith("FAIL  ")}
    passed = {line.split()[1].rstrip(":") for line in lines if line.startswith("ok    ")}
    assert failed == BROKEN, result.stdout
    assert passed == {"airport-daily", "carrier-monthly", "destination-quarterly", "probe"}
    assert f"FAIL  linked-assets: {LINKED_ASSETS}" in lines
    assert len(lines) == len(BROKEN) + len(passed)


# ---- bad input that must render, safely -------------------------------------------------


def test_markup_in_data_is_escaped_in_html_and_shown_as_text_in_pdf(catalog, tmp_path):
    result = run_cli(catalog, "render", "probe", "-p", "case=script", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    html = next(tmp_path.rglob("*.html")).read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html
    text = pdf_text(next(tmp_path.rglob("*.pdf")))
    assert f"First label: {HOSTILE}." in text  # the markup is printed, not interpreted
    csv = pd.read_csv(next(tmp_path.rglob("*_items.csv")))
    assert csv["label"].iloc[0] == HOSTILE


def test_long_table_is_cut_in_pdf_with_a_note_and_kept_whole_in_csv(catalog, tmp_path):
    result = run_cli(catalog, "render", "probe", "-p", "case=huge-table", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = pdf_text(next(tmp_path.rglob("*.pdf")))
    assert "Showing 40 of 5,000 rows; the CSV output has all of them." in text
    assert "row 39 39" in text and "row 40 40" not in text
    assert len(pd.read_csv(next(tmp_path.rglob("*_items.csv")))) == 5000


def test_path_traversal_in_a_parameter_stays_inside_the_output_root(catalog, tmp_path):
    out = tmp_path / "out"
    hostile = "../../../../" + str(tmp_path / "escaped").lstrip("/")
    result = run_cli(catalog, "render", "probe", "-p", "case=ok", "-p", f"label={hostile}",
                     "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.splitlines()]
    assert len(written) == 3
    for path in written:
        assert path.resolve().is_relative_to(out.resolve()), path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "nothing written beside it"
    (label_dir,) = {p.parent.parent.name for p in written}
    assert label_dir.startswith("label=_.._.._.._") and "~" in label_dir  # sanitized + hashed


class _Redirector(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        self.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "file:///etc/hostname")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_redirecting_url_is_blocked_without_being_requested(catalog, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/logo.png"
    try:
        result = run_cli(catalog, "render", "probe", "-p", "case=ok", "-p", f"url={url}",
                         "--out", str(tmp_path))  # fmt: skip
    finally:
        server.shutdown()
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: probe: blocked resource {url}: http URLs are not allowed in reports"
    )
    assert _Redirector.hits == [], "the sandbox must decide before any request is made"
    assert not list(tmp_path.rglob("*.pdf"))


def test_sql_injection_through_the_loader_binds_as_a_value(settings):
    """Even past parameter validation, a hostile value is a value, never SQL."""
    import sqlalchemy as sa

    from reports.definitions import default_catalog

    report = default_catalog().get("destination-quarterly")
    source = report.source()

    def count_flights() -> int:
        with sa.create_engine(settings.resolved_database_url).connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM flights")).scalar_one()

    before = count_flights()
    honest = report.loader.load({"dest": "ATL", "quarter": "2013-Q3"}, source)
    assert honest["flights"]["flights"].sum() > 0
    for hostile in ("ATL' OR '1'='1", "ATL'; DROP TABLE flights; --", '" OR 1=1 --'):
        data = report.loader.load({"dest": hostile, "quarter": "2013-Q3"}, source)
        assert all(frame.empty for frame in data.values()), hostile
    assert count_flights() == before


# ---- one bad item never loses the rest of a batch -----------------------------------------

BATCH_FAILURES = {
    "loader-error": "probe: data loader failed: ZeroDivisionError: division by zero",
    "empty": "probe: quality gate failed: table 'items' has 0 rows, fewer than 1",
    "undefined": "probe: template.html.j2 line 6: 'missing_total' is undefined",
    "blocked-file": "probe: blocked resource file:///etc/hostname: only files inside the "
    "report's assets folder may be used",
    "latin1": "latin1_names.csv: not valid UTF-8 at byte 16; save the file as UTF-8",
    "slow": "probe case=slow: render took longer than 20 s and was stopped",
    "memory": "probe case=memory: render needed more than the 1024 MB memory cap",
    "not-a-choice": "probe: parameter 'case' is 'not-a-choice', not one of: ok, ok-too, "
    "loader-error, empty, undefined, blocked-file, latin1, script, huge-table, slow, memory, "
    "range-overflow, mutate-params",
}


@pytest.mark.timeout(1800)  # minutes of real waiting on a loaded machine
def test_a_batch_with_one_bad_item_of_each_kind_produces_every_good_output(
    catalog, output_root, prefect_server
):
    good = ["ok", "ok-too", "script", "huge-table"]
    cases = [*good, *BATCH_FAILURES]
    result = run_cli(
        catalog,
        "batch",
        "probe",
        "--over",
        "case=" + ",".join(cases),
        "--max-parallel",
        "2",
        env={"REPORTRUNNER_RENDER_TIMEOUT_S": "20", "REPORTRUNNER_RENDER_MEMORY_MB": "1024"},
    )
    assert result.returncode == 1, result.stderr
    assert f"probe: 4 rendered, 0 unchanged, {len(BATCH_FAILURES)} failed of 12" in result.stdout
    failures = sorted(line.strip() for line in result.stderr.splitlines() if "failed case=" in line)
    assert failures == sorted(
        f"failed case={case}: {message}" for case, message in BATCH_FAILURES.items()
    )
    for case in good:
        (item,) = (output_root / "probe").glob(f"case={case}/label=x/*")
        manifest = json.loads((item / "manifest.json").read_text())
        assert {Path(f["name"]).suffix for f in manifest["files"]} == {".pdf", ".html", ".csv"}
        assert f"Probe case {case} for label x." in pdf_text(next(item.glob("*.pdf")))
    probe = output_root / "probe"
    manifests = [json.loads(p.read_text()) for p in probe.rglob("manifest.json")]
    assert sorted(m["parameters"]["case"] for m in manifests) == sorted(good)
