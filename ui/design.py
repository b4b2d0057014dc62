"""The Design page: a student edits a network as a table, sees its figures on every edit, and
trains it exactly as a step is trained (same controls, queue, run store and charts).

The whole design lives in the URL: `net` (core.architecture.notation's notation, head included), `from` (the step
whose recipe, references and runs it is compared with) and the step pages' own controls."""

from __future__ import annotations

import math
import re
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from core.architecture.notation import (
    MAX_CHANNELS,
    MAX_KERNEL,
    MAX_TOKENS,
    Net,
    NetError,
    format_layer,
    format_net,
    net_of,
    parse_net,
    repair_net,
)
from core.architecture.receptive_field import rf_table
from core.architecture.size import check_size
from core.architecture.spec import Layer, SpecError, takes
from core.report.views import describe_config
from core.serving.limits import server_limits
from core.training.config import TrainConfig
from core.training.steps import FINAL_STEP, STEPS, get_step
from ui.classroom import plain
from ui.compare import compare_picker
from ui.controls import budget_controls, config_controls, link_params
from ui.inspect import _clicked, digit_chart
from ui.link import LinkedWidgets
from ui.state import data_problem, device, load_data, show_data_problem, warm_workers
from ui.step_page import figures
from ui.tables import layer_table
from ui.training import (
    LiveView,
    compare_key,
    compare_tables,
    inside_tab,
    live_batches,
    train_buttons,
)

PAGE = "design"
DEFAULT_STEP = FINAL_STEP  # a new design starts from the final step's network and recipe
KINDS = {"conv": "convolution", "1x1": "1x1 convolution", "depthwise": "depthwise convolution", "max": "max pool",
         "avg": "average pool"}
EMPTY = Net((), gap=True)  # the empty stack: just the head
CONTROL_KEYS = tuple(k for k in link_params(TrainConfig.for_step(DEFAULT_STEP), "quick") if k not in ("net", "from"))


# --- the stack as a table ------------------------------------------------------------------------

COLUMNS = {"channels": "out_channels", "kernel": "kernel_size", "stride": "stride", "padding": "padding",
           "dilation": "dilation", "groups": "groups", "bias": "bias"}  # the table's column -> the Layer field it edits


def _kind(layer: Layer) -> str:
    if layer.type == "conv":
        if layer.groups > 1 and layer.groups == layer.out_channels:
            return "depthwise"
        return "1x1" if layer.kernel_size == 1 else "conv"
    return "max" if layer.type == "maxpool" else "avg"


def _cell(layer: Layer, field: str) -> int | None:
    """A layer's value for one column; blank (None) where its type has no such field."""
    if not takes(layer.type, field):
        return None
    return layer.effective_stride if field == "stride" else getattr(layer, field)


def table_of(body: tuple[Layer, ...]) -> pd.DataFrame:
    """One row per layer, numbered from 1 as the messages about them are."""
    rows = [{"layer": _kind(layer)} | {column: _cell(layer, field) for column, field in COLUMNS.items()}
            for layer in body]
    frame = pd.DataFrame(rows, columns=["layer", *COLUMNS])
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


def _ticked(value: Any) -> bool:
    """A checkbox cell: ticked only when it holds True (a blank cell may read as NaN, which is truthy)."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def _number(value: Any, default: int) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return int(value)


def token_of(row: dict[str, Any]) -> str | None:
    """One table row -> its token in the notation (None for a row whose kind is not chosen yet).
    Blank cells take the defaults: 8 channels, a 3x3 convolution or 2x2 pool, stride 1 (pools:
    their size), no padding, no dilation, one group, no bias."""
    kind = row.get("layer")
    if kind not in KINDS:
        return None
    padding = _number(row.get("padding"), 0)
    if kind in ("conv", "1x1", "depthwise"):
        kernel = 1 if kind == "1x1" else _number(row.get("kernel"), 3)
        channels = _number(row.get("channels"), 8)
        groups = channels if kind == "depthwise" else _number(row.get("groups"), 1)
        layer = Layer("conv", out_channels=channels, kernel_size=kernel,
                      stride=_number(row.get("stride"), 1), padding=padding, dilation=_number(row.get("dilation"), 1),
                      groups=groups, bias=_ticked(row.get("bias")))
    else:
        kernel = _number(row.get("kernel"), 2)
        layer = Layer("maxpool" if kind == "max" else "avgpool", kernel_size=kernel,
                      stride=_number(row.get("stride"), kernel), padding=padding)
    return format_layer(layer)


def net_text(frame: pd.DataFrame, gap: bool, head_bias: bool) -> tuple[str, list[int], list[int]]:
    """The edited table as a network string; the table row of each token; the rows left out
    because their kind is blank."""
    tokens, rows, blank = [], [], []
    for number, row in enumerate(frame.to_dict("records"), start=1):
        token = token_of(row)
        if token is None:
            blank.append(number)
        else:
            tokens.append(token)
            rows.append(number)
    return ",".join(tokens + [("G" if gap else "F") + ("b" if head_bias else "")]), rows, blank


def _in_rows(message: str, rows: list[int]) -> str:
    """A notation error ('layer 3 (...)') told in the editor's rows ('row 4 (...)')."""
    match = re.match(r"layer (\d+) ", message)
    if match is None:
        return message
    index = int(match[1])
    where = f"row {rows[index - 1]} " if index <= len(rows) else "the head "
    return where + message[match.end():]


def stack_editor(base: Net, version: int) -> pd.DataFrame:
    return st.data_editor(
        table_of(base.body), num_rows="dynamic", hide_index=False, placeholder="—", key=f"design_editor_{version}",
        width="stretch",
        column_config={
            "layer": st.column_config.SelectboxColumn("layer", options=list(KINDS), required=True,
                                                      help="conv: a convolution (BatchNorm, ReLU and dropout follow "
                                                           "it as the toggles say); 1x1: a 1x1 convolution; "
                                                           "depthwise: one window per channel (as many channels as "
                                                           "the layer before; follow it with a 1x1 to mix them); max "
                                                           "/ avg: a pool"),
            "channels": st.column_config.NumberColumn("channels", min_value=1, max_value=MAX_CHANNELS, step=1,
                                                      help="output channels (convolutions)"),
            "kernel": st.column_config.NumberColumn("kernel", min_value=1, max_value=MAX_KERNEL, step=1),
            "stride": st.column_config.NumberColumn("stride", min_value=1, max_value=MAX_KERNEL, step=1),
            "padding": st.column_config.NumberColumn("padding", min_value=0, max_value=MAX_KERNEL, step=1),
            "dilation": st.column_config.NumberColumn("dilation", min_value=1, max_value=8, step=1),
            "groups": st.column_config.NumberColumn("groups", min_value=1, max_value=MAX_CHANNELS, step=1,
                                                    help="split the channels into groups convolved apart; as many "
                                                         "as the channels in and out = depthwise"),
            "bias": st.column_config.CheckboxColumn("bias", help="add a bias per output channel (BatchNorm, when "
                                                                 "on, has its own shift, so most layers go without)"),
        })


# --- where the design comes from ---------------------------------------------------------------

def origin_step(link: LinkedWidgets) -> int:
    """The `from` step of the link (its recipe, references and runs), else the final step."""
    raw = st.query_params.get("from")
    number = int(raw) if raw is not None and raw.isdigit() and 1 <= int(raw) <= len(STEPS) else DEFAULT_STEP
    link.shown["from"] = str(number)  # a `from` that is not a step is reported with the other link values
    return number


def _start_from(choice: str) -> None:
    """A fresh stack: a step's network (and that step's recipe and toggles), or an empty one."""
    st.query_params.clear()
    for key in CONTROL_KEYS:  # the controls start again from the new network's step
        st.session_state.pop(key, None)
    if choice == "empty":
        st.query_params.update({"net": EMPTY.text, "from": str(DEFAULT_STEP)})
    else:
        number = int(choice)
        step = get_step(number)
        st.query_params.update({"net": format_net(net_of(step.spec, step.toggles.gap)), "from": str(number)})
    st.session_state.pop("design_written", None)


def base_net(origin: int) -> Net:
    """The network the editor starts from: the link's (repaired if need be, with a notice of what
    changed) when the page was opened or a link followed, else the one being edited."""
    raw = st.query_params.get("net")
    if raw is not None and raw == st.session_state.get("design_written"):
        return st.session_state["design_base"]
    step = get_step(origin)
    fallback = net_of(step.spec, step.toggles.gap)
    if raw is None:
        net = fallback
    else:
        try:
            net = parse_net(raw)
        except NetError as exc:
            net, changes = repair_net(raw, fallback)
            st.toast(plain(f"This link's network was not valid ({exc}), so the nearest valid design is shown: "
                           + "; ".join(changes) + f". Now: {net.text}"), icon=":material/link_off:", duration="long")
    st.session_state["design_base"] = net
    st.session_state["design_version"] = st.session_state.get("design_version", 0) + 1
    st.session_state["design_written"] = net.text
    return net


# --- the page --------------------------------------------------------------------------------------

@st.cache_data(max_entries=256, show_spinner=False)
def cached_config_doc(net: str, batchnorm: bool, dropout: float) -> dict[str, Any]:
    return describe_config(TrainConfig.for_step(DEFAULT_STEP, net=net, batchnorm=batchnorm, dropout=dropout))


def render() -> None:
    link = LinkedWidgets(PAGE)
    st.markdown("#### Design a network · fewer than 10,000 parameters, 99.4 % in each of the last 3 epochs")
    origin = origin_step(link)
    base = base_net(origin)
    version = st.session_state.get("design_version", 0)
    left, right = st.columns([1, 1], gap="medium")
    with left:
        s1, s2 = st.columns([3, 1], vertical_alignment="bottom")
        start = s1.selectbox("Start from", [str(s.number) for s in reversed(STEPS)] + ["empty"], key="design_start",
                             format_func=lambda c: "an empty stack" if c == "empty" else
                             f"step {c}: {get_step(int(c)).title}")
        s2.button("Start", on_click=_start_from, args=(start,), width="stretch",
                  help="Replace the stack below with this step's network (and its recipe)")
        edited = stack_editor(base, version)
        head_bias = base.head_bias
        config, problem = None, None
        text, rows, blank = net_text(edited, base.gap, head_bias)
        if blank:
            st.caption(f"{'Row' if len(blank) == 1 else 'Rows'} {', '.join(map(str, blank))}: choose a layer kind; "
                       "left out until then.")
        try:
            defaults = TrainConfig.for_step(origin, net=text)
            check_size(defaults.layers())  # a link's network is sized before anything builds it
        except (NetError, SpecError) as exc:
            problem = _in_rows(str(exc), rows)
        if problem is None:
            config = config_controls(defaults, link)
            try:
                check_size(config.layers())  # the toggles add layers: sized again as set
            except SpecError as exc:
                problem, config = str(exc), None
    link.shown["net"] = link.asked.get("net", "")  # a bad `net` has its own notice (base_net)
    if config is not None:
        # the link always holds the design as shown (the head follows the GAP toggle)
        st.query_params["net"] = config.net
        st.session_state["design_written"] = config.net
    with right:
        if problem is not None:
            st.error(f"This network cannot be built: {problem}")
        else:
            doc = cached_config_doc(config.net, config.toggles.batchnorm, config.toggles.dropout)
            figures(doc)
            st.caption(f"`{config.net}` · BatchNorm {'on' if config.toggles.batchnorm else 'off'}, dropout "
                       f"{config.toggles.dropout:g} · recipe and references of step {origin} · at most "
                       f"{MAX_TOKENS} layers of at most {MAX_CHANNELS:,} channels")
            layer_table(doc["layers"], height=260, geometry=False)
    if config is None:
        link.notice()
        return
    st.divider()
    train_col, chart_col = st.columns([1, 2], gap="medium")
    with train_col:
        data_issue = data_problem()
        if data_issue:
            show_data_problem(data_issue)
        else:
            warm_workers()
            choice = budget_controls(config, link, device().type == "cuda")
            train_buttons(PAGE, choice)
            st.caption(f"On this server {server_limits().describe()}.")
    with chart_col:
        chosen = compare_picker(origin, compare_key(PAGE), default=TrainConfig.for_step(origin))
        live = LiveView(PAGE, chosen)
        live.draw()
    unit_tab, table_tab, batch_tab, inside = st.tabs(["Where does one unit look?", "Compare: what differs",
                                                      "Per-batch loss", "Inside the network"])
    with unit_tab:
        unit_window(config)
    with table_tab:
        compare_tables(PAGE)
    with batch_tab:
        live_batches(PAGE)
    with inside:
        inside_tab(PAGE)
    link.notice()  # after every linked widget (the budget's too) has read its value
    live.follow()


# --- the receptive field of a clicked unit ---------------------------------------------------------

def unit_window(config: TrainConfig) -> None:
    rows = [r for r in rf_table(config.layers()) if r.layer.type in ("conv", "maxpool", "avgpool", "gap")]
    names = [f"{r.index}: {r.layer.label()} → {r.out_shape[1]}×{r.out_shape[2]}, receptive field {r.rf}" for r in rows]
    c1, c2 = st.columns([3, 1])
    # the deepest layer that still has a grid to click (after the GAP every layer is one unit seeing everything)
    deepest = max((i for i, r in enumerate(rows) if r.out_shape[1] * r.out_shape[2] > 1), default=len(rows) - 1)
    pick = c1.selectbox("Layer", range(len(rows)), index=deepest, key="design_unit_layer",
                        format_func=lambda i: names[i])
    row = rows[pick]
    image = _digit(c2)
    grid_col, digit_col = st.columns([1, 1])
    with grid_col:
        event = st.altair_chart(unit_grid(row.out_shape[1], row.out_shape[2]), on_select="rerun",
                                key=f"design_grid_{pick}_{row.out_shape[1]}")
    unit = _clicked(event, "unit")
    i, j = (int(unit["row"]), int(unit["col"])) if unit is not None else (row.out_shape[1] // 2, row.out_shape[2] // 2)
    window = row.window(i, j, 28)
    with digit_col:
        st.altair_chart(digit_chart(image, window))
    st.markdown(f"Unit ({i}, {j}) of layer {row.index} ({row.layer.label()}) sees rows {window[0]}-{window[1]} and "
                f"columns {window[2]}-{window[3]} of the digit: a {row.rf}×{row.rf} window, units {row.jump} px apart"
                + ("" if unit is not None else " (click a unit of the grid to move it)") + ".")


def unit_grid(h: int, w: int, size: int = 252) -> alt.Chart:
    ys, xs = np.mgrid[0:h, 0:w]
    frame = pd.DataFrame({"row": ys.ravel(), "col": xs.ravel()})
    unit = alt.selection_point(name="unit", fields=["row", "col"], on="click", empty=False)
    cell = max(4, size // max(h, w))
    return alt.Chart(frame, title="the layer's grid of units: click one").mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.condition(unit, alt.value("#e4572e"), alt.value("#9ecae1")),
        tooltip=["row:Q", "col:Q"]).properties(width=cell * w, height=cell * h).add_params(unit)


def _digit(where) -> np.ndarray:
    """A real test digit when MNIST is there, else a drawn stroke (the windows do not depend on it)."""
    if data_problem() is None:
        try:
            data = load_data("cpu")
            index = where.number_input("Test digit", 0, len(data.test_images) - 1, 7, key="design_digit")
            return data.test_images[int(index)].float().div(255).numpy()
        except Exception as exc:  # data trouble must not hide the design
            where.caption(f"(MNIST not loaded: {exc})")
    canvas = np.zeros((28, 28), np.float32)
    canvas[6:22, 13:16] = 1.0
    return canvas
