"""Benchmark: this project's pipeline (resident uint8 tensors, batched per-image augmentation,
step-9 model) against a seed-style pipeline (PIL transforms per image through a DataLoader,
batch 128, the seed's own 9,964-parameter network), same process, same machine, back to back.
It prints figures; it asserts nothing."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.data import load_mnist
from core.model import build_model, count_params, device_label, macs, pick_device
from core.steps import get_step
from core.train import TrainConfig, run

def seed_final_model() -> nn.Sequential:
    """The seed write-up's final network (9,964 parameters), rebuilt from its notebook's layer
    list: ReLU before BatchNorm, Dropout2d(0.03) in every 3x3 block, a 1x1 transition without
    BN after the pool, a padded last 3x3 conv, then GAP and two 1x1 convs."""

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


def seed_style_loaders(root: str, batch_size: int = 128, workers: int = 0):
    """The seed notebook's data pipeline as written: per-image PIL transforms through a
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


def time_seed_style(root: str, data, device: torch.device, batches: int | None) -> dict[str, Any]:
    torch.manual_seed(0)
    model = seed_final_model().to(device)
    # the seed's optimiser: SGD, momentum 0.9, no Nesterov (one-cycle LR costs nothing to time)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train_loader, test_loader = seed_style_loaders(root)
    total = len(train_loader) if batches is None else min(batches, len(train_loader))
    model.train()
    seen, start = 0, time.perf_counter()
    for i, (x, y) in enumerate(train_loader):
        if i == total:
            break
        x, y = x.to(device), y.to(device)
        loss = F.nll_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - start
    eval_start = time.perf_counter()
    model.eval()
    with torch.no_grad():  # the seed tests through its DataLoader too: per-image ToTensor + Normalize
        for x, y in test_loader:
            model(x.to(device)).argmax(1).eq(y.to(device)).sum().item()
    eval_s = time.perf_counter() - eval_start
    return _figures("seed recipe as written (PIL transforms + DataLoader, batch 128, 9,964 params)", model, seen,
                    train_s, eval_s, len(data.train_images))


def time_ours(data, device: torch.device, batches: int | None) -> dict[str, Any]:
    # an augmented epoch: the recipe's un-augmented finish is cheaper and would flatter the figure
    config = TrainConfig.for_step(9, epochs=1, max_batches=batches, device=str(device), log_every=10_000,
                                  clean_fraction=0.0)
    model = build_model(get_step(9).layers(config.toggles))
    epoch = run(config, data, model=model).history[0]
    seen = len(data.train_images) if batches is None else min(batches * config.batch_size, len(data.train_images))
    train_s = seen / epoch.images_per_s
    return _figures("this project (resident tensors, batched per-image augmentation)", model, seen, train_s,
                    epoch.seconds - train_s, len(data.train_images))


def _figures(name: str, model, seen: int, train_s: float, eval_s: float, train_size: int) -> dict[str, Any]:
    rate = seen / train_s
    return {"pipeline": name, "params": count_params(model), "macs_per_image": macs(model.cpu()),
            "images_timed": seen, "train_images_per_s": round(rate, 1), "eval_seconds": round(eval_s, 2),
            "seconds_per_epoch": round(train_size / rate + eval_s, 2)}


def run_bench(data_dir: str | None, download: bool, device_name: str, batches: int | None,
              log: Callable[[str], None]) -> dict[str, Any]:
    device = pick_device(device_name)
    data = load_mnist(data_dir, download=download, device=device)
    log(f"benchmark on {device_label(device)}, torch {torch.__version__}; timing "
        f"{'a full epoch' if batches is None else f'{batches} batches'} per pipeline, back to back")
    ours = time_ours(data, device, batches)
    log(f"  {ours['pipeline']}: {ours['train_images_per_s']:,.0f} img/s, {ours['seconds_per_epoch']:.1f} s/epoch")
    seed = time_seed_style(data.root, data, device, batches)
    log(f"  {seed['pipeline']}: {seed['train_images_per_s']:,.0f} img/s, {seed['seconds_per_epoch']:.1f} s/epoch")
    speedup = seed["seconds_per_epoch"] / ours["seconds_per_epoch"]
    log(f"  speed-up per epoch (train + full test evaluation): {speedup:.2f}x")
    return {"device": device_label(device), "torch": torch.__version__, "ours": ours, "seed_style": seed,
            "speedup_per_epoch": round(speedup, 2), "date": time.strftime("%Y-%m-%d")}
