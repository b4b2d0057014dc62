"""Settings: where MNIST lives, whether the app may download it, and where runs are kept."""

import streamlit as st

from core.serving.cluster import ClusterChoice
from core.serving.store import describe_db, public_db_label
from core.serving.store_backends import is_postgres
from core.training.data import FILES, raw_dir, resolve_root
from core.words import counted
from ui.classroom import is_teacher, teacher_key
from ui.state import (
    allow_download,
    change_setting,
    cluster_choice,
    data_dir,
    data_problem,
    hide_cluster_address,
    run_queue,
    run_store,
    runs_db,
    set_cluster_choice,
    show_data_problem,
)

st.markdown("#### Data and run history")
teacher = is_teacher()
st.caption("These settings are the server's, one for every browser: set when it starts (`MNIST_DIR`, "
           "`MNIST_DOWNLOAD=0`, `LIFECYCLE_RUNS`)" + (", and changed here by the teacher." if teacher_key() else
                                                     ", and changed here.") +
           ("" if teacher else " Only the teacher changes them (the teacher's key is on the Class board)."))


def apply_setting(name: str, widget: str) -> None:
    refused = change_setting(name, st.session_state[widget])
    st.session_state[f"_refused_{name}"] = refused
    if refused is None and name == "runs_db":
        st.session_state.pop("_runs_db_widget", None)  # never keep a URL with its password in the session


st.markdown("The app reads MNIST's four IDX files from `<folder>/MNIST/raw/` (the layout "
            "`torchvision.datasets.MNIST` downloads into, and the files it would read).")
if teacher:
    st.text_input("MNIST folder", value=data_dir(), key="_data_dir_widget", on_change=apply_setting,
                  args=("data_dir", "_data_dir_widget"))
    st.checkbox("Download MNIST if missing (needs internet)", value=allow_download(), key="_download_widget",
                on_change=apply_setting, args=("allow_download", "_download_widget"))
else:
    st.markdown(f"Downloading MNIST when it is missing: **{'on' if allow_download() else 'off'}**.")

problem = data_problem()
if problem is None:
    where = raw_dir(resolve_root(data_dir())).resolve() if teacher else "the server's MNIST folder"
    st.success(f"MNIST found in {where}.")
else:
    show_data_problem(problem)
    if teacher:
        st.markdown("**Offline:** copy these four files (or their `.gz` versions) into "
                    f"`{raw_dir(resolve_root(data_dir())).resolve()}`:\n" + "\n".join(f"- `{name}`" for name in FILES))

st.markdown("##### Run history")
st.markdown("Every run started here or with `python -m core train` is kept in one store: its settings, "
            "every epoch as it finishes, and the weights it was tested with. Default: the SQLite file "
            "`runs/runs.sqlite3` in the project folder, or `$LIFECYCLE_RUNS`. Several app servers or a Ray "
            "cluster of several machines share one PostgreSQL database (`LIFECYCLE_RUNS=postgresql://...` when "
            "the server starts).")
if teacher:
    # Never the current value: a postgresql:// URL carries its password, and a widget's value is sent to
    # the browser even when it is masked on screen.
    st.text_input("Use another run store: a new or existing `.sqlite3` file, or a postgresql:// URL", value="",
                  key="_runs_db_widget", on_change=apply_setting, args=("runs_db", "_runs_db_widget"),
                  placeholder="runs/another.sqlite3", type="password")
refused = st.session_state.get("_refused_runs_db")
if refused:
    st.error(f"That run store was refused: {refused}")
if run_store() is not None:
    shown = describe_db(runs_db()) if teacher and not is_postgres(runs_db()) else public_db_label(runs_db())
    st.success(f"Runs are recorded in {shown}.")

st.markdown("##### Where runs train")
queue = run_queue()
where = getattr(queue.executor, "describe", None)
problem = getattr(queue.executor, "problem", None)
if problem:
    st.error(hide_cluster_address(f"Training is off: {problem}."))
else:
    st.success(hide_cluster_address(where()) if where else f"On this server, {counted(queue.workers, 'run')} at a time (worker processes; "
               "a CPU's run has every core).")
for note in queue.notes:
    st.warning(hide_cluster_address(note))
machines = getattr(queue.executor, "machines", None)
if machines is not None and machines() > 1 and not is_postgres(runs_db()):
    st.warning("This cluster has several machines, but runs are kept in a SQLite file: a run records from the "
               "machine it trains on, so runs trained elsewhere are not kept here. Use a PostgreSQL store that "
               "every machine reaches (`LIFECYCLE_RUNS=postgresql://...`).")
st.markdown("With a Ray cluster (a head and worker PCs, see docs/deployment.md), every queued run asks "
            "the cluster for a CPU or a GPU and Ray places it. This setting is the server's, for every session; "
            "`RAY_ADDRESS` sets it at start.")
choice = cluster_choice()


def apply_cluster() -> None:
    if not is_teacher():  # checked again at the click: a widget that is not drawn can still be forged
        return
    state = st.session_state
    set_cluster_choice(ClusterChoice(state["cluster_address"].strip() or None, state["cluster_fallback"],
                                     int(state["cluster_cpus"])))


if is_teacher():
    st.text_input("Ray cluster address (host:port; empty = this machine)", value=choice.address or "",
                  key="cluster_address")
    st.checkbox("If the cluster cannot be reached, train on this machine instead", value=choice.fallback_local,
                key="cluster_fallback")
    st.number_input("CPUs per run on the cluster", 1, 64, choice.cpus_per_run, key="cluster_cpus")
    st.button("Apply (or connect again)", key="apply_cluster", on_click=apply_cluster)
else:
    st.caption("Only the teacher changes where the class's runs train (the teacher's key is on the Class board).")
