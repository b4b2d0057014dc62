"""Router: the classroom app's pages. Run with `streamlit run app.py`."""

import streamlit as st

from core.steps import STEPS

st.set_page_config(page_title="Tiny CNN lifecycle", page_icon=":material/neurology:", layout="wide")

pages = {
    "Start": [st.Page("pages/home.py", title="The challenge", icon=":material/flag:", default=True)],
    "Lifecycle": [st.Page(f"pages/step_{s.number}.py", title=f"{s.number}. {s.title}") for s in STEPS],
    "Tools": [
        st.Page("pages/receptive_field.py", title="Receptive-field calculator", icon=":material/grid_on:"),
        st.Page("pages/augmentation.py", title="Augmentation viewer", icon=":material/auto_awesome:"),
        st.Page("pages/data.py", title="Data", icon=":material/folder:"),
    ],
}
st.navigation(pages).run()
