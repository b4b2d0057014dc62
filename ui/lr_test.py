"""The learning-rate range test in a recipe panel (core.analysis.lr_find): the loss as the rate rises,
where it falls fastest, and the recipe's own peak beside it.

It trains in the web server, so it is sized first (the cost model's time for its batches, refused
above LR_TEST_MAX_S), one test runs at a time for the whole server, and each setting's curve is
kept for every session: a class pressing it on the same step computes it once."""

from __future__ import annotations

import threading

import altair as alt
import pandas as pd
import streamlit as st

from core.analysis.lr_find import BATCHES, LR_MAX, LR_MIN, RangeTest, lr_find
from core.architecture.size import size_of
from core.serving.limits import training_memory_bytes
from core.training.budget import modelled_speed
from core.training.config import TrainConfig
from ui.state import data_problem, load_data, run_queue

LR_TEST_MAX_S = 30.0  # modelled seconds a test may take in the web server
_one_at_a_time = threading.Lock()


def lr_test_panel(config: TrainConfig, page: str) -> None:
    queue = run_queue()  # its limits, and its pace: this server's measured speed against the cost model's CPU
    # the test trains on this machine's CPU: a slower server than the model's takes longer; a faster pace
    # may be a GPU's, which the test does not use
    seconds = BATCHES * config.recipe.batch_size * modelled_speed(config).train_s * max(1.0, queue.pace())
    st.caption(f"Trains {BATCHES} batches from the network's first weights while the learning rate rises from "
               f"{LR_MIN:g} to {LR_MAX:g}, each batch a little higher (about {seconds:.0f} s). Where the loss falls "
               "fastest is a good peak for one-cycle; where it blows up is too far.")
    if seconds > LR_TEST_MAX_S:
        st.info(f"This network would take about {seconds:.0f} s, more than the {LR_TEST_MAX_S:.0f} s the app gives "
                f"the test; the command line has no such limit: `python -m core lr-find --step {config.step}"
                + (f" --net {config.net}`." if config.is_design else "`."))
        return
    memory = training_memory_bytes(config)
    if queue.limits is not None and memory > queue.limits.max_memory_gb * 2**30 or size_of(config.layers()).problem():
        st.info("This network is too big to train here (its memory or size is over the server's limits).")
        return
    if data_problem():
        st.caption("The test needs MNIST on this server (see the Train column).")
        return
    key, setting = f"_lr_test_{page}", _setting(config)
    st.button("Find the learning rate", key=f"lr_find_{page}", icon=":material/query_stats:",
              on_click=st.session_state.__setitem__, args=(key, setting))
    if st.session_state.get(key) == setting:  # pressed for these settings: a change waits for the next press
        with st.spinner("Training at a rising learning rate…"):
            result = _curve(*setting)
        if isinstance(result, str):
            st.warning(result)
        else:
            _chart(result, config.recipe.lr)


def _setting(config: TrainConfig) -> tuple:
    """What the curve depends on (the seed fixed at 1): a hashable key, shared by every session."""
    r = config.recipe
    return (config.step, config.net, config.toggles.batchnorm, config.toggles.dropout, r.optimizer, r.lr,
            r.momentum, r.weight_decay, r.batch_size)


@st.cache_data(max_entries=64, show_spinner=False)
def _curve(step: int, net: str, batchnorm: bool, dropout: float, optimizer: str, lr: float, momentum: float,
           weight_decay: float, batch_size: int) -> RangeTest | str:
    config = TrainConfig.for_step(step, net=net, batchnorm=batchnorm, dropout=dropout, optimizer=optimizer, lr=lr,
                                  momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, seed=1,
                                  device="cpu")
    with _one_at_a_time:  # a class pressing at once: one test trains, the others wait for their turn
        try:
            return lr_find(config, load_data("cpu"))
        except ValueError as exc:  # the loss was not a number from the first batch on
            return f"The test could not run: {exc}."


def _chart(result: RangeTest, recipe_lr: float) -> None:
    frame = pd.DataFrame({"learning rate": result.lrs, "loss (smoothed)": result.losses})
    x = alt.X("learning rate:Q", scale=alt.Scale(type="log"))
    line = alt.Chart(frame).mark_line().encode(x=x, y=alt.Y("loss (smoothed):Q", scale=alt.Scale(zero=False)))
    marks = pd.DataFrame({"learning rate": [result.suggested, recipe_lr],
                          "mark": [f"steepest fall: {result.suggested:.3g}", f"the recipe's peak: {recipe_lr:g}"]})
    rules = alt.Chart(marks).mark_rule(strokeWidth=2, strokeDash=[5, 3]).encode(
        x=x, color=alt.Color("mark:N", scale=alt.Scale(range=["#e4572e", "#6c6c6c"]),
                             legend=alt.Legend(orient="top", title=None, labelLimit=300)))
    st.altair_chart((line + rules).properties(height=170), width="stretch")
    st.caption(f"{len(result.lrs)} batches in {result.seconds:.1f} s; lowest loss at {result.lowest:.3g}"
               + (f", blew up at {result.diverged_at:.3g}" if result.diverged_at else ", never blew up") + ".")
