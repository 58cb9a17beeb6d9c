"""Defects a browser walkthrough of the dashboard found, each pinned by a test.

Runs are created on the session's Prefect server under flow names the real flows use
(`report`, `batch`, `render-chunk`) for a report name of this module's own, and are
deleted afterwards; a run that no worker picks up stays in the state it was put in.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import json
import random
import shutil
import string
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from prefect import flow, get_client, task
from prefect.client.schemas.actions import LogCreate
from prefect.states import Completed, Crashed, Failed, Pending, Running, Scheduled
from pypdf import PdfWriter
from streamlit.testing.v1 import AppTest

from dashboard.api import RunQuery, connect, filter_choices, runs_page
from dashboard.components import (
    HEALTH_WEIGHTS,
    STATE_COLOURS,
    TILE_CHARS,
    TIMELINE_ROW_PX,
    tile_chars,
    timeline_chart,
    timeline_height,
)
from dashboard.formatting import count, escape_markdown, short_clock, state_label
from deployments.deploy import deploy
from reports.contracts import batch_run_name, report_run_name, run_name
from reports.definitions import default_catalog
from reports.store import OutputStore

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
STALE_PARAMS = {"carrier": "YV", "month": "2013-10"}  # no other test renders this item
NO_RETRY = "Started from the CLI: re-run with `reportrunner batch …`"


# ---- fixtures ------------------------------------------------------------------------


@flow(name="report")
def report_stub(report: str, parameters: dict | None = None) -> None:  # names runs; never run
    return None


@flow(name="batch")
def batch_stub(report: str, over: dict | None = None, parameters: dict | None = None) -> None:
    return None


@flow(name="render-chunk")
def chunk_stub(report: str) -> None:
    return None


@task(name="stage")
def stage_stub() -> None:  # names task runs; never run
    return None


@dataclass
class Walk:
    report: str  # a report name of this module's own: counts are exact
    tag: str
    ids: dict[str, str] = field(default_factory=dict)  # role → run id
    run_ids: list[str] = field(default_factory=list)


def _finish(client, walk: Walk, role: str, stub, name: str, parameters: dict, final=None, **kw):
    """A run of `stub` that ran (Running, then `final`: Completed unless given)."""
    run = client.create_flow_run(stub, name=name, parameters=parameters, tags=[walk.tag], **kw)
    walk.run_ids.append(str(run.id))
    walk.ids[role] = str(run.id)
    client.set_flow_run_state(run.id, Running(), force=True)
    client.set_flow_run_state(run.id, final or Completed(), force=True)
    return run


@pytest.fixture(scope="module")
def walk(prefect_server):
    letters = "".join(random.choices(string.ascii_lowercase, k=8))  # never a placeholder
    walk = Walk(report=f"wt-{letters}", tag=f"wt-{letters}")
    single = {"report": walk.report, "parameters": {"carrier": "AA", "month": "2013-07"}}
    batch = {"report": walk.report, "over": {"month": ["2013-07"]}, "parameters": {"carrier": "AA"}}
    with get_client(sync_client=True) as client:
        _finish(client, walk, "single", report_stub, report_run_name(single), single)
        _finish(client, walk, "batch", batch_stub, batch_run_name(batch), batch)
        _finish(client, walk, "chunk", chunk_stub, f"{walk.report} chunk 1/1", batch)
        other = {"report": f"{walk.report}x", "parameters": {"carrier": "AA"}}  # a longer name
        _finish(client, walk, "other-report", report_stub, report_run_name(other), other)
        earlier = Scheduled(scheduled_time=datetime.now(UTC) - timedelta(hours=3))
        _finish(
            client, walk, "earlier", report_stub, report_run_name(single), single, state=earlier
        )
        # A batch started from the CLI that failed: nothing the dashboard can retry.
        _finish(
            client,
            walk,
            "cli-failed",
            batch_stub,
            batch_run_name(batch),
            batch,
            final=Failed(message=f"{walk.report}: the source vanished under the batch"),
        )
        # A deployment run that crashed before its flow could rename it.
        deployment = client.create_deployment(  # it names the report for the filter
            flow_id=client.create_flow(report_stub),
            name=walk.report,
            parameters={"report": walk.report},
        )
        crashed = client.create_flow_run_from_deployment(
            deployment, parameters=single, name="curious-weasel", tags=[walk.tag]
        )
        walk.run_ids.append(str(crashed.id))
        walk.ids["crashed"] = str(crashed.id)
        message = f"{walk.report}: the worker lost the process before the flow started"
        client.set_flow_run_state(crashed.id, Crashed(message=message), force=True)
    yield walk
    with get_client(sync_client=True) as client:
        for run_id in walk.run_ids:
            client.delete_flow_run(run_id)
        client.delete_deployment(deployment)


@pytest.fixture(scope="module")
def deployments(prefect_server) -> dict[str, str]:
    """`flow/deployment` → id after `reportrunner deploy`; deletes the runs made here."""
    started = datetime.now(UTC)
    deploy()
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(limit=200)}
        ids = {
            f"{flows[d.flow_id]}/{d.name}": str(d.id) for d in client.read_deployments(limit=200)
        }
    yield ids
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
    )

    with get_client(sync_client=True) as client:
        made = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                expected_start_time=FlowRunFilterExpectedStartTime(after_=started)
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=list(ids.values()))),
            limit=200,
        )
        for run in made:
            client.delete_flow_run(run.id)


@pytest.fixture(scope="module")
def older_output(settings) -> dict[str, Any]:
    """A manifest and PDF of one carrier-monthly item, made 13 minutes ago."""
    store = OutputStore(settings.resolved_output_url)
    params = default_catalog().get("carrier-monthly").spec.validate_params(STALE_PARAMS)
    item_dir = store.item_dir("carrier-monthly", params)
    writer, buffer = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=595, height=842)
    writer.write(buffer)
    pdf = buffer.getvalue()
    path = f"{item_dir}/{OutputStore.file_stem('carrier-monthly', params)}.pdf"
    store.write_bytes(path, pdf)
    made = (datetime.now(UTC) - timedelta(minutes=13)).replace(microsecond=0)
    manifest = {
        "report": "carrier-monthly",
        "title": "Carrier monthly performance",
        "parameters": STALE_PARAMS,
        "files": [
            {
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "bytes": len(pdf),
                "sha256": hashlib.sha256(pdf).hexdigest(),
            }
        ],
        "pages": 1,
        "quality": {"status": "ok", "issues": []},
        "created_at": made.isoformat(),
        "item_dir": item_dir,
    }
    store.write_manifest(item_dir, manifest)
    yield {"created_at": made, "item_dir": item_dir}
    shutil.rmtree(Path(settings.resolved_output_url) / item_dir, ignore_errors=True)


# ---- helpers -------------------------------------------------------------------------


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120).run()


def _page(view: str, **query: str) -> AppTest:
    at = _app()
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page(f"views/{view}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at) -> str:
    parts = (
        [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    )
    return "\n".join(str(p) for p in parts)


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def _chart_rows(at: AppTest) -> list[dict]:
    rows = []
    for chart in at.get("vega_lite_chart"):
        for dataset in chart.proto.datasets:
            rows += pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()
    return rows


def _columns(frame_element) -> dict[str, dict]:
    """The column config Streamlit sends with a dataframe (by column name)."""
    return json.loads(frame_element.proto.columns or "{}")


def _runs_frame(at: AppTest):
    return next(d for d in at.dataframe if "Detail" in d.value.columns)


def _run(stub, parameters: dict, state) -> str:
    """A run left in `state`, as no worker has picked it up (or as one is running it)."""
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(stub, parameters=parameters, name="sleepy-otter")
        client.set_flow_run_state(run.id, state, force=True)
    return str(run.id)


def _y_axes(spec: Any, field_name: str) -> list[dict]:
    """The y axes of every layer of a chart spec that plot `field_name`."""
    if isinstance(spec, list):
        return [axis for part in spec for axis in _y_axes(part, field_name)]
    if not isinstance(spec, dict):
        return []
    y = spec.get("encoding", {}).get("y", {})
    found = [y.get("axis", {})] if y.get("field") == field_name else []
    return found + [axis for value in spec.values() for axis in _y_axes(value, field_name)]


def _delete(run_id: str) -> None:
    with get_client(sync_client=True) as client:
        client.delete_flow_run(run_id)


# ---- 1. stale downloads on Run detail ------------------------------------------------


@pytest.mark.parametrize(
    "state", [Scheduled(), Pending(), Running()], ids=["scheduled", "pending", "running"]
)
def test_a_run_not_done_yet_never_offers_older_outputs_as_its_own(older_output, state):
    run_id = _run(report_stub, {"report": "carrier-monthly", "parameters": STALE_PARAMS}, state)
    try:
        at = _page("run_detail", id=run_id)
    finally:
        _delete(run_id)
    assert not at.error
    assert any("This run has not produced its outputs yet" in i.value for i in at.info)
    made = short_clock(older_output["created_at"], seconds=True)
    labelled = [e for e in at.expander if e.label.startswith("Older output, made")]
    assert [e.label for e in labelled] == [
        f"Older output, made {made} UTC (before this run started)"
    ]
    # Every download on the page is the older output's, under its label.
    assert at.download_button and len(labelled[0].download_button) == len(at.download_button)


def test_a_completed_run_shows_the_outputs_it_made_as_its_own(older_output, settings):
    """The counterpart: outputs made after the run started are the run's, unlabelled."""
    store = OutputStore(settings.resolved_output_url)
    manifest = store.read_manifest(older_output["item_dir"])
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(
            report_stub, parameters={"report": "carrier-monthly", "parameters": STALE_PARAMS}
        )
        client.set_flow_run_state(run.id, Running(), force=True)
        started = client.read_flow_run(run.id).start_time
        made = started + timedelta(seconds=2)
        store.write_manifest(older_output["item_dir"], {**manifest, "created_at": made.isoformat()})
        client.set_flow_run_state(run.id, Completed(), force=True)
    try:
        at = _page("run_detail", id=str(run.id))
    finally:
        _delete(str(run.id))
        store.write_manifest(older_output["item_dir"], manifest)
    assert not at.error
    assert not [e for e in at.expander if "output" in e.label.lower()]
    assert not any("not produced" in i.value for i in at.info)
    assert any(b.label.startswith("Download PDF") for b in at.download_button)


# ---- 2. runs page filters ------------------------------------------------------------


def test_filter_choices_name_reports_and_full_deployment_names(deployments):
    with connect() as api:
        choices = filter_choices(api)
    assert {"report/carrier-monthly", "batch/carrier-monthly"} <= set(choices.deployments)
    assert choices.deployment_ids["batch/carrier-monthly"] == deployments["batch/carrier-monthly"]
    assert "carrier-monthly" in choices.reports
    assert "render-chunk" not in choices.reports and "batch" not in choices.reports


def test_report_filter_finds_single_batch_and_chunk_runs_of_that_report_only(walk):
    with connect() as api:
        every = runs_page(api, RunQuery(report=walk.report, limit=200))
        searched = runs_page(api, RunQuery(report=walk.report, search="batch over", limit=200))
        chunks = runs_page(api, RunQuery(report=walk.report, flows=("render-chunk",)))
    found = {row.id for row in every.rows}
    wanted = {walk.ids[r] for r in ("single", "batch", "chunk", "earlier", "cli-failed")}
    assert found == wanted  # not the report whose name starts the same ("…x")
    assert {row.id for row in searched.rows} == {walk.ids["batch"], walk.ids["cli-failed"]}
    assert [row.id for row in chunks.rows] == [walk.ids["chunk"]]


def test_runs_page_filters_by_report_kind_and_full_deployment(walk, deployments):
    parameters = {  # what each deployment's schema accepts
        "report/carrier-monthly": {
            "report": "carrier-monthly",
            "parameters": {"carrier": "AA", "month": "2013-07"},
        },
        "batch/carrier-monthly": {
            "report": "carrier-monthly",
            "over": {"month": ["2013-07"]},
            "parameters": {"carrier": "AA"},
        },
    }
    with get_client(sync_client=True) as client:
        made = {}
        for full in parameters:
            run = client.create_flow_run_from_deployment(
                deployments[full],
                parameters=parameters[full],
                tags=[walk.tag],
            )
            made[full] = str(run.id)
    at = _page("runs")
    report = at.selectbox(key="runs_report")
    assert "carrier-monthly" in report.options and "batch" not in report.options
    assert at.multiselect(key="runs_flows").label == "Kind"
    assert "batch (flow batch)" in at.multiselect(key="runs_flows").options
    deployment = at.multiselect(key="runs_deployments")
    assert {"report/carrier-monthly", "batch/carrier-monthly"} <= set(deployment.options)
    at.text_input(key="runs_tags").input(walk.tag).run()
    deployment.set_value(["batch/carrier-monthly"]).run()
    frame = _runs_frame(at).value
    assert list(frame["Detail"]) == [f"run?id={made['batch/carrier-monthly']}"]
    assert list(frame["Deployment"]) == ["batch/carrier-monthly"]
    at.multiselect(key="runs_deployments").set_value([]).run()
    at.selectbox(key="runs_report").set_value(walk.report).run()  # named by its deployment
    at.multiselect(key="runs_flows").set_value(["batch"]).run()
    frame = _runs_frame(at).value
    assert set(frame["Detail"]) == {f"run?id={walk.ids[r]}" for r in ("batch", "cli-failed")}


def test_runs_page_follows_the_sidebars_time_window(walk):
    at = _page("runs")
    at.text_input(key="runs_tags").input(walk.tag).run()
    assert f"run?id={walk.ids['earlier']}" in set(_runs_frame(at).value["Detail"])  # 3 h ago
    at.selectbox(key="window_hours").set_value(1).run()
    assert not at.exception
    shown = set(_runs_frame(at).value["Detail"])
    assert f"run?id={walk.ids['earlier']}" not in shown
    assert f"run?id={walk.ids['single']}" in shown
    assert "expected to start in the time window (last 1 h)" in _texts(at)
    at.selectbox(key="runs_range_h").set_value(0).run()  # any time
    assert f"run?id={walk.ids['earlier']}" in set(_runs_frame(at).value["Detail"])


def test_runs_table_shows_the_error_early_and_never_the_word_none(walk):
    at = _page("runs")
    at.text_input(key="runs_tags").input(walk.tag).run()
    element = _runs_frame(at)
    frame = element.value
    assert list(frame.columns).index("Message") <= 3  # on screen without scrolling
    assert _columns(element)["Message"]["width"] >= 300
    assert element.proto.placeholder == "–"  # a missing time reads "–", not "None"
    failed = frame[frame["Detail"] == f"run?id={walk.ids['cli-failed']}"].iloc[0]
    assert failed["Message"] == f"{walk.report}: the source vanished under the batch"
    assert failed["Deployment"] == "— (CLI)"
    text = frame.drop(columns=["Start", "Expected start", "Finish", "Progress"])
    assert not text.isna().any().any()
    assert not text.apply(lambda col: col.astype(str).str.contains("None")).any().any()


# ---- 3. overview ---------------------------------------------------------------------


@pytest.fixture
def only_this_modules_failures(walk, monkeypatch):
    """The overview shows ten failure groups: keep this module's, whatever else failed."""
    import dashboard.api

    real = dashboard.api.finish_overview  # the page draws what this returns

    def finish_overview(reads):
        data = real(reads)
        groups = [g for g in data.insights.failure_groups if walk.report in g.signature]
        return replace(data, insights=replace(data.insights, failure_groups=groups))

    monkeypatch.setattr(dashboard.api, "finish_overview", finish_overview)


def test_overview_failure_groups_of_cli_runs_say_why_and_name_their_runs(
    walk, only_this_modules_failures
):
    at = _app()
    assert not at.exception and not at.error
    assert not [b for b in at.button if b.label == "🔁 Retry these 0 runs"]
    text = _texts(at)
    assert NO_RETRY in text
    cli_batch = escape_markdown(
        f"{walk.report} batch over month carrier=AA"
    )  # the business name, not "1"
    assert f"[{cli_batch}](run?id={walk.ids['cli-failed']})" in text
    # A run that crashed before its flow renamed it is named from its parameters.
    crashed = escape_markdown(f"{walk.report} carrier=AA month=2013-07")
    assert f"[{crashed}](run?id={walk.ids['crashed']})" in text
    assert "curious-weasel" not in text


def test_run_time_by_report_labels_each_bar_with_report_and_kind_whole(walk):
    at = _app()
    assert not at.exception
    labels = {
        r["report"] for r in _chart_rows(at) if str(r.get("report", "")).startswith(walk.report)
    }
    assert {f"{walk.report} · single", f"{walk.report} · batch", f"{walk.report} · chunk"} <= labels
    axes = _y_axes(_charts(at), "report")
    assert axes and all(axis.get("labelLimit") == 0 for axis in axes)  # never "carrier-mon…"


# ---- 4. names ------------------------------------------------------------------------


def test_a_run_started_from_the_form_carries_its_business_name_at_once(deployments):
    at = _page("launch")
    at.selectbox(key="launch_report").set_value("carrier-monthly").run()
    at.selectbox(key="launch:carrier-monthly:single:carrier").set_value("AA").run()
    at.text_input(key="launch:carrier-monthly:single:month").input("2013-07").run()
    at.button(key="launch_submit").click().run()
    assert not at.exception and not at.error
    name = "carrier-monthly carrier=AA month=2013-07"
    assert f"open run {name}" in at.success[0].value
    run_id = at.success[0].value.rsplit("run?id=", 1)[1].split(")")[0]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    assert run.state_type.value == "SCHEDULED" and run.start_time is None  # no worker yet
    assert run.name == name
    detail = _page("run_detail", id=run_id)
    assert detail.subheader[0].value.replace("\\", "") == name  # shown as typed, escaped


def test_a_batch_started_from_the_form_carries_the_batch_flows_name(deployments):
    at = _page("launch")
    at.selectbox(key="launch_report").set_value("carrier-monthly").run()
    at.radio(key="launch:carrier-monthly:mode").set_value("batch").run()
    at.multiselect(key="launch:carrier-monthly:batch:dimensions").set_value(["month"]).run()
    at.multiselect(key="launch:carrier-monthly:batch:values:month").set_value(["2013-01"]).run()
    at.selectbox(key="launch:carrier-monthly:batch:carrier").set_value("UA").run()
    at.button(key="launch_submit").click().run()
    assert not at.exception and not at.error
    run_id = at.success[0].value.rsplit("run?id=", 1)[1].split(")")[0]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    assert run.name == "carrier-monthly batch over month carrier=UA"


def test_the_flows_name_their_runs_with_the_shared_function(monkeypatch):
    from flows import batch_flow, report_flow

    single = {"report": "carrier-monthly", "parameters": {"carrier": "AA", "month": "2013-07"}}
    batch = {"report": "carrier-monthly", "over": {"carrier": "*"}, "parameters": {"month": "x"}}
    monkeypatch.setattr(report_flow, "flow_run", SimpleNamespace(parameters=single))
    monkeypatch.setattr(batch_flow, "flow_run", SimpleNamespace(parameters=batch))
    assert report_flow._run_name() == run_name("report", single) == report_run_name(single)
    assert batch_flow._run_name() == run_name("batch", batch) == batch_run_name(batch)
    assert run_name("render-chunk", single) is None and run_name("report", {}) is None


# ---- 5. layout -----------------------------------------------------------------------


def _bars(states: list[str]) -> list[dict]:
    start = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    return [
        {
            "name": f"task-{i}",
            "kind": "task",
            "state": state_label(state),
            "state_type": state,
            "attempts": 1,
            "start": start + timedelta(seconds=i),
            "end": start + timedelta(seconds=i + 1),
            "duration": "1 s",
        }
        for i, state in enumerate(states)
    ]


def test_timeline_grows_with_its_rows_and_lists_only_states_present():
    three = timeline_chart(_bars(["COMPLETED"] * 3), datetime.now(UTC)).to_dict()
    five = timeline_chart(_bars(["COMPLETED"] * 4 + ["FAILED"]), datetime.now(UTC)).to_dict()
    assert five["height"] - three["height"] == 2 * TIMELINE_ROW_PX >= 2 * 24
    assert five["height"] == timeline_height(5)
    y = five["encoding"]["y"]
    assert y["axis"]["labelOverlap"] is False and y["axis"]["labelLimit"] == 0
    assert all("✅ Completed" in row or "❌ Failed" in row for row in y["sort"])  # in words
    color = five["encoding"]["color"]
    assert color["scale"]["domain"] == ["✅ Completed", "❌ Failed"]  # no "Other"
    assert color["scale"]["range"] == [STATE_COLOURS["COMPLETED"], STATE_COLOURS["FAILED"]]
    assert color["legend"]["orient"] == "bottom"  # not beside the rows' ends
    assert "layer" not in five  # no state text drawn over the bars or the legend


def test_run_detail_draws_every_task_row_and_wraps_log_messages(walk):
    run_id = walk.ids["chunk"]  # no outputs to look up: a chunk's are on its batch
    with get_client(sync_client=True) as client:
        for i in range(5):
            stage = client.create_task_run(stage_stub, run_id, f"stage-{i}", name=f"stage-{i}")
            client.set_task_run_state(stage.id, Running(), force=True)
            client.set_task_run_state(stage.id, Completed(), force=True)
        client.create_logs(
            [
                LogCreate(
                    name="prefect.flow_runs",
                    level=40,
                    message="x" * 400,
                    timestamp=datetime.now(UTC),
                    flow_run_id=run_id,
                )
            ]
        )
    at = _page("run_detail", id=run_id)
    assert not at.error
    at.session_state["run_tab"] = "Timeline"  # only the open tab is drawn
    at.run()
    timeline = next(
        c for c in _charts(at) if c.get("encoding", {}).get("y", {}).get("field") == "row"
    )
    assert timeline["height"] == timeline_height(5)
    assert timeline["encoding"]["color"]["scale"]["domain"] == ["✅ Completed"]
    at.session_state["run_tab"] = "Logs"
    at.run()
    logs = next(d for d in at.dataframe if "Time (UTC)" in d.value.columns)
    assert logs.proto.row_height > 64  # Streamlit wraps text in rows taller than 4 rem
    order = list(logs.proto.column_order)
    assert order.index("Message") < order.index("Task")
    assert _columns(logs)["Message"]["width"] >= 300
    for label in ("State", "Duration", "Started", "Finished"):  # two tiles a row
        value = next(m for m in at.metric if m.label == label).value
        assert _glyphs(value) <= TILE_CHARS[2], value


def _glyphs(value: str) -> int:
    """Characters drawn: an emoji's variation selector (U+FE0F) takes no room."""
    return len(value.replace("\ufe0f", ""))


def test_overview_tiles_fit_their_width():
    at = _app()
    assert not at.exception
    health, kpis = at.metric[:4], at.metric[-7:]  # run tiles: rows of four and three
    reports = at.metric[4:-7]  # figures in reports: one row
    budget = [tile_chars(HEALTH_WEIGHTS, i) for i in range(4)]
    assert [_glyphs(m.value) <= n for m, n in zip(health, budget, strict=True)] == [True] * 4, [
        m.value for m in health
    ]
    budgets = [TILE_CHARS[4]] * 4 + [TILE_CHARS[3]] * 3
    assert [_glyphs(m.value) <= n for m, n in zip(kpis, budgets, strict=True)] == [True] * 7, [
        m.value for m in kpis
    ]
    assert all(_glyphs(m.value) <= TILE_CHARS[5] for m in reports), [m.value for m in reports]
    assert _glyphs("⚠️ 12 of 15") <= min(budget)  # the longest pool count that is likely


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 11, 30, 14, 5, 59, tzinfo=UTC), "30 Nov 14:05"),
        (datetime(2025, 12, 1, 9, 0, tzinfo=UTC), "1 Dec 2025 09:00"),
        (None, "–"),
    ],
)
def test_tile_times_are_short(moment, expected):
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert short_clock(moment, now=now) == expected
    assert len(short_clock(moment, now=now)) <= TILE_CHARS[2]  # Run detail: two a row


def test_tile_counts_are_short():
    assert [count(n) for n in (7, 12_345, 123_456, 999_999, 4_560_000, 120_000_000)] == [
        "7",
        "12,345",
        "123 k",
        "1.0 M",
        "4.6 M",
        "120 M",
    ]
    assert max(len(count(10**n - 1)) for n in range(1, 10)) <= 7  # "1000 M" at most


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.parametrize(("theme", "background"), [("light", "#ffffff"), ("dark", "#0e1117")])
def test_the_accent_colour_is_no_alarm_red_and_reads_on_its_theme(theme, background):
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    colour = config["theme"][theme]["primaryColor"]  # progress bars, sliders, toggles
    background = config["theme"][theme].get("backgroundColor", background)
    rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    hue = colorsys.rgb_to_hls(*rgb)[0] * 360
    assert 60 < hue < 300, f"{colour}: hue {hue:.0f}° is red, orange or near it"
    light, dark = sorted([_luminance(colour), _luminance(background)], reverse=True)
    assert (light + 0.05) / (dark + 0.05) >= 4.5  # slider values are text in this colour
