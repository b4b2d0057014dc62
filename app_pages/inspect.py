"""Inspect a trained network: its mistakes, what each layer sees, what it looks at and how little fools it,
your own digit, the files to take home."""

import streamlit as st

from ui.inspect import export_tab, feature_maps_tab, mistakes_tab, model_picker, try_it_tab
from ui.looks_at import looks_at_tab

st.markdown("#### Look inside a trained network")
picked = model_picker()
if picked is not None:
    trained, model = picked
    mistakes, maps, looks, try_it, export = st.tabs(["Mistakes", "Feature maps and receptive fields",
                                                     "What it looks at", "Try it: draw or upload", "Export"])
    with mistakes:
        mistakes_tab(trained, model)
    with maps:
        feature_maps_tab(trained, model)
    with looks:
        looks_at_tab(trained, model)
    with try_it:
        try_it_tab(model)
    with export:
        export_tab(trained)
