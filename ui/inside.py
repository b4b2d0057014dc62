"""Inside the network, drawn: one layer x time picture per metric, for this session's latest run
(live while it trains) and, on the Runs page, for two runs side by side on one colour scale."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.serving.store import RunStore, StoreError
from core.training.inside import LOG_SCALED, METRIC_TITLES, METRICS, Sample, layer_grid, layer_order

# what each metric says, for the caption under its picture
MEANING = {
    "act_mean": "Where each layer's outputs sit. BatchNorm pins them near 0 (before its ReLU); without it they drift.",
    "act_std": "How spread each layer's outputs are. Well-scaled layers stay near 1; a shrinking or exploding spread "
               "down the layers is what BatchNorm prevents.",
    "zero_frac": "The share of each ReLU's outputs that are zero. Near 1: units that no longer pass anything on.",
    "grad_norm": "How much gradient reaches each layer's weights. Tiny values deep in the network: it barely learns there.",
    "update_ratio": "How far each step moves a layer's weights, relative to their size. About 0.001 is the usual "
                    "healthy figure; 0.01 and above is a large learning rate, 0.00001 a stalled layer.",
}


SHORT = {"act_mean": "Mean", "act_std": "Spread", "zero_frac": "Zero ReLUs", "grad_norm": "Gradient",
         "update_ratio": "Update / weight"}


def metric_choice(key: str) -> str:
    return st.segmented_control("What to look at", METRICS, default="act_std", key=key, required=True,
                                format_func=SHORT.get) or "act_std"


def inside_spec(cells: list[dict[str, Any]], metric: str, layers: list[str], domain: tuple[float, float] | None,
                title: str, height: int | None = None) -> dict[str, Any]:
    """A layer x time heat map as a plain Vega-Lite spec: layers top to bottom in the network's order,
    optimiser steps left to right, large type for the back of the room."""
    log = metric in LOG_SCALED
    scale: dict[str, Any] = {"scheme": "viridis", "type": "log" if log else "linear"}
    if domain is not None:
        scale["domain"] = list(domain)
    if metric == "zero_frac":
        scale["domain"] = [0, 1]
    if log:
        cells = [c for c in cells if c["value"] > 0]
    shown = sorted({c["layer"] for c in cells}, key=lambda name: layers.index(name) if name in layers else len(layers))
    height = height or max(180, 26 * len(shown))  # a row per layer, each label readable from the back of the room
    axis = {"labelFontSize": 14, "titleFontSize": 15, "labelOverlap": False}
    return {
        "title": {"text": title, "fontSize": 16},
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},  # the page's width, and the rows' own height
        "data": {"values": cells},
        "mark": {"type": "rect"},
        "encoding": {
            "x": {"field": "start", "type": "quantitative", "title": "optimiser step", "axis": axis | {"tickMinStep": 1},
                  "scale": {"zero": False, "nice": False}},
            "x2": {"field": "end"},
            "y": {"field": "layer", "type": "nominal", "sort": shown, "title": None, "axis": axis},
            "color": {"field": "value", "type": "quantitative", "scale": scale, "title": None,
                      "legend": {"labelFontSize": 13, "format": ".2~g", "gradientLength": height - 40}},
            "tooltip": [{"field": "layer", "type": "nominal"}, {"field": "start", "type": "quantitative", "title": "from step"},
                        {"field": "value", "type": "quantitative", "format": ".3~g", "title": METRIC_TITLES[metric]}],
        },
    }


def shared_domain(grids: list[list[dict[str, Any]]], metric: str) -> tuple[float, float] | None:
    """One colour scale for pictures set side by side, so the same colour means the same value."""
    values = [c["value"] for grid in grids for c in grid if metric not in LOG_SCALED or c["value"] > 0]
    return (min(values), max(values)) if values else None


def draw_inside(runs: list[tuple[str, list[Sample]]], metric: str) -> None:
    """Each run's picture, side by side on one colour scale."""
    grids = [layer_grid(samples, metric) for _, samples in runs]
    domain = shared_domain(grids, metric)
    columns = st.columns(len(runs)) if len(runs) > 1 else [st.container()]
    for column, (label, samples), grid in zip(columns, runs, grids):
        with column:
            if grid:
                st.vega_lite_chart(inside_spec(grid, metric, layer_order(samples), domain, label), width="stretch")
            else:
                st.caption(f"{label}: nothing measured inside (a run trained side by side with other seeds, or "
                           "recorded before the app looked inside).")
    st.caption(MEANING[metric])


def live_samples(batches: list[dict[str, Any]]) -> list[Sample]:
    """The looks inside that reached the page with the live batches."""
    return [Sample(b["step"], b["epoch"], b["inside"]) for b in batches if b.get("inside")]


def stored_samples(store: RunStore | None, run_id: int | None) -> list[Sample]:
    if store is None or run_id is None:
        return []
    try:
        return store.inside(run_id)
    except StoreError:
        return []
