"""The ablation's variants and its results file, `assets/ablation.json`: the final recipe with one
part taken away at a time, each over several seeds, one record per run with its provenance. The
table, the LIFECYCLE.md section and the figures a lesson quotes are all computed from the file;
`python -m core ablate` (core/experiments/ablate.py) fills it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from core.architecture.challenge import CHALLENGE
from core.project import ASSETS
from core.results.compare import differing, flat
from core.results.files import locked, merge_by_seed, write_json
from core.results.reference import ReferenceRun
from core.results.summary import SeedRuns, points, same_setting
from core.training.augmentation import AugmentConfig
from core.training.config import TrainConfig

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


def _jsonable(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: asdict(v) if isinstance(v, AugmentConfig) else v for k, v in overrides.items()}


def load_ablation(path: str | Path = ABLATION_FILE) -> tuple[int, list[AblationResult]] | None:
    """(step, results in ABLATIONS order), or None when there is no file yet."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the ablation results in {path}: {exc}") from exc
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a format-{FORMAT} ablation file: rerun `python -m core ablate`")
    results = []
    for raw in doc["variants"]:
        ablation = get_ablation(raw["ablation"]["name"])
        runs = tuple(sorted((ReferenceRun.from_dict(r) for r in raw["runs"]), key=lambda r: r.seed))
        results.append(AblationResult(ablation, raw["params"], runs))
    order = {a.name: i for i, a in enumerate(ABLATIONS)}
    return doc["step"], sorted(results, key=lambda r: order[r.ablation.name])


def _write(path: Path, step: int, results: list[AblationResult]) -> None:
    doc = {"format": FORMAT, "step": step, "variants": [r.as_dict() for r in results]}
    write_json(path, doc)


def merge_result(path: Path, step: int, result: AblationResult, keep: bool) -> list[AblationResult]:
    """Add one variant's runs to the file under a lock: runs of the same setting with other seeds
    stay (same-seed runs are replaced); a changed setting replaces the variant's runs."""
    with locked(path):
        held = load_ablation(path) if keep else None
        results = {r.ablation.name: r for r in held[1]} if held and held[0] == step else {}
        old = results.get(result.ablation.name)
        if old is not None and same_setting(old.runs[0].config, result.runs[0].config):
            result = replace(result, runs=merge_by_seed(old.runs, result.runs))
        results[result.ablation.name] = result
        ordered = [results[a.name] for a in ABLATIONS if a.name in results]
        _write(path, step, ordered)
        return ordered


def measured_on(step: int, results: list[AblationResult]) -> str | None:
    """None while the ablation's full recipe is the step as it stands; after the step changed, what it
    was measured on, in words ("step 9 as it was: c8,c8,M,c16,c16,c16,c16,G, 9,032 parameters, weight
    decay 0.0 (now 0.0001)"), so that its figures are never read as figures of the step as it is."""
    full = next((r for r in results if r.ablation.name == "full"), None)
    if full is None or not full.runs:
        return None
    then = full.runs[0].config
    now = TrainConfig.for_step(step, seed=then.seed, device=then.device)
    if same_setting(then, now):
        return None
    old, new = flat(then), flat(now)
    changed = [f"{name.split('.')[-1].replace('_', ' ')} {old[name]} (now {new[name]})"
               for name in differing([then, now]) if name != "net"]
    return ", ".join([f"step {step} as it was: {then.net}", f"{full.params:,} parameters", *changed])


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


def ablation_markdown(results: list[AblationResult], step: int | None = None) -> list[str]:
    if not results:
        return []
    earlier = measured_on(step, results) if step is not None else None
    rows = ablation_rows(results)
    first = results[0].runs[0].provenance
    commands = sorted({run.provenance.command for r in results for run in r.runs})
    dates = sorted({run.provenance.date for r in results for run in r.runs})
    lines = ["", "## What each part of the final recipe is worth (ablation)", "",
             " and ".join(f"`{c}`" for c in commands) + f" — {first.device}, torch {first.torch}, "
             f"{' to '.join(dict.fromkeys([dates[0], dates[-1]]))}; {first.limits}. Each line "
             "takes one part away from the final recipe and trains it on the same seeds. *vs full* is the change "
             "of the mean min(last 3); it counts only if the seeds' ranges do not overlap."
             + (f" **Measured on {earlier}**; not yet rerun on the step as it is." if earlier else ""), "",
             "| taken away | params | seeds | min last 3 (mean) | lowest | highest | vs full | beyond seed spread? |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row['taken away']} | {row['params']:,} | {row['seeds']} | {_f(row['min last 3: mean'])} | "
                     f"{_f(row['lowest seed'])} | {_f(row['highest seed'])} | {_signed(row.get('vs full recipe'))} | "
                     f"{row.get('beyond the seed spread?', '—')}{' — ' + row['note'] if 'note' in row else ''} |")
    return lines


def _f(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _signed(v: float | None) -> str:
    return "—" if v is None else points(v)


def ablation_facts(results: list[AblationResult], step: int | None = None) -> dict[str, str]:
    """`ablation:<name>` -> a phrase the lesson text can quote, e.g. '-0.05 points of min(last 3)
    (99.42 % vs 99.47 %, 3 seeds each; within the seed spread; lowest seed 99.38 %, below 99.4 %)';
    `ablation:beyond-spread` / `ablation:within-spread` list which parts moved it by more / less than
    the seeds differ, and `ablation:seeds` names the seeds."""
    full = next((r for r in results if r.ablation.name == "full"), None)
    facts: dict[str, str] = {}
    if full is None or full.min_last_spread is None:
        return facts
    base = full.min_last_spread
    facts["ablation:full"] = f"{base.mean:.2f} % mean min(last 3) over {base.n} seeds ({base.low:.2f}-{base.high:.2f})"
    facts["ablation:seeds"] = f"seeds {', '.join(str(r.seed) for r in full.runs)}"
    earlier = measured_on(step, results) if step is not None else None
    if earlier:
        facts["ablation:seeds"] += f"; measured on {earlier}, not yet rerun on the step as it is"
    facts["ablation:subject"] = f"{earlier}, and not yet rerun on this one" if earlier else "this step as it is"
    beyond, within = [], []
    for r in results:
        m = r.min_last_spread
        if r is full or m is None:
            continue
        overlaps = m.overlaps(base)
        (within if overlaps else beyond).append(r.ablation.short)
        verdict = "within the seed spread" if overlaps else "beyond the seed spread"
        low = f"lowest seed {m.low:.2f} %" + (f", below {CHALLENGE.min_acc} %" if not CHALLENGE.holds(m.low) else "")
        facts[f"ablation:{r.ablation.name}"] = (f"{points(m.mean - base.mean)} points of min(last 3) ({m.mean:.2f} % vs "
                                                f"{base.mean:.2f} %, {m.n} seeds each; {verdict}; {low})")
    facts["ablation:beyond-spread"] = _joined(beyond) or "no part"
    facts["ablation:within-spread"] = _joined(within) or "no part"
    return facts


def _joined(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'; '' for none."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
