"""The Inspect page's *What it looks at* tab: a digit's saliency, the smallest perturbation that fools
the network, and its accuracy against the attack's budget (core.analysis.attacks).

Attacks run in the web server, so each is sized first: one digit costs a few hundred passes of the
network, a robustness curve thousands, and a curve is computed here only for networks small enough
(the recorded curves of the shipped networks come from `python -m core robustness`)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.analysis.attacks import (
    BUDGETS,
    PGD_STEPS,
    Fooled,
    robustness,
    saliency,
    smallest_fooling,
)
from core.analysis.predictions import TrainedModel
from core.architecture.size import size_of
from core.results.robustness import ROBUSTNESS_FILE, load_curves
from core.training.augmentation import to_float
from ui.inspect import digit_png, pick_digit
from ui.state import data_problem, load_data

CURVE_DIGITS = 1000
MAX_CURVE_MACS = 2e11  # multiply-adds a curve may cost in the web server (step 9's: 1.5e10; step 1's: 3.8e12)
FOOL_STEP = 0.01
MAX_FOOL_MACS = 2e11  # and one digit's search: up to 30 budgets of 10 PGD steps (step 1's: 1.4e11)


def looks_at_tab(trained: TrainedModel, model: torch.nn.Module) -> None:
    digit = pick_digit("looks")
    if digit is None:
        return
    pixel = torch.from_numpy(digit).float()
    maps, predicted = saliency(model, pixel[None, None])
    label = int(predicted[0])
    left, middle, right = st.columns([1, 1, 2])
    left.image(digit_png(pixel, 5), caption=f"The digit (read as {label})")
    with middle:
        st.altair_chart(_heatmap(maps[0].numpy()), width="content")
        st.caption("Saliency (gradient × input): red pixels raise the score of its reading, blue ones lower it.")
    with right:
        if 3 * size_of(trained.layers).macs * PGD_STEPS * round(0.3 / FOOL_STEP) > MAX_FOOL_MACS:
            st.info("This network is too big to attack here, one digit at a time.")
        else:
            _fool(trained.name + trained.provenance, model, pixel, label)
    st.divider()
    _curves(trained, model)


def _heatmap(values: np.ndarray, size: int = 196) -> alt.Chart:
    ys, xs = np.mgrid[0:28, 0:28]
    frame = pd.DataFrame({"row": ys.ravel(), "col": xs.ravel(), "saliency": values.ravel()})
    top = float(np.abs(values).max()) or 1.0
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.Color("saliency:Q", scale=alt.Scale(scheme="redblue", domain=[top, -top]), legend=None),
        tooltip=[alt.Tooltip("saliency:Q", format=".3f")]).properties(width=size, height=size)


def _fool(identity: str, model: torch.nn.Module, pixel: torch.Tensor, label: int) -> None:
    st.markdown("**Fool the model**")
    c1, c2 = st.columns(2)
    budget = c1.slider("Budget: the most any pixel may change", 0.01, 0.3, 0.1, 0.01, key="fool_budget")
    method = c2.radio("Attack", ["pgd", "fgsm"], horizontal=True, key="fool_method",
                      format_func=lambda m: {"pgd": "PGD (10 steps)", "fgsm": "FGSM (one step)"}[m])
    fooled = _fooled(identity, pixel.numpy().tobytes(), label, budget, method, model, pixel)
    if fooled is None:
        st.info(f"It holds: no change of at most {budget:.2f} per pixel found by {method.upper()} makes it read "
                f"another digit. Raise the budget.")
        return
    a, b = st.columns([1, 2])
    a.image(digit_png(fooled.image, 4), caption=f"read as {fooled.prediction}")
    b.markdown(f"A change of at most **{fooled.budget:.2f}** per pixel (of 1 from black to white) makes it read a "
               f"**{fooled.prediction}** ({100 * fooled.probability:.0f} %) instead of a {label}. To a person the "
               "digit has not changed.")


@st.cache_data(max_entries=64, show_spinner="Looking for the smallest change that fools it…")
def _fooled(identity: str, digit: bytes, label: int, budget: float, method: str, _model: torch.nn.Module,
            _pixel: torch.Tensor) -> Fooled | None:  # identity and digit name _model and _pixel: every tab redraws
    grid = [round(FOOL_STEP * k, 2) for k in range(1, int(round(budget / FOOL_STEP)) + 1)]
    return smallest_fooling(_model, _pixel, label, grid, method)


def _curves(trained: TrainedModel, model: torch.nn.Module) -> None:
    st.markdown(f"**How robust is it?** Accuracy on the first {CURVE_DIGITS:,} test digits against the budget of an "
                "FGSM attack.")
    frames = [pd.DataFrame({"budget": c["budgets"], "accuracy": c["accuracy"],
                            "network": f"{c['name']} · {c['params']:,} params (recorded)"})
              for c in load_curves() if c["method"] == "fgsm"]
    cost = 3 * size_of(trained.layers).macs * CURVE_DIGITS * len(BUDGETS)
    if cost <= MAX_CURVE_MACS and not data_problem():
        key = f"_curve_{trained.name}{trained.provenance}"
        st.button("Compute this network's curve", key="looks_curve", icon=":material/show_chart:",
                  on_click=st.session_state.__setitem__, args=(key, True))
        if st.session_state.get(key):
            frames.append(_curve_frame(trained.name + trained.provenance, model, trained.name))
    else:
        st.caption("This network is too big to attack a thousand digits here; its curve, if recorded, is drawn.")
    if not frames:
        st.caption(f"No curve recorded yet ({ROBUSTNESS_FILE.name}: `python -m core robustness --step 9 "
                   f"--output assets/{ROBUSTNESS_FILE.name}`).")
        return
    frame = pd.concat(frames)
    st.altair_chart(alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("budget:Q", title="budget (most change per pixel)"), y=alt.Y("accuracy:Q", title="accuracy %"),
        color=alt.Color("network:N", legend=alt.Legend(orient="bottom", title=None, labelLimit=400)),
        tooltip=["network:N", "budget:Q", alt.Tooltip("accuracy:Q", format=".1f")]).properties(height=240),
        width="stretch")
    st.caption("Recorded curves: " + "; ".join(f"{c['name']}: `{c['command']}`, {c['processor']}, {c['date']}"
                                                for c in load_curves()) if load_curves() else "")


@st.cache_data(max_entries=16, show_spinner="Attacking a thousand test digits…")
def _curve_frame(identity: str, _model: torch.nn.Module, name: str) -> pd.DataFrame:  # identity names _model
    data = load_data("cpu")
    curve = robustness(_model, to_float(data.test_images[:CURVE_DIGITS]), data.test_labels[:CURVE_DIGITS], BUDGETS)
    return pd.DataFrame({"budget": curve.budgets, "accuracy": curve.accuracy, "network": f"{name} (just computed)"})
