"""The ablation's variants and its results file, `assets/ablation.json`: the final recipe with one
part taken away at a time, each over several seeds, one record per run with its provenance. The
table, the LIFECYCLE.md section and the figures a lesson quotes are all computed from the file;
`python -m core ablate` (core/experiments/ablate.py) fills it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.project import ASSETS
from core.results.files import merge_runs, parse_entries, read_result_file, write_json
from core.results.reference import ReferenceRun
from core.results.summary import SeedRuns, same_setting
from core.training.augmentation import AugmentConfig

ABLATION_FILE = ASSETS / "ablation.json"
FORMAT = 1


@dataclass(frozen=True)
class Ablation:
    name: str  # short key, used on the command line
    label: str  # what is taken away, in words
    overrides: dict[str, Any]  # TrainConfig.with_overrides arguments; {} = the full recipe

    @property
    def short(self) -> str:
        """The label without its explanation (what follows ' (' or ':'), for a list in running text."""
        return self.label.split(" (")[0].split(":")[0]


ABLATIONS: tuple[Ablation, ...] = (
    Ablation("full", "the full recipe", {}),
    Ablation("no-bn", "no BatchNorm", {"batchnorm": False}),
    Ablation("no-augment", "no augmentation (every epoch on the original digits)", {"augment": AugmentConfig()}),
    Ablation("no-clean-finish", "no clean finish (augmented to the last step)", {"clean_fraction": 0.0}),
    Ablation("no-ema", "no weight average (the raw weights are tested)", {"ema": 0.0}),
    Ablation("no-weight-decay", "no weight decay (the recipe's 1e-4 set to 0)", {"weight_decay": 0.0}),
    Ablation("constant-lr", "constant learning rate 0.01 (steps 1-8's) instead of one-cycle",
             {"schedule": "constant", "lr": 0.01}),
    Ablation("batch-128", "batches of 128 instead of 64 (half the optimiser steps)", {"batch_size": 128}),
    Ablation("no-gap", "no GAP: one convolution over the whole last grid (more parameters)", {"gap": False}),
)


def get_ablation(name: str) -> Ablation:
    for a in ABLATIONS:
        if a.name == name:
            return a
    raise ValueError(f"unknown ablation {name!r}; choose from {', '.join(a.name for a in ABLATIONS)}")


@dataclass(frozen=True)
class AblationResult(SeedRuns):
    ablation: Ablation
    params: int
    runs: tuple[ReferenceRun, ...]  # one per seed

    @property
    def failed(self) -> list[ReferenceRun]:
        return [r for r in self.runs if r.reason != "completed"]

    def as_dict(self) -> dict[str, Any]:
        return {"ablation": asdict(self.ablation) | {"overrides": _jsonable(self.ablation.overrides)},
                "params": self.params, "runs": [r.as_dict() for r in self.runs]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AblationResult:
        """The variant is the one named (ABLATIONS holds its overrides); the runs are in seed order."""
        runs = tuple(sorted((ReferenceRun.from_dict(r) for r in raw["runs"]), key=lambda r: r.seed))
        return cls(get_ablation(raw["ablation"]["name"]), raw["params"], runs)


def _jsonable(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: asdict(v) if isinstance(v, AugmentConfig) else v for k, v in overrides.items()}


def load_ablation(path: str | Path = ABLATION_FILE) -> tuple[int, list[AblationResult]] | None:
    """(step, results in ABLATIONS order), or None when there is no file yet."""
    doc = read_result_file(path, "ablation results", FORMAT, "python -m core ablate")
    if doc is None:
        return None
    results = parse_entries(path, doc["variants"], AblationResult.from_dict)
    order = {a.name: i for i, a in enumerate(ABLATIONS)}
    return doc["step"], sorted(results, key=lambda r: order[r.ablation.name])


def merge_result(path: Path, step: int, result: AblationResult, keep: bool) -> list[AblationResult]:
    """Add one variant's runs to the file under a lock: runs of the same setting with other seeds
    stay (same-seed runs are replaced); a changed setting replaces the variant's runs. Variants
    measured on another step are dropped."""

    def held() -> dict[str, AblationResult]:
        file = load_ablation(path) if keep else None
        return {r.ablation.name: r for r in file[1]} if file and file[0] == step else {}

    def write(results: dict[str, AblationResult]) -> None:
        ordered = [results[a.name] for a in ABLATIONS if a.name in results]
        write_json(path, {"format": FORMAT, "step": step, "variants": [r.as_dict() for r in ordered]})

    results = merge_runs(path, held, result.ablation.name, result,
                          lambda old, new: same_setting(old.runs[0].config, new.runs[0].config), write)
    return [results[a.name] for a in ABLATIONS if a.name in results]


def ablation_rows(results: list[AblationResult]) -> list[dict[str, Any]]:
    """The table the page and LIFECYCLE.md show: each variant against the full recipe."""
    full = next((r for r in results if r.ablation.name == "full"), None)
    base = full.min_last_spread if full else None
    rows = []
    for r in results:
        m = r.min_last_spread
        row: dict[str, Any] = {"taken away": r.ablation.label, "params": r.params, "seeds": len(r.runs),
                               "min last 3: mean": round(m.mean, 2) if m else None,
                               "lowest seed": round(m.low, 2) if m else None,
                               "highest seed": round(m.high, 2) if m else None}
        if r.failed:
            row["note"] = f"{len(r.failed)} run(s) failed: {r.failed[0].reason}"
        if base is not None and m is not None and r is not full:
            row["vs full recipe"] = round(m.mean - base.mean, 2) + 0.0
            row["beyond the seed spread?"] = "no (ranges overlap)" if m.overlaps(base) else "yes"
        rows.append(row)
    return rows


