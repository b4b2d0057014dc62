"""One lifecycle step: target, result, analysis, architecture with toggles, training."""

from __future__ import annotations

import streamlit as st

from core.steps import get_step
from pages.common import architecture, reference_view, safe, toggles_and_recipe, training


def step_page(number: int) -> None:
    step = get_step(number)
    st.title(f"Step {number}: {step.title}")
    target, result, analysis = st.columns(3)
    with target:
        st.subheader("Target")
        st.markdown("\n".join(f"- {t}" for t in step.target))
    with result:
        st.subheader("Result")
        s = step.seed
        st.markdown(f"*Seed write-up reported:* {s.params} parameters, best train {s.best_train_acc} %, "
                    f"best test {s.best_test_acc} %" + (f" ({s.note})" if s.note else "") + ".")
        reference_view(number)
    with analysis:
        st.subheader("Analysis")
        st.markdown("\n".join(f"- {t}" for t in step.analysis))

    st.header("Architecture")
    config = safe(toggles_and_recipe, number)
    if config is None:
        return
    safe(architecture, config)
    st.header("Train it")
    safe(training, config)
