"""Comparing runs: what differs between their configs, said in words; runs of one config with
different seeds grouped into a mean with a min-max band; and whether two configs' results are
further apart than their seeds' spread. Plain Python: the app draws what this computes."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

from core.architecture.challenge import CHALLENGE
from core.architecture.notation import body_text
from core.results.summary import JudgedRun, SeedRuns, setting_key
from core.training.config import TrainConfig

IGNORED = ("device", "log_every", "step")  # the step is where a run belongs; its network is `net`


# every config field a label may mention, in the order labels mention them
LABELS: dict[str, Callable[[Any], str]] = {
    "net": lambda v: f"net {v or '(head only)'}",
    "toggles.batchnorm": lambda v: f"BN {'on' if v else 'off'}",
    "toggles.dropout": lambda v: f"dropout {v:.2f}" if v else "no dropout",
    "toggles.gap": lambda v: "GAP" if v else "no GAP",
    "recipe.augment": lambda v: "no augmentation" if v == "none" else f"augment {v}",
    "recipe.clean_fraction": lambda v: f"clean last {v:.0%}" if v else "no clean finish",
    "recipe.ema": lambda v: f"EMA {v:g}" if v else "no EMA",
    "recipe.schedule": lambda v: f"{v} LR",
    "recipe.settle_fraction": lambda v: f"settled last {v:.0%}" if v else "no settled finish",
    "recipe.optimizer": str,
    "recipe.lr": lambda v: f"lr {v:g}",
    "recipe.momentum": lambda v: f"momentum {v:g}",
    "recipe.weight_decay": lambda v: f"weight decay {v:g}",
    "recipe.batch_size": lambda v: f"batch {v}",
    "recipe.epochs": lambda v: f"{v} epochs",
    "size": str,
    "seed": lambda v: f"seed {v}",
}
SIZE_FIELDS = ("max_batches", "train_fraction", "test_limit")


def flat(config: TrainConfig) -> dict[str, Any]:
    """The config as {dotted name: value}; augmentation is one field (its description)."""
    d = config.as_dict()
    out = {f"toggles.{k}": v for k, v in d["toggles"].items()}
    out |= {f"recipe.{k}": v for k, v in d["recipe"].items() if k != "augment"}
    out["recipe.augment"] = config.recipe.augment.describe()
    out["size"] = run_size(config)
    out |= {k: v for k, v in d.items() if k not in ("toggles", "recipe", "net") + IGNORED + SIZE_FIELDS}
    out["net"] = body_text(config.net)  # the head is the GAP toggle, labelled as such
    return out


def run_size(config: TrainConfig) -> str:
    """How much of MNIST a run uses per epoch, in a few words ('all images' for a full run)."""
    if config.full_data:
        return "all images"
    parts = []
    if config.max_batches is not None:
        parts.append(f"{config.max_batches * config.recipe.batch_size:,} images/epoch")
    if config.train_fraction < 1.0:
        parts.append(f"{config.train_fraction:.0%} of the training set")
    if config.test_limit is not None:
        parts.append(f"tested on {config.test_limit:,}")
    return ", ".join(parts)


def differing(configs: list[TrainConfig]) -> list[str]:
    """Names (in LABELS order) of the fields whose values are not the same in all configs."""
    flats = [flat(c) for c in configs]
    return [k for k in LABELS if len({repr(f.get(k)) for f in flats}) > 1]


def describe(config: TrainConfig, names: list[str]) -> str:
    values = flat(config)
    return ", ".join(LABELS[k](values[k]) for k in names) or "same settings"


@dataclass
class Run(JudgedRun):
    """A run to draw: from the run store, the reference file, or the live session."""

    key: str  # unique among the runs drawn: "run 12", "reference seed 2", "live"
    config: TrainConfig
    epochs: list[dict[str, float]]
    kind: str = "stored"  # stored | reference | live



@dataclass
class Group(SeedRuns):
    """Runs of one configuration (they differ only in the seed)."""

    label: str
    runs: list[Run] = field(default_factory=list)

    @property
    def config(self) -> TrainConfig:
        return self.runs[0].config

    @property
    def live(self) -> bool:
        return any(r.kind == "live" for r in self.runs)

    def band(self) -> list[dict[str, Any]]:
        """Per epoch and metric: mean, min, max over the runs that reached that epoch."""
        rows = []
        longest = max(len(r.epochs) for r in self.runs)
        for i in range(longest):
            reached = [r.epochs[i] for r in self.runs if len(r.epochs) > i]
            for metric in ("train_acc", "test_acc", "train_loss", "test_loss"):
                values = [e[metric] for e in reached]
                rows.append({"group": self.label, "epoch": i + 1, "metric": metric, "mean": statistics.fmean(values),
                             "low": min(values), "high": max(values), "n": len(values)})
        return rows


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs with the same config apart from the seed form one group, labelled by what differs
    between the groups (the seed too, for single-seed groups whose seeds differ)."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        key = "live" if r.kind == "live" else setting_key(r.config)
        groups.setdefault(key, []).append(r)
    firsts = [members[0].config for members in groups.values()]
    names = [k for k in differing(firsts) if k != "seed"]
    result = []
    for members in groups.values():
        members.sort(key=lambda r: r.config.seed)
        label = describe(members[0].config, names) if names else "this configuration"
        seeds = [r.config.seed for r in members]
        if members[0].kind == "reference":
            label = f"reference: {label}" if names else "reference run"
        elif members[0].kind == "live":
            label = f"live: {label}" if names else "live run"
        label += f" ({len(seeds)} seeds)" if len(seeds) > 1 else f", seed {seeds[0]}"
        result.append(Group(label, members))
    _unique_labels(result)
    return result


def _unique_labels(groups: list[Group]) -> None:
    seen: dict[str, int] = {}
    for g in groups:
        seen[g.label] = seen.get(g.label, 0) + 1
        if seen[g.label] > 1:
            g.label += f" #{seen[g.label]}"


def differing_table(groups: list[Group]) -> list[dict[str, Any]]:
    """One row per group: only the config fields that differ, plus best test and min(last 3)."""
    names = differing([g.config for g in groups])
    rows = []
    for g in groups:
        values = flat(g.config)
        row: dict[str, Any] = {"run": g.label}
        row |= {k.split(".")[-1]: ", ".join(map(str, g.seeds)) if k == "seed" else values[k] for k in names}
        if "seed" not in names:
            row["seeds"] = ", ".join(map(str, g.seeds))
        best, span = g.best_spread, g.min_last_spread
        row["best test %"] = round(best.mean, 2) if best else None
        row[f"min last {CHALLENGE.last_epochs} %"] = span.range_text() if span else None
        rows.append(row)
    return rows


def noise_verdicts(groups: list[Group]) -> list[str]:
    """For every pair of groups with enough seeds each (CHALLENGE.min_seeds): are their min(last N)
    ranges apart?"""
    judged = [(g, g.min_last_spread) for g in groups if g.judgeable]
    last = CHALLENGE.last_epochs
    sentences = []
    for i, (a, ra) in enumerate(judged):
        for b, rb in judged[i + 1:]:
            text = (f"**{a.label}** (min of last {last}: {ra.low:.2f}-{ra.high:.2f} %) vs **{b.label}** "
                    f"({rb.low:.2f}-{rb.high:.2f} %): ")
            sentences.append(text + ("the ranges overlap, so the difference is within seed noise." if ra.overlaps(rb)
                                     else "the ranges do not overlap: the difference is larger than the seed noise."))
    return sentences
