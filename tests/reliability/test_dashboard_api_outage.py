"""Fault test 5: the Prefect API goes away under the dashboard, then comes back.

A Prefect server of the test's own (not the session's: stopping that would break
every other test) on a port of its own; the dashboard's overview page runs in
AppTest against it while it is up, down, and up again on the same port.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def _overview(at: AppTest | None = None) -> AppTest:
    st.cache_data.clear()  # process-wide: nothing cached may hide the outage or the recovery
    at = at or AppTest.from_file(APP, default_timeout=900)
    return at.run()


@pytest.mark.timeout(1800)  # minutes of real waiting on a loaded machine
def test_dashboard_shows_a_banner_while_the_api_is_down_and_recovers(tmp_path, monkeypatch):
    from deployments.prefect_server import PrefectServer

    server = PrefectServer(home=tmp_path / "prefect").start(timeout=300)
    monkeypatch.setenv("PREFECT_API_URL", server.api_url)
    try:
        at = _overview()
        assert not at.exception and not at.error
        assert at.metric[0].label == "Prefect API" and at.metric[0].value == "✅ reachable"

        server.stop()
        at = _overview(at)  # the page's next refresh
        assert not at.exception
        (banner,) = at.error
        assert banner.value.startswith(f"Prefect API unavailable — Prefect API at {server.api_url}")
        assert "\n" not in banner.value and "Traceback" not in banner.value
        captions = [c.value for c in at.caption]
        assert any(c.startswith("Figures below are from ") for c in captions), captions

        server.start(timeout=300)  # same home, same port
        at = _overview(at)
        assert not at.exception and not at.error
        assert at.metric[0].value == "✅ reachable"
        assert not any(c.value.startswith("Figures below are from ") for c in at.caption)
    finally:
        server.stop()
