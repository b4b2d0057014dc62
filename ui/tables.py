"""Tables shared by pages."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st


def layer_table(layers: list[dict[str, Any]], height: int | str = "auto") -> None:
    """The per-layer table of core.lifecycle: output shape, parameters, jump and receptive field."""
    rows = [{"layer": r["name"], "what": r.get("label", r["type"]), "kernel": r["kernel_size"], "stride": r["stride"],
             "padding": r["padding"], "dilation": r["dilation"], "output (C×H×W)": "×".join(map(str, r["out_shape"])),
             "params": r["params"], "jump": r["jump"], "RF": r["rf"]} for r in layers]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=height)
