"""Run detail (being built)."""

import streamlit as st

st.title("Run detail")
