"""The classroom app. Run with `streamlit run app.py` from this folder.

A thin router (Streamlit's multipage navigation): the pages are listed in ui/router.py and live
in app_pages/; the shared widgets are in ui/, and everything they compute comes from core/."""

from ui.router import run_app

run_app()
