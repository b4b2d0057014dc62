"""Settings: where MNIST lives, whether the app may download it, and where runs are kept."""

import streamlit as st

from core.runs.store import resolve_db
from core.training.data import FILES, raw_dir, resolve_root
from ui.router import guard
from ui.state import data_dir, data_problem, run_store, runs_db

guard()

st.title("Data and run history")
st.markdown("The app reads MNIST through `torchvision.datasets.MNIST`, from `<folder>/MNIST/raw/`. The folder is "
            "this setting, else the `MNIST_DIR` environment variable, else `./data`.")
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

st.header("Run history")
st.markdown("Every run started here or with `python -m core train` is kept in one SQLite file: its settings, "
            "every epoch as it finishes, and the weights it was tested with. Default: `runs/runs.sqlite3` in the "
            "project folder, or `$LIFECYCLE_RUNS`.")
db = st.text_input("Run store file (for this browser session)", value=str(runs_db()))
if db != str(runs_db()):
    st.session_state["runs_db"] = db
    st.rerun()
store = run_store()
if store is not None:
    st.success(f"Runs are recorded in {resolve_db(db).resolve()}.")
