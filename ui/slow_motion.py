"""Slow motion on a page: pause this session's training run, step it one batch at a time and see that
batch (its digits as augmented, the network's answers, the loss, the first layer's filters before and
after the step), then resume or stop. The commands go to the page's own runs only; the queue checks
each one again (core.serving.run_queue.Job.slow_motion)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.serving.run_queue import Job, Snapshot
from core.training.events import StepEvent
from core.training.slow_motion import PAUSE_LIMIT_S, PAUSE_TOTAL_S
from ui.classroom import plain
from ui.inside import filters_picture

DIGIT_SIDE = 56  # screen pixels per digit: two per MNIST pixel, sharp on a projector


def send(job: Job, action: str) -> None:
    problem = job.slow_motion(action)
    if problem:
        st.toast(f"Slow motion: {plain(problem)}.", icon=":material/block:")


def slow_motion_state(jobs: list[Job], snaps: list[Snapshot]) -> tuple[str, bool] | None:
    """What the buttons below depend on (the page's one run: training or not, paused or not): when it
    changes while the page follows the run, the page draws itself again."""
    return (snaps[0].status, snaps[0].paused) if len(jobs) == 1 else None


def slow_motion_buttons(jobs: list[Job], snaps: list[Snapshot]) -> None:
    """Pause, or Step and Resume, for the page's one training run (seeds side by side move together)."""
    running = [(job, snap) for job, snap in zip(jobs, snaps) if snap.status == "running"]
    if len(jobs) != 1 or not running:
        return
    job, snap = running[0]
    c1, c2 = st.columns([3, 2])
    if not snap.paused:
        c1.button("Pause", key=f"pause_{job.id}", on_click=send, args=(job, "pause"), width="stretch",
                  icon=":material/pause:", help="Stop between two batches, then step through one batch at a time")
        return
    c1.button("Step one batch", key=f"step_{job.id}", on_click=send, args=(job, "step"), width="stretch",
              icon=":material/skip_next:", type="primary", help="Train one batch and show it")
    c2.button("Resume", key=f"resume_{job.id}", on_click=send, args=(job, "resume"), width="stretch",
              icon=":material/play_arrow:")
    st.caption(f"Paused between two batches: *Step one batch* trains one and shows it below the charts. The run "
               f"keeps its place, and goes on by itself {PAUSE_LIMIT_S / 60:.0f} minutes after your last click "
               f"({PAUSE_TOTAL_S / 60:.0f} minutes after you first paused it), so the class's queue moves on.")


def digits_row(step: StepEvent) -> None:
    images = [np.kron(np.array(d, dtype=np.uint8), np.ones((2, 2), dtype=np.uint8)) for d in step.digits]
    captions = [f"{label} → {guess}" + ("" if guess == label else " ✗")
                for label, guess in zip(step.labels, step.predictions)]
    st.image(images, caption=captions, width=DIGIT_SIDE)


def draw_step(step: StepEvent, shown: int) -> None:
    """The last batch the run was stepped through."""
    wrong = sum(guess != label for label, guess in zip(step.labels, step.predictions))
    st.markdown(f"**Slow motion: step {step.step:,} of {step.total_steps:,}** (epoch {step.epoch}, batch {step.batch}; "
                f"{shown} stepped so far)")
    st.caption(f"The batch's first {len(step.digits)} digits as this step trained on them (augmented when the recipe "
               f"augments), each as *label → the network's answer* before the step: {wrong} wrong. Loss of the "
               f"whole batch {step.loss:.4f}, learning rate {step.lr:.4g}.")
    digits_row(step)
    if step.filters_before:
        before, after = (np.array(f, dtype=np.float32) for f in (step.filters_before, step.filters_after))
        st.image(filters_picture(np.stack([before, after])), clamp=True,
                 caption="The first convolution's filters, before this step (top) and after it, on one scale: red "
                         "positive, blue negative")
        change = after - before
        st.image(filters_picture(change[None]), clamp=True,
                 caption=f"What this one step changed, on a scale of its own: the largest change is "
                         f"{float(np.abs(change).max()):.2g}, against weights up to {float(np.abs(before).max()):.2g}")
