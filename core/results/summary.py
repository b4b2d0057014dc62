"""What runs are judged on, defined once: a run's best and min(last N) test accuracy and its
verdict; the spread of a figure across seeds and whether two spreads overlap; the key of a
setting (everything but the seed); and how many seeds a setting needs before it is judged.
Every kind of run (stored, reference, drawn, ablated) takes these through the two mixins below."""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

from core.architecture.challenge import CHALLENGE, min_last

if TYPE_CHECKING:
    from core.training.config import TrainConfig

# not part of a setting: runs that differ only in these stand side by side as seeds of one setting
NOT_SETTING = ("seed", "device", "log_every")


class JudgedRun:
    """A run's figures, from its `epochs` (dicts with a "test_acc") and its `config`."""

    epochs: Sequence[dict[str, float]]
    config: TrainConfig

    @property
    def test_accs(self) -> list[float]:
        return [e["test_acc"] for e in self.epochs]

    @property
    def best_test(self) -> float | None:
        return max(self.test_accs, default=None)

    @property
    def min_last(self) -> float | None:
        """The lowest test accuracy of the last CHALLENGE.last_epochs epochs (None before that many)."""
        return min_last(self.test_accs)

    def verdict(self, params: int) -> tuple[bool, str]:
        return CHALLENGE.verdict(params, self.test_accs, self.config.recipe.epochs)


@dataclass(frozen=True)
class Spread:
    """min / mean / max of one figure across seeds."""

    low: float
    mean: float
    high: float
    n: int

    def overlaps(self, other: Spread) -> bool:
        return self.low <= other.high and other.low <= self.high

    def range_text(self) -> str:
        return f"{self.low:.2f}" if self.low == self.high else f"{self.low:.2f}-{self.high:.2f}"

    def __str__(self) -> str:
        return f"{self.mean:.2f} % ({self.low:.2f}-{self.high:.2f}, {self.n} seeds)" if self.n > 1 else f"{self.mean:.2f} %"


def spread(values: Sequence[float | None]) -> Spread | None:
    """The spread of the values that exist (None: a run without that figure)."""
    present = [v for v in values if v is not None]
    return Spread(min(present), statistics.fmean(present), max(present), len(present)) if present else None


def points(delta: float) -> str:
    """A signed change in percentage points, e.g. '+0.05'; a rounded -0.0 prints as '+0.00', never '-0.00'."""
    return f"{round(delta, 2) + 0.0:+.2f}"


class SeedRuns:
    """The same setting over several seeds, from `runs` (JudgedRun)."""

    runs: Sequence[JudgedRun]

    @property
    def seeds(self) -> list[int]:
        return [r.config.seed for r in self.runs]

    @property
    def min_last_spread(self) -> Spread | None:
        return spread([r.min_last for r in self.runs])

    @property
    def best_spread(self) -> Spread | None:
        return spread([r.best_test for r in self.runs])

    @property
    def judgeable(self) -> bool:
        """Enough seeds with a min(last N) to be judged (CHALLENGE.min_seeds)."""
        spread_ = self.min_last_spread
        return spread_ is not None and spread_.n >= CHALLENGE.min_seeds


ADDED_LATER = ("label_smoothing", "settle_fraction")  # recipe fields that came after runs were stored


def _setting_fields(config: TrainConfig) -> dict[str, Any]:
    d = config.as_dict()
    for name in NOT_SETTING:
        d.pop(name)
    for name in ADDED_LATER:  # left out while off, so the keys of runs recorded before them still match
        if not d["recipe"].get(name):
            d["recipe"].pop(name, None)
    return d


def setting_key(config: TrainConfig) -> str:
    """A short key that two configs share exactly when they differ only in NOT_SETTING."""
    try:
        return _cached_setting_key(config)
    except TypeError:  # a config that holds a list or a dict somewhere cannot be a cache key
        return _setting_key(config)


def _setting_key(config: TrainConfig) -> str:
    return hashlib.sha1(json.dumps(_setting_fields(config), sort_keys=True).encode()).hexdigest()[:16]


# the frontier's facts compare every pair of its designs (thousands of keys; the step page builds them once per
# change of the file, the board and the search more often): each key (every field as a dict, serialised and
# hashed) is worked out once per distinct config, which is frozen
_cached_setting_key = lru_cache(maxsize=8192)(_setting_key)


def same_setting(a: TrainConfig, b: TrainConfig) -> bool:
    return setting_key(a) == setting_key(b)


def seed_list(seeds: list[int]) -> str:
    """Sorted seeds, three or more in a row as a range: 1, 2, 3, 4, 11, 15, 16 -> '1-4, 11, 15, 16'."""
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)
