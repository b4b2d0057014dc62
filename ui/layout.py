"""Page chrome shared by every page."""

from __future__ import annotations

import streamlit as st

# Streamlit's default top padding (6rem) would push the charts of a step below a 720-px screen.
_COMPACT = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 3.2rem; padding-bottom: 2rem; }
[data-testid="stMarkdownContainer"] ul { margin-bottom: 0.2rem; }
</style>"""


def compact() -> None:
    st.html(_COMPACT)
