"""Benchmark: this project's pipeline (resident uint8 tensors, batched per-image augmentation,
step-9 model) against a seed-style pipeline (PIL transforms per image through a DataLoader,
batch 128, a ~10k-parameter padded network), same process, same machine, back to back.
It prints figures; it asserts nothing."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

from core.data import load_mnist
from core.model import build_model, count_params, device_label, macs, pick_device
from core.spec import ArchSpec, Toggles, conv, expand, maxpool
from core.steps import get_step
from core.train import TrainConfig, evaluate, make_optimizer, run

# A stand-in for the seed's final network (its exact layers are not in the write-up): the same
# style -- padded 3x3 convolutions at full resolution, BN and dropout in every block, a GAP
# head -- sized to the seed's ~9.9k parameters.
SEED_STYLE = ArchSpec(body=(
    conv(10, padding=1), conv(14, padding=1), conv(16), maxpool(),
    conv(10, 1), conv(16), conv(16), conv(16),
))
SEED_TOGGLES = Toggles(batchnorm=True, dropout=0.05, gap=True)


def seed_style_loader(root: str, batch_size: int = 128, workers: int = 2):
    """Per-image PIL transforms, as the seed notebook does them."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([
        transforms.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1),
        transforms.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.9, 1.1)),
        transforms.RandomRotation((-7.0, 7.0), fill=(0,)),
        transforms.ToTensor(),
        transforms.Normalize((0.1307,), (0.3081,)),
    ])
    dataset = datasets.MNIST(root, train=True, download=False, transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       persistent_workers=False)


def time_seed_style(root: str, data, device: torch.device, batches: int | None) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_model(expand(SEED_STYLE, SEED_TOGGLES)).to(device)
    optimizer = make_optimizer(TrainConfig(lr=0.01, schedule="constant"), model)
    loader = seed_style_loader(root)
    total = len(loader) if batches is None else min(batches, len(loader))
    model.train()
    seen, start = 0, time.perf_counter()
    for i, (x, y) in enumerate(loader):
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
    evaluate(model, data.test_images, data.test_labels)
    eval_s = time.perf_counter() - eval_start
    return _figures("seed-style (PIL transforms + DataLoader, batch 128)", model, seen, train_s, eval_s,
                    len(data.train_images))


def time_ours(data, device: torch.device, batches: int | None) -> dict[str, Any]:
    config = TrainConfig.for_step(9, epochs=1, max_batches=batches, device=str(device), log_every=10_000)
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
