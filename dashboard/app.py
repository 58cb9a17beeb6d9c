"""reportrunner dashboard (placeholder until the dashboard work lands).

Shows where to look today: the Prefect UI for runs and artifacts, and the output
folder for the PDFs.
"""

from __future__ import annotations

import os

import streamlit as st

st.set_page_config(page_title="reportrunner", page_icon="📄", layout="wide")
st.title("reportrunner")
api_url = os.environ.get("PREFECT_API_URL", "")
ui_url = api_url.removesuffix("/api") if api_url else None
st.info(
    "The reportrunner dashboard is being built. Until then, follow runs, progress and "
    "outputs in the Prefect UI."
)
if ui_url:
    st.link_button("Open the Prefect UI", ui_url)
st.caption(f"Outputs: {os.environ.get('REPORTRUNNER_OUTPUT_URL', 'var/outputs')}")
