"""Page chrome shared by every page."""

from __future__ import annotations

import streamlit as st

STEP_LAYOUT = "step_layout"  # the key of a step page's two columns (controls | charts)

# Streamlit's default top padding (6rem) would push the charts of a step below a 720-px screen.
# On a narrower screen (a 1024x768 projector) the 5rem side margins go, and a step's control column
# keeps the width its toggles and Train buttons need (else their labels are cut to "Batch…", "T…").
_STEP_ROW = f'.st-key-{STEP_LAYOUT} > [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"]'
_COMPACT = f"""<style>
[data-testid="stMainBlockContainer"] {{ padding-top: 3.2rem; padding-bottom: 2rem; }}
[data-testid="stMarkdownContainer"] ul {{ margin-bottom: 0.2rem; }}
@media (max-width: 1180px) {{
  [data-testid="stMainBlockContainer"] {{ padding-left: 1rem; padding-right: 1rem; }}
  {_STEP_ROW} {{ gap: 0.5rem; }}
  {_STEP_ROW} > [data-testid="stColumn"] {{ width: auto; min-width: 0; flex: 1 1 0; }}
  {_STEP_ROW} > [data-testid="stColumn"]:first-child {{ flex: 0 0 max(350px, calc(33.3% - 1rem)); }}
}}
</style>"""


def compact() -> None:
    st.html(_COMPACT)
