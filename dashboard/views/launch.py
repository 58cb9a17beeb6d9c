"""Run a report (being built)."""

import streamlit as st

st.title("Run a report")
