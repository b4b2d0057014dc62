"""Robustness curves recorded by `python -m core robustness --output assets/robustness.json`: one
curve per network and attack, each with its provenance; the Inspect page draws them side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.project import ASSETS
from core.results.files import locked, write_json

ROBUSTNESS_FILE = ASSETS / "robustness.json"


def load_curves(path: Path = ROBUSTNESS_FILE) -> list[dict[str, Any]]:
    """The recorded curves ([] before any was recorded)."""
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))["curves"]


def merge_curve(path: Path, curve: dict[str, Any]) -> list[dict[str, Any]]:
    """Add a curve, replacing one of the same network and attack (under the file's lock)."""
    with locked(path):
        kept = [c for c in load_curves(path) if (c["name"], c["method"]) != (curve["name"], curve["method"])]
        curves = kept + [curve]
        write_json(path, {"about": "accuracy on the first test digits against the budget of an L-infinity attack "
                                   "(pixel units); written by `python -m core robustness --output`", "curves": curves})
    return curves
