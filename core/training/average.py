"""The weight average that is tested instead of the raw weights."""

from __future__ import annotations

import copy

import torch
from torch import nn


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
