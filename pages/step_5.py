"""Step 5 of the lifecycle (the layout is in ui/step_page.py)."""

from ui.router import guard
from ui.step_page import render

guard()

render(5)
