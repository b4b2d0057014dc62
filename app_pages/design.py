"""Design a network: edit it as a table, see its figures, train it like a step (ui/design.py)."""

from ui.design import render

render()
