"""Charts of runs, as plain Vega-Lite specs. One colour per run (or per group of seeds: their mean,
with a band from the lowest to the highest seed); test curves solid, train curves dashed."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Collection

import altair as alt
import streamlit as st

from core.results.compare import Group

LEGEND_ROW = 22  # px per legend entry, added to the chart so the plot keeps its height
LEGEND_LINE = 13  # px per further line of a wrapped legend label
LEGEND_CHARS = 44  # a legend line's length: what a step page's half-width chart shows whole at 1024 px
METRICS = {"acc": ("test_acc", "train_acc", "accuracy %"), "loss": ("test_loss", "train_loss", "loss")}


# Vega's tableau10, less the orange that the live run always gets: a compared run keeps its colour
# when Train is pressed (the class watched it in that colour), and the live run is the orange one.
LIVE_COLOUR = "#f58518"
RUN_COLOURS = ["#4c78a8", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"]


def group_colours(order: list[str], live: Collection[str]) -> list[str]:
    """A colour per group label: the live group's own, the others the palette in order."""
    palette = itertools.cycle(RUN_COLOURS)
    return [LIVE_COLOUR if label in live else next(palette) for label in order]


def history_spec(rows: list[dict[str, Any]], order: list[str], kind: str, height: int = 250,
                 live: Collection[str] = ()) -> dict[str, Any] | None:
    """One chart (accuracy or loss per epoch) as a plain Vega-Lite spec: `rows` are Group.band()
    rows, `live` the labels of live groups. Written as a dict rather than through altair, whose
    validation costs a watching page more than a tenth of a second per redraw; a test checks the
    spec against altair's schema."""
    test, train, title = METRICS[kind]
    curve = {test: "test", train: "train"}
    # a long label is wrapped rather than cut at the chart's edge (Vega draws an array of lines)
    wrapped = {label: "\n".join(wrap_label(label)) for label in order}
    values = [r | {"curve": curve[r["metric"]], "group": wrapped[r["group"]]} for r in rows if r["metric"] in curve]
    if not values:
        return None
    order = [wrapped[label] for label in order]
    live = {wrapped[label] for label in live}
    y_scale = _scale(values, kind)
    # tableau10's hues: neighbouring runs clearly different (Streamlit's default puts two blues first)
    scale = {"domain": order, "range": group_colours(order, live)}
    x = {"field": "epoch", "type": "quantitative", "title": "epoch", "axis": {"tickMinStep": 1}}
    # one legend entry per run or group (the band layer shares it, so its symbols are drawn opaque)
    color = {"field": "group", "type": "nominal", "title": None, "sort": order, "scale": scale,
             "legend": {"orient": "bottom", "direction": "vertical", "labelLimit": 600, "symbolType": "stroke",
                        "symbolStrokeWidth": 3, "symbolOpacity": 1, "labelExpr": "split(datum.label, '\\n')"}}
    band = {
        "transform": [{"filter": "datum.n > 1 && datum.curve == 'test'"}],
        "mark": {"type": "area", "opacity": 0.18, "clip": True},
        "encoding": {"x": x, "y": {"field": "low", "type": "quantitative", "scale": y_scale, "title": title},
                     "y2": {"field": "high"}, "color": color},
    }
    lines = {
        "mark": {"type": "line", "point": {"size": 28}, "clip": True},
        "encoding": {
            "x": x, "y": {"field": "mean", "type": "quantitative", "scale": y_scale, "title": title}, "color": color,
            "strokeDash": {"field": "curve", "type": "nominal", "sort": ["test", "train"], "legend": None},
            "detail": {"field": "curve", "type": "nominal"},
            "tooltip": [{"field": "group", "type": "nominal", "title": "run"}, {"field": "curve", "type": "nominal"},
                        {"field": "epoch", "type": "quantitative"},
                        {"field": "mean", "type": "quantitative", "format": ".3f",
                         "title": "mean" if kind == "acc" else "value"},
                        {"field": "low", "type": "quantitative", "format": ".3f"},
                        {"field": "high", "type": "quantitative", "format": ".3f"},
                        {"field": "n", "type": "quantitative", "title": "seeds"}],
        },
    }
    layers = [band, lines] + _below_axis(values, lines["encoding"], y_scale)
    name = "Accuracy" if kind == "acc" else "Loss"
    legend = sum(LEGEND_ROW + LEGEND_LINE * label.count("\n") for label in order)
    return {"data": {"values": values}, "height": height + legend, "layer": layers,
            "title": {"text": f"{name} per epoch", "subtitle": "solid: test, dashed: train"}}


def wrap_label(label: str, width: int = LEGEND_CHARS) -> list[str]:
    """A legend label as lines of at most `width` characters (a longer word keeps a line to itself)."""
    lines = [""]
    for word in label.split(" "):
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return lines


def _below_axis(values: list[dict[str, Any]], encoding: dict[str, Any], y_scale: dict[str, Any]) -> list[dict[str, Any]]:
    """A downward triangle on the bottom edge for every point the zoomed accuracy axis leaves out
    (early augmented train epochs): clamped there, a flat line alone would read as a flat curve."""
    floor = y_scale.get("domain", [None])[0]
    if floor is None or not any(v["mean"] < floor for v in values):
        return []
    tooltip = [{"field": "where", "type": "nominal", "title": "shown"}, *encoding["tooltip"]]
    return [{"transform": [{"filter": f"datum.mean < {floor!r}"}, {"calculate": "'below the axis'", "as": "where"}],
             "mark": {"type": "point", "shape": "triangle-down", "filled": True, "size": 70, "opacity": 1},
             "encoding": {k: encoding[k] for k in ("x", "y", "color")} | {"tooltip": tooltip}}]


def _scale(values: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """Accuracy: zoom on the test curves (early augmented train epochs can sit far below and are
    clamped to the bottom edge); loss: a log scale."""
    if kind == "loss":
        return {"type": "log"}
    tests = [v["low"] for v in values if v["curve"] == "test"]
    low = min(tests) if tests else min(v["low"] for v in values)
    high = max(v["high"] for v in values)
    span = max(high - low, 0.2)
    return {"domain": [low - 0.15 * span, min(100.0, high + 0.1 * span)], "clamp": True, "nice": False}


def history_specs(groups: list[Group], height: int = 250,
                  bands: dict[tuple, list[dict[str, Any]]] | None = None) -> list[dict[str, Any] | None]:
    """The accuracy and the loss chart of these groups. `bands` keeps each group's band rows
    between calls, so a group whose runs did not change is not summarised again."""
    bands = {} if bands is None else bands
    rows = []
    for g in groups:
        key = (g.label, tuple((r.key, len(r.epochs)) for r in g.runs))
        if key not in bands:
            bands[key] = g.band()
        rows += bands[key]
    order, live = [g.label for g in groups], {g.label for g in groups if g.live}
    return [history_spec(rows, order, kind, height, live) for kind in ("acc", "loss")]


def show_history(specs: list[dict[str, Any] | None]) -> None:
    """Accuracy and loss side by side (or a hint when there is nothing to draw yet)."""
    if not any(specs):
        st.caption("Press **Train**, or pick runs under *Compare with*, to draw curves here.")
        return
    left, right = st.columns(2)
    for column, spec in zip((left, right), specs):
        if spec is not None:
            column.vega_lite_chart(spec, width="stretch")


def batch_spec(batches: list[dict[str, Any]], height: int = 200,
               title: str = "training loss per batch (live run)") -> dict[str, Any]:
    # fit-x: `height` is the plot's own; Streamlit's default ("fit") counts the title and axes in it, and
    # a short chart then draws its line on a plot of no height at all
    return {"data": {"values": batches}, "height": height, "autosize": {"type": "fit-x", "contains": "padding"},
            "title": title, "mark": {"type": "line"},
            "encoding": {"x": {"field": "step", "type": "quantitative", "title": "optimiser step",
                               "axis": {"format": "d", "tickMinStep": 1}},
                         "y": {"field": "loss", "type": "quantitative", "scale": {"type": "log"}, "title": "loss"},
                         "tooltip": [{"field": "epoch", "type": "quantitative"}, {"field": "step", "type": "quantitative"},
                                     {"field": "loss", "type": "quantitative", "format": ".4f"}]}}


def batch_chart(batches: list[dict[str, Any]], height: int = 200, **kw: Any) -> None:
    if batches:
        st.vega_lite_chart(batch_spec(batches, height, **kw), width="stretch")


def vega_lite_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """An altair chart as the plain Vega-Lite spec st.vega_lite_chart draws (data inline, validated once
    here). Without the active theme's defaults altair merges in (a 300x300 view): st.altair_chart draws
    with theme "none" for the same reason, and Streamlit's own theme styles the chart."""
    spec = chart.to_dict()
    theme = alt.theme.get()().get("config")
    if theme is not None and spec.get("config") == theme:
        del spec["config"]
    return spec


@st.cache_resource(max_entries=64, show_spinner=False)
def _built_spec(name: str, stamp: tuple, _build: Callable[[], alt.TopLevelMixin]) -> dict[str, Any]:
    return vega_lite_spec(_build())


def static_chart(name: str, stamp: tuple, build: Callable[[], alt.TopLevelMixin]) -> None:
    """A chart whose data changes only when `stamp` does (one built from the asset files), built once for
    every session: building an altair chart and validating its spec took ~40 ms, on every rerun of every
    page showing it, while the class's runs trained on the same cores. `name` tells the charts apart."""
    # a copy: Streamlit rewrites the spec's top level as it sends it, and the cached one is shared
    st.vega_lite_chart(dict(_built_spec(name, stamp, build)), width="stretch")
