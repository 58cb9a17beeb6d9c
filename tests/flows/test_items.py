"""What a batch is made of: items expanded from dimensions, checked once, split into chunks;
and the progress tracker that counts them."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from flows.items import check_items, expand_items, resolve_relative, split_chunks
from flows.progress import ProgressTracker
from reports.errors import ParameterError

SPEC = """\
name: {name}
title: Items test
parameters:
  region:
    type: string
    choices: [north, south, east]
  month:
    type: month
    min: "2013-01"
    max: "2013-04"
  day:
    type: date
    default: "2013-07-04"
batch:
  dimensions: [region, month]
"""


@pytest.fixture
def report(ws, kit):
    ws.add_report("items-test", spec=SPEC.format(name="items-test"))
    return ws.report("items-test")


def test_the_product_of_the_dimensions_in_the_spec_order(report):
    items = expand_items(report, over={"month": ["2013-01", "2013-02"], "region": "*"})
    assert items == [
        {"region": region, "month": month}
        for month in ("2013-01", "2013-02")
        for region in ("north", "south", "east")
    ]
    assert all(list(item) == ["region", "month"] for item in items)  # stable output paths


def test_fixed_values_join_every_item(report):
    items = expand_items(report, over={"region": ["north"]}, fixed={"month": "2013-03"})
    assert items == [{"region": "north", "month": "2013-03"}]


def test_all_values_of_a_range_dimension(report):
    months = [item["month"] for item in expand_items(report, over={"month": "*"})]
    assert months == ["2013-01", "2013-02", "2013-03", "2013-04"]


def test_an_explicit_list_of_items(report):
    items = expand_items(report, items=[{"region": "east"}], fixed={"month": "2013-02"})
    assert items == [{"month": "2013-02", "region": "east"}]


def test_relative_values_resolve_against_the_as_of_date(report):
    as_of = dt.date(2013, 3, 15)
    items = expand_items(report, over={"month": ["previous", "current"]}, as_of=as_of)
    assert [item["month"] for item in items] == ["2013-02", "2013-03"]
    assert resolve_relative(report, "day", "yesterday", as_of) == "2013-03-14"
    assert resolve_relative(report, "region", "previous", as_of) == "previous"  # a string


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "items-test: nothing to batch over; name a dimension (region, month)"),
        ({"over": {"colour": ["red"]}}, "items-test: unknown parameter 'colour' to batch over"),
        (
            {"over": {"region": ["north"]}, "fixed": {"region": "south"}},
            "items-test: parameter 'region' is both fixed and batched over",
        ),
        ({"over": {"region": "north"}}, "values for 'region' must be a list or \"*\""),
        ({"over": {"region": []}}, "items-test: no values to batch over for 'region'"),
        (
            {"over": {"region": ["north"]}, "items": [{"region": "north"}]},
            "give either items or dimensions to batch over, not both",
        ),
    ],
)
def test_a_batch_that_cannot_expand_says_why(report, kwargs, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand_items(report, **kwargs)


def test_a_batch_larger_than_the_limit_is_refused_before_it_expands(report):
    report.settings = report.settings.model_copy(update={"max_batch_items": 5})
    with pytest.raises(ParameterError, match="the batch has 12 items, more than the 5"):
        expand_items(report, over={"region": "*", "month": "*"})
    assert len(expand_items(report, over={"region": "*"}, fixed={"month": "2013-01"})) == 3


def test_each_item_is_checked_once_and_a_bad_one_fails_alone(report):
    checked = check_items(
        report,
        [{"region": "north", "month": "2013-01"}, {"region": "west", "month": "2013-01"}],
    )
    assert checked[0] == {"region": "north", "month": "2013-01", "day": "2013-07-04"}
    assert isinstance(checked[1], ParameterError)
    assert str(checked[1]) == (
        "items-test: parameter 'region' is 'west', not one of: north, south, east"
    )


@pytest.mark.parametrize(("count", "size", "sizes"), [(0, 3, []), (7, 3, [3, 3, 1]), (3, 5, [3])])
def test_chunks_keep_the_order_and_cover_every_item(count, size, sizes):
    chunks = split_chunks(list(range(count)), size)
    assert [len(c) for c in chunks] == sizes
    assert [i for chunk in chunks for i in chunk] == list(range(count))


def test_a_chunk_size_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        split_chunks([1], 0)


# ---- the progress tracker ----------------------------------------------------------------


@pytest.fixture
def no_artifacts(monkeypatch) -> list[float]:
    """Progress writes, kept here instead of sent: these tests are about the counting."""
    writes: list[float] = []
    for name in ("create_progress_artifact", "update_progress_artifact"):
        monkeypatch.setattr(f"flows.progress.{name}", lambda **kw: writes.append(kw["progress"]))
    return writes


def test_progress_counts_and_estimates_the_rest(no_artifacts):
    tracker = ProgressTracker(total=10)
    assert tracker.eta_range() is None and "ETA pending" in tracker.describe()
    tracker.record("skipped")  # found unchanged: takes no time, so sets no pace
    for _ in range(4):
        tracker.record("rendered")
    tracker._ends = (time.monotonic() - 12, time.monotonic(), 4)  # 4 ended 4 s apart
    tracker.record("failed")
    assert tracker.finished == 6 and tracker.percent == 60.0
    low, high = tracker.eta_range()
    assert low < 4 * 3 < high  # 4 left at about 3 s each: a range around 12 s
    assert high / low < 3  # five items seen: not a wild guess
    assert tracker.describe().startswith("6 of 10 done (1 unchanged), 1 failed, ETA ")


def test_the_first_eta_comes_from_history_and_is_a_range(no_artifacts):
    tracker = ProgressTracker(total=105, history_item_s=(1.5, 2.5))
    tracker.record("rendered")  # one item is no pace yet (it paid for the start-up)
    assert tracker.eta_range() == (104 * 1.5, 104 * 2.5)
    assert "ETA 2–5 min" in tracker.describe()


def test_a_range_narrows_as_items_finish():
    def spread(ended: int) -> float:
        tracker = ProgressTracker(total=1000)
        tracker.rendered = ended
        tracker._ends = (time.monotonic() - ended, time.monotonic(), ended)
        low, high = tracker.eta_range()
        return high / low

    assert spread(5) > spread(50) > spread(500) > 1


def test_progress_writes_at_most_once_per_cooldown(monkeypatch):
    writes: list[float] = []
    monkeypatch.setattr(
        "flows.progress.create_progress_artifact", lambda **kw: writes.append(kw["progress"])
    )
    monkeypatch.setattr(
        "flows.progress.update_progress_artifact", lambda **kw: writes.append(kw["progress"])
    )
    tracker = ProgressTracker(total=1000, cooldown_s=3600)
    tracker.start()
    for _ in range(999):
        tracker.record("rendered")
    assert writes == [0.0], "nothing but the first write within the cooldown"
    tracker.record("failed")
    assert writes == [0.0, 100.0], "the last item always writes"
    assert tracker.writes == 2
