"""The write-up's final network as its notebook wrote it (not as a spec: it puts ReLU before
BatchNorm and has layers the notation has no token for), for the benchmarks and for the figures a
lesson quotes about it."""

from __future__ import annotations

from torch import nn


def writeup_final_model() -> nn.Sequential:
    """The write-up's final network (9,964 parameters), rebuilt from its notebook's layer list:
    ReLU before BatchNorm, Dropout2d(0.03) in every 3x3 block, a 1x1 transition without BN after
    the pool, a padded last 3x3 conv, then GAP and two 1x1 convs."""

    def block(c_in: int, c_out: int, padding: int = 0) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=padding, bias=False), nn.ReLU(), nn.BatchNorm2d(c_out),
                nn.Dropout2d(0.03)]

    return nn.Sequential(
        *block(1, 10), *block(10, 17), nn.MaxPool2d(2, 2),
        nn.Conv2d(17, 10, 1, bias=False), nn.ReLU(),
        *block(10, 18), *block(18, 18), *block(18, 18, padding=1),
        nn.AdaptiveAvgPool2d(1), nn.Conv2d(18, 20, 1, bias=False), nn.ReLU(), nn.Conv2d(20, 10, 1, bias=False),
        nn.Flatten(), nn.LogSoftmax(dim=1),
    )
