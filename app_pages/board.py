"""The class board: every run of the class, the leaderboard, the frontier, predictions (ui/board.py)."""

from ui.board import render

render()
