"""Home: the challenge and the lifecycle at a glance."""

import pandas as pd
import streamlit as st

from core.architecture.challenge import CHALLENGE
from core.report.markdown import step_change
from core.report.views import step_overview
from ui.router import guard
from ui.state import references

guard()

st.title("Shrinking an MNIST classifier: nine steps")
st.markdown(
    f"**The challenge:** {CHALLENGE.describe()} — and an explanation of every step.\n\n"
    "We start from a 6.4-million-parameter network and change one thing at a time. Open a step from the "
    "*Lifecycle* menu, flip BatchNorm, dropout, GAP or augmentation, and watch the parameter count, the "
    "receptive field and the training curves move. Every link carries its settings: copy it to share a setup."
)


@st.cache_data
def overview() -> list[dict]:
    return step_overview()


refs = references()
rows = []
for s in overview():
    ref = refs.get(s["number"])
    m = ref.min_last_spread if ref else None
    change = step_change(refs.get(s["number"] - 1), ref) if ref else None
    rows.append({
        "step": s["number"], "title": s["title"], "params": s["params"], "final RF": s["rf"],
        "write-up: params": s["writeup"]["params"], "write-up: best test %": s["writeup"]["best_test_acc"],
        "measured: min last 3 % (mean)": round(m.mean, 2) if m else None,
        "lowest seed": round(m.low, 2) if m else None, "highest seed": round(m.high, 2) if m else None,
        "seeds": m.n if m else 0,
        "change from the step before": change or "",
        "measured run": ref.first.provenance.limits if ref else "not run yet",
    })
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
             column_config={"params": st.column_config.NumberColumn(format="localized")})
st.caption("*write-up* columns: what the write-up this project grew from reported (not measured here). *measured* "
           "columns: this project's reference runs, one per seed (`assets/reference_runs.json`, made by "
           "`python -m core reproduce`; each step page shows the command, device and date). *min last 3*: the "
           "lowest test accuracy of a run's last three epochs, which the challenge asks to be at least "
           f"{CHALLENGE.min_acc} %. A change counts as beyond seed noise only when the two steps' seed ranges do "
           "not overlap. Parameters and receptive fields are computed from the architecture specs.")
for s in overview():
    st.page_link(f"pages/step_{s['number']}.py", label=f"Step {s['number']}: {s['title']}")
