"""One trainer for everyone: `fit` yields events (batch progress, epoch metrics, done) and
whoever iterates decides what to do with them -- print (CLI), draw (app), store, assert (tests).

`fit` is one run, top to bottom, the way pytorch/examples trains MNIST. `fit_seeds` is a layer on
top: the seeds of one setting trained side by side as one grouped network, each seed getting the
events it would get from `fit` (a group of one is `fit` itself).

The data stays resident on the device as uint8; each batch is gathered, augmented with
per-image parameters and normalised there, so there is no DataLoader and no per-image
Python work in the loop.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Generator, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from core.architecture.builder import build_model, count_params
from core.architecture.grouped import SeedGroup
from core.training.augmentation import AugmentConfig, AugmentDraw, apply_augment, draw_augment, normalize, to_float
from core.training.average import WeightAverage
from core.training.config import TrainConfig
from core.training.data import MNISTTensors
from core.training.device import device_label, pick_device
from core.training.events import STOPPED, BatchEvent, DoneEvent, EpochEvent, Event
from core.training.inside import WEIGHTS_EVERY, Probe
from core.training.optim import Optimizer
from core.training.recipe import Recipe
from core.training.schedule import apply_schedule, make_optimizer, schedule_at
from core.training.slow_motion import Pause, first_filters, step_event

NO_AUGMENT = AugmentConfig()
# measured on the 2-core CPU (`python -m core bench --variants`): the 10k test images take 0.43 s in
# batches of 500, 0.77 s in batches of 1000 and 1.08 s in batches of 2000 (the smaller batch stays in cache)
EVAL_BATCH = 500


@torch.no_grad()
def evaluate_seeds(group: SeedGroup, images: torch.Tensor, labels: torch.Tensor,
                   batch_size: int | None = None) -> list[tuple[float, float]]:
    """(mean loss, accuracy %) per seed of the group over the whole set, from resident tensors.
    On a CPU a group evaluates in batches G times smaller (default): the same activations per batch,
    which stay in the cache (20 seeds: 8.9 s in batches of 50 against 26 s in batches of 500); a GPU
    keeps whole batches (fewer, fuller kernel calls)."""
    on_cpu = images.device.type == "cpu"
    batch_size = batch_size or (max(32, EVAL_BATCH // group.size) if on_cpu else EVAL_BATCH)
    group.eval()
    loss_sum = torch.zeros(group.size, device=images.device)
    correct = torch.zeros(group.size, device=images.device, dtype=torch.long)
    for start in range(0, len(images), batch_size):
        x = normalize(to_float(images[start:start + batch_size])).expand(-1, group.size, -1, -1)
        y = labels[start:start + batch_size, None].expand(-1, group.size)
        out = group(x)
        loss_sum += F.nll_loss(out.movedim(2, 1), y, reduction="none").sum(0)
        correct += (out.argmax(2) == y).sum(0)
    n = max(1, len(images))
    return [(loss / n, 100.0 * hits / n) for loss, hits in zip(loss_sum.tolist(), correct.tolist())]


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = EVAL_BATCH) -> tuple[float, float]:
    """(mean loss, accuracy %) of one model over the whole set."""
    return evaluate_seeds(SeedGroup([model]), images, labels, batch_size)[0]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_for(config: TrainConfig) -> nn.Sequential:
    """The config's network with the seed's initial weights (the same for every front end)."""
    torch.manual_seed(config.seed)
    return build_model(config.layers())


# --- the loop ---------------------------------------------------------------------------------

def train_step(model: nn.Module, optimizer: Optimizer | torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               average: WeightAverage | None = None, label_smoothing: float = 0.0,
               probe: Probe | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on one batch; returns (loss, class scores). For a SeedGroup (scores
    [B, G, classes], labels [B, G]) the loss is one mean per seed, and their sum is minimised:
    each seed's weights get exactly the gradient of their own loss."""
    out = model(x)
    if label_smoothing > 0:  # the model gives log-probabilities, which log_softmax leaves unchanged
        loss = F.cross_entropy(out.movedim(-1, 1), y, reduction="none", label_smoothing=label_smoothing).mean(0)
    else:
        loss = F.nll_loss(out.movedim(-1, 1), y, reduction="none").mean(0)
    optimizer.zero_grad(set_to_none=True)
    loss.sum().backward()
    if probe is not None:
        probe.after_backward()
    optimizer.step()
    if probe is not None:
        probe.after_step()
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


@dataclass
class Lane:
    """One seed of a run: its own random stream (data subset, order and augmentation, exactly as
    if it trained alone), its history, and why it ended once it has."""

    config: TrainConfig
    generator: torch.Generator
    plan: Plan
    history: list[EpochEvent] = field(default_factory=list)
    ended: str | None = None

    @classmethod
    def start(cls, config: TrainConfig, n_train: int, device: torch.device) -> Lane:
        generator = torch.Generator(device=device).manual_seed(config.seed)
        return cls(config, generator, Plan.of(config, n_train, generator))


def batch_of(lanes: list[Lane], data: MNISTTensors, orders: list[torch.Tensor], b: int,
             step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch b for every seed: images [B, G, H, W] (plane g augmented with seed g's stream) and
    labels [B, G]. Each seed draws its own augmentation; one call then augments all G batches."""
    recipe = lanes[0].config.recipe
    augment = lanes[0].plan.augment_at(recipe, step)
    idx = torch.stack([order[b * recipe.batch_size:(b + 1) * recipe.batch_size] for order in orders])  # [G, B]
    images = to_float(data.train_images[idx.flatten()])  # [G * B, 1, H, W], seed by seed
    if augment.enabled:
        draws = [draw_augment(idx.shape[1], augment, lane.generator, images.device, images.shape[2]) for lane in lanes]
        images = apply_augment(images, augment, AugmentDraw.join(draws))
    planes = images.view(len(lanes), idx.shape[1], *images.shape[2:]).transpose(0, 1)  # [B, G, H, W]
    return normalize(planes).contiguous(), data.train_labels[idx].T


def fit(config: TrainConfig, data: MNISTTensors, stop: threading.Event | None = None,
        model: nn.Module | None = None, look_inside: bool = True, pause: Pause | None = None) -> Iterator[Event]:
    """Train `config` on `data`, one run top to bottom; yields a BatchEvent every `log_every`
    batches (with a look inside the network, core.training.inside, unless `look_inside` is off), an
    EpochEvent per epoch and finally one DoneEvent. Setting `stop` ends the run after the current
    batch, keeping the history so far. While `pause` is paused the run waits before its next batch,
    and each batch it is stepped through is also yielded as a StepEvent (core.training.slow_motion)."""
    device = pick_device(config.device)
    model = (model if model is not None else build_for(config)).to(device)
    params = count_params(model)
    torch.manual_seed(config.seed)  # dropout draws its masks from the global stream
    data = data.to(device)
    lane = Lane.start(config, len(data.train_images), device)  # its own stream: subset, order, augmentation
    optimizer = make_optimizer(config.recipe, model)
    average = WeightAverage(model, config.recipe.ema) if config.recipe.ema > 0 else None
    tested = average.model if average is not None else model  # the weights every epoch is tested with
    probe = Probe(model) if look_inside else None  # after the average's copy, which must not carry its hooks
    history: list[EpochEvent] = []
    started = time.perf_counter()

    def done(reason: str) -> DoneEvent:
        weights = {k: v.detach().cpu().clone() for k, v in tested.state_dict().items()} if history else None
        return DoneEvent(reason, list(history), params, device_label(device), time.perf_counter() - started, weights)

    try:
        for epoch in range(1, config.recipe.epochs + 1):
            epoch_start = time.perf_counter()
            model.train()
            order = lane.plan.subset[torch.randperm(len(lane.plan.subset), generator=lane.generator, device=device)]
            loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long), 0
            for b in range(lane.plan.batches):
                step = (epoch - 1) * lane.plan.batches + b
                apply_schedule(optimizer, *schedule_at(config.recipe, step, lane.plan.total))
                if pause is not None:  # a paused run waits here, between batches; waiting is not training time
                    waiting_since = time.perf_counter()
                    shown = pause.wait_turn(stop)
                    waited = time.perf_counter() - waiting_since
                    started, epoch_start = started + waited, epoch_start + waited
                else:
                    shown = False
                x, y = batch_of([lane], data, [order], b, step)  # [B, 1, H, W]: one image plane
                before = first_filters(model) if shown else None
                reported = (b + 1) % config.log_every == 0 or b + 1 == lane.plan.batches
                if reported and probe is not None:  # look inside on the batches that report, at the weights on
                    # some of them, and keep the first layer's filters at the first report and each epoch's end
                    probe.arm(weights=(step + 1) // config.log_every % WEIGHTS_EVERY == 1,
                              filters=b + 1 == lane.plan.batches or step + 1 == config.log_every)
                loss, out = train_step(model, optimizer, x, y[:, 0], average, config.recipe.label_smoothing, probe)
                hits = out.argmax(1) == y[:, 0]
                loss_sum += loss.detach() * len(y)  # summed on the device: reading it every batch would sync a GPU
                correct += hits.sum()
                seen += len(y)
                if reported:
                    inside = probe.take(step + 1, epoch) if probe is not None else None
                    if not math.isfinite(loss.item()):
                        yield done(f"loss became {loss.item()} at epoch {epoch}, batch {b + 1}: "
                                   "the learning rate is probably too high")
                        return
                    yield BatchEvent(epoch, b + 1, lane.plan.batches, step + 1, lane.plan.total, loss.item(),
                                     (100.0 * hits.float().mean()).item(), optimizer.param_groups[0]["lr"],
                                     seen / max(time.perf_counter() - epoch_start, 1e-9),
                                     inside.layers if inside is not None else None,
                                     inside.filters if inside is not None else None)
                if shown:
                    yield step_event(epoch, b + 1, step + 1, lane.plan.total, loss.item(), optimizer.param_groups[0]["lr"],
                                     x, y[:, 0], out, before, first_filters(model))
                if stop is not None and stop.is_set():
                    yield done(STOPPED)
                    return
            sync(device)
            train_seconds = time.perf_counter() - epoch_start
            test_loss, test_acc = evaluate(tested, data.test_images[:config.test_limit], data.test_labels[:config.test_limit])
            event = EpochEvent(epoch, loss_sum.item() / seen, 100.0 * correct.item() / seen, test_loss, test_acc,
                               optimizer.param_groups[0]["lr"], time.perf_counter() - epoch_start, seen / train_seconds)
            if not all(math.isfinite(v) for v in (event.train_loss, test_loss)):
                yield done(f"loss became non-finite in epoch {epoch}: the learning rate is probably too high")
                return
            history.append(event)
            yield event
        yield done("completed")
    finally:
        if probe is not None:
            probe.close()  # a model handed in leaves without the probe's hooks


# --- seeds side by side ------------------------------------------------------------------------

@dataclass
class EpochTotals:
    loss_sum: torch.Tensor  # per seed, summed on the device: reading it every batch would sync the GPU
    correct: torch.Tensor
    seen: int = 0
    stopped: bool = False


def train_epoch(epoch: int, group: SeedGroup, optimizer: Optimizer, average: WeightAverage | None,
                data: MNISTTensors, lanes: list[Lane], stop: threading.Event | None,
                end: Callable[[int, str], tuple[int, DoneEvent]]
                ) -> Generator[tuple[int, BatchEvent | DoneEvent], None, EpochTotals]:
    """One epoch over a fresh order of each seed's images; yields (seed index, BatchEvent) every
    `log_every` batches, and `end(seed index, why)` for a seed whose loss stopped being a number
    (the others go on); returns the epoch's totals."""
    group.train()
    config, plan, device = lanes[0].config, lanes[0].plan, lanes[0].plan.subset.device
    started = time.perf_counter()
    orders = [lane.plan.subset[torch.randperm(len(lane.plan.subset), generator=lane.generator, device=device)]
              for lane in lanes]
    totals = EpochTotals(torch.zeros(len(lanes), device=device),
                         torch.zeros(len(lanes), device=device, dtype=torch.long))
    for b in range(plan.batches):
        step = (epoch - 1) * plan.batches + b
        apply_schedule(optimizer, *schedule_at(config.recipe, step, plan.total))
        x, y = batch_of(lanes, data, orders, b, step)
        loss, out = train_step(group, optimizer, x, y, average, config.recipe.label_smoothing)
        hits = out.argmax(2) == y
        totals.loss_sum += loss.detach() * len(y)
        totals.correct += hits.sum(0)
        totals.seen += len(y)
        if (b + 1) % config.log_every == 0 or b + 1 == plan.batches:
            losses, accs = loss.tolist(), (100.0 * hits.float().mean(0)).tolist()  # one sync per log interval
            rate = totals.seen / max(time.perf_counter() - started, 1e-9)
            for g, lane in enumerate(lanes):
                if lane.ended:
                    continue
                if not math.isfinite(losses[g]):
                    yield end(g, f"loss became {losses[g]} at epoch {epoch}, batch {b + 1}: "
                                 "the learning rate is probably too high")
                    continue
                yield g, BatchEvent(epoch, b + 1, plan.batches, step + 1, plan.total, losses[g], accs[g],
                                    optimizer.param_groups[0]["lr"], rate)
            if all(lane.ended for lane in lanes):
                break
        if stop is not None and stop.is_set():
            totals.stopped = True
            break
    return totals


def same_but_seed(configs: list[TrainConfig]) -> None:
    """A seed group trains one setting: everything but the seed must agree (and seeds differ)."""
    if not configs:
        raise ValueError("no runs to train")
    first = replace(configs[0], seed=0)
    if any(replace(c, seed=0) != first for c in configs):
        raise ValueError("runs trained side by side must differ only in their seed")
    if len({c.seed for c in configs}) != len(configs):
        raise ValueError("runs trained side by side need different seeds")


def fit_seeds(configs: list[TrainConfig], data: MNISTTensors, stop: threading.Event | None = None,
              models: list[nn.Module] | None = None, pause: Pause | None = None) -> Iterator[tuple[int, Event]]:
    """Train the same setting on each seed of `configs`; yields (index into `configs`, event). One
    seed is `fit` itself (and may be paused); several train side by side (`fit_side_by_side`)."""
    if len(configs) == 1:
        for event in fit(configs[0], data, stop, None if models is None else models[0], pause=pause):
            yield 0, event
        return
    yield from fit_side_by_side(configs, data, stop, models)


def fit_side_by_side(configs: list[TrainConfig], data: MNISTTensors, stop: threading.Event | None = None,
                     models: list[nn.Module] | None = None) -> Iterator[tuple[int, Event]]:
    """Train the same setting on several seeds at once, as one grouped network (core.architecture.
    grouped), each seed with its own initial weights, data order and augmentation: the results are
    those of separate runs, up to floating-point summation order. Yields (index into `configs`,
    event): each seed's BatchEvents, EpochEvents and finally its DoneEvent. Setting `stop` ends
    every seed after the current batch, keeping the history so far."""
    same_but_seed(configs)
    config = configs[0]
    device = pick_device(config.device)
    models = models if models is not None else [build_for(c) for c in configs]
    params = count_params(models[0])
    group = SeedGroup(models).to(device)
    torch.manual_seed(config.seed)  # a run alone draws its dropout masks from the global stream
    group.seed_streams([c.seed for c in configs], device)  # each seed of a group from its own
    data = data.to(device)
    lanes = [Lane.start(c, len(data.train_images), device) for c in configs]
    optimizer = make_optimizer(config.recipe, group)
    average = WeightAverage(group, config.recipe.ema) if config.recipe.ema > 0 else None
    tested = average.model if average is not None else group  # the weights every epoch is tested with
    test_images, test_labels = data.test_images[:config.test_limit], data.test_labels[:config.test_limit]
    label, started = device_label(device), time.perf_counter()

    def done(g: int, reason: str) -> tuple[int, DoneEvent]:
        lane = lanes[g]
        lane.ended = reason
        weights = group.seed_state(g, tested.state_dict()) if lane.history else None
        return g, DoneEvent(lane.ended, list(lane.history), params, label, time.perf_counter() - started, weights)

    def still_running() -> list[int]:
        return [g for g, lane in enumerate(lanes) if not lane.ended]

    for epoch in range(1, config.recipe.epochs + 1):
        epoch_start = time.perf_counter()
        totals = yield from train_epoch(epoch, group, optimizer, average, data, lanes, stop, done)
        if totals.stopped:
            for g in still_running():
                yield done(g, STOPPED)
            return
        sync(device)
        train_seconds = time.perf_counter() - epoch_start
        tests = evaluate_seeds(tested, test_images, test_labels)
        train_losses, train_hits = totals.loss_sum.tolist(), totals.correct.tolist()
        for g in still_running():
            test_loss, test_acc = tests[g]
            event = EpochEvent(epoch, train_losses[g] / totals.seen, 100.0 * train_hits[g] / totals.seen,
                               test_loss, test_acc, optimizer.param_groups[0]["lr"],
                               time.perf_counter() - epoch_start, totals.seen / train_seconds)
            if not all(math.isfinite(v) for v in (event.train_loss, test_loss)):
                yield done(g, f"loss became non-finite in epoch {epoch}: the learning rate is probably too high")
                continue
            lanes[g].history.append(event)
            yield g, event
        if not still_running():
            return
    for g in still_running():
        yield done(g, "completed")


def run(config: TrainConfig, data: MNISTTensors, stop: threading.Event | None = None,
        model: nn.Module | None = None) -> DoneEvent:
    """Drain `fit` and return its final event (for scripts and tests)."""
    final = None
    for event in fit(config, data, stop, model):
        final = event
    assert isinstance(final, DoneEvent)
    return final


def run_seeds(configs: list[TrainConfig], data: MNISTTensors, stop: threading.Event | None = None) -> list[DoneEvent]:
    """Drain `fit_seeds`: each seed's final event, in the order of `configs`."""
    finals: dict[int, DoneEvent] = {}
    for g, event in fit_seeds(configs, data, stop):
        if isinstance(event, DoneEvent):
            finals[g] = event
    return [finals[g] for g in range(len(configs))]
