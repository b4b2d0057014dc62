"""Augmentation viewer: real digits beside their augmented versions, made by the same batched
code the trainer uses."""

import numpy as np
import streamlit as st
import torch

from core.training.augmentation import AugmentConfig, augment_batch, to_float
from core.training.steps import STEPS
from ui.state import data_problem, device, load_data, show_data_problem

st.markdown("#### Augmentation viewer")
st.markdown("Each pair shows a test digit and the same digit as the trainer would see it. Every image gets its "
            "own random rotation, shift, scale, shear, brightness and contrast — the batched code used in training.")

# the sliders start from a step's own augmentation, so the class sees what that step trains on
PRESETS = {f"step {step.number}'s recipe": step.recipe.augment
           for step in reversed(STEPS) if step.recipe.augment.enabled}
PRESETS["every kind at once, to explore"] = AugmentConfig(rotation=10.0, translate=0.08, scale=0.08, shear=5.0,
                                                          brightness=0.2, contrast=0.2)
preset = st.selectbox("Start from", list(PRESETS), key="aug_preset",
                      format_func=lambda name: f"{name}: {PRESETS[name].describe()}")
start = PRESETS[preset]
cols = st.columns(4)


def slider(column, label: str, top: float, field: str, step: float) -> float:
    # keyed by the preset: choosing another one sets every slider to its values
    return column.slider(label, 0.0, top, float(getattr(start, field)), step, key=f"aug_{field}_{preset}")


config = AugmentConfig(
    rotation=slider(cols[0], "Rotation ±°", 45.0, "rotation", 0.5),
    translate=slider(cols[1], "Shift ± (fraction)", 0.3, "translate", 0.01),
    scale=slider(cols[2], "Scale ±", 0.3, "scale", 0.01),
    shear=slider(cols[3], "Shear ±°", 30.0, "shear", 0.5),
    brightness=slider(cols[0], "Brightness ±", 0.8, "brightness", 0.05),
    contrast=slider(cols[1], "Contrast ±", 0.8, "contrast", 0.05),
    erase=slider(cols[2], "Cut-out size", 0.5, "erase", 0.05),
)
count = cols[3].slider("Digits", 4, 32, 16, 4)
def reseed() -> None:
    st.session_state["aug_seed"] = st.session_state.get("aug_seed", 0) + 1


st.button("Reseed", key="reseed", on_click=reseed)
seed = st.session_state.get("aug_seed", 0)
st.caption(f"{config.describe()} · seed {seed}")

problem = data_problem()
if problem:
    show_data_problem(problem)
    st.stop()

data = load_data(device())
originals = to_float(data.test_images[:count].cpu())
augmented = augment_batch(originals, config, torch.Generator().manual_seed(seed))
tiles = [np.concatenate([o[0].numpy(), np.ones((28, 2)), a[0].numpy()], 1) for o, a in zip(originals, augmented)]
per_row = 4
grid = st.columns(per_row)
for k, tile in enumerate(tiles):
    grid[k % per_row].image((tile * 255).astype(np.uint8), caption=f"#{k}: original | augmented", width=168)
