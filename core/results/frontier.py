"""The frontier search: how small a network can be and still hold the challenge on every seed.

`CANDIDATES` is the family searched, read from assets/frontier_candidates.json (designs in
core.architecture.notation's notation, each with overrides of the recipe the search started from,
`SEARCH_BASE`: the final step's recipe as it was before weight decay joined it, so a candidate keeps
meaning the runs recorded for it when the final step moves on). `python -m core search`
(core/experiments/search.py) screens them on a few seeds and confirms the promising ones on many,
recording every run with its provenance in `assets/frontier.json`; the app's frontier chart and
LIFECYCLE.md are drawn from that file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.architecture.challenge import CHALLENGE
from core.project import ASSETS
from core.results.files import merge_runs
from core.results.files import parse_entries, read_result_file, write_json
from core.results.reference import ReferenceRun
from core.results.summary import SeedRuns, same_setting
from core.training.augmentation import AugmentConfig
from core.training.config import TrainConfig
from core.training.steps import FINAL_STEP

FRONTIER_FILE = ASSETS / "frontier.json"
CANDIDATES_FILE = ASSETS / "frontier_candidates.json"  # the family searched: a new experiment is a new entry
FORMAT = 1
CONFIRM_SEEDS = tuple(range(1, 21))


@dataclass(frozen=True)
class Candidate:
    name: str  # short key, used on the command line
    net: str  # the network, in the notation
    recipe: dict[str, Any]  # overrides of the search's base recipe ({} = SEARCH_BASE as it is)
    why: str  # what the candidate tests, in words
    # each seed trained as a run of its own (as Train and `train --seed` do), not side by side with other
    # seeds: the same seeds then meet other floating-point rounding, which tests how robust a result is
    alone: bool = False
    note: str = field(default="", compare=False)  # the reasoning that led to it, from the results before it

    def config(self, seed: int = 1, device: str = "auto") -> TrainConfig:
        return TrainConfig.for_step(FINAL_STEP, net=self.net, seed=seed, device=device, **(SEARCH_BASE | self.recipe))

    def as_dict(self) -> dict[str, Any]:
        """As recorded with its runs in assets/frontier.json (the note is the candidates file's alone)."""
        held = {k: v for k, v in asdict(self).items() if k != "note"}
        return held | {"recipe": {k: asdict(v) if isinstance(v, AugmentConfig) else v for k, v in self.recipe.items()}}


def load_candidates(path: Path = CANDIDATES_FILE) -> tuple[tuple[Candidate, ...], dict[str, Any]]:
    """(the candidates, the search's base recipe) of assets/frontier_candidates.json."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    base = raw["search_base"]
    return tuple(Candidate(e["name"], e["net"], _recipe(e["recipe"]), e["why"], e.get("alone", False), e.get("note", ""))
                 for e in raw["candidates"]), base


def _recipe(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: AugmentConfig(**v) if k == "augment" else v for k, v in raw.items()}


CANDIDATES, SEARCH_BASE = load_candidates()


def get_candidate(name: str) -> Candidate:
    for candidate in CANDIDATES:
        if candidate.name == name:
            return candidate
    raise ValueError(f"unknown candidate {name!r}; the family is: {', '.join(c.name for c in CANDIDATES)}")


@dataclass(frozen=True)
class FrontierEntry(SeedRuns):
    candidate: Candidate
    params: int
    macs: int
    runs: tuple[ReferenceRun, ...]  # one per seed, in seed order

    @property
    def holding(self) -> int:
        """Seeds whose run held the challenge (min of the last epochs at or above the line)."""
        return sum(1 for r in self.runs if CHALLENGE.holds(r.min_last))

    @property
    def holds_everywhere(self) -> bool:
        return bool(self.runs) and self.holding == len(self.runs) and self.params < CHALLENGE.max_params

    @property
    def stage(self) -> str:
        return "confirmed" if len(self.runs) >= len(CONFIRM_SEEDS) else "screened"

    def as_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate.as_dict(), "params": self.params, "macs": self.macs,
                "runs": [r.as_dict() for r in self.runs]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FrontierEntry:
        c = dict(raw["candidate"])
        recipe = {k: AugmentConfig(**v) if k == "augment" else v for k, v in c.pop("recipe").items()}
        runs = tuple(sorted((ReferenceRun.from_dict(r) for r in raw["runs"]), key=lambda r: r.seed))
        return cls(Candidate(recipe=recipe, **c), raw["params"], raw["macs"], runs)


def load_frontier(path: str | Path = FRONTIER_FILE) -> list[FrontierEntry]:
    """The recorded candidates (an empty list when there is no file yet)."""
    doc = read_result_file(path, "frontier search", FORMAT, "python -m core search")
    return [] if doc is None else parse_entries(path, doc["candidates"], FrontierEntry.from_dict)


def merge_entry(path: Path, entry: FrontierEntry) -> list[FrontierEntry]:
    """Add a candidate's runs under the file's lock: its runs with other seeds stay (a seed's new run
    replaces its old one); a candidate whose setting changed starts afresh."""

    def write(held: dict[str, FrontierEntry]) -> None:
        write_json(path, {"format": FORMAT, "challenge": asdict(CHALLENGE),
                          "candidates": [e.as_dict() for e in _in_order(held)]})

    held = merge_runs(path, lambda: {e.candidate.name: _described_now(e) for e in load_frontier(path)},
                      entry.candidate.name, entry, _same_candidate_setting, write)
    return _in_order(held)


def _in_order(held: dict[str, FrontierEntry]) -> list[FrontierEntry]:
    return sorted(held.values(), key=lambda e: (e.params, e.candidate.name))


def _same_candidate_setting(old: FrontierEntry, new: FrontierEntry) -> bool:
    return bool(old.runs) and same_setting(old.runs[0].config, new.runs[0].config)


def _described_now(entry: FrontierEntry) -> FrontierEntry:
    """The entry with its candidate's words as the family has them now, when only the words changed
    (a description reworded after its runs were recorded: step 9 moved on, say)."""
    current = next((c for c in CANDIDATES if c.name == entry.candidate.name), None)
    if current is None or replace(current, why=entry.candidate.why) != entry.candidate:
        return entry
    return replace(entry, candidate=current)


def frontier_points(entries: list[FrontierEntry]) -> list[dict[str, Any]]:
    """One point per candidate and seed for the chart: parameters against min(last N), and whether the
    candidate held (every seed it trained, and no other entry of its design missed: as held_on counts)."""
    rows = []
    for e in entries:
        held = e.holds_everywhere and not missed_elsewhere(e, entries)
        for r in e.runs:
            if r.min_last is not None:
                rows.append({"candidate": e.candidate.name, "net": e.candidate.net, "params": e.params,
                             "seed": r.seed, "min_last": r.min_last, "stage": e.stage, "why": e.candidate.why,
                             "held": held})
    return rows


def frontier_rows(entries: list[FrontierEntry]) -> list[dict[str, Any]]:
    """The table beside the chart: one row per candidate, smallest first."""
    rows = []
    for e in entries:
        m = e.min_last_spread
        rows.append({"candidate": e.candidate.name, "net": e.candidate.net, "params": e.params, "seeds": len(e.runs),
                     "lowest seed": round(m.low, 2) if m else None, "mean": round(m.mean, 2) if m else None,
                     "held on": held_on(e, entries), "what it tests": e.candidate.why})
    return rows


def held_on(entry: FrontierEntry, entries: list[FrontierEntry]) -> str:
    """'18/20'; a candidate that held on every seed while its design missed in another entry says so,
    so that the table never shows as holding a design that does not count (see holding_everywhere)."""
    held = f"{entry.holding}/{len(entry.runs)}"
    if entry.runs and entry.holding == len(entry.runs):
        misses = [f"{o.candidate.name} {o.holding}/{len(o.runs)}" for o in missed_elsewhere(entry, entries)]
        if misses:
            held += f" (does not count: {', '.join(misses)})"
    return held


def same_design(a: FrontierEntry, b: FrontierEntry) -> bool:
    """Two entries of one network and recipe (a candidate and its check with each seed alone)."""
    return bool(a.runs and b.runs) and same_setting(a.runs[0].config, b.runs[0].config)


def missed_elsewhere(entry: FrontierEntry, entries: list[FrontierEntry]) -> list[FrontierEntry]:
    """The other entries of `entry`'s design (its seeds trained alone, say) with a seed below the line."""
    return [o for o in entries if o is not entry and same_design(o, entry) and o.holding < len(o.runs)]


def holding_everywhere(entries: list[FrontierEntry]) -> list[FrontierEntry]:
    """The candidates that held on every one of at least CONFIRM_SEEDS' count of seeds, and whose design
    never missed in any other entry either."""
    return [e for e in entries if e.stage == "confirmed" and e.holds_everywhere and not missed_elsewhere(e, entries)]


def smallest_holding(entries: list[FrontierEntry]) -> FrontierEntry | None:
    """The fewest parameters that hold: the frontier's answer."""
    return min(holding_everywhere(entries), key=lambda e: e.params, default=None)


def widest_margin(entries: list[FrontierEntry]) -> FrontierEntry | None:
    """Of the candidates that hold, the one whose worst seed sits highest above the line (then the highest
    mean): the likeliest to hold on a seed it has not met. The smallest that holds need not be it."""
    return max(holding_everywhere(entries), key=lambda e: (e.min_last_spread.low, e.min_last_spread.mean),
               default=None)


def closest_below(entries: list[FrontierEntry]) -> FrontierEntry | None:
    """Of the candidates smaller than the smallest that holds (all, if none holds) and trained on the
    confirming seeds, the one that held on the most of them (then the highest mean): how near the
    next size down came."""
    best = smallest_holding(entries)
    smaller = [e for e in entries if e.stage == "confirmed" and e.min_last_spread is not None
               and (best is None or e.params < best.params)]
    return max(smaller, key=lambda e: (e.holding / len(e.runs), e.min_last_spread.mean), default=None)


