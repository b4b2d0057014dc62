"""How long a run takes, and how to shrink one to a time budget.

A quick run must train the same images every time the same link is opened, whatever the server is
doing at that moment. So a run's size is fitted with a *cost model*, a fixed function of the
network (its multiply-adds and activations per image, computed from the spec) and the batch size,
with coefficients fitted once on a reference CPU (`python -m core bench --cost-model`). Only the
*estimate* of how long it takes here is scaled by a pace measured where the runs train (the
worker process), so it stays honest on a faster laptop or a GPU. One function serves the app's
quick runs and `reproduce --budget`, so a reduced run means the same thing everywhere."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from core.architecture.builder import build_model
from core.architecture.receptive_field import rf_table
from core.architecture.spec import MNIST_SIDE, Layer
from core.training.augmentation import augment_batch
from core.training.config import TrainConfig
from core.training.device import pick_device
from core.training.loop import sync, train_step
from core.training.schedule import make_optimizer
from core.training.steps import FINAL_STEP

MNIST_TRAIN, MNIST_TEST = 60_000, 10_000
MIN_TEST_IMAGES = 500


@dataclass(frozen=True)
class Work:
    """What one image costs a network, from its layer list."""

    # multiply-adds of the convolutions and linear layers, a grouped convolution counted as if it were dense:
    # on a CPU a depthwise one costs about that much time (two depthwise-separable designs trained at 0.92 and
    # 0.96 of this model's time, 2026-12-05), so this is a cost, not the count shown to students
    macs: int
    activations: int  # output elements of every other layer (memory traffic: BN, ReLU, pools)
    dropped: int  # output elements of dropout layers (each needs a random number: dearer on a CPU)


def work_of(layers: list[Layer], input_size: int = MNIST_SIDE) -> Work:
    macs = activations = dropped = 0
    channels = 1
    for row in rf_table(layers, input_size):
        c, h, w = row.out_shape
        if row.layer.type in ("conv", "linear"):
            macs += c * h * w * channels * row.kernel_size * row.kernel_size
        elif row.layer.type == "dropout":
            dropped += c * h * w
        else:
            activations += c * h * w
        channels = c
    return Work(macs, activations, dropped)


@dataclass(frozen=True)
class CostModel:
    """Seconds per image = per_image + per_mac * macs + per_activation * activations
    + per_dropped * dropped (+ per_step / batch size, for training: the optimiser's and the loop's
    fixed cost per step)."""

    per_image: float
    per_mac: float
    per_activation: float
    per_dropped: float
    per_step: float = 0.0

    def seconds(self, work: Work, batch_size: int = 1) -> float:
        return (self.per_image + self.per_mac * work.macs + self.per_activation * work.activations
                + self.per_dropped * work.dropped + self.per_step / batch_size)


# Fitted by `python -m core bench --cost-model --data-dir ../shared/mnist --no-download` on a 2-core CPU
# (torch 2.14.1, 2026-12-02): 29 networks and recipes (every step, BatchNorm and dropout on and off, batch
# sizes 32-256), each step's augmentation; the model was within 21 % of the measured training time of
# every one of them (median 5 %).
CPU_TRAIN = CostModel(per_image=8.1e-05, per_mac=7.6e-11, per_activation=4.6e-09, per_dropped=1.6e-08, per_step=0.0077)
CPU_EVAL = CostModel(per_image=1.1e-05, per_mac=3.6e-11, per_activation=1.4e-09, per_dropped=0.0)


@dataclass(frozen=True)
class Speed:
    train_s: float  # seconds per training image (forward, backward, step, augmentation)
    eval_s: float  # seconds per test image


def modelled_speed(config: TrainConfig) -> Speed:
    """The cost model's speed for this config on the reference CPU: the same every time."""
    work = work_of(config.layers())
    return Speed(CPU_TRAIN.seconds(work, config.recipe.batch_size), CPU_EVAL.seconds(work))


def measure_pace(device: str = "auto", steps: int = 8) -> float:
    """How fast this device trains, relative to the cost model: measured seconds per modelled
    second on a few steps of the final network with random data (about half a second). Run
    where the training runs (the worker process), not in a busy web server."""
    config = TrainConfig.for_step(FINAL_STEP, device=device)
    dev = pick_device(device)
    model = build_model(config.layers()).to(dev)
    optimizer = make_optimizer(config.recipe, model)
    batch = config.recipe.batch_size
    x = torch.rand(batch, 1, MNIST_SIDE, MNIST_SIDE, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)

    def step() -> None:
        train_step(model, optimizer, augment_batch(x, config.recipe.augment), y)

    for _ in range(3):  # allocators and kernels warm up
        step()
    sync(dev)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(dev)
    measured = (time.perf_counter() - start) / (steps * batch)
    return measured / modelled_speed(config).train_s


def estimate_seconds(config: TrainConfig, speed: Speed, n_train: int = MNIST_TRAIN, n_test: int = MNIST_TEST) -> float:
    test_images = min(n_test, config.test_limit or n_test)
    per_epoch = config.images_per_epoch(n_train) * speed.train_s + test_images * speed.eval_s
    return config.recipe.epochs * per_epoch


QUICK_SECONDS = 60.0  # a step page's quick budget: about a minute on a 2-core CPU
QUICK_MIN_BATCHES, QUICK_MIN_EPOCHS = 20, 3


def quick_run(config: TrainConfig, speed: Speed | None = None) -> TrainConfig:
    """The quick-budget version of `config`, as a step page trains it (the same images on every visit)."""
    return fit_to_budget(config, speed or modelled_speed(config), QUICK_SECONDS, QUICK_MIN_BATCHES, QUICK_MIN_EPOCHS)


def fit_to_budget(config: TrainConfig, speed: Speed, seconds: float, min_batches: int = 1, min_epochs: int = 1,
                  n_train: int = MNIST_TRAIN, n_test: int = MNIST_TEST) -> TrainConfig:
    """Shrink a run to take about `seconds`: fewer test images if testing all of them would eat more
    than a third of the budget, then fewer batches per epoch (each epoch still draws its batches
    from the whole training set). When that would leave fewer than `min_batches` batches per
    epoch, drop epochs first, down to `min_epochs`: a curve of a few real epochs teaches more than
    fifteen epochs of a handful of images."""
    epochs = config.recipe.epochs
    while True:
        candidate = _shrunk(config.with_overrides(epochs=epochs), speed, seconds, n_train, n_test)
        batches = candidate.max_batches or candidate.batches_per_epoch(n_train)
        if batches >= min_batches or epochs <= min_epochs:
            return candidate
        epochs -= 1


def _shrunk(config: TrainConfig, speed: Speed, seconds: float, n_train: int, n_test: int) -> TrainConfig:
    epochs = config.recipe.epochs
    test = n_test
    if epochs * n_test * speed.eval_s > seconds / 3:
        test = max(MIN_TEST_IMAGES, int(seconds / 3 / (epochs * speed.eval_s)))
    left = seconds - epochs * min(test, n_test) * speed.eval_s
    batches = int(left / (epochs * config.recipe.batch_size * speed.train_s))
    full = config.batches_per_epoch(n_train)
    return replace(config, max_batches=None if batches >= full else max(1, batches),
                   test_limit=None if test >= n_test else test)


def describe_limits(config: TrainConfig, n_train: int = MNIST_TRAIN, n_test: int = MNIST_TEST,
                    recipe_epochs: int | None = None) -> str:
    """'full: ...' or 'reduced: ...': what a run's limits mean, for labels and provenance. With
    `recipe_epochs` (a reference run of a recipe), fewer epochs than the recipe's are a reduction too."""
    images = config.images_per_epoch(n_train)
    epochs = config.recipe.epochs
    if images >= n_train and config.test_limit is None:
        if recipe_epochs is not None and epochs < recipe_epochs:
            return f"reduced: {epochs} of the recipe's {recipe_epochs} epochs, on all {n_train:,} training images"
        return f"full: {epochs} epochs on all {n_train:,} training images"
    tested = f", tested on the first {config.test_limit:,} of {n_test:,} test images" if config.test_limit else ""
    return f"reduced: {epochs} epochs of {images:,} training images{tested}"
