"""Tables shared by pages."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st


def layer_table(layers: list[dict[str, Any]], height: int | str = "auto", geometry: bool = True) -> None:
    """The per-layer table of core.report.views: output shape, parameters, jump and receptive field.
    `geometry=False` leaves out kernel, stride, padding and dilation (the Design page's editor
    shows them beside it), so the figures that follow from them fit without scrolling."""
    rows = []
    for r in layers:
        row = {"layer": r["name"], "what": r.get("label", r["type"])}
        if geometry:
            row |= {"kernel": r["kernel_size"], "stride": r["stride"], "padding": r["padding"], "dilation": r["dilation"]}
        rows.append(row | {"output (C×H×W)": "×".join(map(str, r["out_shape"])), "params": r["params"],
                           "RF": r["rf"], "jump": r["jump"]})
    st.dataframe(pd.DataFrame(rows), hide_index=True, placeholder="—", width="stretch", height=height)
