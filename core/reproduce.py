"""Reference runs: train the steps on real MNIST, keep every epoch with its provenance in
assets/reference_runs.json (and the tested weights of the small models in assets/models/), and
regenerate LIFECYCLE.md from the file (never by hand)."""

from __future__ import annotations

import platform
import shlex
import time
from pathlib import Path
from typing import Callable, Iterable

import torch

from core.budget import describe_limits, fit_to_budget, measure_speed
from core.data import MNISTTensors, load_mnist
from core.lifecycle import describe_step
from core.model import device_label, pick_device
from core.reference import ROOT, Provenance, ReferenceRun, StepReference, merge_step
from core.report import write_lifecycle
from core.steps import get_step
from core.train import TrainConfig, run

MAX_SHIPPED_PARAMS = 100_000  # weights of smaller reference models are kept in assets/models/


def parse_steps(text: str) -> list[int]:
    numbers: list[int] = []
    try:
        for part in text.replace(" ", "").split(","):
            if "-" in part:
                lo, hi = part.split("-", 1)
                numbers.extend(range(int(lo), int(hi) + 1))
            elif part:
                numbers.append(int(part))
    except ValueError:
        raise ValueError(f"--steps must look like 1-9 or 2,5,9, got {text!r}") from None
    if not numbers:
        raise ValueError(f"--steps names no step: {text!r}")
    for n in numbers:
        get_step(n)  # validates
    return sorted(set(numbers))


def parse_seeds(text: str | None, option: str = "--seeds") -> list[int] | None:
    if not text:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"{option} must be distinct non-negative integers, got {text!r}")
    return seeds


def reference_run(config: TrainConfig, data: MNISTTensors, command: str, weights_dir: Path | None,
                  log: Callable[[str], None]) -> tuple[ReferenceRun, int]:
    """Train one seed; returns the run and the model's parameter count."""
    limits = describe_limits(config, len(data.train_images), len(data.test_images))
    log(f"step {config.step}, seed {config.seed}: {limits}")
    started = time.perf_counter()
    done = run(config, data)
    wall = time.perf_counter() - started
    if not done.history:
        raise RuntimeError(f"step {config.step}, seed {config.seed} finished no epoch: {done.reason}")
    weights = None
    if weights_dir is not None and done.params < MAX_SHIPPED_PARAMS and done.weights is not None:
        weights_dir.mkdir(parents=True, exist_ok=True)
        file = weights_dir / f"step_{config.step}_seed_{config.seed}.pt"
        torch.save(done.weights, file)
        weights = file.resolve().relative_to(ROOT).as_posix() if file.resolve().is_relative_to(ROOT) else str(file)
    provenance = Provenance(command=command, device=done.device, torch=torch.__version__,
                            python=platform.python_version(), date=time.strftime("%Y-%m-%d"),
                            wall_seconds=round(wall, 1), limits=limits)
    epochs = tuple({k: round(v, 5) if isinstance(v, float) else v for k, v in e.row().items()} for e in done.history)
    result = ReferenceRun(config, epochs, done.reason, provenance, weights)
    log(f"  {result.verdict(done.params)[1]} ({wall:.0f} s)")
    return result, done.params


def reproduce(steps: Iterable[int], seeds: list[int], data_dir: str | None, download: bool, device: str,
              budget: float | None, output: str, markdown: str, merge: bool, argv: list[str],
              log: Callable[[str], None], weights_dir: str | None = "assets/models") -> dict[int, StepReference]:
    dev = pick_device(device)
    data = load_mnist(data_dir, download=download, device=dev)
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv[1:])
    log(f"reference runs on {device_label(dev)}, seed(s) {', '.join(map(str, seeds))}")
    held: dict[int, StepReference] = {}
    first_write = True
    for number in steps:
        config = TrainConfig.for_step(number, device=str(dev))
        if budget:
            config = fit_to_budget(config, measure_speed(config), budget,
                                   n_train=len(data.train_images), n_test=len(data.test_images))
        doc = describe_step(number)
        for s in seeds:
            result, params = reference_run(config.with_overrides(seed=s), data, command,
                                           Path(weights_dir) if weights_dir and s == seeds[0] else None, log)
            entry = StepReference(number, get_step(number).title, params, doc["rf"], doc["macs"], (result,))
            # after every run: a stop in mid-way keeps what was done. Runs of the same recipe with other
            # seeds stay in the entry; without --merge the first run starts the file afresh.
            held = merge_step(output, entry, keep_others=merge or not first_write)
            first_write = False
            write_lifecycle(Path(markdown), held)
    log(f"wrote {output} and {markdown}")
    return held
