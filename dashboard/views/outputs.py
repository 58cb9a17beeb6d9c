"""Outputs (being built)."""

import streamlit as st

st.title("Outputs")
