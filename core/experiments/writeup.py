"""The write-up's final recipe as written: its network and its data pipeline, for benchmarks and
for the figures a lesson quotes about it."""

from __future__ import annotations

import torch
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


def writeup_loaders(root: str, batch_size: int = 128, workers: int = 0):
    """The write-up notebook's data pipeline as written: per-image PIL transforms through a
    DataLoader, for training and for the test set. On a machine without CUDA its loader
    arguments are only shuffle and batch size, so images are decoded in the main process."""
    from torchvision import datasets, transforms

    normalize = [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    train_tf = transforms.Compose([
        transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
        transforms.RandomAffine(degrees=7, shear=10, translate=(0.1, 0.1), scale=(0.8, 1.2)),
        transforms.RandomRotation((-7.0, 7.0), fill=(1,)),
        *normalize,
    ])
    train = datasets.MNIST(root, train=True, download=False, transform=train_tf)
    test = datasets.MNIST(root, train=False, download=False, transform=transforms.Compose(normalize))
    return tuple(torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers)
                 for ds in (train, test))
