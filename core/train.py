"""One trainer for everyone: `fit` yields events (batch progress, epoch metrics, done) and
whoever iterates decides what to do with them -- print (CLI), draw (app), assert (tests).

The data stays resident on the device as uint8; each batch is gathered, augmented with
per-image parameters and normalised there, so there is no DataLoader and no per-image
Python work in the loop.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from core.augment import AugmentConfig, augment_batch, normalize, to_float
from core.data import MNISTTensors
from core.model import build_model, count_params, device_label, pick_device
from core.spec import Toggles
from core.steps import get_step, with_toggles

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "onecycle")
NO_AUGMENT = AugmentConfig()
CHALLENGE = {"max_params": 10_000, "min_acc": 99.4, "last_epochs": 3, "max_epochs": 15}


@dataclass(frozen=True)
class TrainConfig:
    step: int = 9
    batchnorm: bool = True
    dropout: float = 0.0
    gap: bool = True
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    clean_fraction: float = 0.0  # the last fraction of the optimiser steps trains on un-augmented images
    ema: float = 0.0  # decay of the moving average of the weights that is tested; 0 = test the raw weights
    seed: int = 1
    max_batches: int | None = None  # per epoch, for quick runs
    train_fraction: float = 1.0
    device: str = "auto"
    log_every: int = 10  # batches between batch events (each one syncs the GPU)
    test_limit: int | None = None  # evaluate on the first N test images (None: all 10k)

    @classmethod
    def for_step(cls, number: int, **overrides: Any) -> "TrainConfig":
        """The step's own recipe and toggles, with any non-None override applied."""
        step = get_step(number)
        toggles = with_toggles(step, overrides.pop("batchnorm", None), overrides.pop("dropout", None),
                               overrides.pop("gap", None))
        r = step.recipe
        base = cls(step=number, batchnorm=toggles.batchnorm, dropout=toggles.dropout, gap=toggles.gap,
                   epochs=r.epochs, batch_size=r.batch_size, optimizer=r.optimizer, lr=r.lr,
                   schedule=r.schedule, augment=r.augment, clean_fraction=r.clean_fraction, ema=r.ema)
        config = replace(base, **{k: v for k, v in overrides.items() if v is not None})
        config.validate()
        return config

    @property
    def toggles(self) -> Toggles:
        return Toggles(self.batchnorm, self.dropout, self.gap)

    def validate(self) -> None:
        checks = [
            (1 <= self.epochs <= 200, f"epochs must be between 1 and 200, got {self.epochs}"),
            (1 <= self.batch_size <= 8192, f"batch size must be between 1 and 8192, got {self.batch_size}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}"),
            (math.isfinite(self.lr) and 0 < self.lr <= 10, f"learning rate must be in (0, 10], got {self.lr}"),
            (0 <= self.clean_fraction <= 1,
             f"the un-augmented fraction of the run must be in [0, 1], got {self.clean_fraction}"),
            (0 <= self.ema < 1, f"EMA decay must be in [0, 1), got {self.ema}"),
            (0 < self.train_fraction <= 1, f"train fraction must be in (0, 1], got {self.train_fraction}"),
            (self.max_batches is None or self.max_batches >= 1, f"max batches must be >= 1, got {self.max_batches}"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.test_limit is None or self.test_limit >= 1, f"test limit must be >= 1, got {self.test_limit}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.toggles  # validates the dropout rate

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BatchEvent:
    epoch: int
    batch: int  # 1-based within the epoch
    batches: int  # per epoch
    step: int  # global optimiser step, 1-based
    total_steps: int
    loss: float
    acc: float  # % on this batch (augmented training images)
    lr: float
    images_per_s: float
    kind: str = "batch"


@dataclass(frozen=True)
class EpochEvent:
    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float  # training plus the full test evaluation
    images_per_s: float  # training throughput
    kind: str = "epoch"


@dataclass(frozen=True)
class DoneEvent:
    reason: str  # "completed", "stopped by request", or why it failed
    history: list[EpochEvent]
    params: int
    device: str
    seconds: float
    kind: str = "done"

    @property
    def completed(self) -> bool:
        return self.reason == "completed"


Event = BatchEvent | EpochEvent | DoneEvent


def challenge_verdict(params: int, test_accs: list[float], epochs_planned: int) -> tuple[bool, str]:
    """Does a run meet the seed challenge? Returns (passed, one-line explanation)."""
    n = CHALLENGE["last_epochs"]
    last = test_accs[-n:]
    problems = []
    if params >= CHALLENGE["max_params"]:
        problems.append(f"{params:,} parameters (needs < {CHALLENGE['max_params']:,})")
    if epochs_planned > CHALLENGE["max_epochs"]:
        problems.append(f"{epochs_planned} epochs (needs <= {CHALLENGE['max_epochs']})")
    if len(last) < n:
        problems.append(f"only {len(test_accs)} epoch(s) run (needs the last {n})")
    elif min(last) < CHALLENGE["min_acc"]:
        problems.append(f"min of last {n} test accuracies {min(last):.2f} % (needs >= {CHALLENGE['min_acc']} %)")
    if problems:
        return False, "Not met: " + "; ".join(problems)
    return True, f"Met: {params:,} parameters, last {n} test accuracies {', '.join(f'{a:.2f}' for a in last)} %"


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, nesterov=config.momentum > 0)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """Stepped once per batch. OneCycle: warm up for 20 % of the run to `lr`, then anneal
    to lr/1000; step: divide by 10 at each third of the run; constant: no change."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total, pct_start=0.2,
                                                   div_factor=10, final_div_factor=100, anneal_strategy="cos")
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, total // 3), gamma=0.1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


class WeightAverage:
    """An exponential moving average of a model's weights and BatchNorm statistics, kept in a
    copy that is tested instead of the raw model. It smooths out the last optimiser steps' noise,
    which is what 'held in the last epochs' is sensitive to. The decay ramps up from 0.18 towards
    `decay` (as in TensorFlow's ExponentialMovingAverage), so short runs are not dominated by the
    random initial weights."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model)
        self.decay = decay
        self.updates = 0
        # state_dict tensors share storage with the live weights, so these lists stay current
        self._averaged = [t for t in self.model.state_dict().values() if t.is_floating_point()]
        self._live = [t for t in model.state_dict().values() if t.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._averaged, self._live, 1 - decay)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 2000) -> tuple[float, float]:
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit(config: TrainConfig, data: MNISTTensors, stop: threading.Event | None = None,
        model: nn.Module | None = None) -> Iterator[Event]:
    """Train `config` on `data`; yields BatchEvent / EpochEvent and finally one DoneEvent.
    Setting `stop` ends the run after the current batch, keeping the history so far."""
    config.validate()
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    if model is None:
        model = build_model(get_step(config.step).layers(config.toggles))
    model = model.to(device)
    data = data.to(device)

    n_train = max(1, round(len(data.train_images) * config.train_fraction))
    subset = torch.randperm(len(data.train_images), generator=generator, device=device)[:n_train]
    batches = math.ceil(n_train / config.batch_size)
    if config.max_batches:
        batches = min(batches, config.max_batches)
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer, batches)
    # a fraction rather than a count of epochs, so a shortened run keeps the same shape
    clean_from = round((1 - config.clean_fraction) * config.epochs * batches)
    average = WeightAverage(model, config.ema) if config.ema > 0 else None
    history: list[EpochEvent] = []
    params, label = count_params(model), device_label(device)
    started = time.perf_counter()

    def done(reason: str) -> DoneEvent:
        return DoneEvent(reason, list(history), params, label, time.perf_counter() - started)

    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        order = subset[torch.randperm(n_train, generator=generator, device=device)]
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for b in range(batches):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            augment = config.augment if (epoch - 1) * batches + b < clean_from else NO_AUGMENT
            x = normalize(augment_batch(to_float(data.train_images[idx]), augment, generator))
            y = data.train_labels[idx]
            out = model(x)
            loss = F.nll_loss(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if average is not None:
                average.update()
            loss_sum += loss.detach() * len(idx)
            correct += (out.argmax(1) == y).sum()
            seen += len(idx)
            if (b + 1) % config.log_every == 0 or b + 1 == batches:
                batch_loss = loss.item()  # one sync per log interval, not per batch
                if not math.isfinite(batch_loss):
                    yield done(f"loss became {batch_loss} at epoch {epoch}, batch {b + 1}: "
                               "the learning rate is probably too high")
                    return
                elapsed = time.perf_counter() - epoch_start
                yield BatchEvent(epoch, b + 1, batches, (epoch - 1) * batches + b + 1, config.epochs * batches,
                                 batch_loss, 100.0 * (out.argmax(1) == y).float().mean().item(),
                                 optimizer.param_groups[0]["lr"], seen / max(elapsed, 1e-9))
            if stop is not None and stop.is_set():
                yield done("stopped by request")
                return
        _sync(device)
        train_seconds = time.perf_counter() - epoch_start
        tested = average.model if average is not None else model
        test_loss, test_acc = evaluate(tested, data.test_images[:config.test_limit], data.test_labels[:config.test_limit])
        event = EpochEvent(epoch, loss_sum.item() / seen, 100.0 * correct.item() / seen, test_loss, test_acc,
                           optimizer.param_groups[0]["lr"], time.perf_counter() - epoch_start, seen / train_seconds)
        history.append(event)
        yield event
        if not math.isfinite(event.train_loss) or not math.isfinite(test_loss):
            yield done(f"loss became non-finite in epoch {epoch}: the learning rate is probably too high")
            return
    yield done("completed")


def seconds_per_image(config: TrainConfig, probe: int = 32) -> tuple[float, float]:
    """(training, evaluation) seconds per image for this config on its device, from a short
    timed probe on random data: what the app shows before a run starts."""
    device = pick_device(config.device)
    model = build_model(get_step(config.step).layers(config.toggles)).to(device)
    optimizer = make_optimizer(config, model)
    x = torch.randn(probe, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (probe,), device=device)
    timings = []
    for _ in range(3):  # the first iteration warms up allocators and kernels
        start = time.perf_counter()
        loss = F.nll_loss(model(augment_batch(x.clamp(0, 1), config.augment)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        timings.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        model(torch.randn(4 * probe, 1, 28, 28, device=device))
        _sync(device)
        eval_s = (time.perf_counter() - start) / (4 * probe)
    return min(timings[1:]) / probe, eval_s


def estimate_seconds(config: TrainConfig, per_image: tuple[float, float], n_train: int = 60_000,
                     n_test: int = 10_000) -> float:
    train_images = round(n_train * config.train_fraction)
    if config.max_batches:
        train_images = min(train_images, config.max_batches * config.batch_size)
    test_images = min(n_test, config.test_limit or n_test)
    return config.epochs * (train_images * per_image[0] + test_images * per_image[1])


def eval_images_for_budget(epochs: int, eval_s_per_image: float, target_s: float, n_test: int = 10_000) -> int:
    """All test images, unless evaluating them would eat more than a third of the budget."""
    if epochs * n_test * eval_s_per_image <= target_s / 3:
        return n_test
    return max(500, int(target_s / 3 / (epochs * eval_s_per_image)))


def quick_budget(config: TrainConfig, per_image: tuple[float, float], target_s: float = 60.0,
                 n_train: int = 60_000, n_test: int = 10_000) -> TrainConfig:
    """A reduced run that takes about `target_s`: at most 3 epochs, then fewer test images
    (if evaluation alone would eat a third of the time), then a fraction of the training set."""
    epochs = min(config.epochs, 3)
    test = eval_images_for_budget(epochs, per_image[1], target_s, n_test)
    left = target_s - epochs * test * per_image[1]
    fraction = min(1.0, max(0.01, left / (epochs * n_train * per_image[0])))
    return replace(config, epochs=epochs, train_fraction=round(fraction, 3),
                   test_limit=None if test >= n_test else test)


def run(config: TrainConfig, data: MNISTTensors, stop: threading.Event | None = None,
        model: nn.Module | None = None) -> DoneEvent:
    """Drain `fit` and return its final event (for scripts and tests)."""
    final = None
    for event in fit(config, data, stop, model):
        final = event
    assert isinstance(final, DoneEvent)
    return final
