"""The reference runs in `assets/reference_runs.json`: a small typed reader and an atomic, locked
writer. `python -m core reproduce` fills the file; the app, the CLI and LIFECYCLE.md read it.

A step's entry holds one run per seed, each with its config, every epoch and its provenance
(command, device, torch, date, wall time). Summaries (best, min of the last 3, spread across
seeds) are computed from the epochs here, never stored twice."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from core.architecture.challenge import CHALLENGE
from core.project import ASSETS
from core.results.files import ResultFileError, merge_runs, parse_entries, read_result_file, write_json
from core.results.summary import JudgedRun, SeedRuns, same_setting
from core.training.config import TrainConfig

REFERENCE_FILE = ASSETS / "reference_runs.json"
# the final step trained with the challenge command on seeds its reference runs never used
UNSEEN_FILE = ASSETS / "unseen_seeds.json"
# a frontier design with more room than the final step, trained with the challenge command and its network
# (`--net`) on the final step's unseen seeds: the `train --json` outputs, with what, command, seeds and date
DESIGN_UNSEEN_FILE = ASSETS / "sep28_unseen_seeds.json"
FORMAT = 2


@dataclass(frozen=True)
class Provenance:
    command: str
    device: str
    torch: str
    python: str
    date: str
    wall_seconds: float
    limits: str  # "full: ..." or "reduced: ..." (core.training.budget.describe_limits)
    seeds_together: int = 1  # trained as one seed group of this many seeds (core.training.loop.fit_seeds)
    # the seeds of that group, in order (a seed's run depends on its partners' rounding); () in runs
    # recorded before the file named them
    trained_with: tuple[int, ...] = ()
    # the processor (core.training.device.processor_label): a run repeats bit for bit only on the same
    # kind; "" in runs recorded before the file named it
    processor: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "trained_with", tuple(self.trained_with))  # a JSON list comes back as a tuple

    @property
    def reduced(self) -> bool:
        return self.limits.startswith("reduced")


@dataclass(frozen=True)
class ReferenceRun(JudgedRun):
    config: TrainConfig
    epochs: tuple[dict[str, float], ...]
    reason: str
    provenance: Provenance
    weights: str | None = None  # path, relative to the project root, of the tested weights

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def train_seconds(self) -> float:
        return sum(e["seconds"] for e in self.epochs)

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config.as_dict(), "epochs": list(self.epochs), "reason": self.reason,
                "provenance": _provenance_dict(self.provenance), "weights": self.weights}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ReferenceRun":
        return cls(TrainConfig.from_dict(raw["config"]), tuple(raw["epochs"]), raw["reason"],
                   Provenance(**raw["provenance"]), raw.get("weights"))


def _provenance_dict(provenance: Provenance) -> dict[str, Any]:
    raw = asdict(provenance)
    for field in ("trained_with", "processor"):  # runs recorded before the file named these keep their shape
        if not raw[field]:
            del raw[field]
    return raw


@dataclass(frozen=True)
class StepReference(SeedRuns):
    step: int
    title: str
    params: int
    rf: int
    macs: int
    runs: tuple[ReferenceRun, ...]  # one per seed, in seed order

    @property
    def first(self) -> ReferenceRun:
        return self.runs[0]

    @property
    def all_passed(self) -> bool:
        return all(r.verdict(self.params)[0] for r in self.runs)

    @property
    def reduced(self) -> bool:
        return any(r.provenance.reduced for r in self.runs)

    def distribution(self) -> str:
        """The seeds' spread as one markdown sentence: the figures the challenge is judged on."""
        m = self.min_last_spread
        if m is None:
            return "No run of this step finished an epoch."
        runs = sorted((r for r in self.runs if r.min_last is not None), key=lambda r: r.min_last)
        worst = ", ".join(f"seed {r.seed} ({r.min_last:.2f} %)" for r in runs[:3])
        met = sum(r.verdict(self.params)[0] for r in self.runs)
        return (f"**Across {m.n} seeds** (the lowest of each run's last {CHALLENGE.last_epochs} test accuracies): min **{m.low:.2f} %**, "
                f"mean **{m.mean:.2f} %**, max {m.high:.2f} %; the three worst: {worst}. "
                f"The challenge is met by **{met} of {len(self.runs)}** seeds.")

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "title": self.title, "params": self.params, "rf": self.rf, "macs": self.macs,
                "runs": [r.as_dict() for r in self.runs]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "StepReference":
        runs = tuple(sorted((ReferenceRun.from_dict(r) for r in raw["runs"]), key=lambda r: r.seed))
        return cls(raw["step"], raw["title"], raw["params"], raw["rf"], raw["macs"], runs)


class ReferenceFileError(ResultFileError):
    """The reference file exists but cannot be read."""


def load_references(path: str | Path = REFERENCE_FILE) -> dict[int, StepReference]:
    """Reference runs by step number; {} when the file is absent. A damaged file raises
    ReferenceFileError naming the file (callers decide whether that is fatal)."""
    try:
        doc = read_result_file(path, "reference runs", FORMAT, "python -m core reproduce")
        steps = parse_entries(path, doc["steps"], StepReference.from_dict) if doc is not None else []
    except ResultFileError as exc:
        raise ReferenceFileError(str(exc)) from exc
    return {s.step: s for s in steps}


@dataclass(frozen=True)
class SeedLows:
    """A network's min(last 3) on each seed it was trained on."""
    name: str
    params: int
    lows: dict[int, float]

    def holds(self, low: float) -> bool:
        return CHALLENGE.meets(self.params, low, CHALLENGE.max_epochs)

    def on(self, seeds: set[int]) -> SeedLows:
        return replace(self, lows={s: low for s, low in self.lows.items() if s in seeds})


def step_unseen_lows(path: str | Path = UNSEEN_FILE) -> SeedLows | None:
    """The final step on the seeds kept in `path`; None while there are none, or the file cannot be read."""
    try:
        step = next(iter(load_references(path).values()), None)
    except ReferenceFileError:
        return None
    lows = {r.seed: r.min_last for r in step.runs if r.min_last is not None} if step is not None else {}
    return SeedLows(f"step {step.step}", step.params, lows) if lows else None


def design_unseen_lows(path: str | Path = DESIGN_UNSEEN_FILE) -> SeedLows | None:
    """The design of `path` (`train --json` outputs) on its seeds, completed runs only; None while there
    are none, or the file cannot be read."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        runs = [r for r in doc["runs"] if r["stopped_reason"] == "completed"]
        lows = {r["config"]["seed"]: min(e["test_acc"] for e in r["epochs"][-CHALLENGE.last_epochs:]) for r in runs}
        return SeedLows(doc.get("candidate") or runs[0]["config"]["net"], runs[0]["params"], lows) if runs else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def unseen_points(path: str | Path = UNSEEN_FILE,
                  design_path: str | Path = DESIGN_UNSEEN_FILE) -> list[dict[str, Any]]:
    """A row per seed of the final step's unseen seeds and of the design's: what a chart of the two margins
    draws (the design only on seeds the final step was trained on too, so the rows compare)."""
    step, design = step_unseen_lows(path), design_unseen_lows(design_path)
    if step is None:
        return []
    shown = [step] if design is None else [step, design.on(set(step.lows))]
    return [{"network": f"{lows.name} · {lows.params:,}", "seed": seed, "min_last": low, "held": lows.holds(low)}
            for lows in shown for seed, low in sorted(lows.lows.items())]


def write_references(path: str | Path, steps: dict[int, StepReference]) -> None:
    """Atomic: a reader never sees a half-written file."""
    doc = {"format": FORMAT, "challenge": asdict(CHALLENGE), "steps": [steps[k].as_dict() for k in sorted(steps)]}
    write_json(Path(path), doc)


def merge_step(path: str | Path, entry: StepReference, keep_others: bool,
               then: Callable[[dict[int, StepReference]], None] | None = None) -> dict[int, StepReference]:
    """Write one step into the file under a lock (so two reproduce processes can share it) and
    return everything the file now holds. With `keep_others`, the other steps stay, and runs of
    the same configuration with other seeds stay too (a rerun with new seeds adds them);
    otherwise the file starts afresh with this step. `then` runs under the same lock with what the
    file now holds (a file written from it, such as LIFECYCLE.md, cannot be overtaken by an older view)."""
    path = Path(path)

    def write(steps: dict[int, StepReference]) -> None:
        write_references(path, steps)
        if then is not None:
            then(steps)

    return merge_runs(path, lambda: load_references(path) if keep_others else {}, entry.step, entry,
                       _same_recipe, write)


def _same_recipe(a: StepReference, b: StepReference) -> bool:
    return a.params == b.params and all(same_setting(r.config, b.first.config) for r in a.runs)

