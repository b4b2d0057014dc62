"""Widgets shared by the pages. Layout only: every number comes from core/."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Callable

import altair as alt
import pandas as pd
import streamlit as st

from core.augment import AugmentConfig
from core.data import DataError, load_cached, resolve_root, validate
from core.jobs import Snapshot, TrainingJob
from core.lifecycle import describe_step
from core.model import device_label, pick_device
from core.reproduce import load_reference
from core.spec import SpecError
from core.train import CHALLENGE, TrainConfig, challenge_verdict, estimate_seconds, quick_budget, seconds_per_image

REFERENCE_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets",
                              "reference_runs.json")


# --- data -------------------------------------------------------------------------------------

def data_dir() -> str:
    """The app setting, else $MNIST_DIR, else ./data (see core.data.resolve_root)."""
    return st.session_state.get("data_dir") or str(resolve_root(None))


def data_problem() -> str | None:
    """None when the MNIST files are in place, else what to do about it."""
    try:
        validate(resolve_root(data_dir()))
        return None
    except DataError as exc:
        return str(exc)


def data_loader(device) -> Callable[[], Any]:
    """A loader bound to this session's settings, safe to call from a training thread (which has
    no access to st.session_state). Loads once per process; raises DataError."""
    folder, download = data_dir(), st.session_state.get("allow_download", True)
    return lambda: load_cached(folder, download=download, device=device)


def load_data(device) -> Any:
    return data_loader(device)()


def show_data_problem(problem: str) -> None:
    st.warning(f"**MNIST is not available.** {problem}\n\nSet the folder on the **Data** page. "
               "Pages that need no data (architecture, receptive fields, parameter counts) still work.")


@st.cache_resource
def device_choice() -> Any:
    return pick_device("auto")


# --- reference runs ---------------------------------------------------------------------------

@st.cache_data
def reference_runs(mtime: float) -> dict[int, dict[str, Any]]:  # mtime: reload when the file changes
    return load_reference(REFERENCE_FILE)


def references() -> dict[int, dict[str, Any]]:
    try:
        return reference_runs(os.path.getmtime(REFERENCE_FILE))
    except OSError:
        return {}


# --- controls ---------------------------------------------------------------------------------

def toggles_and_recipe(number: int) -> TrainConfig:
    """The step's toggles and training recipe as widgets; returns the resulting config."""
    defaults = TrainConfig.for_step(number)
    k = f"s{number}"
    c1, c2, c3 = st.columns(3)
    bn = c1.toggle("BatchNorm", value=defaults.batchnorm, key=f"{k}_bn", help="BatchNorm after every convolution")
    gap = c2.toggle("Global average pooling", value=defaults.gap, key=f"{k}_gap",
                    help="Off: one convolution whose kernel covers the whole last grid")
    dropout = c3.slider("Dropout rate", 0.0, 0.5, float(defaults.dropout), 0.01, key=f"{k}_dropout",
                        help="0 = off; applied after every convolution block")
    with st.expander("Augmentation, weight averaging and learning-rate schedule", expanded=number >= 8):
        a = defaults.augment
        augment_on = st.toggle("Augmentation", value=a.enabled, key=f"{k}_aug")
        cols = st.columns(4)
        values = {
            "rotation": cols[0].slider("Rotation ±°", 0.0, 30.0, a.rotation or 7.0, 0.5, key=f"{k}_rot"),
            "translate": cols[1].slider("Shift ±", 0.0, 0.2, a.translate, 0.01, key=f"{k}_tr"),
            "scale": cols[2].slider("Scale ±", 0.0, 0.2, a.scale, 0.01, key=f"{k}_sc"),
            "shear": cols[3].slider("Shear ±°", 0.0, 20.0, a.shear, 0.5, key=f"{k}_sh"),
            "brightness": cols[0].slider("Brightness ±", 0.0, 0.5, a.brightness, 0.05, key=f"{k}_br"),
            "contrast": cols[1].slider("Contrast ±", 0.0, 0.5, a.contrast, 0.05, key=f"{k}_co"),
            "erase": cols[2].slider("Cut-out size", 0.0, 0.5, a.erase, 0.05, key=f"{k}_er"),
        }
        t1, t2 = st.columns(2)
        clean = t1.slider("Un-augmented tail of the run", 0.0, 0.5, float(defaults.clean_fraction), 0.05,
                          key=f"{k}_clean", help="The last part of the run trains on the original digits, "
                          "which the test set looks like; 0.2 of 15 epochs = the last 3")
        emas = sorted({0.0, 0.99, 0.995, 0.998, 0.999, defaults.ema})  # always offer the recipe's own value
        ema = t2.selectbox("Test a moving average of the weights (EMA decay)", emas,
                           index=emas.index(defaults.ema), key=f"{k}_ema",
                           format_func=lambda d: "off" if d == 0 else f"{d:g}",
                           help="Smooths the last optimiser steps' noise out of the tested weights")
        s1, s2, s3 = st.columns(3)
        schedules = ["constant", "step", "onecycle"]
        schedule = s1.selectbox("LR schedule", schedules, index=schedules.index(defaults.schedule), key=f"{k}_sched")
        optimizer = s2.selectbox("Optimizer", ["sgd", "adam"], index=0 if defaults.optimizer == "sgd" else 1,
                                 key=f"{k}_opt")
        lr = s3.number_input("(Peak) learning rate", 0.0001, 2.0, float(defaults.lr), format="%.4f", key=f"{k}_lr")
    augment = AugmentConfig(**values) if augment_on else AugmentConfig()
    return replace(defaults, batchnorm=bn, gap=gap, dropout=dropout, augment=augment, schedule=schedule,
                   optimizer=optimizer, lr=lr, clean_fraction=clean, ema=ema)


# --- architecture -----------------------------------------------------------------------------

@st.cache_data(max_entries=256)
def cached_description(number: int, batchnorm: bool, dropout: float, gap: bool) -> dict[str, Any]:
    return describe_step(number, batchnorm, dropout, gap)


def budget_badge(params: int) -> None:
    if params < CHALLENGE["max_params"]:
        st.badge(f"{params:,} parameters: under the 10k budget", icon=":material/check:", color="green")
    else:
        st.badge(f"{params:,} parameters: over the 10k budget", icon=":material/close:", color="red")


def layer_table(layers: list[dict[str, Any]]) -> None:
    rows = [{"layer": r["name"], "what": r.get("label", r["type"]), "kernel": r["kernel_size"], "stride": r["stride"],
             "padding": r["padding"], "dilation": r["dilation"], "output (C×H×W)": "×".join(map(str, r["out_shape"])),
             "params": r["params"], "jump": r["jump"], "RF": r["rf"]} for r in layers]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def architecture(config: TrainConfig) -> dict[str, Any]:
    doc = cached_description(config.step, config.batchnorm, config.dropout, config.gap)
    m1, m2, m3 = st.columns(3)
    m1.metric("Parameters", f"{doc['params']:,}")
    m2.metric("Final receptive field", f"{doc['rf']}×{doc['rf']}")
    m3.metric("Multiply-adds / image", f"{doc['macs'] / 1e6:.2f} M")
    budget_badge(doc["params"])
    layer_table(doc["layers"])
    return doc


# --- charts -----------------------------------------------------------------------------------

def epoch_charts(epochs: list[dict[str, Any]], title: str = "", reference: list[dict[str, Any]] | None = None) -> None:
    """Loss and accuracy per epoch; with `reference`, that run's curves are drawn dashed beside
    the live ones, so a reduced live run can be read against the full reference run."""
    if not epochs:
        return
    frames = [pd.DataFrame(epochs).assign(run=title or "this run")]
    if reference:
        frames.append(pd.DataFrame(reference).assign(run="reference run"))
    frame = pd.concat(frames, ignore_index=True)
    loss = frame.melt(["epoch", "run"], ["train_loss", "test_loss"], "curve", "loss")
    acc = frame.melt(["epoch", "run"], ["train_acc", "test_acc"], "curve", "accuracy %")
    c1, c2 = st.columns(2)
    c1.altair_chart(alt.Chart(loss, title=f"{title} loss").mark_line(point=True).encode(
        x="epoch:Q", y="loss:Q", color="curve:N", strokeDash="run:N"))
    c2.altair_chart(alt.Chart(acc, title=f"{title} accuracy").mark_line(point=True).encode(
        x="epoch:Q", y=alt.Y("accuracy %:Q", scale=alt.Scale(zero=False)), color="curve:N", strokeDash="run:N"))


def batch_chart(batches: list[dict[str, Any]]) -> None:
    if batches:
        frame = pd.DataFrame(batches)
        st.altair_chart(alt.Chart(frame, title="training loss per batch").mark_line().encode(
            x=alt.X("step:Q", title="optimiser step"), y=alt.Y("loss:Q", scale=alt.Scale(type="log"))))


# --- training ---------------------------------------------------------------------------------

@st.cache_data(max_entries=64, show_spinner="Timing a few training steps…")
def cached_speed(config: TrainConfig) -> tuple[float, float]:
    return seconds_per_image(config)


def budget_choice(config: TrainConfig, on_gpu: bool) -> tuple[TrainConfig, str]:
    k = f"s{config.step}"
    speed = cached_speed(replace(config, seed=0))
    quick = quick_budget(config, speed)
    options = ["Full: 15 epochs on all 60k images", "Quick: about a minute (reduced)"]
    choice = st.radio("Budget", options, index=0 if on_gpu else 1, key=f"{k}_budget", horizontal=True)
    c1, c2 = st.columns(2)
    epochs = c1.number_input("Epochs", 1, 30, config.epochs if choice == options[0] else quick.epochs,
                             key=f"{k}_epochs_{choice[:4]}")
    seed = c2.number_input("Seed", 0, 10_000, 1, key=f"{k}_seed")
    chosen = replace(config if choice == options[0] else quick, epochs=int(epochs), seed=int(seed))
    label = "full budget" if choice == options[0] else (
        f"reduced budget: {chosen.epochs} epochs on {chosen.train_fraction:.0%} of the training images"
        + (f", tested on the first {chosen.test_limit:,} test images" if chosen.test_limit else ""))
    return chosen, f"{label}; estimated {estimate_seconds(chosen, speed):.0f} s on this machine"


def training(config: TrainConfig) -> None:
    k = f"job_{config.step}"
    device = device_choice()
    st.caption(f"Device: **{device_label(device)}**")
    problem = data_problem()
    if problem:
        show_data_problem(problem)
        return
    chosen, label = budget_choice(config, device.type == "cuda")
    st.caption(label)
    job: TrainingJob | None = st.session_state.get(k)
    running = job is not None and job.snapshot().running
    b1, b2, _ = st.columns([1, 1, 4])
    if b1.button("Train", type="primary", disabled=running, key=f"{k}_train"):
        job = TrainingJob(replace(chosen, device=str(device)), data_loader(device), label).start()
        st.session_state[k] = job
        running = True
    if b2.button("Stop", disabled=not running, key=f"{k}_stop") and job is not None:
        job.stop()
    if job is not None:
        live_view(k)


def live_view(key: str) -> None:
    job: TrainingJob = st.session_state[key]

    @st.fragment(run_every=1.0 if job.snapshot().running else None)
    def view() -> None:
        snap = job.snapshot()
        show_run(snap, job)
        was = st.session_state.get(f"{key}_was_running")
        st.session_state[f"{key}_was_running"] = snap.running
        if was and not snap.running:
            st.rerun()  # refresh the Train/Stop buttons once the run ends

    view()


def show_run(snap: Snapshot, job: TrainingJob) -> None:
    config = job.config
    eta = f", about {snap.eta:.0f} s left" if snap.eta is not None else ""
    st.progress(min(1.0, snap.progress), text=f"{snap.status}: {snap.progress:.0%} after {snap.elapsed:.0f} s{eta}")
    overlay = show_reference(job)
    epoch_charts(snap.epochs, "live", references()[config.step]["epochs"] if overlay else None)
    if overlay and snap.epochs:
        st.caption("Solid: this run. Dashed: this step's reference run with the same toggles "
                   f"({references()[config.step]['provenance']['label']}).")
    batch_chart(snap.batches)
    if snap.running:
        return
    if snap.status == "failed":
        st.error(f"Training stopped: {snap.reason}")
    elif snap.status == "stopped":
        st.info(f"Stopped after {len(snap.epochs)} epoch(s); the history so far is kept above.")
    if snap.epochs and snap.params is not None:
        passed, verdict = challenge_verdict(snap.params, [e["test_acc"] for e in snap.epochs], config.epochs)
        best = max(e["test_acc"] for e in snap.epochs)
        line = f"Best test accuracy {best:.2f} % · {snap.params:,} parameters · {snap.elapsed:.0f} s. {verdict}"
        (st.success if passed else st.warning)(line)


def show_reference(job: TrainingJob) -> bool:
    """Overlay the reference run only where it trained the same network (same toggles)."""
    ref = references().get(job.config.step)
    return bool(ref) and all(ref["config"].get(k) == getattr(job.config, k) for k in ("batchnorm", "dropout", "gap"))


def reference_view(number: int) -> None:
    ref = references().get(number)
    if not ref:
        st.caption("No reference run recorded for this step yet (`python -m core reproduce` writes them).")
        return
    p = ref["provenance"]
    m = ref["summary"]
    st.markdown(f"**Reference run** ({p['label']}): best test {m['best_test_acc']:.2f} %, "
                f"min of last 3 {m['min_last3_test_acc']:.2f} %, best train {m['best_train_acc']:.2f} %.")
    st.caption(f"`{p['command']}` · seed {p['seed']} · {p['device']} · torch {p['torch']} · {p['date']} · "
               f"{p['wall_seconds']} s")
    epoch_charts(ref["epochs"], "reference")
    if "seeds" in ref:
        a = ref["across_seeds"]
        st.markdown(f"**Across {len(ref['seeds'])} seeds:** min of last 3 epochs — lowest {a['min_last3_min']:.2f} %, "
                    f"mean {a['min_last3_mean']:.2f} %; every seed passed: {'yes' if a['all_passed'] else 'no'}.")
        st.dataframe(pd.DataFrame([{"seed": s["seed"], "last 3 test acc": " / ".join(f"{t:.2f}" for t in s["test_acc"][-3:]),
                                    "min last 3": s["summary"]["min_last3_test_acc"], "best": s["summary"]["best_test_acc"],
                                    "passed": s["passed"]} for s in ref["seeds"]]), hide_index=True)


def safe(fn, *args, **kwargs):
    """Run a page section; a bad setting becomes a message, never a traceback."""
    try:
        return fn(*args, **kwargs)
    except (SpecError, ValueError, DataError) as exc:
        st.error(str(exc))
        return None
