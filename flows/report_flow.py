"""The `report` flow: one report, one parameter set, one task per stage.

    load → build context → render HTML → render PDF → publish

Each stage retries transient errors with backoff and jitter; bad parameters,
template errors, blocked fetches and quality failures fail at once with their
message. A progress artifact moves 0 → 100 through the stages, and the outputs
appear as a markdown summary and links in the Prefect UI.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.artifacts import artifact_key, publish_report_artifacts
from flows.items import item_key
from flows.limits import source_slot
from flows.parameters import Formats, ReportName
from flows.retry import TASK_RETRY_OPTIONS
from reports import OutputStore, get_settings
from reports.catalog import default_catalog
from reports.render import (
    LoadedData,
    RenderedHtml,
    build_context,
    check_data_quality,
    check_pdf_quality,
    choose_formats,
    fingerprint,
    load_data,
    publish,
    render_html,
    render_report_pdf,
)

# Stage results are DataFrames and documents: never cache or persist them.
_stage = {"cache_policy": NO_CACHE, "persist_result": False, **TASK_RETRY_OPTIONS}


@task(name="load", **_stage)
def load_stage(report: str, params: dict[str, Any]) -> LoadedData:
    with source_slot(report):
        return load_data(default_catalog().get(report), params)


@task(name="build-context", **_stage)
def context_stage(report: str, params: dict[str, Any], data: LoadedData) -> dict[str, Any]:
    return build_context(default_catalog().get(report), params, data)


@task(name="render-html", **_stage)
def html_stage(report: str, params: dict[str, Any], context: dict[str, Any]) -> RenderedHtml:
    return render_html(default_catalog().get(report), params, context)


@task(name="render-pdf", **_stage)
def pdf_stage(report: str, html: RenderedHtml):
    return render_report_pdf(default_catalog().get(report), html)


@task(name="publish", **_stage)
def publish_stage(report: str, params, html, pdf, data, quality, timings, formats, output_url):
    definition = default_catalog().get(report)
    return publish(
        definition,
        params,
        OutputStore(output_url),
        html=html,
        pdf=pdf,
        data=data,
        quality=quality,
        fingerprint_=fingerprint(definition, params, data, formats),
        timings=timings,
        formats=formats,
    )


def _run_name() -> str:
    params = flow_run.parameters
    return f"{params['report']} {item_key(params.get('parameters') or {})}".strip()


@flow(name="report", flow_run_name=_run_name, persist_result=False)
def report(
    report: ReportName,
    parameters: dict[str, Any] | None = None,
    formats: Formats | None = None,
) -> dict[str, Any]:
    """Render one report with one set of parameters and publish its outputs."""
    logger = get_run_logger()
    definition = default_catalog().get(report)
    params = definition.validate(parameters or {})
    chosen = choose_formats(definition, formats)
    output_url = get_settings().resolved_output_url
    progress = create_progress_artifact(
        0, key=artifact_key(report, "progress"), description="loading data"
    )
    timings: dict[str, float] = {}

    def step(name: str, percent: float, fn, *args):
        started = time.perf_counter()
        result = fn(*args)
        timings[name] = time.perf_counter() - started
        update_progress_artifact(progress, percent, description=f"{name} done")
        return result

    data = step("load", 20, load_stage, report, params)
    quality = check_data_quality(definition, data)
    if quality.issues:
        logger.warning("quality gate: %s", "; ".join(quality.issues))
    context = step("context", 40, context_stage, report, params, data)
    html = step("html", 60, html_stage, report, params, context)
    pdf = step("pdf", 85, pdf_stage, report, html) if "pdf" in chosen else None
    if pdf is not None:
        check_pdf_quality(definition, pdf, quality)
    manifest = step(
        "publish",
        100,
        publish_stage,
        report,
        params,
        html,
        pdf,
        data,
        quality,
        timings,
        chosen,
        output_url,
    )
    publish_report_artifacts(manifest, OutputStore(output_url))
    logger.info("%s: %s pages, outputs in %s", report, manifest["pages"], manifest["item_dir"])
    return manifest
