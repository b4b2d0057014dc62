"""Train seeded configurations and keep each as a reference record: every epoch, the weights it
was tested with (small models), and its provenance. `reproduce` and `ablate` both record runs so."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Callable

import torch

from core.project import ROOT
from core.results.reference import Provenance, ReferenceRun
from core.training.budget import describe_limits
from core.training.config import TrainConfig
from core.training.data import MNISTTensors
from core.training.device import processor_label
from core.training.events import DoneEvent, EpochEvent
from core.training.loop import fit_seeds
from core.training.steps import get_step

MAX_SHIPPED_PARAMS = 100_000  # weights of smaller reference models are kept in assets/models/


CPU_GROUP = 8  # seeds side by side on a CPU: the most seed-images/s measured here (bench --seed-groups)


def seed_groups(seeds: list[int], together: int | None, device: torch.device | None = None) -> list[list[int]]:
    """The seeds in groups of at most `together`, each trained as one network; None: all at once on
    a GPU, CPU_GROUP at a time on a CPU (more at once outgrow its caches and slow down)."""
    if together is not None and together < 1:
        raise ValueError(f"--together must be at least 1, got {together}")
    size = together or (len(seeds) if device is not None and device.type == "cuda" else CPU_GROUP)
    return [seeds[i:i + size] for i in range(0, len(seeds), size)]


def reference_runs(configs: list[TrainConfig], data: MNISTTensors, command: str, weights_dir: Path | None,
                   log: Callable[[str], None]) -> tuple[list[ReferenceRun], int]:
    """Train the seeds of one setting as one seed group; returns each seed's run (also when it
    failed: its reason says why) and the model's parameter count. The first seed's weights are kept
    in `weights_dir` (small models only)."""
    first = configs[0]
    limits = describe_limits(first, len(data.train_images), len(data.test_images), get_step(first.step).recipe.epochs)
    seeds = ", ".join(str(c.seed) for c in configs)
    what = f"step {first.step}" + (f"'s recipe with {first.net}" if first.is_design else "")
    log(f"{what}, seed{'s' if len(configs) > 1 else ''} {seeds}"
        f"{' trained side by side' if len(configs) > 1 else ''}: {limits}")
    started = time.perf_counter()
    finals = _train_logging_epochs(configs, data, log)
    wall = time.perf_counter() - started
    provenance = Provenance(command=command, device=finals[0].device, torch=torch.__version__,
                            python=platform.python_version(), date=time.strftime("%Y-%m-%d"),
                            wall_seconds=round(wall, 1), limits=limits, seeds_together=len(configs),
                            trained_with=tuple(c.seed for c in configs),
                            processor=processor_label(data.train_images.device))
    results = []
    for config, done in zip(configs, finals):
        weights = _keep_weights(done, config, weights_dir) if config is first else None
        epochs = tuple({k: round(v, 5) if isinstance(v, float) else v for k, v in e.row().items()}
                       for e in done.history)
        result = ReferenceRun(config, epochs, done.reason, provenance, weights)
        log(f"  seed {config.seed}: min(last 3) {result.min_last:.2f} %: {result.verdict(done.params)[1]}"
            if result.min_last is not None else f"  seed {config.seed}: {done.reason}")
        results.append(result)
    log(f"  ({wall:.0f} s)")
    return results, finals[0].params


def _train_logging_epochs(configs: list[TrainConfig], data: MNISTTensors,
                          log: Callable[[str], None]) -> list[DoneEvent]:
    """run_seeds, with one line per epoch (every seed's test accuracy) for whoever watches a long run."""
    finals: dict[int, DoneEvent] = {}
    accs: dict[int, dict[int, float]] = {}
    for g, event in fit_seeds(configs, data):
        if isinstance(event, EpochEvent):
            accs.setdefault(event.epoch, {})[g] = event.test_acc
            if len(accs[event.epoch]) == sum(1 for i in range(len(configs)) if i not in finals):
                shown = ", ".join(f"{a:.2f}" for a in accs.pop(event.epoch).values())
                log(f"    epoch {event.epoch}: test accuracy {shown} % ({event.seconds:.0f} s)")
        elif isinstance(event, DoneEvent):
            finals[g] = event
    return [finals[g] for g in range(len(configs))]


def _keep_weights(done: DoneEvent, config: TrainConfig, weights_dir: Path | None) -> str | None:
    if weights_dir is None or done.params >= MAX_SHIPPED_PARAMS or done.weights is None:
        return None
    weights_dir.mkdir(parents=True, exist_ok=True)
    file = weights_dir / f"step_{config.step}_seed_{config.seed}.pt"
    torch.save(done.weights, file)
    return file.resolve().relative_to(ROOT).as_posix() if file.resolve().is_relative_to(ROOT) else str(file)
