"""One lifecycle step, laid out so the toggle-and-see loop fits one screen (1280x720 and up):
left, the target and the controls; right, the network's figures and the charts of the live and
compared runs. The result, the analysis, the layer table and the comparison table follow below."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.challenge import CHALLENGE
from core.lifecycle import describe_step
from core.reference import StepReference
from core.spec import SpecError
from core.steps import get_step
from core.data import DataError
from ui.compare import compare_picker
from ui.controls import budget_controls, step_controls
from ui.layout import compact
from ui.link import LinkedWidgets
from ui.state import data_problem, device, references, show_data_problem
from ui.tables import layer_table
from ui.training import compare_key, compare_tables, live_area, live_batches, train_buttons


def safe(fn, *args: Any, **kwargs: Any) -> Any:
    """Run a page section; a bad setting becomes a message, never a traceback."""
    try:
        return fn(*args, **kwargs)
    except (SpecError, ValueError, DataError) as exc:
        st.error(str(exc))
        return None


@st.cache_data(max_entries=256, show_spinner=False)
def cached_description(number: int, batchnorm: bool, dropout: float, gap: bool) -> dict[str, Any]:
    return describe_step(number, batchnorm, dropout, gap)


def figures(doc: dict[str, Any]) -> None:
    ok = CHALLENGE.params_ok(doc["params"])
    badge = (f":green-badge[:material/check: under {CHALLENGE.max_params:,}]" if ok
             else f":red-badge[:material/close: over {CHALLENGE.max_params:,}]")
    st.markdown(f"**{doc['params']:,}** parameters {badge} &nbsp;·&nbsp; receptive field **{doc['rf']}×{doc['rf']}** "
                f"&nbsp;·&nbsp; **{doc['macs'] / 1e6:.2f} M** multiply-adds per image")


def render(number: int) -> None:
    step = get_step(number)
    compact()
    link = LinkedWidgets(f"step_{number}")
    st.markdown(f"#### Step {number} · {step.title}")
    left, right = st.columns([1, 2], gap="medium")
    with left:
        st.markdown("\n".join(f"- {t}" for t in step.lesson.target))
        config = safe(step_controls, number, link)
        choice = None
        if config is not None:
            problem = data_problem()
            if problem:
                show_data_problem(problem)
            else:
                choice = safe(budget_controls, config, link, device().type == "cuda")
            if choice is not None:
                train_buttons(number, choice)
    with right:
        doc = safe(cached_description, number, config.toggles.batchnorm, config.toggles.dropout,
                   config.toggles.gap) if config is not None else None
        if doc is not None:
            figures(doc)
        chosen = compare_picker(number, compare_key(number))
        live_area(number, chosen)
    link.notice()
    st.divider()
    result, layers, table, batches = st.tabs(["Result and analysis", "Layers", "Compare: what differs",
                                              "Per-batch loss"])
    with result:
        result_section(number)
    with layers:
        if doc is not None:
            layer_table(doc["layers"])
    with table:
        compare_tables(number)
    with batches:
        live_batches(number)


def result_section(number: int) -> None:
    step = get_step(number)
    lesson = step.lesson
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Result**")
        w = step.writeup
        st.markdown(f"- *The write-up reported:* {w.params} parameters, best train {w.best_train_acc} %, best test "
                    f"{w.best_test_acc} %" + (f" ({w.note})" if w.note else "") + ".")
        reference_summary(references().get(number))
    with c2:
        st.markdown("**Analysis**")
        st.markdown("\n".join(f"- {t}" for t in lesson.analysis))
    with st.expander("In depth"):
        st.markdown(lesson.in_depth)


def reference_summary(ref: StepReference | None) -> None:
    if ref is None:
        st.markdown("- *Measured here:* no reference run yet (`python -m core reproduce` makes them).")
        return
    p = ref.first.provenance
    st.markdown(f"- *Measured here* ({p.limits}): min of the last 3 epochs {ref.min_last3}, best test "
                f"{ref.best_test}; the challenge met by {sum(r.verdict(ref.params)[0] for r in ref.runs)} of "
                f"{len(ref.runs)} seed(s).")
    st.caption(f"`{p.command}` · {p.device} · torch {p.torch} · {p.date}")
    if len(ref.runs) > 1:
        st.dataframe(pd.DataFrame([{"seed": r.seed, "last 3 test %": " / ".join(f"{t:.2f}" for t in r.test_accs[-3:]),
                                    "min last 3": r.min_last3, "best": r.best_test,
                                    "met": r.verdict(ref.params)[0]} for r in ref.runs]),
                     hide_index=True, width="stretch", height="content")
