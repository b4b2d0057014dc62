"""Settings: where MNIST lives, whether the app may download it, and where runs are kept."""

import streamlit as st

from core.runs.cluster import ClusterChoice
from core.runs.store import describe_db
from core.runs.store_backends import is_postgres
from core.training.data import FILES, raw_dir, resolve_root
from core.words import counted
from ui.classroom import is_teacher
from ui.router import guard
from ui.state import cluster_choice, data_dir, data_problem, run_queue, run_store, runs_db, set_cluster_choice

guard()

st.markdown("#### Data and run history")
st.markdown("The app reads MNIST's four IDX files from `<folder>/MNIST/raw/` (the layout "
            "`torchvision.datasets.MNIST` downloads into, and the files it would read). The folder is this setting, "
            "else the `MNIST_DIR` environment variable, else `./data`.")
folder = st.text_input("MNIST folder", value=data_dir())
if folder != data_dir():
    st.session_state["data_dir"] = folder
    st.rerun()
st.session_state["allow_download"] = st.checkbox(
    "Download MNIST if missing (needs internet)", value=st.session_state.get("allow_download", True))

problem = data_problem()
if problem is None:
    st.success(f"MNIST found in {raw_dir(resolve_root(folder)).resolve()}.")
else:
    st.error(problem)
    st.markdown("**How to get the files:** with internet, press *Train* on any step and torchvision downloads them "
                "(about 12 MB). Offline, copy these four files (or their `.gz` versions) into "
                f"`{raw_dir(resolve_root(folder)).resolve()}`:\n" + "\n".join(f"- `{name}`" for name in FILES))

st.markdown("##### Run history")
st.markdown("Every run started here or with `python -m core train` is kept in one store: its settings, "
            "every epoch as it finishes, and the weights it was tested with. Default: the SQLite file "
            "`runs/runs.sqlite3` in the project folder, or `$LIFECYCLE_RUNS`. Several app servers or a Ray "
            "cluster of several machines share one PostgreSQL database: `postgresql://user:password@host/db`.")
db = st.text_input("Run store: a file or a postgresql:// URL (for this browser session)", value=str(runs_db()),
                   type="password" if is_postgres(runs_db()) else "default")
if db != str(runs_db()):
    st.session_state["runs_db"] = db
    st.rerun()
store = run_store()
if store is not None:
    st.success(f"Runs are recorded in {describe_db(db)}.")

st.markdown("##### Where runs train")
queue = run_queue()
where = getattr(queue.executor, "describe", None)
problem = getattr(queue.executor, "problem", None)
if problem:
    st.error(f"Training is off: {problem}.")
else:
    st.success(where() if where else f"On this server, {counted(queue.workers, 'run')} at a time (worker processes; "
               "a CPU's run has every core).")
for note in queue.notes:
    st.warning(note)
machines = getattr(queue.executor, "machines", None)
if machines is not None and machines() > 1 and not is_postgres(runs_db()):
    st.warning("This cluster has several machines, but runs are kept in a SQLite file: a run records from the "
               "machine it trains on, so runs trained elsewhere are not kept here. Use a PostgreSQL store that "
               "every machine reaches (`LIFECYCLE_RUNS=postgresql://...`).")
st.markdown("With a Ray cluster (a head and worker PCs, see the README's deployment guide), every queued run asks "
            "the cluster for a CPU or a GPU and Ray places it. This setting is the server's, for every session; "
            "`RAY_ADDRESS` sets it at start.")
choice = cluster_choice()


def apply_cluster() -> None:
    state = st.session_state
    set_cluster_choice(ClusterChoice(state["cluster_address"].strip() or None, state["cluster_fallback"],
                                     int(state["cluster_cpus"])))


st.text_input("Ray cluster address (host:port; empty = this machine)", value=choice.address or "",
              key="cluster_address", disabled=not is_teacher())
st.checkbox("If the cluster cannot be reached, train on this machine instead", value=choice.fallback_local,
            key="cluster_fallback", disabled=not is_teacher())
st.number_input("CPUs per run on the cluster", 1, 64, choice.cpus_per_run, key="cluster_cpus",
                disabled=not is_teacher())
st.button("Apply (or connect again)", key="apply_cluster", on_click=apply_cluster, disabled=not is_teacher())
if not is_teacher():
    st.caption("Only the teacher changes where the class's runs train (the teacher's key is on the Class board).")
