"""The optimiser and its learning-rate (and momentum) schedule, step by step."""

from __future__ import annotations

import math

import torch
from torch import nn

from core.training.optim import SGD, Adam, Optimizer
from core.training.recipe import Recipe


def make_optimizer(recipe: Recipe, model: nn.Module) -> Optimizer:
    if recipe.optimizer == "adam":
        return Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    return SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
               nesterov=recipe.momentum > 0)


ONE_CYCLE = {"warmup": 0.2, "div": 10.0, "final_div": 100.0, "momentum": (0.95, 0.85)}


def schedule_at(recipe: Recipe, step: int, total: int) -> tuple[float, float | None]:
    """(learning rate, momentum or None to keep the optimiser's) for 0-based optimiser step `step`
    of `total`. one-cycle: the formula of torch's OneCycleLR (cosine, warm-up for 20 % of the run
    from peak/10, anneal to peak/1000, momentum 0.95 -> 0.85 -> 0.95), defined for runs of any
    length (a warm-up shorter than one step is skipped); step: divide by 10 at each third of the
    run; constant: the recipe's rate throughout. A recipe's settle_fraction ends one-cycle that much
    of the run early and holds its lowest rate (and momentum) for the rest."""
    peak = recipe.lr
    if recipe.schedule == "constant":
        return peak, None
    if recipe.schedule == "step":
        return peak * 0.1 ** (step // max(1, total // 3)), None
    start, low = peak / ONE_CYCLE["div"], peak / ONE_CYCLE["div"] / ONE_CYCLE["final_div"]
    high_m, low_m = ONE_CYCLE["momentum"]
    total -= round(recipe.settle_fraction * total)  # the one-cycle part of the run
    if step >= total - 1:
        return low, high_m
    warm_end = ONE_CYCLE["warmup"] * total - 1  # OneCycleLR's phase boundary, in steps
    if 0 < warm_end and step <= warm_end:
        pct = step / warm_end
        return _cos(start, peak, pct), _cos(high_m, low_m, pct)
    pct = (step - warm_end) / (total - 1 - warm_end)
    return _cos(peak, low, pct), _cos(low_m, high_m, pct)


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def apply_schedule(optimizer: Optimizer | torch.optim.Optimizer, lr: float, momentum: float | None) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
        if momentum is not None:
            if "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
            else:
                group["momentum"] = momentum
