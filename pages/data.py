"""Data setting: where MNIST lives, and whether the app may download it."""

import streamlit as st

from core.data import FILES, raw_dir, resolve_root
from pages.common import data_dir, data_problem

st.title("Data")
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
