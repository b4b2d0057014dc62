"""One trainer for everyone: `fit` yields events (batch progress, epoch metrics, done) and
whoever iterates decides what to do with them -- print (CLI), draw (app), store, assert (tests).

The data stays resident on the device as uint8; each batch is gathered, augmented with
per-image parameters and normalised there, so there is no DataLoader and no per-image
Python work in the loop.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from core.augment import AugmentConfig, augment_batch, normalize, to_float
from core.data import MNISTTensors
from core.model import build_model, count_params, device_label, pick_device
from core.recipe import Recipe
from core.net import format_net, net_of, parse_net
from core.spec import Layer, Toggles, expand
from core.steps import get_step

NO_AUGMENT = AugmentConfig()
# measured on the 2-core CPU (`python -m core bench --variants`): the 10k test images take 0.43 s in
# batches of 500, 0.77 s in batches of 1000 and 1.08 s in batches of 2000 (the smaller batch stays in cache)
EVAL_BATCH = 500


@dataclass(frozen=True)
class TrainConfig:
    """What to train (a step with toggles), how (a recipe), and how much of it (limits)."""

    step: int = 9  # the lifecycle step it belongs to, or a design started from (its lesson and references)
    toggles: Toggles = field(default_factory=Toggles)
    recipe: Recipe = field(default_factory=Recipe)
    seed: int = 1
    net: str | None = None  # the network in core.net's notation; None: the step's own (filled in below)
    max_batches: int | None = None  # per epoch, for quick runs
    train_fraction: float = 1.0  # a fixed random subset of the training images
    test_limit: int | None = None  # evaluate on the first N test images (None: all)
    device: str = "auto"
    log_every: int = 10  # batches between batch events (each one syncs the GPU)

    def __post_init__(self) -> None:
        step = get_step(self.step)
        # one network string, whose head always agrees with the GAP toggle (the toggle decides)
        net = parse_net(self.net) if self.net is not None else net_of(step.spec, self.toggles.gap)
        object.__setattr__(self, "net", format_net(replace(net, gap=self.toggles.gap)))
        checks = [
            (isinstance(self.seed, int) and 0 <= self.seed < 2**63, f"seed must be a non-negative integer, got {self.seed}"),
            (0 < self.train_fraction <= 1, f"train fraction must be in (0, 1], got {self.train_fraction}"),
            (self.max_batches is None or self.max_batches >= 1, f"max batches must be >= 1, got {self.max_batches}"),
            (self.test_limit is None or self.test_limit >= 1, f"test limit must be >= 1, got {self.test_limit}"),
            (self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @classmethod
    def for_step(cls, number: int, **overrides: Any) -> "TrainConfig":
        """The step's own network, toggles and recipe, with any non-None override applied;
        overrides may name a field of TrainConfig, Toggles or Recipe (e.g. seed=2, batchnorm=False,
        lr=0.2, net='c8,M,c16,G')."""
        step = get_step(number)
        return cls(step=number, toggles=step.toggles, recipe=step.recipe).with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> "TrainConfig":
        """Flat overrides routed to the dataclass that owns each name; None means 'keep'. A new
        `net` brings its head along (G: GAP on), unless `gap` is given too."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "net" in given and "gap" not in given:
            given["gap"] = parse_net(given["net"]).gap
        parts: dict[str, dict[str, Any]] = {"toggles": {}, "recipe": {}, "self": {}}
        owners = {"toggles": _names(Toggles), "recipe": _names(Recipe), "self": _names(TrainConfig)}
        for name, value in given.items():
            owner = next((o for o, names in owners.items() if name in names), None)
            if owner is None:
                raise ValueError(f"unknown training setting {name!r}")
            parts[owner][name] = value
        config = replace(self, **parts["self"])
        return replace(config, toggles=replace(config.toggles, **parts["toggles"]),
                       recipe=replace(config.recipe, **parts["recipe"]))

    def batches_per_epoch(self, n_train: int) -> int:
        images = max(1, round(n_train * self.train_fraction))
        batches = math.ceil(images / self.recipe.batch_size)
        return min(batches, self.max_batches) if self.max_batches else batches

    def layers(self) -> list[Layer]:
        return expand(parse_net(self.net).spec, self.toggles)

    @property
    def full_data(self) -> bool:
        """Every training image each epoch and the whole test set: a run the challenge can judge."""
        return self.max_batches is None and self.train_fraction == 1.0 and self.test_limit is None

    @property
    def is_design(self) -> bool:
        """A network other than its step's own (with the same head)."""
        return self.net != format_net(net_of(get_step(self.step).spec, self.toggles.gap))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainConfig":
        """Inverse of as_dict (a stored run's config); unknown keys are an error."""
        raw = dict(raw)
        recipe = dict(raw.pop("recipe", {}))
        augment = AugmentConfig(**recipe.pop("augment", {}))
        return cls(toggles=Toggles(**raw.pop("toggles", {})), recipe=Recipe(**recipe, augment=augment), **raw)


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


# --- events -----------------------------------------------------------------------------------

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
    train_acc: float  # % over the epoch's (augmented) training batches
    test_loss: float
    test_acc: float  # % on the test images
    lr: float  # learning rate of the epoch's last optimiser step
    seconds: float  # training plus the test evaluation
    images_per_s: float  # training throughput
    kind: str = "epoch"

    def row(self) -> dict[str, float]:
        """The epoch as one record: what the CLI prints, the run store keeps and charts draw."""
        return {name: getattr(self, name) for name in EPOCH_FIELDS}


EPOCH_FIELDS = tuple(f.name for f in fields(EpochEvent) if f.name != "kind")


@dataclass(frozen=True)
class DoneEvent:
    reason: str  # "completed", "stopped by request", or why it failed
    history: list[EpochEvent]
    params: int
    device: str
    seconds: float
    weights: dict[str, torch.Tensor] | None = None  # the tested weights (the average when EMA is on), on the CPU
    kind: str = "done"

    @property
    def completed(self) -> bool:
        return self.reason == "completed"

    @property
    def stopped(self) -> bool:
        return self.reason == STOPPED


STOPPED = "stopped by request"
Event = BatchEvent | EpochEvent | DoneEvent


# --- optimisation -----------------------------------------------------------------------------

def make_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                           weight_decay=recipe.weight_decay, nesterov=recipe.momentum > 0)


ONE_CYCLE = {"warmup": 0.2, "div": 10.0, "final_div": 100.0, "momentum": (0.95, 0.85)}


def schedule_at(recipe: Recipe, step: int, total: int) -> tuple[float, float | None]:
    """(learning rate, momentum or None to keep the optimiser's) for 0-based optimiser step `step`
    of `total`. one-cycle: the formula of torch's OneCycleLR (cosine, warm-up for 20 % of the run
    from peak/10, anneal to peak/1000, momentum 0.95 -> 0.85 -> 0.95), defined for runs of any
    length (a warm-up shorter than one step is skipped); step: divide by 10 at each third of the
    run; constant: the recipe's rate throughout."""
    peak = recipe.lr
    if recipe.schedule == "constant":
        return peak, None
    if recipe.schedule == "step":
        return peak * 0.1 ** (step // max(1, total // 3)), None
    start, low = peak / ONE_CYCLE["div"], peak / ONE_CYCLE["div"] / ONE_CYCLE["final_div"]
    high_m, low_m = ONE_CYCLE["momentum"]
    warm_end = ONE_CYCLE["warmup"] * total - 1  # OneCycleLR's phase boundary, in steps
    if 0 < warm_end and step <= warm_end:
        pct = step / warm_end
        return _cos(start, peak, pct), _cos(high_m, low_m, pct)
    pct = (step - warm_end) / (total - 1 - warm_end)
    return _cos(peak, low, pct), _cos(low_m, high_m, pct)


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def apply_schedule(optimizer: torch.optim.Optimizer, lr: float, momentum: float | None) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
        if momentum is not None:
            if "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
            else:
                group["momentum"] = momentum


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

def fit(config: TrainConfig, data: MNISTTensors, stop: threading.Event | None = None,
        model: nn.Module | None = None) -> Iterator[Event]:
    """Train `config` on `data`; yields BatchEvent / EpochEvent and finally one DoneEvent.
    Setting `stop` ends the run after the current batch, keeping the history so far."""
    device = pick_device(config.device)
    recipe = config.recipe
    model = (model if model is not None else build_for(config)).to(device)
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    data = data.to(device)

    n_train = max(1, round(len(data.train_images) * config.train_fraction))
    subset = torch.randperm(len(data.train_images), generator=generator, device=device)[:n_train]
    batches = config.batches_per_epoch(len(data.train_images))
    total = recipe.epochs * batches
    optimizer = make_optimizer(recipe, model)
    # a fraction rather than a count of epochs, so a shortened run keeps the same shape
    clean_from = round((1 - recipe.clean_fraction) * total)
    average = WeightAverage(model, recipe.ema) if recipe.ema > 0 else None
    tested = average.model if average is not None else model
    test_images, test_labels = data.test_images[:config.test_limit], data.test_labels[:config.test_limit]
    history: list[EpochEvent] = []
    params, label = count_params(model), device_label(device)
    started = time.perf_counter()

    def done(reason: str) -> DoneEvent:
        weights = {k: v.detach().cpu().clone() for k, v in tested.state_dict().items()} if history else None
        return DoneEvent(reason, list(history), params, label, time.perf_counter() - started, weights)

    for epoch in range(1, recipe.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        order = subset[torch.randperm(n_train, generator=generator, device=device)]
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for b in range(batches):
            step = (epoch - 1) * batches + b
            apply_schedule(optimizer, *schedule_at(recipe, step, total))
            idx = order[b * recipe.batch_size:(b + 1) * recipe.batch_size]
            augment = recipe.augment if step < clean_from else NO_AUGMENT
            x = normalize(augment_batch(to_float(data.train_images[idx]), augment, generator))
            y = data.train_labels[idx]
            out = model(x)
            loss = F.nll_loss(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
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
                yield BatchEvent(epoch, b + 1, batches, step + 1, total, batch_loss,
                                 100.0 * (out.argmax(1) == y).float().mean().item(),
                                 optimizer.param_groups[0]["lr"], seen / max(elapsed, 1e-9))
            if stop is not None and stop.is_set():
                yield done(STOPPED)
                return
        sync(device)
        train_seconds = time.perf_counter() - epoch_start
        test_loss, test_acc = evaluate(tested, test_images, test_labels)
        event = EpochEvent(epoch, loss_sum.item() / seen, 100.0 * correct.item() / seen, test_loss, test_acc,
                           optimizer.param_groups[0]["lr"], time.perf_counter() - epoch_start, seen / train_seconds)
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
