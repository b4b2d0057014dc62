"""The recorded frontier search: screen the family of candidates (core/results/frontier.py) on a few
seeds, confirm the promising ones on twenty, each seed group trained as one grouped network, every
run written to assets/frontier.json with its provenance as soon as its group ends (a stop loses
at most the group in training; a rerun skips the seeds already recorded)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from core.architecture.builder import macs
from core.architecture.challenge import CHALLENGE
from core.experiments.reference_run import reference_runs, seed_groups
from core.report.frontier import pct_text
from core.results.frontier import (
    Candidate,
    FrontierEntry,
    load_frontier,
    merge_entry,
)
from core.results.reference import (
    REFERENCE_FILE,
    ReferenceRun,
    StepReference,
    load_references,
)
from core.results.summary import same_setting
from core.training.data import load_mnist
from core.training.device import pick_device
from core.training.loop import build_for


def promising(entries: list[FrontierEntry], count: int, margin: float = 0.0) -> list[Candidate]:
    """The `count` smallest screened candidates whose every seed so far held the line (plus `margin`);
    of equally small ones, those whose lowest seed stands highest."""
    passed = [e for e in entries if e.runs and e.stage == "screened"
              and all(CHALLENGE.holds(r.min_last, margin) for r in e.runs)]
    return [e.candidate for e in sorted(passed, key=lambda e: (e.params, -e.min_last_spread.low))[:count]]


def seeds_to_train(candidate: Candidate, seeds: list[int], entries: list[FrontierEntry], device: str) -> list[int]:
    """The seeds not yet recorded for this candidate's current setting."""
    held = next((e for e in entries if e.candidate.name == candidate.name), None)
    if held is None or not held.runs or not same_setting(held.runs[0].config, candidate.config(device=device)):
        return list(seeds)
    done = {r.seed for r in held.runs if r.reason == "completed"}
    return [s for s in seeds if s not in done]


def trained_by_reproduce(candidate: Candidate, seeds: list[int], device: str,
                         references: dict[int, StepReference]) -> list[ReferenceRun]:
    """The runs of `seeds` that `python -m core reproduce` already trained with exactly this candidate's
    setting, each seed alone, on this kind of device. An alone candidate that a step has become (step 9
    is narrow12-wd now) takes them rather than train the same computation again; each run keeps the
    command that trained it in its provenance."""
    if not candidate.alone:
        return []
    wanted = set(seeds)
    return sorted((run for ref in references.values() for run in ref.runs
                   if run.seed in wanted and run.reason == "completed" and run.provenance.seeds_together == 1
                   and run.config.device == device
                   and same_setting(run.config, candidate.config(seed=run.seed, device=device))),
                  key=lambda run: run.seed)


def search(candidates: list[Candidate], seeds: list[int], data_dir: str | None, download: bool, device: str,
           together: int | None, output: str, argv: list[str],  # after `python -m core`
           log: Callable[[str], None], references: str | Path = REFERENCE_FILE) -> list[FrontierEntry]:
    dev = pick_device(device)
    data = load_mnist(data_dir, download=download, device=dev)
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv)
    path = Path(output)
    entries = load_frontier(path)
    reference_runs_held = load_references(references) if any(c.alone for c in candidates) else {}
    for candidate in candidates:
        todo = seeds_to_train(candidate, seeds, entries, str(dev))
        model = build_for(candidate.config())
        params, cost = sum(p.numel() for p in model.parameters()), macs(model)
        taken = trained_by_reproduce(candidate, todo, str(dev), reference_runs_held) if todo else []
        if taken:
            entries = merge_entry(path, FrontierEntry(candidate, params, cost, tuple(taken)))
            log(f"{candidate.name}: seeds {', '.join(str(r.seed) for r in taken)} taken from the reference runs "
                f"(the same setting, each seed trained alone by `reproduce`)")
            todo = [s for s in todo if s not in {r.seed for r in taken}]
        log(f"{candidate.name} ({candidate.net}, {params:,} parameters): "
            + (f"seeds {', '.join(map(str, todo))}" if todo else "every seed asked for is recorded already"))
        for chunk in seed_groups(todo, 1 if candidate.alone else together, dev):
            configs = [candidate.config(seed=s, device=str(dev)) for s in chunk]
            runs, _ = reference_runs(configs, data, command, None, log)
            entries = merge_entry(path, FrontierEntry(candidate, params, cost, tuple(runs)))
    log(f"wrote {path}")
    return entries


# --- checking the file against its provenance -------------------------------------------------

TIMING_FIELDS = ("seconds", "images_per_s")  # an epoch's wall time differs from run to run; nothing else may


@dataclass(frozen=True)
class Recheck:
    """A recorded frontier run trained again the way its provenance says it was trained."""
    candidate: str
    recorded: ReferenceRun
    again: ReferenceRun
    group: tuple[int, ...]  # the seeds trained side by side in the check (the seed alone for an alone run)
    same_group: bool  # False: the file does not name the seeds it was trained beside (runs recorded before it did)
    same_device: bool  # the same device and thread count (others round differently)
    same_processor: bool  # the same kind of processor, named in the file (another kind rounds differently)

    @property
    def comparable(self) -> bool:
        """Should the check reproduce the run bit for bit?"""
        return self.same_group and self.same_device and self.same_processor

    @property
    def differing_epochs(self) -> list[int]:
        old, new = self.recorded.epochs, self.again.epochs
        differ = [a["epoch"] for a, b in zip(old, new) if _outcome(a) != _outcome(b)]
        return differ + [e["epoch"] for e in (old[len(new):] or new[len(old):])]

    def describe(self) -> str:
        seed = f"{self.candidate} seed {self.recorded.seed}"
        if not self.differing_epochs:
            return f"{seed}: identical in all {len(self.recorded.epochs)} epochs"
        moved = (f"min(last {CHALLENGE.last_epochs}) {pct_text(self.recorded.min_last)} % recorded, "
                 f"{pct_text(self.again.min_last)} % now")
        if not self.comparable:
            return f"{seed}: not comparable bit for bit ({self._why_not_comparable()}, so other rounding): {moved}"
        first = self.differing_epochs[0]
        return f"{seed}: DIFFERS from epoch {first} on ({len(self.differing_epochs)} epochs): {moved}"

    def _why_not_comparable(self) -> str:
        if not self.same_group:
            return "the file does not name the seeds it was trained beside"
        if not self.same_device:
            return "another device or thread count"
        if not self.recorded.provenance.processor:
            return "the file does not name the processor it was recorded on"
        return f"recorded on {self.recorded.provenance.processor}, checked on {self.again.provenance.processor}"


def _outcome(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in TIMING_FIELDS}


def recorded_threads(run: ReferenceRun) -> int | None:
    """The CPU thread count a run was trained with ('CPU (2 threads)' -> 2), None for a GPU."""
    found = re.fullmatch(r"CPU \((\d+) threads?\)", run.provenance.device)
    return int(found.group(1)) if found else None


def recheck(candidates: list[Candidate], seeds: list[int], data_dir: str | None, download: bool, device: str,
            threads: int | None, path: str | Path, log: Callable[[str], None]) -> list[Recheck]:
    """Train recorded seeds again as they were trained (the same seed group where the file names it,
    the same thread count unless `threads` says otherwise) and compare every epoch with the file.
    Writes nothing."""
    entries = {e.candidate.name: e for e in load_frontier(path)}
    dev = pick_device(device)
    data = load_mnist(data_dir, download=download, device=dev)
    checks = []
    for candidate in candidates:
        entry = entries.get(candidate.name)
        if entry is None or not entry.runs:
            raise ValueError(f"{path} has no runs of {candidate.name}: nothing to check")
        by_seed = {r.seed: r for r in entry.runs}
        missing = [s for s in seeds if s not in by_seed]
        if missing:
            raise ValueError(f"{candidate.name} has no recorded run for seed(s) {', '.join(map(str, missing))} "
                             f"(recorded: {', '.join(map(str, sorted(by_seed)))})")
        done: set[int] = set()
        for seed in seeds:
            if seed in done:
                continue
            group, same_group = _recorded_group(by_seed[seed], by_seed)
            if dev.type == "cpu":
                torch.set_num_threads(threads or recorded_threads(by_seed[seed]) or torch.get_num_threads())
            configs = [replace(by_seed[s].config, device=str(dev)) for s in group]
            runs, _ = reference_runs(configs, data, "check", None, log)
            for again in runs:
                if again.seed in seeds and again.seed not in done:
                    recorded = by_seed[again.seed]
                    check = Recheck(candidate.name, recorded, again, tuple(group), same_group,
                                    again.provenance.device == recorded.provenance.device,
                                    again.provenance.processor == recorded.provenance.processor != "")
                    log(check.describe())
                    checks.append(check)
                    done.add(again.seed)
    return checks


def _recorded_group(run: ReferenceRun, by_seed: dict[int, ReferenceRun]) -> tuple[list[int], bool]:
    """The seeds `run` was trained beside, in their order, and whether the file names them. Runs
    recorded before it did: a group's runs share one provenance (its wall time too), so when exactly
    `seeds_together` runs do, they are the group, in seed order, but only named groups count as
    comparable bit for bit."""
    named = list(run.provenance.trained_with)
    if named and all(s in by_seed for s in named):
        return named, True
    if run.provenance.seeds_together == 1:
        return [run.seed], True
    same = sorted(s for s, r in by_seed.items() if r.provenance == run.provenance)
    return (same if len(same) == run.provenance.seeds_together else [run.seed]), False
