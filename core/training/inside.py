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
# each weighted layer's weight distribution: these quantiles of a fixed random subset of its weights
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
QUANTILE_NAMES = tuple(f"w_p{round(100 * q):02d}" for q in QUANTILES)
WEIGHTS_READ = 4096  # weights per layer the quantiles read: exact for every layer of step 9, a fixed sample of step 1's
# the weights move slowly: their quantiles are read on one armed batch in this many (read on every one, they added
# 1.5 points to step 9's overhead: +4.7 % against +3.2 %, `python -m core bench inside`)
WEIGHTS_EVERY = 5
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
    """One armed batch: its optimiser step (1-based), its epoch, layer -> metric -> value, and on some
    batches (the first reported, and each epoch's last) the first convolution's filters after the step:
    [filter][row][column] of its first input channel."""
    step: int
    epoch: int
    layers: dict[str, dict[str, float]]
    filters: list[list[list[float]]] | None = None


class Probe:
    """Hooks on every watched layer of a model (`named_children`: the builder's conv1, bn1, relu1, ...)."""

    def __init__(self, model: nn.Module) -> None:
        self.watched = [(name, m) for name, m in model.named_children() if isinstance(m, WATCHED)]
        self.weighted = [(name, m.weight) for name, m in self.watched if isinstance(m, WEIGHTED) and m.weight is not None]
        self.armed = self._with_filters = self._with_weights = False
        self._filters: torch.Tensor | None = None
        self.first_conv = next((m for _, m in self.watched if isinstance(m, nn.Conv2d)), None)
        # a fixed subset of each layer's weights, drawn from a private stream (the global one draws dropout's masks)
        stream = torch.Generator().manual_seed(0)
        self._picked = [torch.randperm(w.numel(), generator=stream)[:WEIGHTS_READ].to(w.device) if w.numel() > WEIGHTS_READ
                        else None for _, w in self.weighted]
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

    def arm(self, weights: bool = False, filters: bool = False) -> None:
        """Record the next forward, backward and step; with `weights`, the weights' quantiles after it too,
        and with `filters`, those and the first convolution's filters."""
        self.armed, self._with_weights, self._with_filters = True, weights or filters, filters
        self._figures, self._before = {}, []

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
        quantiles = None
        for (name, weight), before, picked in zip(self.weighted, self._before, self._picked):
            figures = self._figures.setdefault(name, {})
            figures["update_ratio"] = (weight.detach() - before).norm() / before.norm().clamp_min(1e-12)
            if not self._with_weights:
                continue
            flat = weight.detach().flatten()
            quantiles = quantiles if quantiles is not None else torch.tensor(QUANTILES, device=flat.device)
            for key, value in zip(QUANTILE_NAMES, torch.quantile(flat if picked is None else flat[picked], quantiles)):
                figures[key] = value
        if self._with_filters and self.first_conv is not None:
            self._filters = self.first_conv.weight.detach()[:, 0].clone()
        self.armed, self._before = False, []

    def take(self, step: int, epoch: int) -> Sample | None:
        """The armed batch's figures as numbers (one transfer for all of them), in layer order; None
        when nothing was armed."""
        if not self._figures:
            return None
        names = [(layer, metric) for layer, _ in self.watched for metric in METRICS + QUANTILE_NAMES
                 if metric in self._figures.get(layer, {})]
        values = torch.stack([self._figures[layer][metric].float() for layer, metric in names]).tolist()
        layers: dict[str, dict[str, float]] = {}
        for (layer, metric), value in zip(names, values):
            layers.setdefault(layer, {})[metric] = value
        filters = None if self._filters is None else [[[round(v, 5) for v in row] for row in f]
                                                      for f in self._filters.float().cpu().tolist()]
        self._figures, self._filters, self.armed = {}, None, False
        return Sample(step, epoch, layers, filters)

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
