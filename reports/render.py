"""The report pipeline as plain functions: load → context → HTML → PDF → publish.

`run_stages` spells the sequence once: `render_report` runs it in this process (the
CLI, the benchmarks' baseline, the batch's render processes) and the report flow
runs it with each stage as a Prefect task. Nothing here imports Prefect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from reports.definitions import TEMPLATE, Report
from reports.errors import DataError, ParameterError, QualityError, ReportError
from reports.html_output import self_contained
from reports.store import OutputStore
from reports.tables import Table, apply_row_limit
from reports.templating import compile_template, make_environment, render_template

if TYPE_CHECKING:
    from reports.pdf import RenderedPdf

_STYLES_MARKER = "<!-- reportrunner:styles -->"
# A PDF with fewer laid-out characters than this holds little beyond its headings.
_BLANK_PDF_CHARS = 200
_MAX_KPIS = 24  # headline figures kept per render


@dataclass
class LoadedData:
    frames: dict[str, pd.DataFrame]
    fingerprint: str

    @property
    def rows(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.frames.items()}


@dataclass
class RenderedHtml:
    html: str  # for WeasyPrint: stylesheets are passed separately, parsed once per process
    tables: list[Table]

    def standalone(self, report: Report) -> str:
        """The HTML output file: the same page, stylesheets inlined, fetching nothing."""
        return self_contained(
            self.html,
            base_dir=report.assets_dir if report.assets_dir.is_dir() else report.folder,
            allowed_roots=report.allowed_roots,
            stylesheets=report.stylesheets,
            styles_marker=_STYLES_MARKER,
        )


@dataclass
class Quality:
    issues: list[str] = field(default_factory=list)
    policy: str = "fail"

    @property
    def status(self) -> str:
        return "ok" if not self.issues else ("failed" if self.policy == "fail" else "warning")

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "issues": self.issues}


def load_data(report: Report, params: dict[str, Any]) -> LoadedData:
    """Call the report's loader; wrap what it returns with a fingerprint of the data."""
    try:
        frames = report.loader.load(dict(params), report.source())  # a copy: see render_html
    except (ReportError, ConnectionError, TimeoutError):
        raise  # user errors fail at once; connection trouble is left to retries
    except UnicodeDecodeError as exc:
        raise DataError(f"{report.name}: input data is not valid UTF-8: {exc.reason}") from None
    except Exception as exc:
        raise DataError(
            f"{report.name}: data loader failed: {exc.__class__.__name__}: {exc}"
        ) from exc
    if not isinstance(frames, dict) or not all(
        isinstance(f, pd.DataFrame) for f in frames.values()
    ):
        raise DataError(f"{report.name}: loader.load must return a dict of DataFrames")
    return LoadedData(frames=frames, fingerprint=data_fingerprint(frames))


def data_fingerprint(frames: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        digest.update(name.encode())
        digest.update(
            json.dumps([list(map(str, frame.columns)), list(map(str, frame.dtypes))]).encode()
        )
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def choose_formats(report: Report, requested: list[str] | None) -> list[str]:
    """The output formats to write: the request (default: all of the spec's), checked.

    An unknown or unoffered format is refused, not dropped: dropping every requested
    format used to publish an item with no files at all.
    """
    if requested is None:
        return list(report.spec.outputs)
    if not requested:
        raise ParameterError(f"{report.name}: formats: name at least one of {_offered(report)}")
    for fmt in requested:
        if fmt not in report.spec.outputs:
            raise ParameterError(
                f"{report.name}: format {str(fmt)[:40]!r} is not offered; "
                f"choose from {_offered(report)}"
            )
    return [fmt for fmt in report.spec.outputs if fmt in requested]


def _offered(report: Report) -> str:
    return ", ".join(report.spec.outputs)


def fingerprint(
    report: Report, params: dict[str, Any], data: LoadedData, formats: list[str]
) -> str:
    """Everything that decides the output: unchanged fingerprint means nothing to redo.

    The formats count: an item rendered as HTML only is not current for a PDF request.
    """
    material = json.dumps(
        [report.name, params, data.fingerprint, report.code_version, sorted(formats)],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def check_data_quality(report: Report, data: LoadedData) -> Quality:
    """Apply the spec's minimum row counts; raise QualityError when the spec says fail."""
    rules = report.spec.quality
    quality = Quality(policy=rules.on_violation)
    for table, minimum in rules.min_rows.items():
        rows = data.rows.get(table, 0)
        if rows < minimum:
            quality.issues.append(f"table '{table}' has {rows} rows, fewer than {minimum}")
    if quality.issues and rules.on_violation == "fail":
        raise QualityError(f"{report.name}: quality gate failed: {'; '.join(quality.issues)}")
    return quality


def build_context(report: Report, params: dict[str, Any], data: LoadedData) -> dict[str, Any]:
    try:
        context = report.loader.build_context(data.frames, dict(params))
    except ReportError:
        raise
    except Exception as exc:
        raise DataError(
            f"{report.name}: build_context failed: {exc.__class__.__name__}: {exc}"
        ) from exc
    if not isinstance(context, dict):
        raise DataError(f"{report.name}: loader.build_context must return a dict")
    return context


def kpis_of(context: dict[str, Any]) -> dict[str, str]:
    """The report's headline figures, label → value as the reader sees them.

    By convention a loader's context holds `kpis`, a list of {label, value, …} tiles;
    the manifest keeps them so the item index can show what changed between renders.
    Anything else there is ignored: the figures are a courtesy, never a failure.
    """
    tiles = context.get("kpis")
    if not isinstance(tiles, list):
        return {}
    return {
        str(tile["label"])[:80]: str(tile["value"])[:80]
        for tile in tiles[:_MAX_KPIS]
        if isinstance(tile, dict) and "label" in tile and "value" in tile
    }


def render_html(report: Report, params: dict[str, Any], context: dict[str, Any]) -> RenderedHtml:
    tables = [value for value in context.values() if isinstance(value, Table)]
    apply_row_limit(
        report.name, tables, report.spec.pdf.max_table_rows, report.spec.pdf.on_table_overflow
    )
    parameter_line = ", ".join(f"{k}={v}" for k, v in params.items())
    now = dt.datetime.now(dt.UTC)
    full_context = {
        "report": report.spec,
        # A copy: output paths and the manifest come from the validated parameters,
        # never from anything the template was handed (the sandbox also forbids
        # `params.update(…)`; this keeps the rule if it ever did not).
        "params": dict(params),
        "parameter_line": parameter_line,
        "document_title": f"{report.spec.title} — {parameter_line}"
        if params
        else report.spec.title,
        "generated_at": now.strftime("%Y-%m-%d %H:%M UTC"),
        "generated_at_iso": now.isoformat(timespec="seconds"),
        **context,
    }
    template = compile_template(make_environment(report.folder), report.name, TEMPLATE)
    return RenderedHtml(html=render_template(template, report.name, full_context), tables=tables)


def render_report_pdf(report: Report, html: RenderedHtml) -> RenderedPdf:
    # Imported here: a batch's flow process hands PDFs to render processes and so never
    # loads WeasyPrint (about 1 s of every flow run's start-up).
    from reports.pdf import render_pdf

    return render_pdf(
        report.name,
        html.html,
        base_dir=report.assets_dir if report.assets_dir.is_dir() else report.folder,
        stylesheets=report.stylesheets,
        allowed_roots=report.allowed_roots,
    )


def check_pdf_quality(report: Report, pdf: RenderedPdf, quality: Quality) -> Quality:
    if pdf.text_chars < _BLANK_PDF_CHARS:
        quality.issues.append(f"PDF is nearly blank ({pdf.text_chars} characters of text)")
        if quality.policy == "fail":
            raise QualityError(f"{report.name}: quality gate failed: {'; '.join(quality.issues)}")
    return quality


def publish(
    report: Report,
    params: dict[str, Any],
    store: OutputStore,
    *,
    html: RenderedHtml,
    pdf: RenderedPdf | None,
    data: LoadedData,
    quality: Quality,
    fingerprint_: str,
    timings: dict[str, float],
    formats: list[str],
    kpis: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write the outputs, then the manifest: a manifest exists only for complete outputs."""
    item_dir = store.item_dir(report.name, params)
    stem = store.file_stem(report.name, params)
    # Remove the old manifest first: a crash mid-publish then reads as "not done".
    store.remove(posixpath.join(item_dir, "manifest.json"))
    payloads: dict[str, bytes] = {}
    if "pdf" in formats and pdf is not None:
        payloads[f"{stem}.pdf"] = pdf.data
    if "html" in formats:
        payloads[f"{stem}.html"] = html.standalone(report).encode("utf-8")
    if "csv" in formats:
        for table in html.tables:
            payloads[f"{stem}_{table.name}.csv"] = table.to_csv_bytes()
    files = []
    for name, payload in payloads.items():
        store.write_bytes(posixpath.join(item_dir, name), payload)
        files.append(
            {
                "name": name,
                "path": posixpath.join(item_dir, name),
                "bytes": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        )
    manifest = {
        "report": report.name,
        "title": report.spec.title,
        "parameters": params,
        "fingerprint": fingerprint_,
        "data_fingerprint": data.fingerprint,
        "report_version": report.spec.version,
        "code_version": report.code_version,
        "files": files,
        "pages": pdf.pages if pdf else None,
        "rows": data.rows,
        "table_rows": {t.name: t.total_rows for t in html.tables},
        "kpis": kpis or {},
        "quality": quality.as_dict(),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "item_dir": item_dir,
    }
    store.write_manifest(item_dir, manifest)
    return manifest


def is_current(
    store: OutputStore,
    report: Report,
    params: dict[str, Any],
    fingerprint_: str,
    manifest: dict[str, Any] | None = None,
) -> dict | None:
    """The existing manifest if its outputs are complete and were made from the same inputs.

    Pass `manifest` when the caller has already read it, to avoid reading it twice.
    """
    if manifest is None:
        manifest = store.read_manifest(store.item_dir(report.name, params))
    if not manifest or manifest.get("fingerprint") != fingerprint_:
        return None
    if not manifest.get("files"):
        return None  # an item without outputs is never done, whatever its fingerprint says
    for entry in manifest["files"]:
        if not store.exists(entry["path"]) or store.size(entry["path"]) != entry["bytes"]:
            return None
    return manifest


# The stages of one render, in order. `run_stages` is the one place that spells the
# sequence; the report flow runs each stage as a Prefect task through `run_stage`.
STAGES = ("load", "context", "html", "pdf", "publish")
StageRunner = Callable[..., Any]  # (stage, fn, *args) -> fn(*args), however it is run


def _run_directly(stage: str, fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def run_stages(
    report: Report,
    raw_params: dict[str, Any],
    store: OutputStore,
    *,
    formats: list[str] | None = None,
    skip_unchanged: bool = False,
    run_stage: StageRunner = _run_directly,
    on_quality_issue: Callable[[list[str]], None] | None = None,
) -> dict[str, Any]:
    """Validate, then load → context → HTML → PDF → publish; the manifest (with `skipped`).

    `run_stage(stage, fn, *args)` runs one stage: directly here, as a retried Prefect
    task in the report flow. Each stage is timed the same way wherever it runs.
    """
    timings: dict[str, float] = {}

    def stage(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        result = run_stage(name, fn, *args)
        timings[name] = time.perf_counter() - started
        return result

    params = report.validate(raw_params)
    chosen = choose_formats(report, formats)
    data = stage("load", load_data, report, params)
    fp = fingerprint(report, params, data, chosen)
    if skip_unchanged and (existing := is_current(store, report, params, fp)):
        return {**existing, "skipped": True}
    quality = check_data_quality(report, data)
    if quality.issues and on_quality_issue:
        on_quality_issue(quality.issues)
    context = stage("context", build_context, report, params, data)
    html = stage("html", render_html, report, params, context)
    pdf = stage("pdf", render_report_pdf, report, html) if "pdf" in chosen else None
    if pdf is not None:
        check_pdf_quality(report, pdf, quality)
    manifest = stage(
        "publish",
        _publish_stage,
        report,
        params,
        store,
        html,
        pdf,
        data,
        quality,
        fp,
        timings,
        chosen,
        kpis_of(context),
    )
    return {**manifest, "skipped": False}


def _publish_stage(report, params, store, html, pdf, data, quality, fp, timings, formats, kpis):
    return publish(
        report,
        params,
        store,
        html=html,
        pdf=pdf,
        data=data,
        quality=quality,
        fingerprint_=fp,
        timings=timings,
        formats=formats,
        kpis=kpis,
    )


def render_report(
    report: Report,
    raw_params: dict[str, Any],
    store: OutputStore,
    *,
    formats: list[str] | None = None,
    skip_unchanged: bool = False,
) -> dict[str, Any]:
    """Run every stage in this process and return the manifest (with `skipped` set)."""
    return run_stages(report, raw_params, store, formats=formats, skip_unchanged=skip_unchanged)
