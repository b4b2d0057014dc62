"""Every stored run: filter, inspect, delete, download the epochs as CSV; a run training now, live."""

import re

import pandas as pd
import streamlit as st

from core.serving.store import SOURCES, STATUSES, StoreError, describe_db, epochs_csv, public_db_label
from core.training.steps import STEPS
from core.words import counted
from ui.classroom import is_teacher, may_change
from ui.controls import link_params
from ui.inside import draw_inside, metric_choice, stored_samples
from ui.charts import batch_chart
from ui.state import run_queue, run_store, runs_db, stored_runs

st.markdown("#### Runs")
store = run_store()
where = describe_db(runs_db()) if is_teacher() else public_db_label(runs_db())
st.caption(f"Run store: `{where}` (the teacher changes it on the *Data and run history* page). "
           "A run whose process ended before the run did is shown as *interrupted*, with the epochs it finished.")
if store is None:
    st.stop()

def delete_runs(store, chosen) -> None:
    try:
        for r in chosen:
            if may_change(r.tags.session):  # checked again at the click
                store.delete_run(r.id)
    except StoreError as exc:
        st.session_state["runs_delete_error"] = str(exc)
    st.session_state.pop("runs_table", None)  # the selection named rows that are gone


c1, c2, c3 = st.columns(3)
step = c1.selectbox("Step", [None] + [s.number for s in STEPS], format_func=lambda n: "all" if n is None else f"step {n}")
status = c2.selectbox("Status", [None, *STATUSES], format_func=lambda s: "all" if s is None else s)
source = c3.selectbox("Source", [None, *SOURCES], format_func=lambda s: "all" if s is None else s)
runs = stored_runs(store, step=step, status=status, source=source)
if not runs:
    st.info("No runs match. Train one on any step page (or with `python -m core train`).")
    st.stop()

st.caption("Click rows to select runs: download their epochs, delete them, or open one in **Design** (its network "
           "and recipe, ready to change).")
frame = pd.DataFrame([r.summary() for r in runs])
frame["net"] = frame["net"].replace("", "the step's own")  # the summary leaves a step's own network blank
column = st.column_config
picked = st.dataframe(frame, hide_index=True, placeholder="—", width="stretch", on_select="rerun",
                      selection_mode="multi-row", key="runs_table",
                      column_config={"net": column.TextColumn("network", help="a design's network, or the step's own"),
                                     "best_test_acc": column.NumberColumn("best test %", format="%.2f"),
                                     "min_last3_test_acc": column.NumberColumn("min last 3 %", format="%.2f"),
                                     "params": column.NumberColumn("params", format="localized"),
                                     "label": column.TextColumn("limits"), "reason": column.TextColumn("why it ended")})
chosen = [runs[i] for i in picked.selection.rows] if picked.selection.rows else []
target = chosen or runs
st.download_button(f"Download the epochs of {'the selected' if chosen else 'all listed'} runs (CSV)",
                   epochs_csv(target), file_name="runs_epochs.csv", mime="text/csv", icon=":material/download:",
                   on_click="ignore")  # a download needs no rerun of the page
if chosen:
    # a student deletes only their own session's runs; the teacher's key (when the server has one) any
    others = [r for r in chosen if not may_change(r.tags.session)]
    if others:
        st.caption(f"{len(others)} of the selected runs belong to other browser sessions: only their own session or "
                   "the teacher (with the key, on the Class board) may delete them.")
    st.button(f"Delete {counted(len(chosen), 'selected run')}", icon=":material/delete:", disabled=bool(others),
              on_click=delete_runs, args=(store, chosen))
if "runs_delete_error" in st.session_state:  # shown whatever is selected: a refused delete clears the selection too
    st.error(st.session_state.pop("runs_delete_error"))

@st.fragment(run_every=1.0)
def watch_live(run_id: int) -> None:
    """A run training now, here or (on a cluster) on any server of the class: its batches as they come."""
    live = run_queue().live(run_id, runs_db())
    if live is None or not live["batches"]:
        st.caption(f"Run {run_id} has no live curve here: it is not training on this server (or, on a cluster, on "
                   "any of its servers), or its first batches have not come yet. A run's epochs appear in the "
                   "table as they end.")
        return
    st.progress(min(1.0, float(live["batches"][-1].get("progress", live["progress"]) or 0.0)),
                text=f"Run {run_id}, live: {live['status']} · {len(live['epochs'])} epoch(s) done · {live['device']}")
    batch_chart(live["batches"], title=f"run {run_id}: training loss per batch (live)")


watched = st.query_params.get("watch", "")  # a link to watch one run live: /runs?watch=RUN_ID
if watched and not re.fullmatch(r"[0-9]{1,12}", watched):
    st.warning("The link's run number is not a number; pick a run in the table instead.")
elif watched and int(watched) not in {r.id for r in chosen}:
    watch_live(int(watched))
for r in (r for r in chosen[:3] if r.status == "running"):
    watch_live(r.id)
if chosen:
    for r in chosen[:3]:
        st.page_link("app_pages/design.py", label=f"Open run {r.id}'s network and recipe in Design",
                     icon=":material/design_services:",
                     query_params=link_params(r.config, "full" if r.limits.startswith("full") else "quick"))
        with st.expander(f"Run {r.id}: step {r.step}, seed {r.seed}, {r.status}"):
            st.json(r.config.as_dict(), expanded=False)
            if r.reason:
                st.caption(r.reason)

st.markdown("##### Inside the network")
if not chosen:
    st.caption("Select one or two runs in the table above to see what each layer's activations, gradients and updates "
               "did while it trained, side by side on one colour scale (step 4 with BatchNorm on and off, say).")
else:
    if len(chosen) > 2:
        st.caption("The first two selected runs, side by side.")
    metric = metric_choice("runs_inside_metric")
    draw_inside([(f"run {r.id} · step {r.step}, seed {r.seed}" + ("" if r.config.toggles.batchnorm else ", no BatchNorm"),
                  stored_samples(store, r.id)) for r in chosen[:2]], metric)
