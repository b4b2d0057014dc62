"""The learning-rate range test (Leslie Smith's, fastai's `lr_find`): train a few hundred batches
while the learning rate rises geometrically, and watch the loss. Where the loss falls fastest is a
good peak for a one-cycle schedule; where it blows up is too far.

`range_test` works on any model and batches (tests/test_lr_find.py checks it on a problem whose
divergence point is known); `lr_find` runs it for a config on MNIST with the config's own network,
optimiser (SGD with Nesterov momentum, or Adam), weight decay and batch size, without the schedule.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.training.augmentation import normalize, to_float
from core.training.config import TrainConfig
from core.training.data import MNISTTensors
from core.training.loop import build_for
from core.training.schedule import make_optimizer

LR_MIN, LR_MAX, BATCHES = 1e-4, 10.0, 200
SMOOTHING = 0.9  # of the loss's moving average (bias-corrected): a batch's loss alone is noisy
DIVERGED = 4.0  # the test stops once the smoothed loss is this many times its lowest


@dataclass(frozen=True)
class RangeTest:
    lrs: list[float]  # the rate of each batch trained
    losses: list[float]  # the smoothed loss after it
    suggested: float  # where the smoothed loss fell fastest (per decade of rate)
    lowest: float  # the rate of the lowest smoothed loss
    diverged_at: float | None  # the rate at which it stopped: the loss blew up (None: it never did)
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rates(batches: int, lr_min: float = LR_MIN, lr_max: float = LR_MAX) -> list[float]:
    """`batches` learning rates from lr_min to lr_max, each the same factor above the one before."""
    return [lr_min * (lr_max / lr_min) ** (i / max(1, batches - 1)) for i in range(batches)]


def range_test(model: nn.Module, optimizer: torch.optim.Optimizer | Any, batch: Callable[[int], tuple],
               loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], batches: int = BATCHES,
               lr_min: float = LR_MIN, lr_max: float = LR_MAX) -> RangeTest:
    """Train `model` on batch(i) for i < batches at a geometrically rising rate; stop when the loss
    blows up."""
    started, seen, smoothed, avg = time.perf_counter(), [], [], 0.0
    diverged = None
    model.train()
    for i, lr in enumerate(rates(batches, lr_min, lr_max)):
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batch(i)
        loss = loss_of(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            diverged = lr
            break
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        seen.append(lr)
        smoothed.append(avg / (1 - SMOOTHING ** (i + 1)))
        if len(smoothed) > 10 and smoothed[-1] > DIVERGED * min(smoothed):
            diverged = lr
            break
    if len(seen) < 2:
        raise ValueError(f"the loss was not a number after {len(seen) + 1} batch(es), at a rate of {lr_min:g}: "
                         "the network or its optimiser diverges at any rate")
    return RangeTest(seen, smoothed, steepest(seen, smoothed), seen[min(range(len(seen)), key=smoothed.__getitem__)],
                     diverged, time.perf_counter() - started)


def steepest(lrs: list[float], losses: list[float]) -> float:
    """The rate where the loss falls fastest per decade of rate, before its lowest point (a slope
    over a few batches, so one noisy batch does not decide)."""
    end = min(range(len(losses)), key=losses.__getitem__)
    span = max(1, len(lrs) // 20)
    best, at = 0.0, lrs[0]
    for i in range(span, end + 1):
        slope = (losses[i] - losses[i - span]) / math.log10(lrs[i] / lrs[i - span])
        if slope < best:
            best, at = slope, lrs[i - span // 2]
    return at


def lr_find(config: TrainConfig, data: MNISTTensors, batches: int = BATCHES, lr_min: float = LR_MIN,
            lr_max: float = LR_MAX) -> RangeTest:
    """The range test for a config: its network from the seed's initial weights, its optimiser and
    batch size, on un-augmented training digits drawn with the seed's own stream."""
    model = build_for(config)
    optimizer = make_optimizer(config.recipe, model)
    generator = torch.Generator().manual_seed(config.seed)
    size = config.recipe.batch_size

    def batch(_: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(data.train_images), (size,), generator=generator)
        return normalize(to_float(data.train_images[idx])), data.train_labels[idx]

    return range_test(model, optimizer, batch, lambda out, y: F.nll_loss(out, y), batches, lr_min, lr_max)
