"""Home: the challenge and the lifecycle at a glance."""

import pandas as pd
import streamlit as st

from core.architecture.challenge import CHALLENGE
from core.report.markdown import overview_rows
from core.report.views import step_overview
from ui.state import references

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


right = st.column_config.TextColumn(alignment="right")
st.dataframe(pd.DataFrame(overview_rows(overview(), references())), hide_index=True, placeholder="—",
             width="stretch",
             column_config={"params": st.column_config.NumberColumn(format="localized"),
                            "title": st.column_config.TextColumn(width=235),
                            "best %": right, "min last 3 %": st.column_config.TextColumn(width=125, alignment="right"),
                            "seeds": right})
st.caption("*write-up*: what the write-up this project grew from reported (not measured here). *best %*, *min last "
           "3 %* (both the mean over seeds) and *seeds* (how many, and the lowest and highest seed's min last 3) are "
           "this project's reference runs, one per seed (`assets/reference_runs.json`, made by `python -m core "
           "reproduce`; each step page shows the command, device and date). *min last 3*: the lowest test accuracy "
           f"of a run's last three epochs, which the challenge asks to be at least {CHALLENGE.min_acc} %. A change "
           "counts as beyond the seeds only when the two steps' seed ranges do not overlap. A *reduced* run (fewer "
           "epochs or images than the recipe, as for step 1's big network on a CPU) has no min last 3; its step page "
           "says what it ran. Parameters and receptive fields are computed from the architecture specs.")
for s in overview():
    st.page_link(f"app_pages/step_{s['number']}.py", label=f"Step {s['number']}: {s['title']}")
