"""The Inspect page's widgets: pick a trained network, see its mistakes, look at its feature maps
and receptive fields, try it on a drawn or uploaded digit, take it home."""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.analysis.export import FILES, config_json, model_source, weights_bytes
from core.analysis.feature_maps import FeatureMap, feature_maps
from core.analysis.predictions import (
    ModelError,
    Predictions,
    TrainedModel,
    classify,
    predict,
    reference_model,
    stored_model,
)
from core.analysis.preprocess import ImageError, canvas_to_grey, decode_upload, to_mnist
from core.words import counted
from ui.state import data_problem, load_data, references, run_store, stored_runs

CANVAS_PX = 280
MAX_CHANNELS_SHOWN = 16  # the first layers of the big early steps have hundreds of channels
GALLERY = 24
MAPS_WIDTH_PX = 820  # the maps' column at 1280 px


# --- choosing a model ---------------------------------------------------------------------------

def model_choices() -> dict[str, str]:
    """key -> label: the shipped reference models (step 9 first), then stored runs with weights."""
    refs = references()
    choices = {f"ref:{n}": f"Step {n} reference model (shipped, trained on the full MNIST)"
               for n in sorted(refs, reverse=True) if any(r.weights for r in refs[n].runs)}
    for run in stored_runs(run_store()):
        if run.has_weights:
            score = f"min(last 3) {run.min_last:.2f} %" if run.min_last is not None else counted(len(run.epochs), "epoch")
            what = f"design {run.config.net}" if run.config.is_design else f"step {run.step}"
            choices[f"run:{run.id}"] = f"Run {run.id}: {what}, seed {run.seed}, {run.limits}, {score}"
    return choices


def _load(key: str) -> TrainedModel:
    """Cheap (a few-KB file or one database read), so not cached: a deleted run is noticed at once."""
    kind, _, ident = key.partition(":")
    if kind == "ref":
        return reference_model(references()[int(ident)])
    store = run_store()
    if store is None:
        raise ModelError("the run store is not available")
    return stored_model(store, int(ident))


def model_picker() -> tuple[TrainedModel, torch.nn.Module] | None:
    choices = model_choices()
    if not choices:
        st.info("No trained network yet: the shipped reference weights are missing and no stored run kept its weights. "
                "Train any step (full or quick budget) and come back.")
        return None
    key = st.selectbox("Network", list(choices), format_func=choices.get, key="inspect_model")
    try:
        trained = _load(key)
        model = trained.network()
    except (ModelError, KeyError, ValueError, RuntimeError) as exc:
        st.error(f"This network cannot be loaded: {exc}")
        return None
    st.caption(f"Weights: {trained.provenance}")
    return trained, model


# --- pictures -----------------------------------------------------------------------------------

def digit_png(image: np.ndarray | torch.Tensor, scale: int = 3) -> np.ndarray:
    """float [28, 28] in [0, 1] (or uint8) -> an upscaled uint8 image for st.image."""
    a = image.numpy() if isinstance(image, torch.Tensor) else image
    a = a.astype(np.float32) / 255 if a.dtype == np.uint8 else a
    return np.kron((np.clip(a, 0, 1) * 255).astype(np.uint8), np.ones((scale, scale), np.uint8))


def digit_chart(image: np.ndarray, window: tuple[int, int, int, int] | None = None, size: int = 252) -> alt.LayerChart:
    """The 28x28 input as a heatmap; `window` (rows r0-r1, cols c0-c1) outlined in red."""
    ys, xs = np.mgrid[0:28, 0:28]
    frame = pd.DataFrame({"row": ys.ravel(), "col": xs.ravel(), "ink": image.ravel()})
    axis = dict(axis=None, scale=alt.Scale(domain=list(range(28))))
    base = alt.Chart(frame).mark_rect().encode(
        x=alt.X("col:O", **axis), y=alt.Y("row:O", **axis),
        color=alt.Color("ink:Q", scale=alt.Scale(scheme="greys", domain=[0, 1], reverse=True), legend=None))
    layers = [base]
    if window is not None:
        r0, r1, c0, c1 = window
        box = pd.DataFrame({"x": [c0 - 0.5], "x2": [c1 + 0.5], "y": [r0 - 0.5], "y2": [r1 + 0.5]})
        quantitative = dict(scale=alt.Scale(domain=[-0.5, 27.5]), axis=None)
        layers.append(alt.Chart(box).mark_rect(fill="#e4572e", fillOpacity=0.18, stroke="#e4572e", strokeWidth=3)
                      .encode(x=alt.X("x:Q", **quantitative), x2="x2", y=alt.Y("y:Q", scale=alt.Scale(
                          domain=[27.5, -0.5]), axis=None), y2="y2"))
        return alt.layer(*layers).resolve_scale(x="independent", y="independent").properties(width=size, height=size)
    return base.properties(width=size, height=size)


# --- mistakes -----------------------------------------------------------------------------------

@st.cache_data(max_entries=8, show_spinner="Testing the network on every test image…")
def _predictions(_model: torch.nn.Module, identity: str, folder: str) -> Predictions:  # identity names _model
    data = load_data("cpu")
    return predict(_model, data.test_images, data.test_labels)


def mistakes_tab(trained: TrainedModel, model: torch.nn.Module) -> None:
    problem = data_problem()
    if problem:
        st.warning(f"The test images are needed here. {problem}")
        return
    result = _predictions(model, trained.name + trained.provenance, str(load_data("cpu").root))
    wrong = result.mistakes()
    st.markdown(f"**{result.accuracy:.2f} %** of {len(result.labels):,} test images right, **{len(wrong)}** wrong "
                f"(one batched pass: {result.seconds:.2f} s). Click a cell to see those mistakes.")
    left, right = st.columns([3, 2])
    with left:
        matrix = result.confusion().numpy()
        frame = pd.DataFrame([{"true": t, "predicted": p, "count": int(matrix[t, p]),
                               "shown": int(matrix[t, p]) if t != p else None} for t in range(10) for p in range(10)])
        cell = alt.selection_point(name="cell", fields=["true", "predicted"], on="click")
        heat = alt.Chart(frame).mark_rect().encode(
            x=alt.X("predicted:O", title="predicted digit"), y=alt.Y("true:O", title="true digit"),
            color=alt.Color("shown:Q", title="mistakes", scale=alt.Scale(scheme="orangered")),
            opacity=alt.condition(cell, alt.value(1.0), alt.value(0.45)),
            tooltip=["true:O", "predicted:O", "count:Q"]).add_params(cell)
        text = alt.Chart(frame).mark_text(fontSize=11).encode(
            x="predicted:O", y="true:O", text="count:Q",
            color=alt.condition(alt.datum.true == alt.datum.predicted, alt.value("#1f77b4"), alt.value("black")))
        event = st.altair_chart(alt.layer(heat, text).properties(height=360, title="Confusion matrix (counts)"),
                                on_select="rerun", key="confusion", width="stretch")
    with right:
        per_class = pd.DataFrame({"digit": range(10), "accuracy %": result.per_class()})
        low = float(np.floor(per_class["accuracy %"].min() - 0.5))  # bars from 0 would all look the same
        st.altair_chart(alt.Chart(per_class, title="Accuracy per digit").mark_bar(clip=True).encode(
            x=alt.X("digit:O"), y=alt.Y("accuracy %:Q", scale=alt.Scale(domain=[low, 100])),
            tooltip=["digit:O", alt.Tooltip("accuracy %:Q", format=".2f")]).properties(height=360), width="stretch")
    picked = _clicked(event, "cell")
    true, predicted = (picked.get("true"), picked.get("predicted")) if picked else (None, None)
    if true is None:
        true = st.selectbox("Show mistakes on", [None, *range(10)],
                            format_func=lambda d: "every digit" if d is None else f"true digit {d}", key="mistake_class")
    else:
        st.caption(f"Mistakes where a {true} was read as {predicted} (click the cell again to clear).")
    indices = result.mistakes(true, predicted)
    if not indices:
        st.caption("No mistakes here.")
        return
    data = load_data("cpu")
    shown = indices[:GALLERY]
    st.image([digit_png(data.test_images[i]) for i in shown], width=84,
             caption=[f"{int(result.labels[i])}→{int(result.predicted[i])} · {100 * float(result.confidence[i]):.0f} %"
                      for i in shown])
    st.caption("Each image: true digit → what the network read, with its confidence. Test image numbers: "
               + ", ".join(f"#{i}" for i in shown) + ".")
    if len(indices) > GALLERY:
        st.caption(f"The {GALLERY} most confident of {len(indices)} mistakes.")


def _clicked(event: Any, name: str) -> dict[str, Any] | None:
    """The first point selected in an altair chart event, or None before any click."""
    try:
        points = event.selection[name]
    except (AttributeError, KeyError, TypeError):
        return None
    return points[0] if points else None


# --- feature maps -----------------------------------------------------------------------------

def pick_digit(prefix: str, source_at: Any = st, index_at: Any = st) -> np.ndarray | None:
    """A test digit by its index, or the one drawn under *Try it*: float [28, 28] in [0, 1]; None, with
    what to do, when there is none."""
    source = source_at.radio("Digit", ["test digit", "my digit (Try it)"], horizontal=True, key=f"{prefix}_source")
    if source == "test digit":
        if data_problem():
            st.warning("The test images are not available (see the Data page): draw a digit under *Try it* instead.")
            return None
        data = load_data("cpu")
        index = index_at.number_input("Test image", 0, len(data.test_images) - 1, 0, key=f"{prefix}_index")
        return data.test_images[int(index)].float().div(255).numpy()
    image = st.session_state.get("my_digit")
    if image is None:
        st.info("Draw or upload a digit under *Try it* first.")
    return image


def feature_maps_tab(trained: TrainedModel, model: torch.nn.Module) -> None:
    c1, c2, c3 = st.columns([2, 1, 3])
    image = pick_digit("fm", c1, c2)
    if image is None:
        return
    maps = feature_maps(model, trained.layers, torch.from_numpy(image))
    layer = c3.selectbox("Layer", range(len(maps)), key="fm_layer", format_func=lambda i: (
        f"{maps[i].name}: {maps[i].label} → {maps[i].activations.shape[0]} maps of "
        f"{maps[i].activations.shape[1]}x{maps[i].activations.shape[2]}, receptive field {maps[i].row.rf}"))
    fmap = maps[layer]
    left, right = st.columns([1, 3])
    with right:
        event = st.altair_chart(unit_chart(fmap), on_select="rerun", key=f"fm_chart_{layer}")
    unit = _clicked(event, "unit")
    with left:
        window = None
        if unit is not None:
            channel, i, j = int(unit["channel"]), int(unit["row"]), int(unit["col"])
            window = fmap.window(i, j)
            value = float(fmap.activations[channel, i, j])
            st.markdown(f"**{fmap.name}, map {channel}, unit ({i}, {j})**: activation {value:.2f}; it sees rows "
                        f"{window[0]}-{window[1]} and columns {window[2]}-{window[3]} of the input "
                        f"(receptive field {fmap.row.rf}, units {fmap.row.jump} px apart).")
        else:
            st.caption("Click a unit of a map: its receptive field is drawn here.")
        st.altair_chart(digit_chart(image, window))


def unit_chart(fmap: FeatureMap) -> alt.FacetChart:
    acts = fmap.activations[:MAX_CHANNELS_SHOWN]
    c, h, w = acts.shape
    ch, ys, xs = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    frame = pd.DataFrame({"channel": ch.ravel(), "row": ys.ravel(), "col": xs.ravel(),
                          "activation": acts.numpy().ravel()})
    unit = alt.selection_point(name="unit", fields=["channel", "row", "col"], on="click", empty=False)
    columns = min(c, 4 if c <= 8 else 8)  # up to eight maps: two rows of four, big enough for a projector
    cell = int(max(2, min(16, (MAPS_WIDTH_PX / columns - 12) // max(h, w))))  # eight maps fit one row
    chart = alt.Chart(frame).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.Color("activation:Q", scale=alt.Scale(scheme="viridis"), legend=None),
        stroke=alt.condition(unit, alt.value("#e4572e"), alt.value(None)),
        tooltip=["channel:Q", "row:Q", "col:Q", alt.Tooltip("activation:Q", format=".2f")],
    ).properties(width=cell * w, height=cell * h).add_params(unit)
    more = f" (the first {MAX_CHANNELS_SHOWN} of {fmap.activations.shape[0]})" if fmap.activations.shape[0] > c else ""
    return chart.facet(facet=alt.Facet("channel:O", title=f"{fmap.name} feature maps{more}"), columns=columns,
                       spacing=6)


# --- try it -------------------------------------------------------------------------------------

def try_it_tab(model: torch.nn.Module) -> None:
    draw, upload = st.columns(2)
    with draw:
        st.markdown("**Draw a digit** (white on black, as in MNIST)")
        drawn = canvas()
    with upload:
        st.markdown("**…or upload a photo or scan**")
        file = st.file_uploader("Image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"], key="upload",
                                label_visibility="collapsed")
    sources = [name for name, present in (("drawing", drawn is not None), ("upload", file is not None)) if present]
    if not sources:
        st.caption("Your digit goes through MNIST's own preparation: cropped to the ink, scaled to fit 20x20, "
                   "centred by its centre of mass in 28x28.")
        return
    use = st.radio("Read", sources, horizontal=True, key="try_source") if len(sources) == 2 else sources[0]
    try:
        grey = decode_upload(file.getvalue()) if use == "upload" else canvas_to_grey(drawn)
        digit = to_mnist(grey)
    except ImageError as exc:
        st.warning(f"Cannot read a digit from the {use}: {exc}.")
        return
    st.session_state["my_digit"] = digit
    probs = classify(model, torch.from_numpy(digit)).numpy()
    left, right = st.columns([1, 2])
    with left:
        st.image(digit_png(digit, 6), caption="What the network sees (28x28)")
    with right:
        best = int(probs.argmax())
        st.markdown(f"### It reads a **{best}** ({100 * probs[best]:.1f} %)")
        frame = pd.DataFrame({"digit": range(10), "probability": probs})
        st.altair_chart(alt.Chart(frame).mark_bar().encode(
            x="digit:O", y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.condition(alt.datum.digit == best, alt.value("#e4572e"), alt.value("#4c78a8")),
            tooltip=["digit:O", alt.Tooltip("probability:Q", format=".3f")]).properties(height=220), width="stretch")


def canvas() -> np.ndarray | None:
    """RGBA pixels of the drawing, or None while it is empty."""
    from streamlit_drawable_canvas import st_canvas

    result = st_canvas(stroke_width=18, stroke_color="#FFFFFF", background_color="#000000", height=CANVAS_PX,
                       width=CANVAS_PX, drawing_mode="freedraw", return_image_data=True, key="canvas")
    pixels = result.image_data
    if pixels is None or not result.json_data or not result.json_data.get("objects"):
        return None
    return pixels


# --- export -------------------------------------------------------------------------------------

def export_tab(trained: TrainedModel) -> None:
    st.markdown("Take this network home: its tested weights, a `model.py` that rebuilds it with nothing but PyTorch "
                "(it normalises the input itself: give it N x 1 x 28 x 28 images in [0, 1]), and its training config.")
    contents = {"weights.pt": (weights_bytes(trained), "application/octet-stream"),
                "model.py": (model_source(trained).encode(), "text/x-python"),
                "config.json": (config_json(trained).encode(), "application/json")}
    for column, name in zip(st.columns(len(FILES)), FILES):
        data, mime = contents[name]
        # no rerun on a click: a rerun while the browser fetches one file could replace the files it names
        column.download_button(name, data, file_name=name, mime=mime, icon=":material/download:", width="stretch",
                               key=f"export_{name}", on_click="ignore")
    with st.expander("model.py"):
        st.code(model_source(trained), language="python")
    st.caption("The same from a terminal: `python -m core export --step 9 --out my_model` (or `--run ID`).")
