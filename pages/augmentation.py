"""Augmentation viewer: real digits beside their augmented versions, made by the same batched
code the trainer uses."""

import numpy as np
import streamlit as st
import torch

from core.training.augmentation import AugmentConfig, augment_batch, to_float
from ui.router import guard
from ui.state import data_problem, device, load_data, show_data_problem

guard()

st.markdown("#### Augmentation viewer")
st.markdown("Each pair shows a test digit and the same digit as the trainer would see it. Every image gets its "
            "own random rotation, shift, scale, shear, brightness and contrast — the batched code used in training.")

cols = st.columns(4)
config = AugmentConfig(
    rotation=cols[0].slider("Rotation ±°", 0.0, 45.0, 10.0, 0.5),
    translate=cols[1].slider("Shift ± (fraction)", 0.0, 0.3, 0.08, 0.01),
    scale=cols[2].slider("Scale ±", 0.0, 0.3, 0.08, 0.01),
    shear=cols[3].slider("Shear ±°", 0.0, 30.0, 5.0, 0.5),
    brightness=cols[0].slider("Brightness ±", 0.0, 0.8, 0.2, 0.05),
    contrast=cols[1].slider("Contrast ±", 0.0, 0.8, 0.2, 0.05),
    erase=cols[2].slider("Cut-out size", 0.0, 0.5, 0.0, 0.05),
)
count = cols[3].slider("Digits", 4, 32, 16, 4)
if st.button("Reseed"):
    st.session_state["aug_seed"] = st.session_state.get("aug_seed", 0) + 1
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
