"""The Streamlit pages, run by AppTest in-process against the real, seeded Prefect server."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
KPI_LABELS = [
    "Running",
    "Queued",
    "Completed",
    "Failed",
    "Cancelled",
    "Success rate",
    "Median duration",
]


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def test_overview_shows_health_kpis_and_the_running_batch(seeded):
    at = _app()
    assert not at.exception
    assert not at.error
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["Prefect API", "Pools ready", "Workers online", "Late runs"]
    assert labels[-len(KPI_LABELS) :] == KPI_LABELS  # runs last: reports come first
    assert at.metric[0].value == "✅ reachable"
    completed = next(m for m in at.metric if m.label == "Completed")
    assert int(completed.value.replace(",", "")) >= seeded.completed
    assert "5 of 12 done (1 unchanged), 2 failed, ETA 1 min 05 s" in [
        p.proto.text for p in at.get("progress")
    ]
    assert f"carrier-monthly batch over month {seeded.flow}" in _texts(at)
    assert "Prefect API calls" in _texts(at)
    assert all(m.proto.help for m in at.metric)  # every KPI explains itself
    assert all(b.help for b in at.button)


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of '#rrggbb'."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.parametrize("background", ["#ffffff", "#0e1117"])  # Streamlit's light, dark
def test_chart_colours_read_on_the_light_and_the_dark_theme(background):
    from dashboard.components import DURATION_COLOURS, STATE_COLOURS

    for name, colour in {**STATE_COLOURS, **DURATION_COLOURS}.items():
        light, dark = sorted([_luminance(colour), _luminance(background)], reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 3, f"{name} {colour} on {background}"


def test_overview_follows_the_window_chooser(seeded):
    at = _app()
    at.selectbox(key="window_hours").set_value(1).run()
    assert not at.exception
    assert "Runs in the last 1 h" in [s.value for s in at.subheader]


def test_overview_shows_a_banner_when_the_api_is_down(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    at = _app()
    assert not at.exception
    assert len(at.error) == 1
    assert "Prefect API unavailable" in at.error[0].value
    assert "127.0.0.1:9" in at.error[0].value and "\n" not in at.error[0].value
    assert not at.metric  # nothing stale is shown as if it were current


def test_runs_page_filters_searches_and_pages(seeded):
    at = _app()
    at.switch_page("views/runs.py").run()
    assert not at.exception and not at.error
    at.multiselect(key="runs_flows").set_value([seeded.flow]).run()
    assert "Runs 1–25 of 25" in _texts(at)  # 25 seeded in the last 24 h
    at.selectbox(key="runs_page_size").set_value(25).run()
    at.selectbox(key="runs_range_h").set_value(0).run()  # any time: + 3 from 30 h ago
    assert "Runs 1–25 of 28" in _texts(at)
    first = list(at.dataframe[0].value["Name"])
    at.button(key="runs_next").click().run()
    assert "Runs 26–28 of 28" in _texts(at)
    second = list(at.dataframe[0].value["Name"])
    assert not set(first) & set(second)
    at.text_input(key="runs_search").input("carrier=AS").run()  # new filters: page 1
    assert "Runs 1–12 of 12" in _texts(at)
    states = set(at.dataframe[0].value["State"])
    assert states <= {"✅ Completed", "❌ Failed"} and len(states) == 2
    at.multiselect(key="runs_states").set_value(["FAILED"]).run()
    assert set(at.dataframe[0].value["State"]) == {"❌ Failed"}


def test_runs_page_shows_a_banner_when_the_api_is_down(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    at = _app()
    at.switch_page("views/runs.py").run()
    assert not at.exception
    assert at.error and all("Prefect API unavailable" in e.value for e in at.error)
