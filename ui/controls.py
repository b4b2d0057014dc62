"""A step's controls: toggles, recipe and budget, all bound to the URL. Returns the TrainConfig
they describe; every default comes from the step's own toggles and recipe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from core.serving.limits import quick_run_problem
from core.training.augmentation import AugmentConfig
from core.training.budget import (
    QUICK_SECONDS,
    describe_limits,
    estimate_seconds,
    modelled_speed,
    quick_run,
)
from core.training.config import TrainConfig
from core.training.recipe import MAX_SETTLE, OPTIMIZERS, SCHEDULES, Recipe
from core.training.steps import ROTATE
from ui.link import LinkedWidgets
from ui.lr_test import lr_test_panel
from ui.state import run_queue

QUICK_TOO_LONG = 3  # a quick run estimated beyond three times its budget is refused
BUDGETS = ("quick", "full")
BUDGET_LABELS = {"quick": "≈ 1 min", "full": "full"}
BATCH_SIZES = (32, 64, 128, 256)
EMA_CHOICES = (0.0, 0.99, 0.995, 0.998, 0.999)
WEIGHT_DECAYS = (0.0, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3)
SMOOTHINGS = (0.0, 0.05, 0.1)


@dataclass(frozen=True)
class Choice:
    config: TrainConfig  # what Train will run (budget applied)
    label: str  # "reduced: ..." / "full: ..."
    estimate_s: float  # once it has started, on this server (queue time not included)
    sizing: str  # how its size was chosen, in a few words
    problems: tuple[str, ...] = ()  # why it may not be queued on this server (over its limits)


def step_controls(number: int, link: LinkedWidgets) -> TrainConfig:
    return config_controls(TrainConfig.for_step(number), link)


def config_controls(defaults: TrainConfig, link: LinkedWidgets) -> TrainConfig:
    """Toggles in one row, dropout, and the rest of the recipe one click away (a popover); every
    default is `defaults`' own (a step's, or a design's)."""
    t, r = defaults.toggles, defaults.recipe
    c1, c2, c3 = st.columns([1.25, 1.0, 1.1])
    batchnorm = link.toggle(c1, "BatchNorm", t.batchnorm, "bn")
    gap = link.toggle(c2, "GAP", t.gap, "gap", help="on: the head is G (average each channel over the last grid, "
                                                    "then a 1x1 convolution); off: F (one convolution whose kernel "
                                                    "covers the whole last grid)")
    augment_on = link.toggle(c3, "Augment", r.augment.enabled, "aug")
    dropout = link.slider(st, "Dropout after every block", 0.0, 0.5, t.dropout, 0.01, "dropout",
                          help="BatchNorm and dropout follow every convolution; GAP: average each channel over the last "
                               "grid, then a 1x1 conv (off: one conv whose kernel covers the whole grid); Augment: a "
                               "random rotation/shift/zoom per training image (settings under Recipe). Dropout 0 = off.")
    with st.popover("Recipe: augmentation, learning rate, finish", icon=":material/tune:", width="stretch"):
        recipe, lr_tab = _recipe_widgets(link, r, augment_on)
    config = defaults.with_overrides(batchnorm=batchnorm, gap=gap, dropout=dropout).with_overrides(
        **{k: getattr(recipe, k) for k in ("optimizer", "lr", "schedule", "batch_size", "augment", "clean_fraction",
                                           "ema", "weight_decay", "label_smoothing", "settle_fraction")})
    with lr_tab:
        lr_test_panel(config, link.page)
    return config


def _recipe_widgets(link: LinkedWidgets, r: Recipe, augment_on: bool) -> tuple[Recipe, Any]:
    a = r.augment if r.augment.enabled else ROTATE.augment  # what 'Augment' switches on for steps without it
    # two tabs of two rows each: the popover opens above or below its button, wherever there is more room,
    # and has to fit there on a 720-px screen
    st.caption("Augmentation gives every training image its own random draw of these settings; the clean finish "
               "trains the last part of the run on the original digits.")  # one line: it also sets the width
    augmentation, optimiser, lr_tab = st.tabs(["Augmentation" + ("" if augment_on else " (off)"),
                                               "Optimiser and weights", "Learning-rate test"])
    cols = augmentation.columns(4)
    values = {
        "rotation": link.slider(cols[0], "Rotation ±°", 0.0, 30.0, a.rotation, 0.5, "rot"),
        "translate": link.slider(cols[1], "Shift ±", 0.0, 0.2, a.translate, 0.01, "shift"),
        "scale": link.slider(cols[2], "Zoom ±", 0.0, 0.2, a.scale, 0.01, "zoom"),
        "shear": link.slider(cols[3], "Shear ±°", 0.0, 20.0, a.shear, 0.5, "shear"),
        "brightness": link.slider(cols[0], "Brightness ±", 0.0, 0.5, a.brightness, 0.05, "bright"),
        "contrast": link.slider(cols[1], "Contrast ±", 0.0, 0.5, a.contrast, 0.05, "contrast"),
        "erase": link.slider(cols[2], "Cut-out size", 0.0, 0.5, a.erase, 0.05, "erase"),
    }
    # the clean finish sits with augmentation: it is where augmentation stops
    clean = link.slider(cols[3], "Clean finish", 0.0, 0.5, r.clean_fraction, 0.05, "clean",
                        help="The part of the run trained on the original digits at the end, which the test set "
                             "looks like")
    o1, o2, o3, o4 = optimiser.columns(4)
    schedule = link.select(o1, "LR schedule", SCHEDULES, r.schedule, "sched")
    # the settled finish sits with the schedule: it is where one-cycle ends
    settle = link.slider(o2, "Settled finish", 0.0, MAX_SETTLE, r.settle_fraction, 0.05, "settle",
                         help="One-cycle only: the learning rate finishes annealing this much of the run early and "
                              "stays at its lowest, so the last epochs -- the challenge takes the lowest of the last "
                              "three -- test weights that have stopped moving")
    optimizer = link.select(o3, "Optimizer", OPTIMIZERS, r.optimizer, "opt")
    lr = link.number(o4, "(Peak) LR", 0.0001, 2.0, float(r.lr), "lr", format="%.4f")
    batch_sizes = sorted(set(BATCH_SIZES) | {r.batch_size})
    batch = link.select(o1, "Batch size", batch_sizes, r.batch_size, "batch")
    decays = sorted(set(WEIGHT_DECAYS) | {r.weight_decay})
    weight_decay = link.select(o2, "Weight decay", decays, r.weight_decay, "wd", format_func=decay_label,
                               help="Pulls every weight a little towards zero at each step; with BatchNorm this "
                                    "keeps the weights small, so the same learning rate moves them further")
    smoothings = sorted(set(SMOOTHINGS) | {r.label_smoothing})
    smoothing = link.select(o3, "Label smoothing", smoothings, r.label_smoothing, "smooth", format_func=decay_label,
                            help="Aims for a little less than certainty on the true digit (the rest spread over all "
                                 "ten), so the network stops pushing its scores further apart")
    emas = sorted(set(EMA_CHOICES) | {r.ema})  # always offer the recipe's own value
    ema = link.select(o4, "Tested weights", emas, r.ema, "ema", format_func=ema_label,
                      help="A moving average of the weights (EMA) smooths the last optimiser steps' noise out of "
                           "the weights that are tested; off tests the raw weights")
    augment = AugmentConfig(**values) if augment_on else AugmentConfig()
    return Recipe(optimizer=optimizer, lr=float(lr), momentum=r.momentum, weight_decay=float(weight_decay),
                  schedule=schedule, batch_size=int(batch), epochs=r.epochs, augment=augment,
                  clean_fraction=float(clean), ema=float(ema), label_smoothing=float(smoothing),
                  settle_fraction=float(settle)), lr_tab


def budget_controls(config: TrainConfig, link: LinkedWidgets, on_gpu: bool) -> Choice:
    """Quick (about a minute on a 2-core CPU) or full; epochs; seed. The quick size comes from the
    network's cost model, never from a timing, so the same link trains the same images every time."""
    b1, b2, b3 = st.columns([3, 2, 2])
    budget = link.select(b1, "Budget", BUDGETS, "full" if on_gpu else "quick", "budget", radio=True, horizontal=True,
                         format_func=BUDGET_LABELS.get,
                         help="≈ 1 min: fewer images per epoch (and fewer epochs, down to 3, if each would be tiny), "
                              "sized from the network's multiply-adds and activations so that a 2-core CPU takes "
                              "about a minute; the same link always trains the same images. Full: every image in "
                              "every epoch.")
    epochs = link.number(b2, "Epochs", 1, 30, config.recipe.epochs, "epochs")
    seed = link.number(b3, "Seed", 0, 10_000, 1, "seed")
    chosen = config.with_overrides(epochs=int(epochs), seed=int(seed))
    speed = modelled_speed(chosen)
    if budget == "quick":
        chosen = quick_run(chosen, speed)
    sizing = ("≈ 1 min budget, sized from this network's cost: the same images on every visit" if budget == "quick"
              else "every image")
    queue = run_queue()
    estimate = queue.estimate(chosen, speed)
    problems = list(queue.problems(chosen))
    if budget == "quick" and (too_big := quick_run_problem(chosen, estimate_seconds(chosen, speed), queue.pace(),
                                                           QUICK_SECONDS, QUICK_TOO_LONG)):
        problems.insert(0, too_big)
    return Choice(chosen, describe_limits(chosen), estimate, sizing, tuple(problems))


def ema_label(decay: float) -> str:
    return "off" if decay == 0 else f"EMA {decay:g}"


def decay_label(decay: float) -> str:
    return "off" if decay == 0 else f"{decay:g}"


def link_params(config: TrainConfig, budget: str) -> dict[str, str]:
    """The URL values of every control above for `config` (as the widgets write them): a stored
    run reopened as a link, on the Design page (with its network) or its step page."""
    t, r, a = config.toggles, config.recipe, config.recipe.augment
    params = {"net": config.net, "from": str(config.step), "bn": _flag(t.batchnorm), "gap": _flag(t.gap),
              "dropout": repr(t.dropout), "aug": _flag(a.enabled), "clean": repr(r.clean_fraction),
              "ema": ema_label(r.ema), "sched": r.schedule, "opt": r.optimizer, "lr": repr(r.lr),
              "batch": str(r.batch_size), "wd": decay_label(r.weight_decay), "smooth": decay_label(r.label_smoothing),
              "settle": repr(r.settle_fraction), "budget": BUDGET_LABELS[budget],
              "epochs": str(r.epochs),
              "seed": str(config.seed)}
    if a.enabled:
        params |= {"rot": repr(a.rotation), "shift": repr(a.translate), "zoom": repr(a.scale), "shear": repr(a.shear),
                   "bright": repr(a.brightness), "contrast": repr(a.contrast), "erase": repr(a.erase)}
    return params


def _flag(value: bool) -> str:
    return "true" if value else "false"
