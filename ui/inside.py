"""Inside the network, drawn: one layer x time picture per metric, for this session's latest run
(live while it trains) and, on the Runs page, for two runs side by side on one colour scale."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.serving.store import RunStore, StoreError
import numpy as np

from core.training.inside import LOG_SCALED, METRIC_TITLES, METRICS, QUANTILE_NAMES, Sample, layer_grid, layer_order

VIEWS = METRICS + ("weights",)

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
         "update_ratio": "Update / weight", "weights": "Weights"}


def metric_choice(key: str) -> str:
    return st.segmented_control("What to look at", VIEWS, default="act_std", key=key, required=True,
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
    if metric == "weights":
        draw_weights(runs)
        return
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
    return [Sample(b["step"], b["epoch"], b["inside"], b.get("filters")) for b in batches if b.get("inside")]


def stored_samples(store: RunStore | None, run_id: int | None) -> list[Sample]:
    if store is None or run_id is None:
        return []
    try:
        return store.inside(run_id)
    except StoreError:
        return []


# --- the weights themselves ---------------------------------------------------------------------------

CELL = 16  # screen pixels per filter pixel
GAP = 3


def filters_image(snapshots: list[Sample]) -> np.ndarray:
    """The first convolution's filters as one RGB picture: a row per snapshot (time runs down), a column
    per filter; red positive, blue negative, white zero, on one scale for the whole run so that a
    filter's change over time shows."""
    return filters_picture(np.array([s.filters for s in snapshots], dtype=np.float32))


def filters_picture(stack: np.ndarray) -> np.ndarray:
    """[rows, filters, k, k] as one RGB picture on one colour scale (filters_image)."""
    scale = float(np.abs(stack).max()) or 1.0
    rows, count, k = stack.shape[0], stack.shape[1], stack.shape[2]
    side = k * CELL
    image = np.full((rows * (side + GAP) - GAP, count * (side + GAP) - GAP, 3), 255, dtype=np.uint8)
    for r in range(rows):
        for f in range(count):
            value = np.kron(stack[r, f] / scale, np.ones((CELL, CELL)))  # each pixel a CELL x CELL block
            red = np.where(value > 0, 255, 255 * (1 + value))
            blue = np.where(value < 0, 255, 255 * (1 - value))
            green = 255 * (1 - np.abs(value))
            top, left = r * (side + GAP), f * (side + GAP)
            image[top:top + side, left:left + side] = np.stack([red, green, blue], axis=-1).astype(np.uint8)
    return image


def weight_band_rows(samples: list[Sample]) -> list[dict[str, Any]]:
    return [{"layer": layer, "step": s.step} | {k: m[k] for k in QUANTILE_NAMES}
            for s in samples for layer, m in s.layers.items() if all(k in m for k in QUANTILE_NAMES)]


def weights_spec(rows: list[dict[str, Any]], layers: list[str]) -> dict[str, Any]:
    """Each weighted layer's weight distribution over time, a small chart per layer: the middle 90 %
    light, the middle half darker, the median a line."""
    x = {"field": "step", "type": "quantitative", "title": "optimiser step", "scale": {"zero": False, "nice": False}}
    y = {"type": "quantitative", "title": "weight", "scale": {"zero": False}}
    band = {"mark": {"type": "area", "opacity": 0.25, "color": "#4c78a8"},
            "encoding": {"x": x, "y": y | {"field": "w_p05"}, "y2": {"field": "w_p95"}}}
    middle = {"mark": {"type": "area", "opacity": 0.5, "color": "#4c78a8"},
              "encoding": {"x": x, "y": y | {"field": "w_p25"}, "y2": {"field": "w_p75"}}}
    median = {"mark": {"type": "line", "color": "#1f3b5a"}, "encoding": {"x": x, "y": y | {"field": "w_p50"}}}
    return {
        "data": {"values": rows},
        "facet": {"field": "layer", "type": "nominal", "sort": layers, "title": None,
                  "header": {"labelFontSize": 14}},
        "columns": 4,
        "resolve": {"scale": {"y": "independent"}},
        "spec": {"width": 200, "height": 110, "layer": [band, middle, median]},
    }


def draw_weights(runs: list[tuple[str, list[Sample]]]) -> None:
    for label, samples in runs:
        st.markdown(f"**{label}**")
        snapshots = [s for s in samples if s.filters]
        if not samples:
            st.caption("Nothing measured inside this run.")
            continue
        if snapshots:
            picture = filters_image(snapshots)
            st.image(picture, clamp=True, width=min(picture.shape[1], 1100),  # not blown up: the pixels stay sharp
                     caption=f"The first convolution's {len(snapshots[0].filters)} filters, a column each; a row per "
                             f"moment, from step {snapshots[0].step} (top) to step {snapshots[-1].step}: red "
                             "positive, blue negative, white zero")
        rows = weight_band_rows(samples)
        if rows:
            st.vega_lite_chart(weights_spec(rows, layer_order(samples)))
    st.caption("Each weighted layer's weights over time: the middle 90 % light, the middle half darker, the median a "
               "line (quantiles of at most 4,096 of its weights, always the same ones).")
