"""One builder: layer list -> nn.Sequential, and a per-layer summary that joins the
receptive-field table (from the spec) with torchinfo's shapes and parameter counts (from
the built model)."""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

from torch import nn

from core.architecture.pooling import MaxPool2d
from core.architecture.receptive_field import RFRow, rf_table
from core.architecture.size import check_size
from core.architecture.spec import MNIST_SIDE, Layer, SpecError


def _module(layer: Layer, channels: int, features: int) -> nn.Module:
    t = layer.type
    if t == "conv":
        return nn.Conv2d(channels, layer.out_channels, layer.kernel_size, layer.effective_stride,
                         layer.padding, layer.dilation, groups=layer.groups, bias=layer.bias)
    if t == "maxpool":
        return MaxPool2d(layer.kernel_size, layer.effective_stride, layer.padding)
    if t == "avgpool":
        return nn.AvgPool2d(layer.kernel_size, layer.effective_stride, layer.padding)
    if t == "gap":
        return nn.AdaptiveAvgPool2d(1)
    if t == "bn":
        return nn.BatchNorm2d(channels)
    if t == "relu":
        return nn.ReLU()
    if t == "dropout":
        return nn.Dropout(layer.p)
    if t == "flatten":
        return nn.Flatten()
    if t == "linear":
        return nn.Linear(features, layer.out_channels, bias=layer.bias)
    if t == "softmax":
        return nn.LogSoftmax(dim=1)
    raise SpecError(f"unknown layer type {t!r}")


def module_names(layers: list[Layer]) -> list[str]:
    """conv1, bn1, relu1, ... numbered per type, so pages and tests can refer to them."""
    counts: Counter[str] = Counter()
    names = []
    fixed = {"gap": "gap", "flatten": "flatten", "softmax": "log_softmax"}
    for layer in layers:
        counts[layer.type] += 1
        names.append(fixed.get(layer.type) or f"{layer.type}{counts[layer.type]}")
    return names


def build_model(layers: list[Layer], input_size: int = MNIST_SIDE, in_channels: int = 1) -> nn.Sequential:
    """Validates the geometry and the size first, so an impossible stack fails with a SpecError
    naming the layer instead of a shape error deep inside PyTorch, and a huge one (a link is text from
    a browser) before a single tensor is allocated."""
    check_size(layers, input_size, in_channels)
    rows = rf_table(layers, input_size, in_channels)
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    channels, features = in_channels, in_channels * input_size * input_size
    for name, layer, row in zip(module_names(layers), layers, rows):
        if layer.type == "bn" and channels < 1:
            raise SpecError(f"layer {row.index} (bn) has no channels to normalise")
        modules[name] = _module(layer, channels, features)
        channels = row.out_shape[0]
        features = row.out_shape[0] * row.out_shape[1] * row.out_shape[2]
    return nn.Sequential(modules)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class LayerSummary:
    name: str
    type: str
    label: str
    kernel_size: int
    stride: int
    padding: int
    dilation: int
    out_shape: list[int]
    params: int
    rf: int
    jump: int
    groups: int = 1  # a convolution's channel groups (1: every output channel sees every input channel)

    def as_dict(self) -> dict[str, Any]:
        keys = ("name", "type", "kernel_size", "stride", "padding", "dilation", "groups", "out_shape", "params", "rf",
                "jump")
        return {k: getattr(self, k) for k in keys}


def summarize(layers: list[Layer], input_size: int = MNIST_SIDE, model: nn.Sequential | None = None) -> list[LayerSummary]:
    """Per-layer table. Shapes and params come from torchinfo on the built model; kernel,
    stride, RF and jump from the spec. The two must agree on shapes (asserted here)."""
    from torchinfo import summary

    model = model if model is not None else build_model(layers, input_size)
    rows: list[RFRow] = rf_table(layers, input_size)
    info = summary(model, input_size=(1, 1, input_size, input_size), verbose=0, device="cpu",
                   depth=1, col_names=("output_size", "num_params"))
    leaves = [entry for entry in info.summary_list if entry.depth == 1]
    result = []
    for name, row, entry in zip(module_names(layers), rows, leaves):
        shape = list(entry.output_size[1:])
        shape = shape + [1] * (3 - len(shape))  # flatten/linear/softmax give [N] -> [N, 1, 1]
        if shape != list(row.out_shape):
            raise AssertionError(f"{name}: torchinfo shape {shape} != spec shape {list(row.out_shape)}")
        result.append(LayerSummary(name, row.layer.type, row.layer.label(), row.kernel_size, row.stride,
                                   row.padding, row.dilation, shape, int(entry.num_params), row.rf, row.jump,
                                   row.layer.groups))
    return result


def macs(model: nn.Module, input_size: int = MNIST_SIDE) -> int:
    """Multiply-accumulates for one image (convs and linears), via torchinfo."""
    from torchinfo import summary

    info = summary(model, input_size=(1, 1, input_size, input_size), verbose=0, device="cpu")
    return int(info.total_mult_adds)
