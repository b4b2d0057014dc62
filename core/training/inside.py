"""Inside the network while it trains: per layer, on sampled batches, what engineers watch.

- `act_mean`, `act_std`: the mean and spread of the layer's output over the batch's first IMAGES
  images (are the next layer's inputs well scaled? BatchNorm's claim);
- `zero_frac`: the share of a ReLU's outputs that are zero (dead or sleeping units);
- `grad_norm`: the L2 norm of the gradient of the layer's weights (do gradients reach it?);
- `update_ratio`: how far one optimiser step moved the layer's weights, relative to their size,
  ||w_after - w_before|| / ||w_before|| (about 1e-3 is the usual healthy figure).

A `Probe` only reads: it never changes a number training computes, so a probed run is the same
run to the last bit (tests/test_inside.py checks it). It works only on the batches it is armed for
(the trainer arms it at each batch event), and keeps its figures as tensors until `take`, so it
adds no device synchronisation of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ACTIVATION_METRICS = ("act_mean", "act_std", "zero_frac")
WEIGHT_METRICS = ("grad_norm", "update_ratio")
METRICS = ACTIVATION_METRICS + WEIGHT_METRICS
# what each metric is, in a few words, for a chart's title
METRIC_TITLES = {
    "act_mean": "mean of the layer's output",
    "act_std": "spread (std) of the layer's output",
    "zero_frac": "share of ReLU outputs that are zero",
    "grad_norm": "gradient norm of the layer's weights",
    "update_ratio": "update / weight size per step",
}
# the activations' figures come from the batch's first images: their statistics are the batch's to within a
# few per cent, and reading every image's activations cost step 4 11 % of its training time (5.6 % on step 9;
# `python -m core bench inside`, 2-core CPU)
IMAGES = 16
WATCHED = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.ReLU)  # the layers a student names; pools and flatten only move data
WEIGHTED = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


@dataclass(frozen=True)
class Sample:
    """One armed batch: its optimiser step (1-based), its epoch, and layer -> metric -> value."""
    step: int
    epoch: int
    layers: dict[str, dict[str, float]]

    def rows(self) -> list[dict[str, float | int | str]]:
        """One row per (layer, metric): what a layer x time picture draws."""
        return [{"step": self.step, "epoch": self.epoch, "layer": layer, "metric": metric, "value": value}
                for layer, metrics in self.layers.items() for metric, value in metrics.items()]


class Probe:
    """Hooks on every watched layer of a model (`named_children`: the builder's conv1, bn1, relu1, ...)."""

    def __init__(self, model: nn.Module) -> None:
        self.watched = [(name, m) for name, m in model.named_children() if isinstance(m, WATCHED)]
        self.weighted = [(name, m.weight) for name, m in self.watched if isinstance(m, WEIGHTED) and m.weight is not None]
        self.armed = False
        self._figures: dict[str, dict[str, torch.Tensor]] = {}
        self._before: list[torch.Tensor] = []
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.watched]

    def _hook(self, name: str):
        def record(module: nn.Module, inputs, output: torch.Tensor) -> None:
            if not self.armed:
                return
            out = output.detach()[:IMAGES]
            std, mean = torch.std_mean(out)
            figures = {"act_mean": mean, "act_std": std}
            if isinstance(module, nn.ReLU):
                figures["zero_frac"] = (out == 0).sum() / out.numel()
            self._figures[name] = figures
        return record

    def arm(self) -> None:
        """Record the next forward, backward and step."""
        self.armed, self._figures, self._before = True, {}, []

    def after_backward(self) -> None:
        """Gradient norms, and a copy of the weights the step is about to move."""
        if not self.armed:
            return
        for name, weight in self.weighted:
            if weight.grad is not None:
                self._figures.setdefault(name, {})["grad_norm"] = weight.grad.detach().norm()
        self._before = [weight.detach().clone() for _, weight in self.weighted]

    def after_step(self) -> None:
        if not self.armed:
            return
        for (name, weight), before in zip(self.weighted, self._before):
            self._figures.setdefault(name, {})["update_ratio"] = (weight.detach() - before).norm() / before.norm().clamp_min(1e-12)
        self.armed, self._before = False, []

    def take(self, step: int, epoch: int) -> Sample | None:
        """The armed batch's figures as numbers (one transfer for all of them), in layer order; None
        when nothing was armed."""
        if not self._figures:
            return None
        names = [(layer, metric) for layer, _ in self.watched for metric in METRICS if metric in self._figures.get(layer, {})]
        values = torch.stack([self._figures[layer][metric].float() for layer, metric in names]).tolist()
        layers: dict[str, dict[str, float]] = {}
        for (layer, metric), value in zip(names, values):
            layers.setdefault(layer, {})[metric] = value
        self._figures, self.armed = {}, False
        return Sample(step, epoch, layers)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


LOG_SCALED = ("act_std", "grad_norm", "update_ratio")  # spans orders of magnitude: drawn on a log scale


def layer_grid(samples: list[Sample], metric: str, columns: int = 60) -> list[dict[str, float | int | str]]:
    """A layer x time picture's cells: the samples (in step order) cut into at most `columns` runs of
    consecutive samples, each cell the mean of `metric` over its run's samples of that layer, spanning
    from its first sample's step to the next run's ({layer, start, end, value}), so the cells tile the
    run with no gaps; layers without the metric (a ReLU has no weights) have no cells."""
    if not samples:
        return []
    per_column = -(-len(samples) // columns)  # samples per column, rounded up
    chunks = [samples[i:i + per_column] for i in range(0, len(samples), per_column)]
    gap = samples[-1].step - samples[-2].step if len(samples) > 1 else 1  # the last cell is as wide as a step between samples
    cells = []
    for k, chunk in enumerate(chunks):
        start, end = chunk[0].step, chunks[k + 1][0].step if k + 1 < len(chunks) else chunk[-1].step + gap
        values: dict[str, list[float]] = {}
        for sample in chunk:
            for layer, metrics in sample.layers.items():
                value = metrics.get(metric)
                if value is not None and value == value:  # NaN: a diverged batch is left out, not drawn as a colour
                    values.setdefault(layer, []).append(value)
        cells += [{"layer": layer, "start": start, "end": end, "value": sum(v) / len(v)} for layer, v in values.items()]
    return cells


def layer_order(samples: list[Sample]) -> list[str]:
    """The layers in the network's order (the order every sample keeps them in)."""
    seen: dict[str, None] = {}
    for sample in samples[:1] or []:
        seen |= dict.fromkeys(sample.layers)
    return list(seen)


def layer_means(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Each layer's mean of each metric over the samples (NaNs left out): a run's inside in one table."""
    sums: dict[str, dict[str, list[float]]] = {}
    for sample in samples:
        for layer, metrics in sample.layers.items():
            for metric, value in metrics.items():
                if value == value:
                    sums.setdefault(layer, {}).setdefault(metric, []).append(value)
    return {layer: {m: sum(v) / len(v) for m, v in metrics.items()} for layer, metrics in sums.items()}
