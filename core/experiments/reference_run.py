"""Train one seeded configuration and keep it as a reference record: every epoch, the weights it
was tested with (small models), and its provenance. `reproduce` and `ablate` both record runs so."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Callable

import torch

from core.project import ROOT
from core.runs.reference import Provenance, ReferenceRun
from core.training.budget import describe_limits
from core.training.config import TrainConfig
from core.training.data import MNISTTensors
from core.training.loop import run

MAX_SHIPPED_PARAMS = 100_000  # weights of smaller reference models are kept in assets/models/


def reference_run(config: TrainConfig, data: MNISTTensors, command: str, weights_dir: Path | None,
                  log: Callable[[str], None]) -> tuple[ReferenceRun, int]:
    """Train one seed; returns the run (also when it failed: its reason says why) and the model's
    parameter count."""
    limits = describe_limits(config, len(data.train_images), len(data.test_images))
    log(f"step {config.step}, seed {config.seed}: {limits}")
    started = time.perf_counter()
    done = run(config, data)
    wall = time.perf_counter() - started
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
    log(f"  min(last 3) {result.min_last:.2f} %: {result.verdict(done.params)[1]} ({wall:.0f} s)"
        if result.min_last is not None else f"  {done.reason} ({wall:.0f} s)")
    return result, done.params
