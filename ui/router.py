"""The app's pages and its navigation (a top bar, so a projector gets the full width).

The page files live in `app_pages/`, not `pages/`: Streamlit runs every file of a folder named
`pages/` as a page of its own (its older way of making pages), so a deep link such as
`/step_4?bn=false` on a fresh server would run the file without app.py. Here every page goes
through app.py, and so through this router."""

from __future__ import annotations

import streamlit as st

from core.training.steps import STEPS
from ui.classroom import remember_student, teacher_key
from ui.layout import compact


def app_pages() -> dict[str, list]:
    return {
        "": [st.Page("app_pages/home.py", title="The challenge", icon=":material/flag:", default=True)],
        "Lifecycle": [st.Page(f"app_pages/step_{s.number}.py", title=f"{s.number}. {s.title}") for s in STEPS],
        "Tools": [
            st.Page("app_pages/design.py", title="Design a network", icon=":material/design_services:"),
            st.Page("app_pages/board.py", title="Class board", icon=":material/groups:"),
            st.Page("app_pages/frontier.py", title="Frontier", icon=":material/query_stats:"),
            st.Page("app_pages/inspect.py", title="Inspect a trained network", icon=":material/biotech:"),
            st.Page("app_pages/runs.py", title="Runs", icon=":material/history:"),
            st.Page("app_pages/augmentation.py", title="Augmentation viewer", icon=":material/auto_awesome:"),
            st.Page("app_pages/data.py", title="Data and run history", icon=":material/folder:"),
        ],
    }


def navigation():
    return st.navigation(app_pages(), position="top")


def run_app() -> None:
    st.set_page_config(page_title="Tiny CNN lifecycle", page_icon=":material/neurology:", layout="wide",
                       initial_sidebar_state="collapsed")
    compact()
    open_server_notice()
    remember_student()
    navigation().run()


LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def server_address() -> str:
    """The address the server listens on ('' when unset: every interface, so other machines too)."""
    return st.get_option("server.address") or ""


def open_server_notice() -> None:
    """A server that other machines can reach, started without a teacher's key, lets every visitor
    change everything: say so on every page, and how to close it."""
    if teacher_key() is not None or server_address() in LOOPBACK:
        return
    st.warning("**Open server:** no teacher's key is set and other machines can reach it, so anyone can change its "
               "settings and stop or delete any run. Restart it with `LIFECYCLE_TEACHER_KEY=<a key>` (or `teacher_key` "
               "in `.streamlit/secrets.toml`), or with `--server.address localhost` for this machine alone.", icon=":material/lock_open:")
