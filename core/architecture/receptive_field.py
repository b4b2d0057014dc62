"""Receptive-field arithmetic, computed from the same layer list the model is built from.

For every layer we track, in input-pixel units:
  size   output grid side            out = floor((size + 2p - d(k-1) - 1) / s) + 1
  jump   distance between neighbours  jump_out = jump_in * s
  rf     side of one unit's window    rf_out = rf_in + d(k-1) * jump_in
  start  left edge of unit 0's window start_out = start_in - p * jump_in
so unit i of a layer sees input pixels [start + i*jump, start + i*jump + rf - 1] (clipped to
the image; padding makes edge units see less).  Pass-through layers change none of these.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.architecture.spec import MNIST_SIDE, PASS_THROUGH, Layer, SpecError


@dataclass(frozen=True)
class RFRow:
    index: int  # 1-based position in the stack
    layer: Layer
    kernel_size: int
    stride: int
    padding: int
    dilation: int
    out_shape: tuple[int, int, int]  # C, H, W
    rf: int
    jump: int
    start: int

    @property
    def name(self) -> str:
        return f"{self.index}:{self.layer.type}"

    def window(self, i: int, j: int, input_size: int) -> tuple[int, int, int, int]:
        """Input rows/cols (inclusive, clipped) seen by output unit (i, j)."""
        def span(k: int) -> tuple[int, int]:
            lo = self.start + k * self.jump
            return max(lo, 0), min(lo + self.rf - 1, input_size - 1)

        (r0, r1), (c0, c1) = span(i), span(j)
        return r0, r1, c0, c1


def _window(size: int, kernel: int, stride: int, padding: int, dilation: int, index: int, layer: Layer) -> int:
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span) // stride + 1
    if size + 2 * padding < span or out < 1:
        raise SpecError(
            f"layer {index} ({layer.label()}) gets a {size}x{size} input but its window spans "
            f"{span}x{span} with padding {padding}: the stack collapses below 1x1 here. "
            "Remove a pool or a convolution before it, or add padding."
        )
    return out


def rf_table(layers: list[Layer], input_size: int = MNIST_SIDE, in_channels: int = 1) -> list[RFRow]:
    """Per-layer geometry. Raises SpecError naming the first impossible layer."""
    if not 1 <= input_size <= 1024:
        raise SpecError(f"input size must be between 1 and 1024, got {input_size}")
    channels, size, rf, jump, start = in_channels, input_size, 1, 1, 0
    flat_grid: int | None = None  # grid side before a flatten, for a following linear layer
    rows: list[RFRow] = []
    for index, layer in enumerate(layers, start=1):
        k, s, p, d = 1, 1, 0, 1
        if flat_grid is not None and layer.type in ("conv", "maxpool", "avgpool", "gap", "flatten", "bn"):
            raise SpecError(f"layer {index} ({layer.label()}) comes after a flatten; spatial layers must come before it")
        if layer.type in ("conv", "maxpool", "avgpool"):
            k, s, p, d = layer.kernel_size, layer.effective_stride, layer.padding, layer.dilation
            if layer.type != "conv" and 2 * p > k:
                raise SpecError(f"layer {index} ({layer.label()}): pool padding {p} may be at most half the kernel {k}")
            new_size = _window(size, k, s, p, d, index, layer)
            rf, start, jump, size = rf + d * (k - 1) * jump, start - p * jump, jump * s, new_size
            if layer.type == "conv":
                _check_groups(layer, channels, index)
                channels = layer.out_channels or channels
        elif layer.type == "gap":
            k = s = size
            rf, jump, size = rf + (size - 1) * jump, jump * size, 1
        elif layer.type == "flatten":
            flat_grid = size
            channels, size = channels * size * size, 1
        elif layer.type == "linear":
            if flat_grid is None and size != 1:
                raise SpecError(f"layer {index} (linear) needs a flatten or a 1x1 grid before it (grid is {size}x{size})")
            grid = flat_grid or 1
            k = grid
            rf, jump, flat_grid = rf + (grid - 1) * jump, jump * grid, 1
            channels, size = layer.out_channels or channels, 1
        elif layer.type not in PASS_THROUGH:
            raise SpecError(f"layer {index}: unknown type {layer.type!r}")
        rows.append(RFRow(index, layer, k, s, p, d, (channels, size, size), rf, jump, start))
    return rows


def _check_groups(layer: Layer, channels: int, index: int) -> None:
    """A grouped convolution needs its input and output channels to split evenly into the groups."""
    groups, out = layer.groups, layer.out_channels or channels
    if groups != 1 and (channels % groups or out % groups):
        raise SpecError(f"layer {index} ({layer.label()}): {groups} groups need input and output channels that "
                        f"split evenly into them, but it gets {channels} and gives {out}; a depthwise "
                        f"convolution has as many groups as channels in and out")


def output_size(layers: list[Layer], input_size: int = MNIST_SIDE) -> int:
    """Grid side after `layers` (input_size for an empty list)."""
    rows = rf_table(layers, input_size)
    return rows[-1].out_shape[1] if rows else input_size
