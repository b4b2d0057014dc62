"""Receptive-field calculator: edit any layer stack, see sizes, jumps and RFs, and draw one
output unit's window over a real digit."""

import math

import numpy as np
import pandas as pd
import streamlit as st

from core.lifecycle import describe_stack
from core.rf import rf_table
from core.spec import LAYER_TYPES, SpecError, layers_from_dicts
from ui.state import data_problem, device, load_data
from ui.tables import layer_table
from ui.router import guard

guard()

st.title("Receptive-field calculator")
st.markdown("Each row is a layer. Blank cells take the defaults (conv 3×3 stride 1, pool 2×2 stride = kernel). "
            "Receptive field, jump and output size are computed with the same code the step pages use.")

DEFAULT = pd.DataFrame([
    {"type": "conv", "out_channels": 8, "kernel_size": 3, "stride": None, "padding": 0, "dilation": 1},
    {"type": "conv", "out_channels": 16, "kernel_size": 3, "stride": None, "padding": 0, "dilation": 1},
    {"type": "maxpool", "out_channels": None, "kernel_size": 2, "stride": None, "padding": 0, "dilation": None},
    {"type": "conv", "out_channels": 8, "kernel_size": 1, "stride": None, "padding": 0, "dilation": 1},
    {"type": "conv", "out_channels": 12, "kernel_size": 3, "stride": None, "padding": 0, "dilation": 1},
    {"type": "conv", "out_channels": 16, "kernel_size": 3, "stride": None, "padding": 0, "dilation": 1},
    {"type": "conv", "out_channels": 12, "kernel_size": 3, "stride": None, "padding": 0, "dilation": 1},
    {"type": "gap", "out_channels": None, "kernel_size": None, "stride": None, "padding": None, "dilation": None},
])

size = st.number_input("Input size (pixels per side)", 1, 256, 28)
edited = st.data_editor(
    DEFAULT, num_rows="dynamic", hide_index=True, key="rf_stack",
    column_config={
        "type": st.column_config.SelectboxColumn("type", options=list(LAYER_TYPES), required=True),
        "out_channels": st.column_config.NumberColumn("out channels", min_value=1, max_value=4096, step=1),
        "kernel_size": st.column_config.NumberColumn("kernel", min_value=1, max_value=64, step=1),
        "stride": st.column_config.NumberColumn("stride", min_value=1, max_value=16, step=1),
        "padding": st.column_config.NumberColumn("padding", min_value=0, max_value=32, step=1),
        "dilation": st.column_config.NumberColumn("dilation", min_value=1, max_value=16, step=1),
    },
)


def rows_to_dicts(frame: pd.DataFrame) -> list[dict]:
    stack = []
    for record in frame.to_dict("records"):
        kind = record.get("type")
        if not isinstance(kind, str) or not kind:
            continue  # an empty row the user has just added
        entry = {"type": kind}
        for field in ("out_channels", "kernel_size", "stride", "padding", "dilation"):
            value = record.get(field)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                if kind in ("conv",) or (kind in ("maxpool", "avgpool") and field != "out_channels" and
                                         field != "dilation") or (kind == "linear" and field == "out_channels"):
                    entry[field] = int(value)
        stack.append(entry)
    return stack


stack = rows_to_dicts(edited)
try:
    doc = describe_stack(stack, int(size))
    layers = layers_from_dicts(stack)
except SpecError as exc:
    st.error(f"This stack cannot be built: {exc}")
    st.stop()

c1, c2 = st.columns(2)
c1.metric("Parameters (1 input channel)", f"{doc['params']:,}")
c2.metric("Final receptive field", f"{doc['rf']}×{doc['rf']}")
layer_table(doc["layers"])

st.header("Where does one output unit look?")
rows = [r for r in rf_table(layers, int(size)) if r.layer.type not in ("flatten", "linear", "softmax")]
names = [f"{r.index}: {r.layer.label()} → {r.out_shape[1]}×{r.out_shape[2]}" for r in rows]
choice = st.selectbox("Layer", range(len(rows)), index=len(rows) - 1, format_func=lambda i: names[i])
row = rows[choice]
u1, u2 = st.columns(2)
i = u1.slider("Unit row", 0, row.out_shape[1] - 1, row.out_shape[1] // 2) if row.out_shape[1] > 1 else 0
j = u2.slider("Unit column", 0, row.out_shape[2] - 1, row.out_shape[2] // 2) if row.out_shape[2] > 1 else 0
r0, r1, c0, c1_ = row.window(i, j, int(size))
start = row.start + i * row.jump, row.start + j * row.jump
st.markdown(f"Unit ({i}, {j}) of layer {row.index} sees input rows {r0}–{r1} and columns {c0}–{c1_} "
            f"(a {row.rf}×{row.rf} window starting at {start}; parts outside the image are padding).")


def digit_image() -> tuple[np.ndarray, str]:
    if int(size) == 28 and data_problem() is None:
        try:
            data = load_data(device())
            index = st.slider("Test digit", 0, len(data.test_images) - 1, 7)
            return data.test_images[index].cpu().numpy(), f"MNIST test image {index}"
        except Exception as exc:  # data trouble must not hide the calculator
            st.caption(f"(could not load MNIST: {exc})")
    canvas = np.zeros((int(size), int(size)), np.uint8)
    canvas[int(size) // 4: 3 * int(size) // 4, int(size) // 2 - 1: int(size) // 2 + 2] = 255
    return canvas, "a drawn stroke (MNIST not loaded, or input size is not 28)"


image, caption = digit_image()
scale = max(1, 280 // int(size))
rgb = np.repeat(np.repeat(np.stack([image] * 3, -1), scale, 0), scale, 1).astype(np.float32)
y0, y1, x0, x1 = r0 * scale, (r1 + 1) * scale, c0 * scale, (c1_ + 1) * scale
rgb[y0:y1, x0:x1] = rgb[y0:y1, x0:x1] * 0.6 + np.array([255, 80, 80]) * 0.4
for edge in (slice(y0, min(y0 + 2, y1)), slice(max(y1 - 2, y0), y1)):
    rgb[edge, x0:x1] = [255, 0, 0]
for edge in (slice(x0, min(x0 + 2, x1)), slice(max(x1 - 2, x0), x1)):
    rgb[y0:y1, edge] = [255, 0, 0]
st.image(rgb.clip(0, 255).astype(np.uint8), caption=caption)
