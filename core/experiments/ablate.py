"""An ablation anyone can rerun: the final step's recipe with one part taken away at a time, each
over several seeds, so every claim of the form 'X helps' comes with its own seed spread.

Results go to assets/ablation.json (core/results/ablation.py: one record per run, with its provenance)
and into LIFECYCLE.md and the final step's page; `--merge` adds seeds or variants to what the file
already holds, so two processes (one per CPU core) can fill it together."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable

from core.experiments.reference_run import reference_runs, seed_groups
from core.results.ablation import AblationResult, get_ablation, merge_result
from core.training.budget import fit_to_budget, modelled_speed
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.device import pick_device


def ablate(step: int, names: list[str], seeds: list[int], data_dir: str | None, download: bool, device: str,
           budget: float | None, output: str, merge: bool, argv: list[str],  # after `python -m core`
           log: Callable[[str], None], together: int | None = None) -> list[AblationResult]:
    dev = pick_device(device)
    data = load_mnist(data_dir, download=download, device=dev)
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv)
    path = Path(output)
    results: list[AblationResult] = []
    for i, name in enumerate(names):
        ablation = get_ablation(name)
        config = TrainConfig.for_step(step, device=str(dev)).with_overrides(**ablation.overrides)
        if budget:
            config = fit_to_budget(config, modelled_speed(config), budget,
                                   n_train=len(data.train_images), n_test=len(data.test_images))
        runs = []
        for chunk in seed_groups(seeds, together, dev):
            configs = [config.with_overrides(seed=s) for s in chunk]
            chunk_runs, params = reference_runs(configs, data, command, None, log)
            runs.extend(chunk_runs)
        results = merge_result(path, step, AblationResult(ablation, params, tuple(runs)), keep=merge or i > 0)
    log(f"wrote {path}; `python -m core reproduce --markdown-only` puts it into LIFECYCLE.md")
    return results
