"""One trainer for everyone: `fit` yields events (batch progress, epoch metrics, done) and
whoever iterates decides what to do with them -- print (CLI), draw (app), store, assert (tests).

The data stays resident on the device as uint8; each batch is gathered, augmented with
per-image parameters and normalised there, so there is no DataLoader and no per-image
Python work in the loop.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Generator, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from core.architecture.builder import build_model, count_params
from core.training.augmentation import AugmentConfig, augment_batch, normalize, to_float
from core.training.average import WeightAverage
from core.training.config import TrainConfig
from core.training.data import MNISTTensors
from core.training.device import device_label, pick_device
from core.training.events import STOPPED, BatchEvent, DoneEvent, EpochEvent, Event
from core.training.recipe import Recipe
from core.training.schedule import apply_schedule, make_optimizer, schedule_at

NO_AUGMENT = AugmentConfig()
# measured on the 2-core CPU (`python -m core bench --variants`): the 10k test images take 0.43 s in
# batches of 500, 0.77 s in batches of 1000 and 1.08 s in batches of 2000 (the smaller batch stays in cache)
EVAL_BATCH = 500


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = EVAL_BATCH) -> tuple[float, float]:
    """(mean loss, accuracy %) over the whole set, from resident tensors."""
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    for start in range(0, len(images), batch_size):
        x = normalize(to_float(images[start:start + batch_size]))
        y = labels[start:start + batch_size]
        out = model(x)
        loss_sum += F.nll_loss(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    n = max(1, len(images))
    return loss_sum.item() / n, 100.0 * correct.item() / n


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_for(config: TrainConfig) -> nn.Sequential:
    """The config's network with the seed's initial weights (the same for every front end)."""
    torch.manual_seed(config.seed)
    return build_model(config.layers())


# --- the loop ---------------------------------------------------------------------------------

def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               average: WeightAverage | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on one batch; returns (loss, class scores)."""
    out = model(x)
    loss = F.nll_loss(out, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if average is not None:
        average.update()
    return loss, out


@dataclass(frozen=True)
class Plan:
    """Where a run's optimiser steps go: the training images it draws from, batches per epoch, and
    the step from which the clean finish trains without augmentation."""

    subset: torch.Tensor
    batches: int
    total: int
    clean_from: int

    @classmethod
    def of(cls, config: TrainConfig, n_train: int, generator: torch.Generator) -> Plan:
        subset = torch.randperm(n_train, generator=generator, device=generator.device)[:config.subset_size(n_train)]
        batches = config.batches_per_epoch(n_train)
        total = config.recipe.epochs * batches
        # a fraction rather than a count of epochs, so a shortened run keeps the same shape
        return cls(subset, batches, total, round((1 - config.recipe.clean_fraction) * total))

    def augment_at(self, recipe: Recipe, step: int) -> AugmentConfig:
        return recipe.augment if step < self.clean_from else NO_AUGMENT


class Diverged(ArithmeticError):
    """The loss stopped being a number; the message says where."""


@dataclass
class EpochTotals:
    loss_sum: torch.Tensor  # summed on the device: reading it every batch would sync the GPU
    correct: torch.Tensor
    seen: int = 0
    stopped: bool = False


def train_epoch(epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, average: WeightAverage | None,
                data: MNISTTensors, config: TrainConfig, plan: Plan, generator: torch.Generator,
                stop: threading.Event | None) -> Generator[BatchEvent, None, EpochTotals]:
    """One epoch over a fresh order of the plan's images; yields a BatchEvent every `log_every`
    batches and returns the epoch's totals. Raises Diverged when the loss is no longer finite."""
    model.train()
    recipe, device = config.recipe, plan.subset.device
    started = time.perf_counter()
    order = plan.subset[torch.randperm(len(plan.subset), generator=generator, device=device)]
    totals = EpochTotals(torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long))
    for b in range(plan.batches):
        step = (epoch - 1) * plan.batches + b
        apply_schedule(optimizer, *schedule_at(recipe, step, plan.total))
        idx = order[b * recipe.batch_size:(b + 1) * recipe.batch_size]
        x = normalize(augment_batch(to_float(data.train_images[idx]), plan.augment_at(recipe, step), generator))
        y = data.train_labels[idx]
        loss, out = train_step(model, optimizer, x, y, average)
        totals.loss_sum += loss.detach() * len(idx)
        totals.correct += (out.argmax(1) == y).sum()
        totals.seen += len(idx)
        if (b + 1) % config.log_every == 0 or b + 1 == plan.batches:
            batch_loss = loss.item()  # one sync per log interval, not per batch
            if not math.isfinite(batch_loss):
                raise Diverged(f"loss became {batch_loss} at epoch {epoch}, batch {b + 1}: "
                               "the learning rate is probably too high")
            yield BatchEvent(epoch, b + 1, plan.batches, step + 1, plan.total, batch_loss,
                             100.0 * (out.argmax(1) == y).float().mean().item(),
                             optimizer.param_groups[0]["lr"], totals.seen / max(time.perf_counter() - started, 1e-9))
        if stop is not None and stop.is_set():
            totals.stopped = True
            break
    return totals


def fit(config: TrainConfig, data: MNISTTensors, stop: threading.Event | None = None,
        model: nn.Module | None = None) -> Iterator[Event]:
    """Train `config` on `data`; yields BatchEvent / EpochEvent and finally one DoneEvent.
    Setting `stop` ends the run after the current batch, keeping the history so far."""
    device = pick_device(config.device)
    model = (model if model is not None else build_for(config)).to(device)
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    data = data.to(device)
    plan = Plan.of(config, len(data.train_images), generator)
    optimizer = make_optimizer(config.recipe, model)
    average = WeightAverage(model, config.recipe.ema) if config.recipe.ema > 0 else None
    tested = average.model if average is not None else model  # the weights every epoch is tested with
    test_images, test_labels = data.test_images[:config.test_limit], data.test_labels[:config.test_limit]
    history: list[EpochEvent] = []
    params, label, started = count_params(model), device_label(device), time.perf_counter()

    def done(reason: str) -> DoneEvent:
        weights = {k: v.detach().cpu().clone() for k, v in tested.state_dict().items()} if history else None
        return DoneEvent(reason, list(history), params, label, time.perf_counter() - started, weights)

    for epoch in range(1, config.recipe.epochs + 1):
        epoch_start = time.perf_counter()
        try:
            totals = yield from train_epoch(epoch, model, optimizer, average, data, config, plan, generator, stop)
        except Diverged as exc:
            yield done(str(exc))
            return
        if totals.stopped:
            yield done(STOPPED)
            return
        sync(device)
        train_seconds = time.perf_counter() - epoch_start
        test_loss, test_acc = evaluate(tested, test_images, test_labels)
        event = EpochEvent(epoch, totals.loss_sum.item() / totals.seen, 100.0 * totals.correct.item() / totals.seen,
                           test_loss, test_acc, optimizer.param_groups[0]["lr"], time.perf_counter() - epoch_start,
                           totals.seen / train_seconds)
        if not all(math.isfinite(v) for v in (event.train_loss, test_loss)):
            yield done(f"loss became non-finite in epoch {epoch}: the learning rate is probably too high")
            return
        history.append(event)
        yield event
    yield done("completed")


def run(config: TrainConfig, data: MNISTTensors, stop: threading.Event | None = None,
        model: nn.Module | None = None) -> DoneEvent:
    """Drain `fit` and return its final event (for scripts and tests)."""
    final = None
    for event in fit(config, data, stop, model):
        final = event
    assert isinstance(final, DoneEvent)
    return final
