"""Home: the challenge and the lifecycle at a glance."""

import pandas as pd
import streamlit as st

from core.lifecycle import step_overview
from core.train import CHALLENGE
from pages.common import references

st.title("Shrinking an MNIST classifier: nine steps")
st.markdown(
    f"**The challenge:** fewer than **{CHALLENGE['max_params']:,} parameters**, at least "
    f"**{CHALLENGE['min_acc']} % test accuracy in each of the last {CHALLENGE['last_epochs']} epochs**, "
    f"trained in at most **{CHALLENGE['max_epochs']} epochs** — and an explanation of every step.\n\n"
    "We start from a 6.4-million-parameter network and change one thing at a time. Open a step in the "
    "sidebar, flip BatchNorm, dropout, GAP or augmentation, and watch the parameter count, the receptive "
    "field and the training curves move."
)


@st.cache_data
def overview() -> list[dict]:
    return step_overview()


refs = references()
rows = []
for s in overview():
    ref = refs.get(s["number"])
    m = ref["summary"] if ref else {}
    rows.append({
        "step": s["number"], "title": s["title"], "params": s["params"], "final RF": s["rf"],
        "seed: params": s["seed_reported"]["params"], "seed: best train %": s["seed_reported"]["best_train_acc"],
        "seed: best test %": s["seed_reported"]["best_test_acc"],
        "measured: best test %": m.get("best_test_acc"), "measured: min last 3 %": m.get("min_last3_test_acc"),
        "measured run": ref["provenance"]["label"] if ref else "not run yet",
    })
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
st.caption("*seed* columns: what the seed write-up reported (not measured here). *measured* columns: this "
           "project's reference runs (`assets/reference_runs.json`, made by `python -m core reproduce`; each "
           "step page shows the command, device, seed and date). Parameters and receptive fields are computed "
           "from the architecture specs.")
for s in overview():
    st.page_link(f"pages/step_{s['number']}.py", label=f"Step {s['number']}: {s['title']}")
