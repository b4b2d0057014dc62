"""Altair charts of runs. One colour per run (or per group of seeds: their mean, with a band from
the lowest to the highest seed); test curves solid, train curves dashed."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from core.compare import Group

METRICS = {"acc": ("test_acc", "train_acc", "accuracy %"), "loss": ("test_loss", "train_loss", "loss")}


def _frame(groups: list[Group], kind: str) -> pd.DataFrame:
    test, train, _ = METRICS[kind]
    rows = [r for g in groups for r in g.band() if r["metric"] in (test, train)]
    frame = pd.DataFrame(rows, columns=["group", "epoch", "metric", "mean", "low", "high", "n"])
    frame["curve"] = frame["metric"].map({test: "test", train: "train"})
    return frame


def history_chart(groups: list[Group], kind: str, height: int = 250) -> alt.LayerChart | None:
    frame = _frame(groups, kind)
    if frame.empty:
        return None
    _, _, title = METRICS[kind]
    order = [g.label for g in groups]
    # tableau10: neighbouring runs get clearly different hues (Streamlit's default puts two blues first)
    scale = alt.Scale(domain=order, scheme="tableau10")
    color = alt.Color("group:N", title=None, sort=order, scale=scale,
                      legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=600, symbolStrokeWidth=3))
    base = alt.Chart(frame).encode(x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)))
    y_scale = _scale(frame, kind)
    y = alt.Y("mean:Q", title=title, scale=y_scale)
    lines = base.mark_line(point=alt.OverlayMarkDef(size=28), clip=True).encode(
        y=y, color=color, strokeDash=alt.StrokeDash("curve:N", sort=["test", "train"], legend=None), detail="curve:N",
        tooltip=[alt.Tooltip("group:N", title="run"), "curve:N", "epoch:Q",
                 alt.Tooltip("mean:Q", format=".3f", title="mean" if kind == "acc" else "value"),
                 alt.Tooltip("low:Q", format=".3f"), alt.Tooltip("high:Q", format=".3f"), alt.Tooltip("n:Q", title="seeds")])
    band = base.transform_filter((alt.datum.n > 1) & (alt.datum.curve == "test")).mark_area(opacity=0.18, clip=True).encode(
        y=alt.Y("low:Q", scale=y_scale), y2="high:Q", color=alt.Color("group:N", sort=order, scale=scale, legend=None))
    name = "Accuracy" if kind == "acc" else "Loss"
    return alt.layer(band, lines).properties(height=height, title=f"{name} per epoch (solid: test, dashed: train)")


def _scale(frame: pd.DataFrame, kind: str) -> alt.Scale:
    """Accuracy: zoom on the test curves (early augmented train epochs can sit far below and are
    clamped to the bottom edge); loss: a log scale."""
    if kind == "loss":
        return alt.Scale(type="log")
    test = frame[frame["curve"] == "test"]
    low = float(test["low"].min()) if not test.empty else float(frame["low"].min())
    high = float(frame["high"].max())
    span = max(high - low, 0.2)
    return alt.Scale(domain=[low - 0.15 * span, min(100.0, high + 0.1 * span)], clamp=True, nice=False)


def history_charts(groups: list[Group], height: int = 250) -> None:
    """Accuracy and loss side by side (or a hint when there is nothing to draw yet)."""
    charts = [history_chart(groups, kind, height) for kind in ("acc", "loss")]
    if not any(charts):
        st.caption("Press **Train**, or pick runs under *Compare with*, to draw curves here.")
        return
    left, right = st.columns(2)
    for column, chart in zip((left, right), charts):
        if chart is not None:
            column.altair_chart(chart, width="stretch")


def batch_chart(batches: list[dict[str, Any]], height: int = 200) -> None:
    if batches:
        frame = pd.DataFrame(batches)
        st.altair_chart(alt.Chart(frame, title="training loss per batch (live run)").mark_line().encode(
            x=alt.X("step:Q", title="optimiser step"), y=alt.Y("loss:Q", scale=alt.Scale(type="log")),
            tooltip=["epoch:Q", "step:Q", alt.Tooltip("loss:Q", format=".4f")]).properties(height=height),
            width="stretch")
