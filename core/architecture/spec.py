"""Architectures as data.

A network is a flat list of `Layer` records. A lifecycle step describes only its *body*
(convolutions and pools) plus a few switches; `expand` turns body + `Toggles` into the full
layer list (BatchNorm / ReLU / Dropout after each convolution, then the head). Everything
else -- the PyTorch model, the receptive-field table, the parameter count -- is derived from
that one list, so nothing is ever typed in twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

LAYER_TYPES = ("conv", "maxpool", "avgpool", "gap", "bn", "relu", "dropout", "flatten", "linear", "softmax")
# Layers that leave the spatial grid untouched: they report kernel 1, stride 1.
PASS_THROUGH = ("bn", "relu", "dropout", "softmax")

NUM_CLASSES = 10
MNIST_SIDE = 28  # an MNIST digit is 28 x 28 pixels: every network's default input
MAX_CHANNELS = 4096  # keeps a typo like 80000 from allocating gigabytes


# the fields that mean something for each layer type (the others keep their defaults): the one list
# the parser, the notation and the Design page's table follow
SPATIAL = ("kernel_size", "stride", "padding")
LAYER_FIELDS: dict[str, tuple[str, ...]] = {
    "conv": ("out_channels", *SPATIAL, "dilation", "groups", "bias"),
    "maxpool": SPATIAL,
    "avgpool": SPATIAL,
    "linear": ("out_channels", "bias"),
    "dropout": ("p",),
}


def takes(kind: str, field: str) -> bool:
    return field in LAYER_FIELDS.get(kind, ())


class SpecError(ValueError):
    """An architecture that cannot be built; the message names the offending layer."""


@dataclass(frozen=True)
class Layer:
    type: str
    out_channels: int | None = None  # conv: output channels; linear: output features
    kernel_size: int = 1
    stride: int | None = None  # None: 1 for conv, kernel_size for pools
    padding: int = 0
    dilation: int = 1
    bias: bool = False  # conv/linear; off by default because BatchNorm usually follows
    p: float = 0.0  # dropout rate
    act: bool = True  # conv only: follow with BN/ReLU/dropout when the toggles say so
    # conv only: the channels split into this many groups, each convolved on its own (a group per
    # channel is a depthwise convolution: a 3x3 window per channel, 9 weights each, no mixing)
    groups: int = 1

    @property
    def effective_stride(self) -> int:
        if self.stride is not None:
            return self.stride
        return self.kernel_size if self.type in ("maxpool", "avgpool") else 1

    def label(self) -> str:
        if self.type == "conv":
            extra = f", s{self.effective_stride}" if self.effective_stride != 1 else ""
            extra += f", d{self.dilation}" if self.dilation != 1 else ""
            extra += f", p{self.padding}" if self.padding else ""
            extra += f", {self.groups} groups" if self.groups != 1 else ""
            return f"conv {self.kernel_size}x{self.kernel_size} -> {self.out_channels}{extra}"
        if self.type in ("maxpool", "avgpool"):
            return f"{self.type} {self.kernel_size}x{self.kernel_size}/{self.effective_stride}"
        if self.type == "dropout":
            return f"dropout {self.p:g}"
        if self.type == "linear":
            return f"linear -> {self.out_channels}"
        return self.type


def conv(out_channels: int, kernel_size: int = 3, padding: int = 0, stride: int = 1,
         dilation: int = 1, bias: bool = False, act: bool = True, groups: int = 1) -> Layer:
    return Layer("conv", out_channels, kernel_size, stride, padding, dilation, bias, act=act, groups=groups)


def maxpool(kernel_size: int = 2, stride: int | None = None) -> Layer:
    return Layer("maxpool", kernel_size=kernel_size, stride=stride)


@dataclass(frozen=True)
class Toggles:
    """The classroom switches; they apply to every step."""

    batchnorm: bool = False
    dropout: float = 0.0  # 0 = off
    gap: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise SpecError(f"dropout rate must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class ArchSpec:
    """A step's architecture: the body, before any toggle is applied."""

    body: tuple[Layer, ...]
    input_size: int = MNIST_SIDE
    bias_in_head: bool = False  # the step-1 baseline keeps PyTorch's default conv bias


def expand(spec: ArchSpec, toggles: Toggles) -> list[Layer]:
    """Body + toggles -> the full, buildable layer list (head included)."""
    layers: list[Layer] = []
    for layer in spec.body:
        layers.append(layer)
        if layer.type == "conv" and layer.act:
            if toggles.batchnorm:
                layers.append(Layer("bn"))
            layers.append(Layer("relu"))
            if toggles.dropout > 0:
                layers.append(Layer("dropout", p=toggles.dropout))
    layers.extend(head(spec, layers, toggles))
    return layers


def head(spec: ArchSpec, body: list[Layer], toggles: Toggles) -> list[Layer]:
    """GAP on: average the grid, then a 1x1 conv to 10 classes.
    GAP off: one conv whose kernel covers the whole remaining grid (the classic
    'big last kernel'), which is exactly what costs the parameters GAP saves."""
    from core.architecture.receptive_field import output_size

    size = output_size(body, spec.input_size)
    tail = [Layer("gap", kernel_size=size), conv(NUM_CLASSES, 1, bias=spec.bias_in_head, act=False)] if toggles.gap \
        else [conv(NUM_CLASSES, size, bias=spec.bias_in_head, act=False)]
    return tail + [Layer("flatten"), Layer("softmax")]


def layer_from_dict(raw: dict[str, Any], index: int) -> Layer:
    """Parse one user-supplied layer (CLI JSON, the app's editor) with clear errors."""
    if not isinstance(raw, dict):
        raise SpecError(f"layer {index}: expected an object like {{\"type\": \"conv\", ...}}, got {raw!r}")
    kind = str(raw.get("type", "")).strip().lower()
    aliases = {"max_pool": "maxpool", "mp": "maxpool", "avg_pool": "avgpool", "batchnorm": "bn",
               "log_softmax": "softmax", "fc": "linear", "global_avg_pool": "gap"}
    kind = aliases.get(kind, kind)
    if kind not in LAYER_TYPES:
        raise SpecError(f"layer {index}: unknown type {raw.get('type')!r}; use one of {', '.join(LAYER_TYPES)}")
    known = {"type", "out_channels", "out_features", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
             "p"}
    unknown = set(raw) - known
    if unknown:
        raise SpecError(f"layer {index} ({kind}): unknown field(s) {', '.join(sorted(unknown))}")

    def integer(name: str, default: int | None, minimum: int) -> int | None:
        value = raw.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise SpecError(f"layer {index} ({kind}): {name} must be an integer, got {value!r}")
        if value < minimum:
            raise SpecError(f"layer {index} ({kind}): {name} must be >= {minimum}, got {value}")
        return int(value)

    out = integer("out_channels", None, 1)
    if kind == "linear":
        out = integer("out_features", out, 1)
    if out is not None and out > MAX_CHANNELS:
        raise SpecError(f"layer {index} ({kind}): at most {MAX_CHANNELS} output channels, got {out}")
    if takes(kind, "out_channels") and out is None:
        raise SpecError(f"layer {index} ({kind}): needs out_channels")
    kernel = integer("kernel_size", 3 if kind == "conv" else 2 if kind in ("maxpool", "avgpool") else 1, 1)
    if kernel > 1024:
        raise SpecError(f"layer {index} ({kind}): kernel_size {kernel} is larger than any input")
    p = raw.get("p", 0.0 if kind != "dropout" else 0.1)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
        raise SpecError(f"layer {index} (dropout): p must be a number in [0, 1), got {p!r}")
    return Layer(
        kind,
        out_channels=out if takes(kind, "out_channels") else None,
        kernel_size=kernel if takes(kind, "kernel_size") else 1,
        stride=integer("stride", None, 1) if takes(kind, "stride") else None,
        padding=integer("padding", 0, 0) if takes(kind, "padding") else 0,
        dilation=integer("dilation", 1, 1) if takes(kind, "dilation") else 1,
        groups=integer("groups", 1, 1) if takes(kind, "groups") else 1,
        bias=bool(raw.get("bias", False)),
        p=float(p),
        act=False,  # user stacks are taken literally: no implicit BN/ReLU
    )


def layers_from_dicts(raw: Iterable[Any]) -> list[Layer]:
    if not isinstance(raw, list) or not raw:
        raise SpecError("the layer stack must be a non-empty JSON list of layer objects")
    return [layer_from_dict(item, i) for i, item in enumerate(raw, start=1)]
