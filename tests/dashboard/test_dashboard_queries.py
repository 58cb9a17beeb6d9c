"""The dashboard's query layer against a real Prefect server with seeded runs."""

from __future__ import annotations

import random
import string
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prefect import flow, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.states import Completed, Failed, Late, Running, Scheduled

from dashboard.api import (
    MAX_CALLS,
    ApiConfig,
    ApiUnavailable,
    RunQuery,
    Window,
    active_batches,
    connect,
    filter_choices,
    health,
    kpis,
    overview,
    parse_progress,
    runs_page,
)
from dashboard.api._overview import MAX_BATCHES


def test_runs_page_counts_what_was_seeded(seeded):
    with connect() as api:
        every = runs_page(api, RunQuery(flows=(seeded.flow,), limit=200))
        failed = runs_page(api, RunQuery(flows=(seeded.flow,), state_types=("FAILED",)))
        odd = runs_page(api, RunQuery(flows=(seeded.flow,), tags=("dash-seed", "dash-seed-odd")))
        recent = runs_page(
            api,
            RunQuery(flows=(seeded.flow,), since=datetime.now(UTC) - timedelta(hours=24)),
        )
    assert every.total == len(every.rows) == seeded.completed + seeded.failed + 3
    assert failed.total == seeded.failed
    assert {r.state_type for r in failed.rows} == {"FAILED"}
    assert all(r.message and r.message.endswith("broke") for r in failed.rows)
    assert odd.total == (seeded.completed + seeded.failed) // 2
    assert recent.total == seeded.completed + seeded.failed  # not the 3 from 30 h ago
    row = every.rows[0]
    assert row.flow == seeded.flow and row.start and row.end and row.duration_s is not None


def test_pages_are_disjoint_and_cover_every_run(seeded):
    seen: list[str] = []
    with connect() as api:
        for offset in range(0, 40, 10):
            page = runs_page(api, RunQuery(flows=(seeded.flow,), offset=offset, limit=10))
            assert page.total == 28
            seen += [row.id for row in page.rows]
        past_end = runs_page(api, RunQuery(flows=(seeded.flow,), offset=100, limit=10))
    assert len(seen) == len(set(seen)) == 28
    assert past_end.rows == [] and past_end.total == 28 and not past_end.has_next


def test_limit_is_capped_at_the_api_maximum(seeded):
    with connect() as api:
        page = runs_page(api, RunQuery(limit=5000))
    assert page.limit == 200


def test_business_key_search_finds_real_and_seeded_runs(seeded, real_runs):
    assert real_runs["report-ok"].is_completed() and real_runs["report-bad"].is_failed()
    with connect() as api:
        found = runs_page(api, RunQuery(search="carrier=AS", limit=200))
        zz = runs_page(api, RunQuery(search="CARRIER=zz", flows=("report",)))
        both = runs_page(api, RunQuery(search="carrier=AS", flows=(seeded.flow,)))
    names = [row.name for row in found.rows]
    assert "carrier-monthly carrier=AS month=2013-01" in names
    assert all("carrier=as" in name.lower() for name in names)
    assert both.total == (seeded.completed + seeded.failed) // 2
    assert zz.total >= 1 and zz.rows[0].state_type == "FAILED"
    report_row = next(r for r in found.rows if r.name.endswith("month=2013-01"))
    assert report_row.progress == 100.0  # the report flow's progress artifact


def test_kpis_match_server_counts_for_both_windows(seeded, real_runs):
    window = Window.last()
    with connect() as api:
        result = kpis(api, window)
    with get_client(sync_client=True) as client:

        def count(types, w):
            return client.count_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=types)),
                    expected_start_time=FlowRunFilterExpectedStartTime(
                        after_=w.start, before_=w.end
                    ),
                )
            )

        completed = count(["COMPLETED"], window)
        failed = count(["FAILED", "CRASHED"], window)
        previous = count(["COMPLETED"], window.previous)
    now = result.current
    assert now.completed == completed >= seeded.completed + 1
    assert now.failed == failed >= seeded.failed + 1
    assert now.running >= 1  # the seeded running batch
    assert result.previous.completed == previous >= seeded.previous_completed
    assert now.success_rate == pytest.approx(completed / (completed + failed))
    assert now.median_duration_s is not None and now.duration_sample == min(completed, 200)
    assert result.previous.median_duration_s is not None


def test_active_batch_shows_its_parsed_progress(seeded):
    with connect() as api:
        batches = active_batches(api)
    mine = next(b for b in batches.batches if b.run_id == seeded.running_batch)
    assert (mine.percent, mine.done, mine.total, mine.unchanged, mine.failed, mine.eta) == (
        41.7,
        5,
        12,
        1,
        2,
        "1 min 05 s",
    )
    assert mine.report == "carrier-monthly" and mine.elapsed_s is not None
    assert batches.total >= 1


def test_overview_costs_a_bounded_number_of_calls_however_many_runs(seeded):
    pools = [f"dash-pool-{uuid.uuid4().hex[:6]}-{i}" for i in range(6)]
    tag = "".join(random.choices(string.ascii_lowercase, k=8))  # letters: never a placeholder
    reports = [f"bulk-{tag}-{suffix}" for suffix in ("fail", "one", "two", "three")]

    @flow(name="report")
    def report_stub(report: str) -> None:  # the real report flow's name; never called
        return None

    @flow(name="batch")
    def batch_stub(report: str) -> None:
        return None

    created = []
    with get_client(sync_client=True) as client:
        for name in pools:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        try:
            with connect() as api:
                before = overview(api, Window.last())
            assert before.calls == api.calls <= MAX_CALLS == 15
            for i in range(40):  # four reports; ten runs of the first failed, each its own way
                report = reports[i % 4]
                final = (
                    Failed(message=f"{report}: table 'x{i}' has {i} rows") if i % 4 == 0 else None
                )
                run = client.create_flow_run(
                    report_stub,
                    name=f"bulk {i}",
                    parameters={"report": report},
                    state=final or Completed(),
                )
                created.append(run.id)
            for i in range(MAX_BATCHES):  # a cut list of running batches costs its count
                run = client.create_flow_run(
                    batch_stub, name=f"bulk batch {i}", parameters={"report": reports[1]}
                )
                created.append(run.id)
                client.set_flow_run_state(run.id, Running(), force=True)
            with connect() as api:
                after = overview(api, Window.last())
            assert after.calls == api.calls == MAX_CALLS  # every read of the budget, once
            assert after.kpis.current.total >= before.kpis.current.total + 40 + MAX_BATCHES
            assert after.batches.total >= MAX_BATCHES + 1 > len(after.batches.batches)
            durations = {d.report: d.runs for d in after.insights.durations}
            assert [durations.get(f"{r} · single") for r in reports] == [None, 10, 10, 10]
            group = next(g for g in after.insights.failure_groups if reports[0] in g.signature)
            assert group.signature == f"{reports[0]}: table '<value>' has <n> rows"
            assert group.count == 10 and group.reports == [f"{reports[0]} · single"]
            mine = [p for p in after.health.pools if p.name in pools]
            assert {p.status for p in mine} == {"NOT_READY"}
            assert any("first 3 pools" in note for note in after.health.notes)
            assert after.health.workers_online is None  # not every pool was counted
        finally:
            for run_id in created:
                client.delete_flow_run(run_id)
            for name in pools:
                client.delete_work_pool(name)


def test_health_counts_late_runs():
    @flow(name="dash-waiting")
    def waiting() -> None:
        return None

    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(waiting, state=Scheduled(scheduled_time=long_ago))
        try:
            with connect() as api:
                before = health(api)
            client.set_flow_run_state(run.id, Late(scheduled_time=long_ago), force=True)
            with connect() as api:
                after = health(api)
        finally:
            client.delete_flow_run(run.id)
    assert before.api_ok and before.late_runs >= 1  # waiting 10 min past its time
    assert after.late_runs == before.late_runs  # Late counts once, whichever way it shows


def test_filter_choices_name_the_seeded_flow(seeded):
    with connect() as api:
        choices = filter_choices(api)
    assert seeded.flow in choices.flows and "batch" in choices.flows


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/api", "http://user:hunter2@127.0.0.1:9/api"],
)
def test_unreachable_api_raises_one_line(url):
    started = time.monotonic()
    with pytest.raises(ApiUnavailable) as caught, connect(ApiConfig(url=url)) as api:
        overview(api, Window.last())
    message = str(caught.value)
    assert "\n" not in message and "127.0.0.1:9" in message and "hunter2" not in message
    assert "health check" in message
    assert time.monotonic() - started < 10


def test_unreachable_api_in_a_runs_query():
    with (
        pytest.raises(ApiUnavailable, match="flow runs"),
        connect(ApiConfig(url="http://127.0.0.1:9/api")) as api,
    ):
        runs_page(api, RunQuery())


def test_missing_or_bad_url_is_one_line():
    with (
        pytest.raises(ApiUnavailable, match="PREFECT_API_URL is not set"),
        connect(ApiConfig(url="")),
    ):
        pass
    with pytest.raises(ApiUnavailable, match="not an http"), connect(ApiConfig(url="ftp://x")):
        pass


@pytest.mark.parametrize(
    ("data", "text", "expected"),
    [
        # A sentence without the snapshot's data (another flow's artifact): percent only.
        (41.7, "5 of 12 done (1 unchanged), 2 failed, ETA 1 min 05 s", (41.7, None, None)),
        ("garbage", "loading data", (None, None, None)),
        (250, None, (100.0, None, None)),
        ("nan", "<!-- reportrunner-progress {broken -->", (None, None, None)),
    ],
)
def test_progress_without_its_data_is_read_defensively(data, text, expected):
    parsed = parse_progress(data, text)
    assert (parsed.percent, parsed.done, parsed.total) == expected
