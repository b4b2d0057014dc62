"""How a network is trained: optimiser, learning-rate schedule, batch size, epochs, augmentation,
clean finish and weight average. One dataclass, used by the step presets, the trainer, the CLI
and the app alike."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.training.augmentation import AugmentConfig

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "onecycle")
MAX_EPOCHS = 200
MAX_BATCH_SIZE = 8192
MAX_SETTLE = 0.5  # one-cycle warms up for the first 20 %: at least 30 % of the run is left to anneal


@dataclass(frozen=True)
class Recipe:
    optimizer: str = "sgd"  # sgd (with Nesterov momentum when momentum > 0) | adam
    lr: float = 0.01  # the peak learning rate under one-cycle
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | step | onecycle
    batch_size: int = 128
    epochs: int = 15
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    clean_fraction: float = 0.0  # the last fraction of the optimiser steps trains on un-augmented images
    ema: float = 0.0  # test a moving average of the weights with this decay; 0 = the raw weights
    label_smoothing: float = 0.0  # aim for 1 - s on the true class and s/10 spread over all ten (0 = off)
    # one-cycle only: the anneal ends this fraction of the run early and the rest trains at its lowest rate,
    # so the last epochs -- the ones the challenge judges -- test weights that have stopped moving (0 = off)
    settle_fraction: float = 0.0

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.epochs <= MAX_EPOCHS, f"epochs must be between 1 and {MAX_EPOCHS}, got {self.epochs}"),
            (1 <= self.batch_size <= MAX_BATCH_SIZE,
             f"batch size must be between 1 and {MAX_BATCH_SIZE}, got {self.batch_size}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"),
            (_finite(self.lr) and 0 < self.lr <= 10, f"learning rate must be in (0, 10], got {self.lr}"),
            (_finite(self.momentum) and 0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (_finite(self.weight_decay) and 0 <= self.weight_decay <= 0.1,
             f"weight decay must be in [0, 0.1], got {self.weight_decay}"),
            (_finite(self.clean_fraction) and 0 <= self.clean_fraction <= 1,
             f"the un-augmented fraction of the run must be in [0, 1], got {self.clean_fraction}"),
            (_finite(self.ema) and 0 <= self.ema < 1, f"EMA decay must be in [0, 1), got {self.ema}"),
            (_finite(self.label_smoothing) and 0 <= self.label_smoothing <= 0.3,
             f"label smoothing must be in [0, 0.3], got {self.label_smoothing}"),
            (_finite(self.settle_fraction) and 0 <= self.settle_fraction <= MAX_SETTLE,
             f"the settled fraction of the run must be in [0, {MAX_SETTLE}], got {self.settle_fraction}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
