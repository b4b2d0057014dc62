"""Reference runs: train the steps on real MNIST, keep every epoch with its provenance in
assets/reference_runs.json (and the tested weights of the small models in assets/models/), and
regenerate LIFECYCLE.md from the file (never by hand)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable, Iterable

from core.experiments.reference_run import reference_runs, seed_groups
from core.report.markdown import write_lifecycle
from core.report.views import describe_step
from core.results.reference import StepReference, merge_step
from core.training.budget import fit_to_budget, modelled_speed
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.device import device_label, pick_device
from core.training.steps import get_step


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
    """'1,2,3' or '1-20' or '1-3,7' -> distinct non-negative integers, in the order given."""
    if not text:
        return None
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                if int(hi) < int(lo):
                    raise ValueError(f"{option}: {part} is an empty range (write the lower seed first)")
                seeds.extend(range(int(lo), int(hi) + 1))
            elif part:
                seeds.append(int(part))
    except ValueError as exc:
        if "empty range" in str(exc):
            raise
        raise ValueError(f"{option} must be comma-separated integers or ranges like 1-20, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"{option} must be distinct non-negative integers, got {text!r}")
    return seeds


def reproduce(steps: Iterable[int], seeds: list[int], data_dir: str | None, download: bool, device: str,
              budget: float | None, output: str, markdown: str, merge: bool, argv: list[str],  # after `python -m core`
              log: Callable[[str], None], weights_dir: str | None = "assets/models",
              together: int | None = None, epochs: int | None = None) -> dict[int, StepReference]:
    dev = pick_device(device)
    data = load_mnist(data_dir, download=download, device=dev)
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv)
    log(f"reference runs on {device_label(dev)}, seed(s) {', '.join(map(str, seeds))}")
    held: dict[int, StepReference] = {}
    first_write = True
    for number in steps:
        config = TrainConfig.for_step(number, device=str(dev), epochs=epochs)
        if budget:
            config = fit_to_budget(config, modelled_speed(config), budget,
                                   n_train=len(data.train_images), n_test=len(data.test_images))
        doc = describe_step(number)
        for chunk in seed_groups(seeds, together, dev):
            runs, params = reference_runs([config.with_overrides(seed=s) for s in chunk], data, command,
                                          Path(weights_dir) if weights_dir and chunk[0] == seeds[0] else None, log)
            for result in runs:
                if result.reason != "completed":  # a reference run is the recipe working: this one did not
                    raise ValueError(f"step {number}, seed {result.seed} did not complete ({result.reason}); "
                                     "nothing of its seed group was written")
            entry = StepReference(number, get_step(number).title, params, doc["rf"], doc["macs"], tuple(runs))
            # after every seed group: a stop in mid-way keeps what was done. Runs of the same recipe with
            # other seeds stay in the entry; without --merge the first group starts the file afresh.
            held = merge_step(output, entry, keep_others=merge or not first_write,
                              then=lambda steps: write_lifecycle(Path(markdown), steps))
            first_write = False
    log(f"wrote {output} and {markdown}")
    return held
