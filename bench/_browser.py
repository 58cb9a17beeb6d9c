"""What the benches that load dashboard pages in Chromium share: when a page has settled,
and the bare Streamlit page that measures what any page load costs at least."""

from __future__ import annotations

# As tests/e2e/browsing.py: the script run is over, and nothing is left loading.
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
BUSY = '[data-testid="stSpinner"], [data-testid="stSkeleton"]'
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
TIMEOUT_MS = 120_000

FLOOR_SCRIPT = """import streamlit as st

st.title("Floor")
st.write("A page with a title and one line: what any page load costs at least.")
"""


def settle(page, timeout_ms: float = TIMEOUT_MS) -> None:
    """Until Streamlit's script run is over and no spinner or skeleton is left."""
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.locator(BUSY).first.wait_for(state="detached", timeout=timeout_ms)
    page.wait_for_selector(IDLE, timeout=timeout_ms)
