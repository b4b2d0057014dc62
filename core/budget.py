"""How long a run will take, and how to shrink one to a time budget. One function serves the app's
quick runs and `reproduce --budget`, so a reduced run means the same thing everywhere."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from core.augment import augment_batch
from core.model import build_model, pick_device
from core.train import EVAL_BATCH, TrainConfig, make_optimizer, sync

MNIST_TRAIN, MNIST_TEST = 60_000, 10_000
MIN_TEST_IMAGES = 500


@dataclass(frozen=True)
class Speed:
    train_s: float  # seconds per training image (forward, backward, step, augmentation)
    eval_s: float  # seconds per test image


def measure_speed(config: TrainConfig, probe: int = 32) -> Speed:
    """A short timed probe on random data, on the config's device: what the app shows before a
    run starts and what a budget is fitted with."""
    device = pick_device(config.device)
    model = build_model(config.layers()).to(device)
    optimizer = make_optimizer(config.recipe, model)
    x = torch.rand(probe, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (probe,), device=device)
    timings = []
    for _ in range(3):  # the first iteration warms up allocators and kernels
        start = time.perf_counter()
        loss = F.nll_loss(model(augment_batch(x, config.recipe.augment)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        timings.append(time.perf_counter() - start)
    model.eval()
    batch = min(EVAL_BATCH, 4 * probe)
    with torch.no_grad():
        start = time.perf_counter()
        model(torch.rand(batch, 1, 28, 28, device=device))
        sync(device)
        eval_s = (time.perf_counter() - start) / batch
    return Speed(min(timings[1:]) / probe, eval_s)


def train_images_per_epoch(config: TrainConfig, n_train: int = MNIST_TRAIN) -> int:
    images = max(1, round(n_train * config.train_fraction))
    return min(images, config.max_batches * config.recipe.batch_size) if config.max_batches else images


def estimate_seconds(config: TrainConfig, speed: Speed, n_train: int = MNIST_TRAIN, n_test: int = MNIST_TEST) -> float:
    test_images = min(n_test, config.test_limit or n_test)
    per_epoch = train_images_per_epoch(config, n_train) * speed.train_s + test_images * speed.eval_s
    return config.recipe.epochs * per_epoch


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


def describe_limits(config: TrainConfig, n_train: int = MNIST_TRAIN, n_test: int = MNIST_TEST) -> str:
    """'full: ...' or 'reduced: ...': what a run's limits mean, for labels and provenance."""
    images = train_images_per_epoch(config, n_train)
    epochs = config.recipe.epochs
    if images >= n_train and config.test_limit is None:
        return f"full: {epochs} epochs on all {n_train:,} training images"
    tested = f", tested on the first {config.test_limit:,} of {n_test:,} test images" if config.test_limit else ""
    return f"reduced: {epochs} epochs of {images:,} training images{tested}"


def is_reduced(config: TrainConfig, n_train: int = MNIST_TRAIN) -> bool:
    return train_images_per_epoch(config, n_train) < n_train or config.test_limit is not None
