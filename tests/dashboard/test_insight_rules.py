"""The overview's insight rules on constructed data: signatures, spikes, slow runs, groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.api import HistoryBucket, RunSample, Window
from dashboard.api._insights import (
    failure_groups,
    failure_spikes,
    report_durations,
    report_label,
    signature,
    slow_runs,
)

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
ZZ = (
    "Flow run encountered an exception: ParameterError: carrier-monthly: parameter "
    "'carrier' is 'ZZ', not one of: 9E, AA, AS, B6"
)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            ZZ,
            "Flow run encountered an exception: ParameterError: carrier-monthly: parameter "
            "'<value>' is '<value>', not one of: 9E, AA, AS, B6",
        ),
        (
            "3 of 12 items failed; first: carrier=AA month=2013-07: table flights has 0 rows",
            "<n> of <n> items failed; first: carrier=<value> month=<time>: "
            "table flights has <n> rows",
        ),
        (
            "Flow run process exited with non-zero status code -9.",
            "Flow run process exited with non-zero status code <n>.",
        ),
        (
            "cannot read /srv/data/flights-2013.parquet: No such file",
            "cannot read <path>: No such file",
        ),
        (
            "run 3f2a9c1e-1234-4abc-8def-0123456789ab failed after 2.5s at "
            "2025-03-04T13:05:06Z, see https://example.org/runs?id=7",
            "run <id> failed after <n> at <time>, see <url>",
        ),
        (
            "can't reach db: host=db1 port=5432, digest 9f86d081884c7d65",
            "can't reach db: host=<value> port=<value>, digest <id>",
        ),
        ("N/A: 3/4 of the items, 1.5 MB", "N/A: <n>/<n> of the items, <n> MB"),
        ('KeyError: "month"', 'KeyError: "<value>"'),
        ("  two\n lines  ", "two lines"),
        (None, "(no message)"),
        ("", "(no message)"),
    ],
)
def test_signature_replaces_values_with_placeholders(message, expected):
    assert signature(message) == expected


def test_signature_groups_across_values_but_not_across_kinds():
    other_value = ZZ.replace("'ZZ'", "'QQ'")
    bounds = "carrier-monthly: parameter 'month' is '2014-01', above the maximum '2013-12'"
    assert signature(ZZ) == signature(other_value)
    assert signature(bounds) != signature(ZZ)
    assert signature("x" * 500).endswith("…") and len(signature("x" * 500)) == 200


def test_report_label_tells_report_runs_batches_and_other_flows_apart():
    assert report_label("report", {"report": "carrier-monthly"}) == "carrier-monthly · single"
    assert report_label("batch", {"report": "carrier-monthly"}) == "carrier-monthly · batch"
    assert report_label("render-chunk", {"report": "carrier-monthly"}) == "carrier-monthly · chunk"
    assert report_label("etl", {"day": 3}) == "etl"
    assert report_label(None, None) == "unknown flow"


def _run(i: int, report: str, seconds: float | None, state: str = "COMPLETED", **kw) -> RunSample:
    return RunSample(
        id=kw.get("id", f"run-{report}-{i}"),
        name=f"{report} item={i}",
        report=report,
        state_type=state,
        duration_s=seconds,
        message=kw.get("message"),
        finished_at=kw.get("finished_at", NOW - timedelta(minutes=i)),
        from_deployment=kw.get("from_deployment", True),
    )


def test_slow_runs_need_three_times_the_median_and_five_runs():
    fast = [_run(i, "a", s) for i, s in enumerate([10, 10, 11, 12, 9, 31, 30, 35])]
    few = [_run(i, "b", s) for i, s in enumerate([1, 1, 1, 100])]  # only 4 runs of b
    failed = [_run(99, "a", 500, state="FAILED")]  # not completed: never in the sample
    found = slow_runs(fast + few + failed)
    # a: median of [9, 10, 10, 11, 12, 30, 31, 35] is 11.5; > 34.5 s is slow.
    assert [(r.run_id, r.duration_s, r.report_median_s) for r in found] == [("run-a-7", 35, 11.5)]
    assert found[0].ratio == pytest.approx(35 / 11.5)


def test_slow_runs_ignore_sub_second_jitter_and_sort_by_ratio():
    tiny = [_run(i, "t", s) for i, s in enumerate([0.01, 0.01, 0.01, 0.01, 0.01, 0.5])]
    mixed = [_run(i, "m", s) for i, s in enumerate([2, 2, 2, 2, 2, 7, 9])]
    found = slow_runs(tiny + mixed)
    assert [r.run_id for r in found] == ["run-m-6", "run-m-5"]  # 4.5× before 3.5×


def test_report_durations_median_p90_and_order():
    runs = [_run(i, "a", s) for i, s in enumerate(range(1, 11))]  # 1 … 10 s
    runs += [_run(0, "b", 60.0), _run(1, "c", None), _run(2, "d", 99, state="FAILED")]
    got = report_durations(runs)
    assert [(d.report, d.runs, d.median_s, d.max_s) for d in got] == [
        ("b", 1, 60.0, 60.0),
        ("a", 10, 5.5, 10),
    ]
    assert got[0].p90_s == 60.0
    assert got[1].p90_s == pytest.approx(9.1)  # inclusive interpolation


def _buckets(failed: list[int], start: datetime, minutes: int = 60) -> list[HistoryBucket]:
    step = timedelta(minutes=minutes)
    return [
        HistoryBucket(
            start=start + i * step,
            end=start + (i + 1) * step,
            counts={"FAILED": n - n // 3, "CRASHED": n // 3, "COMPLETED": 5},
        )
        for i, n in enumerate(failed)
    ]


def test_failure_spikes_are_three_times_the_typical_bucket_and_at_least_three():
    window = Window(end=NOW, length=timedelta(hours=4))
    previous = [1, 2, 1, 0]  # before the window: counted in the typical rate, never a spike
    current = [2, 6, 5, 9]
    history = _buckets(previous + current, window.previous.start)
    spikes = failure_spikes(history, window)
    # typical = median(0, 1, 1, 2, 2, 5, 6, 9) = 2 → threshold 6
    assert [(s.start, s.failed, s.typical) for s in spikes] == [
        (window.start + timedelta(hours=1), 6, 2),
        (window.start + timedelta(hours=3), 9, 2),
    ]


def test_failure_spikes_with_a_quiet_baseline_need_three_failures():
    window = Window(end=NOW, length=timedelta(hours=4))
    history = _buckets([0, 0, 0, 0, 0, 2, 3, 0], window.previous.start)
    spikes = failure_spikes(history, window)
    assert [(s.start, s.failed) for s in spikes] == [(window.start + timedelta(hours=2), 3)]
    assert failure_spikes([], window) == []


def test_failure_groups_count_name_reports_and_list_runs_newest_first():
    zz = [
        _run(i, report, None, "FAILED", message=ZZ.replace("'ZZ'", f"'{code}'"))
        for i, (report, code) in enumerate([("carrier-monthly", "ZZ"), ("cm (batch)", "QQ")])
    ]
    zz.append(_run(7, "carrier-monthly", None, "FAILED", message=ZZ, from_deployment=False))
    crashed = [_run(i, "airport-daily", None, "CRASHED", message=f"exit code {i}") for i in (3, 4)]
    silent = [_run(5, "etl", None, "FAILED", message=None)]
    groups = failure_groups([*crashed, *zz, *silent])
    assert [(g.count, g.signature) for g in groups] == [
        (
            3,
            "Flow run encountered an exception: ParameterError: carrier-monthly: parameter "
            "'<value>' is '<value>', not one of: 9E, AA, AS, B6",
        ),
        (2, "exit code <n>"),
        (1, "(no message)"),
    ]
    first = groups[0]
    assert first.run_ids == [
        "run-carrier-monthly-0",
        "run-cm (batch)-1",
        "run-carrier-monthly-7",
    ]
    assert first.retryable_ids == ["run-carrier-monthly-0", "run-cm (batch)-1"]
    assert first.reports == ["carrier-monthly", "cm (batch)"]
    assert first.example == ZZ and first.latest == NOW
    assert groups[1].run_ids == ["run-airport-daily-3", "run-airport-daily-4"]
    assert groups[1].example == "exit code 3"
