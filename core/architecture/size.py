"""What a network costs, worked out from its layer list without building it.

A design link is text from a browser: 63 convolutions of 1,024 channels parse fine and would be a
585-million-parameter network, gigabytes in the web server before any limit was looked at. So the
parameters, the multiply-adds and the activations come from the same shape arithmetic as the
receptive field (core.architecture.receptive_field), and `build_model` refuses a network above the
limits before it allocates a tensor. tests/test_size.py checks every figure against the built
model, torchinfo and a direct count.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.architecture.receptive_field import rf_table
from core.architecture.spec import MNIST_SIDE, Layer, SpecError

# Step 1's baseline (6.4 M parameters, 159 M multiply-adds and 0.37 M activations an image) with room
# to spare, and small enough that a page which builds a network at the limits stays within ~50 MB and
# a fraction of a second: weights 32 MB, one image's forward pass 8 MB of outputs and 500 M multiply-adds.
MAX_PARAMS = 8_000_000
MAX_MACS = 500_000_000
MAX_ACTIVATIONS = 2_000_000  # output elements of every layer, for one image


@dataclass(frozen=True)
class NetSize:
    params: int  # weights and biases (BatchNorm's scale and shift included), as sum(p.numel())
    macs: int  # multiply-adds of one image, as torchinfo counts them (what the pages show)
    activations: int  # output elements of every layer for one image
    layer_params: tuple[int, ...]  # per layer, in order

    def problem(self) -> str | None:
        """Why this network is too big to build on a shared server (None when it is not)."""
        if self.params > MAX_PARAMS:
            return (f"{self.params:,} parameters, more than the {MAX_PARAMS:,} a network may have here "
                    "(step 1's baseline has about 6.4 million): use fewer or narrower convolutions")
        if self.macs > MAX_MACS:
            return (f"{self.macs / 1e6:,.0f} M multiply-adds an image, more than the {MAX_MACS / 1e6:,.0f} M "
                    "allowed here (step 1's baseline needs 159 M): pool earlier or use fewer channels")
        if self.activations > MAX_ACTIVATIONS:
            return (f"{self.activations:,} values in its layers' outputs for one image, more than the "
                    f"{MAX_ACTIVATIONS:,} allowed here: pool earlier or use fewer channels on the large grids")
        return None


def size_of(layers: list[Layer], input_size: int = MNIST_SIDE, in_channels: int = 1) -> NetSize:
    """Parameters, multiply-adds and activations of `layers`, from their shapes alone."""
    channels, params, macs, activations = in_channels, [], 0, 0
    for row in rf_table(layers, input_size, in_channels):
        layer, (out, height, width) = row.layer, row.out_shape
        count = 0
        if layer.type == "conv":
            count = out * (channels // layer.groups) * layer.kernel_size ** 2 + (out if layer.bias else 0)
        elif layer.type == "linear":
            count = channels * out + (out if layer.bias else 0)
        elif layer.type == "bn":
            count = 2 * channels
        # torchinfo's count: a convolution's weights and bias once per output position, any other
        # layer's once (its BatchNorm scale and shift included)
        macs += count * height * width if layer.type == "conv" else count
        params.append(count)
        activations += out * height * width
        channels = out
    return NetSize(sum(params), macs, activations, tuple(params))


def check_size(layers: list[Layer], input_size: int = MNIST_SIDE, in_channels: int = 1) -> NetSize:
    """The size, or a SpecError saying which limit a network breaks."""
    size = size_of(layers, input_size, in_channels)
    problem = size.problem()
    if problem:
        raise SpecError(f"this network is too big to build: {problem}")
    return size
