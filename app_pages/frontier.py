"""The frontier search and the unseen seeds: the research behind step 9 (ui/step_page.py)."""

from ui.step_page import render_frontier

render_frontier()
