"""Step 8 of the lifecycle (the layout is in ui/step_page.py)."""

from ui.step_page import render

render(8)
