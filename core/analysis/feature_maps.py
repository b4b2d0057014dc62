"""Every convolution's feature maps for one digit, each map's units tied to their receptive-field
windows by the same arithmetic as the receptive-field table."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.architecture.builder import module_names
from core.architecture.receptive_field import RFRow, rf_table
from core.architecture.spec import MNIST_SIDE, Layer
from core.training.augmentation import normalize


@dataclass(frozen=True)
class FeatureMap:
    name: str  # conv1, conv2, ...
    label: str  # "conv 3x3 -> 8"
    row: RFRow  # geometry of its units (receptive field, jump, start)
    activations: torch.Tensor  # [C, H, W] after the block's BatchNorm and ReLU

    def window(self, i: int, j: int) -> tuple[int, int, int, int]:
        """Input rows/cols (inclusive) that unit (i, j) sees."""
        return self.row.window(i, j, MNIST_SIDE)


@torch.no_grad()
def feature_maps(model: nn.Sequential, layers: list[Layer], image: torch.Tensor) -> list[FeatureMap]:
    """Every convolution with a spatial output, as the next layer sees it (after its ReLU)."""
    model.eval()
    rows = rf_table(layers)
    names = module_names(layers)
    maps: list[FeatureMap] = []
    x = normalize(image[None, None].float())
    current: int | None = None  # index of the convolution whose block we are in
    for index, (name, module) in enumerate(zip(names, model)):
        x = module(x)
        if layers[index].type == "conv":
            current = index if x.shape[-1] > 1 else None
        elif layers[index].type not in ("bn", "relu", "dropout"):
            current = None
        if current is not None and (index + 1 == len(layers) or layers[index + 1].type not in ("bn", "relu", "dropout")):
            conv = layers[current]
            maps.append(FeatureMap(names[current], conv.label(), rows[index], x[0].clone()))
            current = None
    return maps
