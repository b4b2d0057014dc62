"""The app's pages and its navigation (a top bar, so a projector gets the full width).

Streamlit still knows the older way of making pages: every file in `pages/`. On a fresh server
whose first visitor arrives through a deep link (`/step_4?bn=false`), it runs that page file
directly, without app.py, and stays in that mode for every session. Each page therefore calls
`guard()` first: reached without the router, it registers the real navigation (which turns the
old mode off for the whole server) and reruns through app.py."""

from __future__ import annotations

import threading

import streamlit as st

from core.training.steps import STEPS
from ui.classroom import remember_student, teacher_key
from ui.layout import compact

_routing = threading.local()


def app_pages() -> dict[str, list]:
    return {
        "": [st.Page("pages/home.py", title="The challenge", icon=":material/flag:", default=True)],
        "Lifecycle": [st.Page(f"pages/step_{s.number}.py", title=f"{s.number}. {s.title}") for s in STEPS],
        "Tools": [
            st.Page("pages/design.py", title="Design a network", icon=":material/design_services:"),
            st.Page("pages/board.py", title="Class board", icon=":material/groups:"),
            st.Page("pages/inspect.py", title="Inspect a trained network", icon=":material/biotech:"),
            st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
            st.Page("pages/augmentation.py", title="Augmentation viewer", icon=":material/auto_awesome:"),
            st.Page("pages/data.py", title="Data and run history", icon=":material/folder:"),
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
    page = navigation()
    _routing.active = True
    try:
        page.run()
    finally:
        _routing.active = False


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


def guard() -> None:
    """First line of every page: make sure the page runs inside the app's router."""
    if not getattr(_routing, "active", False):
        navigation()
        st.rerun()
