"""Operations (being built)."""

import streamlit as st

st.title("Operations")
