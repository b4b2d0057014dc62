"""The recorded frontier search: screen the family of candidates (core/runs/frontier.py) on a few
seeds, confirm the promising ones on twenty, each seed group trained as one grouped network, every
run written to assets/frontier.json with its provenance as soon as its group ends (a stop loses
at most the group in training; a rerun skips the seeds already recorded)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable

from core.architecture.builder import macs
from core.architecture.challenge import CHALLENGE
from core.experiments.reference_run import reference_runs, seed_groups
from core.runs.frontier import Candidate, FrontierEntry, load_frontier, merge_entry
from core.runs.summary import same_setting
from core.training.data import load_mnist
from core.training.device import pick_device
from core.training.loop import build_for


def promising(entries: list[FrontierEntry], count: int, margin: float = 0.0) -> list[Candidate]:
    """The `count` smallest screened candidates whose every seed so far held the line (plus `margin`);
    of equally small ones, those whose lowest seed stands highest."""
    passed = [e for e in entries if e.runs and e.stage == "screened"
              and all(r.min_last is not None and r.min_last >= CHALLENGE.min_acc + margin for r in e.runs)]
    return [e.candidate for e in sorted(passed, key=lambda e: (e.params, -e.min_last_spread.low))[:count]]


def seeds_to_train(candidate: Candidate, seeds: list[int], entries: list[FrontierEntry], device: str) -> list[int]:
    """The seeds not yet recorded for this candidate's current setting."""
    held = next((e for e in entries if e.candidate.name == candidate.name), None)
    if held is None or not held.runs or not same_setting(held.runs[0].config, candidate.config(device=device)):
        return list(seeds)
    done = {r.seed for r in held.runs if r.reason == "completed"}
    return [s for s in seeds if s not in done]


def search(candidates: list[Candidate], seeds: list[int], data_dir: str | None, download: bool, device: str,
           together: int | None, output: str, argv: list[str],  # after `python -m core`
           log: Callable[[str], None]) -> list[FrontierEntry]:
    dev = pick_device(device)
    data = load_mnist(data_dir, download=download, device=dev)
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv)
    path = Path(output)
    entries = load_frontier(path)
    for candidate in candidates:
        todo = seeds_to_train(candidate, seeds, entries, str(dev))
        model = build_for(candidate.config())
        params, cost = sum(p.numel() for p in model.parameters()), macs(model)
        log(f"{candidate.name} ({candidate.net}, {params:,} parameters): "
            + (f"seeds {', '.join(map(str, todo))}" if todo else "every seed asked for is recorded already"))
        for chunk in seed_groups(todo, 1 if candidate.alone else together, dev):
            configs = [candidate.config(seed=s, device=str(dev)) for s in chunk]
            runs, _ = reference_runs(configs, data, command, None, log)
            entries = merge_entry(path, FrontierEntry(candidate, params, cost, tuple(runs)))
    log(f"wrote {path}")
    return entries
