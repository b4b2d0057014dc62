"""The frontier search: how small a network can be and still hold the challenge on every seed.

`CANDIDATES` is the family searched (designs in core.architecture.notation's notation, each with
overrides of the recipe the search started from, `SEARCH_BASE`). `python -m core search`
(core/experiments/search.py) screens them on a few seeds and confirms the promising ones on many,
recording every run with its provenance in `assets/frontier.json`; the app's frontier chart and
LIFECYCLE.md are drawn from that file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from core.architecture.challenge import CHALLENGE
from core.project import ASSETS
from core.runs.files import locked, merge_by_seed, write_json
from core.runs.reference import ReferenceRun
from core.runs.summary import SeedRuns, same_setting, seed_list
from core.training.augmentation import AugmentConfig
from core.training.config import TrainConfig
from core.training.steps import FINAL_STEP

FRONTIER_FILE = ASSETS / "frontier.json"
FORMAT = 1
CONFIRM_SEEDS = tuple(range(1, 21))

# the public recipe of the smallest network found (batch 32; shift, scale and 7° rotation, plus
# brightness and contrast), in this project's terms
PUBLIC_AUGMENT = AugmentConfig(rotation=7.0, translate=0.1, scale=0.1, brightness=0.2, contrast=0.2)

# The family was searched around the final step's recipe as it was before weight decay joined it (with
# the 9,032-parameter network, until 2026-12-03). Overrides apply to that recipe, so a candidate keeps
# meaning the runs recorded for it when the final step moves on (narrow12-wd is step 9 now).
SEARCH_BASE: dict[str, Any] = {"weight_decay": 0.0}


@dataclass(frozen=True)
class Candidate:
    name: str  # short key, used on the command line
    net: str  # the network, in the notation
    recipe: dict[str, Any]  # overrides of the search's base recipe ({} = SEARCH_BASE as it is)
    why: str  # what the candidate tests, in words
    # each seed trained as a run of its own (as Train and `train --seed` do), not side by side with other
    # seeds: the same seeds then meet other floating-point rounding, which tests how robust a result is
    alone: bool = False

    def config(self, seed: int = 1, device: str = "auto") -> TrainConfig:
        return TrainConfig.for_step(FINAL_STEP, net=self.net, seed=seed, device=device, **(SEARCH_BASE | self.recipe))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"recipe": {k: asdict(v) if isinstance(v, AugmentConfig) else v
                                          for k, v in self.recipe.items()}}


NARROW = "c8,c8,M,c12,c12,c12,c12,G"
# depthwise-separable after the pool at 21 channels (3,956 parameters), the nearest to holding under 4,000
SEP21 = "c8,c8,M,c21k1,c21g21,c21k1,c21g21,c21k1,c21g21,c21k1,c21g21,c21k1,G"
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("narrow12", NARROW, {}, "step 9 as the search found it (9,032 parameters) with 12 channels instead of "
              "16 after the pool"),
    Candidate("narrow12-bs32", NARROW, {"batch_size": 32, "lr": 0.05},
              "the same, with twice the optimiser steps (batch 32, peak LR halved)"),
    Candidate("narrow12-smooth", NARROW, {"label_smoothing": 0.05}, "the same, with label smoothing 0.05"),
    Candidate("narrow12-aug", NARROW, {"augment": PUBLIC_AUGMENT},
              "the same, with the public recipe's augmentation (adds brightness and contrast)"),
    Candidate("narrow12-ema999", NARROW, {"ema": 0.999, "clean_fraction": 0.35},
              "the same, with a longer clean finish (35 %) and a slower weight average (0.999)"),
    Candidate("narrow12-lr15", NARROW, {"lr": 0.15}, "the same, with a higher peak learning rate (0.15 instead of 0.1)"),
    # a network this small fits its clean training digits hardly better than the test digits: it
    # underfits, so regularisation is worth taking away (lighter augmentation) or trying in the form that
    # changes the effective step size with BatchNorm (weight decay)
    Candidate("narrow12-light", NARROW, {"augment": AugmentConfig(rotation=5.0, translate=0.05)},
              "the same, with lighter augmentation (±5° and ±5 % shift, no zoom instead of ±10°, ±8 % and ±5 %)"),
    Candidate("narrow12-wd", NARROW, {"weight_decay": 1e-4},
              "the same, with weight decay 1e-4 (none in the recipe the search started from)"),
    Candidate("narrow12-wd-alone", NARROW, {"weight_decay": 1e-4},
              "narrow12-wd again, each seed trained alone, as Train and the challenge command do (step 9's "
              "reference runs are these)", alone=True),
    Candidate("final-wd", "c8,c8,M,c16,c16,c16,c16,G", {"weight_decay": 1e-4},
              "the earlier step 9's network (9,032 parameters) with weight decay 1e-4: does its margin widen?"),
    Candidate("wide13", "c8,c8,M,c12,c12,c13,c13,G", {},
              "narrow12 with its last two convolutions one channel wider: the most 6,000 parameters allow"),
    Candidate("wide13-alone", "c8,c8,M,c12,c12,c13,c13,G", {},
              "wide13 again, each seed trained alone instead of side by side: does its result survive other "
              "rounding?", alone=True),
    Candidate("squeeze-1x1", "c8,c16,M,c8k1,c12,c12,c12,G", {},
              "wider before the pool, then a 1x1 transition squeezing 16 channels to 8, three convolutions after"),
    # the same 5,648 weights run over more positions: a network this small still fits its training
    # images no better than the test images, so it is short of capacity, and multiply-adds are free
    # in parameters
    Candidate("pad12-half", "c8,c8,M,c12p1,c12p1,c12,c12,G", {},
              "narrow12 with its first two convolutions after the pool padded: the same weights, 1.5x the "
              "multiply-adds, an 8x8 grid into the GAP"),
    Candidate("pad12", "c8,c8,M,c12p1,c12p1,c12p1,c12p1,G", {},
              "narrow12 with every convolution after the pool padded: the same weights, 1.7x the multiply-adds, "
              "a 12x12 grid into the GAP"),
    Candidate("late-pool", "c8,c8,c12,M,c12,c12,c12,G", {},
              "narrow12 with one convolution moved before the pool (at receptive field 7, on the 24x24 grid): "
              "the same weights, 1.6x the multiply-adds"),
    # depthwise-separable convolutions: a 3x3 window per channel (9 weights each) and a 1x1 that mixes
    # the channels cost about a third of a 3x3 convolution's weights at these widths, so the same budget
    # buys 32-40 channels after the pool instead of 12
    Candidate("separable", "c8,c16,M,c16g16,c32k1,c32g32,c32k1,c32g32,c36k1,c36g36,G", {},
              "depthwise-separable after the pool: four depthwise 3x3 convolutions (receptive field 22, as "
              "narrow12), each channel mix a 1x1, 32-36 channels"),
    Candidate("separable-mix", "c8,c8,M,c16,c16g16,c40k1,c40g40,c40k1,c40g40,G", {},
              "narrow12's first convolution after the pool kept whole, then depthwise-separable to 40 channels"),
    Candidate("narrow10", "c6,c6,M,c10,c10,c10,c10,G", {}, "narrower still: 6 channels before the pool, 10 after"),
    Candidate("narrow10-wd", "c6,c6,M,c10,c10,c10,c10,G", {"weight_decay": 1e-4},
              "narrow10 with weight decay 1e-4: does what made narrow12 hold lift a network under 4,000 parameters?"),
    Candidate("narrow10-wd-alone", "c6,c6,M,c10,c10,c10,c10,G", {"weight_decay": 1e-4},
              "narrow10-wd again, each seed trained alone, as Train and the challenge command do", alone=True),
    # narrow10-wd missed alone on seeds 15 and 18: two ways to push it further, screened alone on those seeds.
    # Behind BatchNorm more decay means a larger effective step; a network this small underfits, so it may
    # also do better on gentler digits
    Candidate("narrow10-wd3e4-alone", "c6,c6,M,c10,c10,c10,c10,G", {"weight_decay": 3e-4},
              "narrow10 with three times the weight decay (3e-4), each seed alone", alone=True),
    Candidate("narrow10-wd-light-alone", "c6,c6,M,c10,c10,c10,c10,G",
              {"weight_decay": 1e-4, "augment": AugmentConfig(rotation=5.0, translate=0.05)},
              "narrow10-wd with lighter augmentation (±5° and ±5 % shift, no zoom), each seed alone", alone=True),
    # pad12-half gave narrow12's weights more positions to work over (3 of 3 held); the same move on the
    # network under 4,000 parameters, with the weight decay that lifted it
    Candidate("narrow10-pad-wd-alone", "c6,c6,M,c10p1,c10p1,c10,c10,G", {"weight_decay": 1e-4},
              "narrow10-wd with its first two convolutions after the pool padded (the same 3,822 weights, 1.5x "
              "the multiply-adds), each seed alone", alone=True),
    # the misses of narrow10-wd alone came in epoch 13 (seed 15: 99.39, 99.42, 99.42 in epochs 13-15): the
    # test accuracy still rises while the learning rate anneals, and the challenge judges the lowest of the
    # last three. Ending the anneal early lets all three test settled weights
    Candidate("narrow10-wd-settle-alone", "c6,c6,M,c10,c10,c10,c10,G", {"weight_decay": 1e-4, "settle_fraction": 0.15},
              "narrow10-wd with the one-cycle anneal ending 15 % of the run early (the last 2.25 epochs at its "
              "lowest rate), each seed alone", alone=True),
    Candidate("narrow10-wd-lr2-alone", "c6,c6,M,c10,c10,c10,c10,G", {"weight_decay": 1e-4, "lr": 0.2},
              "narrow10-wd with twice the peak learning rate (0.2): a larger step for a network that underfits, "
              "each seed alone", alone=True),
    Candidate("narrow10-wd-lr2-settle-alone", "c6,c6,M,c10,c10,c10,c10,G",
              {"weight_decay": 1e-4, "lr": 0.2, "settle_fraction": 0.15},
              "narrow10-wd-lr2 with the anneal ending 15 % of the run early, each seed alone", alone=True),
    Candidate("narrow10-wd-lr3-alone", "c6,c6,M,c10,c10,c10,c10,G", {"weight_decay": 1e-4, "lr": 0.3},
              "narrow10-wd with three times the peak learning rate (0.3), each seed alone", alone=True),
    Candidate("narrow10-wd-lr4-alone", "c6,c6,M,c10,c10,c10,c10,G", {"weight_decay": 1e-4, "lr": 0.4},
              "narrow10-wd with four times the peak learning rate (0.4), each seed alone", alone=True),
    # narrow10-wd-lr3-alone held on 17 of 20: 130 of the 178 weights left under 4,000 spent on the first convolution
    Candidate("wide-stem-lr3-alone", "c8,c6,M,c10,c10,c10,c10,G", {"weight_decay": 1e-4, "lr": 0.3},
              "narrow10-wd-lr3 with 8 channels in its first convolution (3,952 parameters), each seed alone",
              alone=True),
    # narrow10-wd-lr3's clean training accuracy at the end is no higher than its test accuracy: it is short of
    # capacity where its weights are, after the pool. The same budget as five thinner layers instead of four
    Candidate("deep9-lr3-alone", "c6,c6,M,c9,c9,c9,c9,c9,G", {"weight_decay": 1e-4, "lr": 0.3},
              "narrow10-wd-lr3 with five 9-channel convolutions after the pool instead of four of 10 (3,984 "
              "parameters, a 2x2 grid into the GAP), each seed alone", alone=True),
    # three times the peak rate makes the last steps noisier: a slower weight average smooths more of them
    Candidate("narrow10-wd-lr3-ema999-alone", "c6,c6,M,c10,c10,c10,c10,G",
              {"weight_decay": 1e-4, "lr": 0.3, "ema": 0.999},
              "narrow10-wd-lr3 testing a slower weight average (decay 0.999 instead of 0.998), each seed alone",
              alone=True),
    # step 9 held on every seed tried, with the lowest seeds exactly on the line (99.40 %): does the larger step
    # that lifted the network under 4,000 widen its margin too?
    Candidate("narrow12-wd-lr2-alone", NARROW, {"weight_decay": 1e-4, "lr": 0.2},
              "step 9 (narrow12-wd) with twice the peak learning rate (0.2), each seed alone", alone=True),
    # every dense network under 4,000 parameters scattered around the line (narrow10-wd-lr3 17 of 20): 10
    # channels after the pool may be the limit. A depthwise 3x3 (9 weights a channel) and a 1x1 mix cost a
    # fifth of a dense 3x3 at 20 channels, so the same budget carries twice the channels through the late layers
    Candidate("sep20-wd-alone", "c8,c8,M,c20k1,c20g20,c20k1,c20g20,c20k1,c20g20,c20k1,c20g20,c20k1,G",
              {"weight_decay": 1e-4},
              "depthwise-separable after the pool at 20 channels (3,720 parameters: four depthwise 3x3, each "
              "channel mix a 1x1), with weight decay 1e-4, each seed alone", alone=True),
    Candidate("sep20-wd-lr3-alone", "c8,c8,M,c20k1,c20g20,c20k1,c20g20,c20k1,c20g20,c20k1,c20g20,c20k1,G",
              {"weight_decay": 1e-4, "lr": 0.3},
              "sep20-wd with the peak learning rate that lifted narrow10 (0.3), each seed alone", alone=True),
    Candidate("sep-mix-wd-lr3-alone", "c8,c8,M,c10,c20k1,c20g20,c20k1,c20g20,c20k1,c20g20,c16k1,G",
              {"weight_decay": 1e-4, "lr": 0.3},
              "a dense 3x3 to 10 channels after the pool, then depthwise-separable at 20 (3,712 parameters), "
              "peak LR 0.3, each seed alone", alone=True),
    # sep20-wd had the best mean under 4,000 (99.47 %; step 9 at 5,648: 99.49 %) but missed seed 2 by 0.04: what is
    # left of the budget spent on width, either a channel more in all five 1x1s or one depthwise block fewer
    Candidate("sep21-wd-alone", SEP21,
              {"weight_decay": 1e-4},
              "sep20-wd one channel wider (3,956 parameters), each seed alone", alone=True),
    Candidate("sep24x3-wd-alone", "c8,c8,M,c24k1,c24g24,c24k1,c24g24,c24k1,c24g24,c24k1,G",
              {"weight_decay": 1e-4},
              "sep20-wd with three depthwise-separable blocks at 24 channels instead of four at 20 (3,824 "
              "parameters, a 6x6 grid into the GAP), each seed alone", alone=True),
    Candidate("sepstem22-wd-alone", "c8,c8g8,c8k1,M,c22k1,c22g22,c22k1,c22g22,c22k1,c22g22,c22k1,c22g22,c22k1,G",
              {"weight_decay": 1e-4},
              "sep21-wd with its second convolution depthwise-separable too (a depthwise 3x3 and a 1x1 instead "
              "of a dense 3x3), the weights saved spent on 22 channels after the pool (3,776 parameters)",
              alone=True),
    Candidate("sep21-wd-smooth-alone", SEP21,
              {"weight_decay": 1e-4, "label_smoothing": 0.05},
              "sep21-wd with label smoothing 0.05, each seed alone", alone=True),
    # the same 3,956 weights computing more: padded depthwise windows keep the grid at 12x12 for longer
    # (what pad12-half asked of narrow12)
    Candidate("sep21-pad-half-alone", "c8,c8,M,c21k1,c21p1g21,c21k1,c21p1g21,c21k1,c21g21,c21k1,c21g21,c21k1,G",
              {"weight_decay": 1e-4},
              "sep21-wd with its first two depthwise 3x3 padded: the same 3,956 weights, 1.3x the multiply-adds, "
              "an 8x8 grid into the GAP, each seed alone", alone=True),
    Candidate("sep21-pad-alone", "c8,c8,M,c21k1,c21p1g21,c21k1,c21p1g21,c21k1,c21p1g21,c21k1,c21p1g21,c21k1,G",
              {"weight_decay": 1e-4},
              "sep21-wd with every depthwise 3x3 padded: the same 3,956 weights, 1.4x the multiply-adds, the "
              "12x12 grid all the way into the GAP, each seed alone", alone=True),
    # width is what lifted the separable design (sep28 held every seed). sep21's last 1x1 before the GAP mixes
    # channels that the head's 1x1 after the GAP mixes again: its 483 weights go on two more channels instead
    Candidate("sep23-nomix-alone", "c8,c8,M,c23k1,c23g23,c23k1,c23g23,c23k1,c23g23,c23k1,c23g23,G",
              {"weight_decay": 1e-4},
              "sep21-wd without its last 1x1 before the GAP (the head's 1x1 after it mixes the channels), the "
              "weights spent on width: 23 channels, 3,877 parameters, each seed alone", alone=True),
    # the two under-4,000 ideas that came out level or ahead on unpicked seeds, together: sep23-nomix's width
    # and sep21-pad-half's padding (the 12x12 grid kept two layers longer, an 8x8 grid into the GAP)
    Candidate("sep23-nomix-pad-half-alone", "c8,c8,M,c23k1,c23p1g23,c23k1,c23p1g23,c23k1,c23g23,c23k1,c23g23,G",
              {"weight_decay": 1e-4},
              "sep23-nomix with its first two depthwise 3x3 padded, as in sep21-pad-half: the same 3,877 weights, "
              "an 8x8 grid into the GAP, each seed alone", alone=True),
    # step 9 holds on seeds 1-20 but misses about one unseen seed in 15 by a hundredth: a wider margin under
    # 6,000 needs a higher mean. At 3,956 parameters sep21-wd matched narrow12 at 5,648 (99.47 %): the
    # separable design gets more from a weight, so the 6,000 budget spent on it (28 channels, 5,832)
    Candidate("sep28-wd-alone", "c8,c8,M,c28k1,c28g28,c28k1,c28g28,c28k1,c28g28,c28k1,c28g28,c28k1,G",
              {"weight_decay": 1e-4},
              "sep21-wd at 28 channels (5,832 parameters, under step 9's 6,000): does the design that matched step 9's "
              "mean at two thirds of its weights beat it at the same budget? Each seed alone", alone=True),
    Candidate("pad-2pool", "c6p1,c8p1,M,c10p1,c12p1,M,c14p1,c14p1,G", {},
              "padded convolutions and two pools: wider late layers on 7x7 grids"),
    Candidate("public-3.7k", "c4p1,c4p1,c4p1,M,c8p1,c8p1,c8p1,M,c8p1,c8p1,c8p1,G",
              {"batch_size": 32, "lr": 0.1, "augment": PUBLIC_AUGMENT},
              "the smallest public network found (4-4-4, pool, 8-8-8, pool, 8-8-8), with its batch size, peak LR "
              "and augmentation (in this project's one-cycle shape, clean finish and weight average)"),
)


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
        return sum(1 for r in self.runs if r.min_last is not None and r.min_last >= CHALLENGE.min_acc)

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
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the frontier search in {path}: {exc}") from exc
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a format-{FORMAT} frontier file: rerun `python -m core search`")
    return [FrontierEntry.from_dict(raw) for raw in doc["candidates"]]


def merge_entry(path: Path, entry: FrontierEntry) -> list[FrontierEntry]:
    """Add a candidate's runs under the file's lock: its runs with other seeds stay (a seed's new run
    replaces its old one); a candidate whose setting changed starts afresh."""
    with locked(path):
        held = {e.candidate.name: _described_now(e) for e in load_frontier(path)}
        old = held.get(entry.candidate.name)
        if old is not None and old.runs and same_setting(old.runs[0].config, entry.runs[0].config):
            entry = replace(entry, runs=merge_by_seed(old.runs, entry.runs))
        held[entry.candidate.name] = entry
        ordered = sorted(held.values(), key=lambda e: (e.params, e.candidate.name))
        write_json(path, {"format": FORMAT, "challenge": asdict(CHALLENGE),
                          "candidates": [e.as_dict() for e in ordered]})
        return ordered


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


@dataclass(frozen=True)
class FrontierProvenance:
    """Where a frontier file's runs come from, over all of them (they span days, devices and thread counts)."""
    commands: list[str]
    devices: list[str]
    torches: list[str]
    first_date: str
    last_date: str
    limits: list[str]

    @property
    def dates(self) -> str:
        return self.first_date if self.first_date == self.last_date else f"{self.first_date} to {self.last_date}"


def frontier_provenance(entries: list[FrontierEntry]) -> FrontierProvenance:
    runs = [r.provenance for e in entries for r in e.runs]
    return FrontierProvenance(commands=sorted({p.command for p in runs}), devices=sorted({p.device for p in runs}),
                               torches=sorted({p.torch for p in runs}), first_date=min(p.date for p in runs),
                               last_date=max(p.date for p in runs), limits=sorted({p.limits for p in runs}))


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


def _named(e: FrontierEntry) -> str:
    return f"{e.candidate.name} ({e.candidate.net}, {e.params:,} parameters)"


def frontier_facts(entries: list[FrontierEntry]) -> dict[str, str]:
    """`frontier:<name>` phrases the lesson quotes: what was tried, the smallest candidate that held on
    every one of twenty seeds and the one of those with the widest margin, the ones that held on every seed
    trained so far but fewer than twenty, and where the others broke."""
    if not entries:
        return {}
    sizes = sorted({e.params for e in entries})
    span = f"of {sizes[0]:,}" if len(sizes) == 1 else f"from {sizes[0]:,} to {sizes[-1]:,}"
    counts = sorted({len(e.runs) for e in entries})
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    facts = {"frontier:tried": f"{len(entries)} candidate{'s' if len(entries) > 1 else ''} {span} parameters, "
                               f"each trained on {seeds} seeds"}
    best = smallest_holding(entries)
    facts["frontier:smallest"] = (
        f"{_named(best)} held {CHALLENGE.min_acc} % in each of the last {CHALLENGE.last_epochs} epochs on all "
        f"{len(best.runs)} seeds (lowest seed {best.min_last_spread.low:.2f} %)" if best is not None else
        f"no candidate has yet held on all {len(CONFIRM_SEEDS)} seeds")
    refuted = [e for e in entries if e.stage == "confirmed" and e.holds_everywhere and missed_elsewhere(e, entries)]
    if refuted:  # held on every seed one way, missed another way: not a design that holds
        facts["frontier:smallest"] += "; " + "; ".join(
            f"{_named(e)} held on all {len(e.runs)} seeds trained side by side, but "
            + ", ".join(f"{o.candidate.name} missed on {len(o.runs) - o.holding} of {len(o.runs)} (lowest "
                        f"{o.min_last_spread.low:.2f} %)" for o in missed_elsewhere(e, entries))
            for e in sorted(refuted, key=lambda e: e.params))
    widest = widest_margin(entries)
    spread = widest.min_last_spread if widest is not None else None
    facts["frontier:widest"] = (
        f"{_named(widest)}, lowest seed {spread.low:.2f} % and mean {spread.mean:.2f} % over {len(widest.runs)} seeds"
        + (" (the smallest, too)" if widest is best else "") if widest is not None else "none yet")
    # held on every seed so far and never missed in another entry of its design (its seeds alone, say)
    near = closest_below(entries)
    facts["frontier:closest"] = (
        f"{_named(near)} held on {near.holding} of {len(near.runs)} seeds (mean {near.min_last_spread.mean:.2f} %, "
        f"lowest {near.min_last_spread.low:.2f} %)" if near is not None else "none trained on every seed yet")
    still_open = [e for e in entries if e.runs and e.holding == len(e.runs) < len(CONFIRM_SEEDS)
                  and not missed_elsewhere(e, entries)]
    facts["frontier:open"] = "; ".join(
        f"{_named(e)} held on all {len(e.runs)} seeds trained so far (lowest {e.min_last_spread.low:.2f} %), "
        f"{len(CONFIRM_SEEDS) - len(e.runs)} of the {len(CONFIRM_SEEDS)} still to train"
        for e in sorted(still_open, key=lambda e: e.params)) or "none"
    facts["frontier:rounding"] = "; ".join(rounding_effects(entries)) or "not measured yet"
    facts["frontier:same_weights"] = "; ".join(same_weights(entries)) or "not measured yet"
    facts["frontier:recipes"] = "; ".join(recipe_changes(entries)) or "not measured yet"
    broke = [e for e in entries if e.runs and e.holding < len(e.runs)]
    facts["frontier:broke"] = "; ".join(
        f"{_named(e)}: {len(e.runs) - e.holding} of {len(e.runs)} seeds below the line, lowest "
        f"{e.min_last_spread.low:.2f} %" for e in sorted(broke, key=lambda e: e.params)) or "none so far"
    return facts


def same_weights(entries: list[FrontierEntry]) -> list[str]:
    """Designs with the same number of parameters and the same recipe, trained the same way (side by side,
    or each seed alone), that differ in how much they compute with those weights (padding, where the pool
    goes): each against the one of them that computes least, mean min(last N) on the seeds both trained,
    with each one's multiply-adds. Does computing more with the same weights buy accuracy?"""
    phrases = []
    for family in _same_weight_families(entries):
        least, *more = sorted(family, key=lambda e: (e.macs, e.candidate.name))
        for e in more:
            common = _measured_seeds(e) & _measured_seeds(least)
            if not common:
                continue
            means = ", ".join(f"{d.candidate.name} {_mean_on(d, common):.2f} % ({_range_on(d, common)}; "
                              f"{d.macs / 1e6:.2f} M multiply-adds)" for d in (least, e))
            phrases.append(f"{e.params:,} parameters on seed{'s' if len(common) > 1 else ''} "
                           f"{seed_list(sorted(common))}: {means}")
    return phrases


def _same_weight_families(entries: list[FrontierEntry]) -> list[list[FrontierEntry]]:
    """Entries grouped by (parameters, recipe, trained alone or not), smallest first; only groups with
    more than one network."""
    families: list[list[FrontierEntry]] = []
    for e in (e for e in entries if e.runs):
        family = next((f for f in families if f[0].params == e.params and f[0].candidate.recipe == e.candidate.recipe
                       and f[0].candidate.alone == e.candidate.alone), None)
        if family is None:
            families.append([e])
        else:
            family.append(e)
    return sorted((f for f in families if len({e.candidate.net for e in f}) > 1),
                  key=lambda f: (f[0].params, min(e.candidate.name for e in f)))


def recipe_changes(entries: list[FrontierEntry]) -> list[str]:
    """For each recipe change of a network (weight decay, lighter augmentation, a higher learning rate, ...):
    its mean min(last N) minus that of the same network trained the same way (side by side, or each seed
    alone) with the recipe one change short -- or, failing that, the search's base recipe -- on the seeds
    both trained. Which change to the recipe moves a small network, and by more than seeds scatter?"""
    phrases = []
    for e in sorted(entries, key=lambda e: e.candidate.name):
        base = _recipe_base(e, entries)
        if base is None:
            continue
        common = _measured_seeds(e) & _measured_seeds(base)
        if not common:
            continue
        change, before = _mean_on(e, common), _mean_on(base, common)
        held = sum(v >= CHALLENGE.min_acc for v in _on(e, common))
        phrases.append(f"{e.candidate.name} {change:.2f} % vs {base.candidate.name} {before:.2f} % "
                       f"({change - before + 0.0:+.2f}) on seed{'s' if len(common) > 1 else ''} "
                       f"{seed_list(sorted(common))}, held on {held} of {len(common)}")
    return phrases


def _recipe_base(entry: FrontierEntry, entries: list[FrontierEntry]) -> FrontierEntry | None:
    """The entry `entry`'s recipe change is measured against: the same network, trained the same way,
    whose recipe lacks exactly one of its changes; else the one with the search's base recipe."""
    recipe = entry.candidate.recipe
    if not recipe or not entry.runs:
        return None
    same = [o for o in entries if o is not entry and o.runs and o.candidate.net == entry.candidate.net
            and o.candidate.alone == entry.candidate.alone]
    one_short = [o for o in same if len(o.candidate.recipe) == len(recipe) - 1
                 and all(recipe.get(k) == v for k, v in o.candidate.recipe.items())]
    return next(iter(one_short), None) or next((o for o in same if not o.candidate.recipe), None)


def _measured_seeds(entry: FrontierEntry) -> set[int]:
    """The seeds of an entry that ran long enough to have a min(last N)."""
    return {r.seed for r in entry.runs if r.min_last is not None}


def _on(entry: FrontierEntry, seeds: set[int]) -> list[float]:
    return [r.min_last for r in entry.runs if r.seed in seeds and r.min_last is not None]


def _mean_on(entry: FrontierEntry, seeds: set[int]) -> float:
    values = _on(entry, seeds)
    return sum(values) / len(values)


def _range_on(entry: FrontierEntry, seeds: set[int]) -> str:
    values = _on(entry, seeds)
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def rounding_effects(entries: list[FrontierEntry]) -> list[str]:
    """For each design trained both ways: how far min(last N) moved, seed by seed, when the same seeds
    were trained alone instead of side by side (only the floating-point rounding differs)."""
    phrases = []
    for alone in (e for e in entries if e.candidate.alone):
        for grouped in (e for e in entries if not e.candidate.alone and same_design(e, alone)):
            before = {r.seed: r.min_last for r in grouped.runs if r.min_last is not None}
            moves = [r.min_last - before[r.seed] for r in alone.runs if r.min_last is not None and r.seed in before]
            if len(moves) >= 2:
                low, high, mean = (round(v, 2) + 0.0 for v in (min(moves), max(moves), sum(moves) / len(moves)))
                phrases.append(f"{alone.candidate.name} against {grouped.candidate.name}, {len(moves)} seeds: "
                               f"{low:+.2f} to {high:+.2f} points (mean {mean:+.2f})")  # + 0.0: never "-0.00"
    return phrases


def frontier_markdown(entries: list[FrontierEntry]) -> list[str]:
    """The LIFECYCLE.md section: one row per candidate, with the commands that trained them."""
    if not entries:
        return []
    made = frontier_provenance(entries)
    lines = ["", "## How small can it get? (the frontier search)", "",
             " and ".join(f"`{c}`" for c in made.commands) + f" — {', '.join(made.devices)}; torch "
             f"{', '.join(made.torches)}; {made.dates}; {'; '.join(made.limits)}; "
             "seeds of one candidate trained side by side as one grouped network (those of an *-alone* "
             "candidate each on its own, as Train does; taken from the reference runs where a step is that "
             "candidate). A candidate is step 9's recipe as the search started from it (no weight decay) with "
             "the network (and the recipe changes) below; *held on* counts the seeds whose "
             f"last {CHALLENGE.last_epochs} epochs all reached {CHALLENGE.min_acc} %.", "",
             "| candidate | network | params | seeds | lowest seed | mean | held on | what it tests |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for row in frontier_rows(entries):
        lines.append(f"| {row['candidate']} | `{row['net']}` | {row['params']:,} | {row['seeds']} | "
                     f"{pct_text(row['lowest seed'])} | {pct_text(row['mean'])} | {row['held on']} | {row['what it tests']} |")
    computed = same_weights(entries)
    if computed:
        lines += ["", "The same weights computing more (padding, a later pool), each against the design of its "
                  f"parameters, recipe and way of training that computes least, mean min(last {CHALLENGE.last_epochs}) "
                  "on the seeds both trained: " + "; ".join(computed) + "."]
    changed = recipe_changes(entries)
    if changed:
        lines += ["", "The same network with one change to the recipe, mean min(last "
                  f"{CHALLENGE.last_epochs}) against the recipe without that change (trained the same way) on the "
                  "seeds both trained: "
                  + "; ".join(changed) + "."]
    moved = rounding_effects(entries)
    if moved:
        lines += ["", "The same seeds trained alone instead of side by side (only the rounding differs), min(last "
                  f"{CHALLENGE.last_epochs}) alone minus side by side: " + "; ".join(moved) + "."]
    return lines


def pct_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
