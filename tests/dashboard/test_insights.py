"""Overview insights against the real Prefect server: run time by report, slow runs, failure
spikes and failures by error, in the query layer and on the page (AppTest), with a retry."""

from __future__ import annotations

import random
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
import streamlit as st
from prefect import flow, get_client
from prefect.client.schemas.objects import StateType
from prefect.states import Completed, Crashed, Failed, Running
from streamlit.testing.v1 import AppTest

from dashboard.api import Window, connect, overview
from dashboard.auth import ANALYST, User
from dashboard.passwords import hash_password

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SLOW_S = 2.5  # one run of `fast`: far above its median, however slow the machine
HEAVY_S = 0.5


@dataclass
class InsightRuns:
    fast: str  # report with six runs, one of them slow, and a batch of two
    heavy: str  # report with three longer runs: too few to call any of them slow
    retry: str  # report whose failed runs come from a deployment (retryable)
    slow_run: str = ""  # id of the one slow run
    param_failures: list = field(default_factory=list)  # ids, "parameter … is 'XX'"
    crashes: list = field(default_factory=list)  # ids, no deployment
    retryable: list = field(default_factory=list)  # ids of `retry`'s failed runs
    run_ids: list = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


@pytest.fixture(scope="module")
def insight_runs(prefect_server):
    tag = "".join(random.choices(string.ascii_lowercase, k=8))  # letters: never a placeholder
    runs = InsightRuns(fast=f"ins-{tag}-fast", heavy=f"ins-{tag}-heavy", retry=f"ins-{tag}-retry")

    @flow(name="report")
    def report_stub(report: str) -> None:  # the real report flow's name; never called
        return None

    @flow(name="batch")
    def batch_stub(report: str) -> None:
        return None

    with get_client(sync_client=True) as client:
        deployment = client.create_deployment(
            flow_id=client.create_flow(report_stub), name=f"ins-{tag}"
        )

        def finish(kind, report, seconds=0.0, message=None, stub=report_stub, deployed=False):
            parameters = {"report": report}
            if deployed:
                run = client.create_flow_run_from_deployment(
                    deployment, parameters=parameters, name=f"{report} run"
                )
            else:
                run = client.create_flow_run(stub, name=f"{report} run", parameters=parameters)
            runs.run_ids.append(str(run.id))
            # The server stamps states itself (a client's timestamp is not sent in Prefect
            # 3.9): a run time is real time spent between Running and the final state.
            client.set_flow_run_state(run.id, Running(), force=True)
            time.sleep(seconds)
            client.set_flow_run_state(run.id, kind(message=message), force=True)
            return str(run.id)

        for _ in range(5):
            finish(Completed, runs.fast)
        runs.slow_run = finish(Completed, runs.fast, SLOW_S)
        for _ in range(3):
            finish(Completed, runs.heavy, HEAVY_S)
        for _ in range(2):
            finish(Completed, runs.fast, stub=batch_stub)
        for code in ["ZZ", "QQ", "XX"]:
            message = f"{runs.fast}: parameter 'carrier' is '{code}', not one of: 9E, AA, AS"
            runs.param_failures.append(finish(Failed, runs.fast, message=message))
        for seconds in [12, 31]:
            message = f"{runs.heavy}: render process lost after {seconds} s"
            runs.crashes.append(finish(Crashed, runs.heavy, message=message))
        for path in ["/srv/a/flights.parquet", "/srv/b/flights.parquet"]:
            message = f"{runs.retry}: cannot read {path}"
            runs.retryable.append(finish(Failed, runs.retry, message=message, deployed=True))
    yield runs
    with get_client(sync_client=True) as client:
        for run_id in runs.run_ids:
            client.delete_flow_run(run_id)
        client.delete_deployment(deployment)


def _group(data, report):
    return next(g for g in data.insights.failure_groups if report in g.signature)


def test_durations_by_report_and_slow_runs(insight_runs):
    with connect() as api:
        data = overview(api, Window.last())
    by_report = {d.report: d for d in data.insights.durations}
    fast = by_report[f"{insight_runs.fast} · single"]
    heavy = by_report[f"{insight_runs.heavy} · single"]
    assert fast.runs == 6 and fast.median_s < SLOW_S / 3 <= SLOW_S <= fast.max_s
    assert fast.median_s <= fast.p90_s <= fast.max_s
    assert heavy.runs == 3 and heavy.median_s >= HEAVY_S
    batch = by_report[f"{insight_runs.fast} · batch"]  # batches apart from single reports
    assert batch.runs == 2
    mine = [r for r in data.insights.slow_runs if r.report.startswith("ins-")]
    assert [(r.run_id, r.report, r.duration_s) for r in mine] == [
        (insight_runs.slow_run, f"{insight_runs.fast} · single", fast.max_s)
    ]  # none of `heavy` (three runs: too few) nor of the batch
    assert mine[0].ratio > 3 and mine[0].report_median_s == fast.median_s


def test_failures_group_by_signature_with_counts_reports_and_runs(insight_runs):
    with connect() as api:
        data = overview(api, Window.last())
    params = _group(data, insight_runs.fast)
    assert params.signature == (
        f"{insight_runs.fast}: parameter '<value>' is '<value>', not one of: 9E, AA, AS"
    )
    assert params.count == 3 and params.reports == [f"{insight_runs.fast} · single"]
    assert sorted(params.run_ids) == sorted(insight_runs.param_failures)
    assert params.retryable_ids == []  # not from a deployment
    crashes = _group(data, insight_runs.heavy)
    assert crashes.signature == f"{insight_runs.heavy}: render process lost after <n> s"
    assert crashes.count == 2 and sorted(crashes.run_ids) == sorted(insight_runs.crashes)
    retry = _group(data, insight_runs.retry)
    assert retry.signature == f"{insight_runs.retry}: cannot read <path>"
    assert sorted(retry.retryable_ids) == sorted(insight_runs.retryable)
    assert data.insights.failed_sample >= 7
    spike = next(s for s in data.insights.spikes if s.start <= insight_runs.created < s.end)
    assert spike.failed >= 7  # all seven failures fell in the latest slot


@pytest.fixture
def fresh_cache():
    st.cache_data.clear()  # process-wide: one test's answers must not leak into the next
    yield
    st.cache_data.clear()


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def _markdown(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in [*at.markdown, *at.caption])


def _chart_rows(at: AppTest, report: str) -> list[dict]:
    """Rows of the page's Altair charts (Arrow datasets) that belong to `report`."""
    rows = []
    for chart in at.get("vega_lite_chart"):
        assert chart.proto.theme == "streamlit"  # reads on the light and the dark theme
        for dataset in chart.proto.datasets:
            table = pa.ipc.open_stream(dataset.data.data).read_all()
            rows += [r for r in table.to_pylist() if r.get("report") == report]
    return rows


def test_overview_page_shows_duration_chart_and_insights(insight_runs, fresh_cache):
    at = _app()
    assert not at.exception and not at.error
    headers = [s.value for s in at.subheader]
    assert "Run time by report" in headers and "Insights" in headers
    assert all(s.proto.help for s in at.subheader)  # every section explains itself
    rows = {r["measure"]: r for r in _chart_rows(at, f"{insight_runs.fast} · single")}
    assert sorted(rows) == ["90th percentile", "Median"]
    assert rows["Median"]["runs"] == 6 and rows["Median"]["seconds"] < SLOW_S / 3
    assert rows["90th percentile"]["seconds"] > rows["Median"]["seconds"]
    text = _markdown(at)
    assert f"(run?id={insight_runs.slow_run})" in text  # the slow run links to its detail page
    shown = insight_runs.fast.replace("-", "\\-")  # markdown-escaped
    assert f"× the median of {shown}" in text
    assert "failed or crashed" in text  # the spike, in words
    assert f"`{insight_runs.fast}: parameter '<value>' is '<value>', not one of" in text
    assert "❌ **3 failed runs**" in text and "❌ **2 failed runs**" in text
    for run_id in insight_runs.param_failures:
        assert f"(run?id={run_id})" in text
    # Parameter failures came from no deployment: no button that can never be pressed.
    assert not [b for b in at.button if b.label == "🔁 Retry these 0 runs"]
    assert "Started from the CLI: re-run with `reportrunner batch …`" in text
    assert all(b.help for b in at.button)


def test_retry_a_failure_group_after_a_confirmation_that_states_the_count(
    insight_runs, fresh_cache
):
    at = _app()
    retry = next(b for b in at.button if b.label == "🔁 Retry these 2 runs")
    assert not retry.disabled
    retry.click().run()
    assert not at.exception
    assert any("Retry 2 runs that failed with this error?" in w.value for w in at.warning)
    with get_client(sync_client=True) as client:  # nothing happens before the confirmation
        assert {client.read_flow_run(i).state_type for i in insight_runs.retryable} == {
            StateType.FAILED
        }
    next(b for b in at.button if b.label == "Yes, retry 2 runs").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Retry queued for 2 of 2 runs."]
    with get_client(sync_client=True) as client:
        states = [client.read_flow_run(i) for i in insight_runs.retryable]
    assert {s.state_name for s in states} == {"AwaitingRetry"}
    assert not any(b.label == "🔁 Retry these 2 runs" for b in at.button)  # group left


def test_analyst_sees_failure_groups_without_retry_buttons(insight_runs, fresh_cache, monkeypatch):
    monkeypatch.setenv("REPORTRUNNER_DASHBOARD_USERS", f"ana:analyst:{hash_password('pw')}")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_user"] = User(name="ana", role=ANALYST)  # as if signed in
    at.run()
    assert not at.exception
    assert "❌ **3 failed runs**" in _markdown(at)
    assert not [b for b in at.button if b.label.startswith("🔁 Retry these")]
    assert any("needs the operator role; you are an analyst" in c.value for c in at.caption)
