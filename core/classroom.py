"""The class together: the board of a class's runs, a leaderboard judged on seeds the way the
challenge is, predictions against outcomes, and the teacher's key. Plain Python over the run
store; the Class board page draws what this computes.

A refresh of the board is one query (`RunStore.board`: the runs table's own columns, newest
first, from the class's start). What a run's config says (its network, what differs from its
step, its size) is the same for every seed of a setting, so it is read and computed
once per setting key and kept in `SettingCache`, never once per run or per refresh.
"""

from __future__ import annotations

import hmac
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.architecture.challenge import CHALLENGE
from core.architecture.notation import body_text
from core.architecture.size import size_of as network_size
from core.project import ROOT
from core.results.compare import describe, differing
from core.results.reference import StepReference
from core.results.summary import spread
from core.serving.store import BoardRow, RunStore
from core.training.config import TrainConfig
from core.training.steps import FINAL_STEP, get_step

OUTCOMES = ("better", "same", "worse")  # a prediction about a change, against the step's default settings


# --- predictions ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    """What a student wrote down before training: the min(last 3) they expect, and/or whether the
    run will do better, the same or worse than the step's default settings."""

    min_last: float | None = None
    versus_default: str | None = None  # one of OUTCOMES

    def __post_init__(self) -> None:
        if self.min_last is not None and not (isinstance(self.min_last, (int, float)) and 0 <= self.min_last <= 100
                                              and math.isfinite(self.min_last)):
            raise ValueError("a predicted accuracy is a percentage between 0 and 100")
        if self.versus_default is not None and self.versus_default not in OUTCOMES:
            raise ValueError(f"a prediction about a change is one of {', '.join(OUTCOMES)}")

    @property
    def empty(self) -> bool:
        return self.min_last is None and self.versus_default is None

    def to_text(self) -> str:
        if self.empty:
            return ""
        return json.dumps({k: v for k, v in (("min_last", self.min_last), ("versus_default", self.versus_default))
                           if v is not None}, sort_keys=True)

    @classmethod
    def from_text(cls, text: str) -> "Prediction":
        """The stored form back; text that is not a prediction reads as none (a store is never trusted)."""
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            return cls(raw.get("min_last"), raw.get("versus_default"))
        except (ValueError, TypeError, AttributeError):
            return cls()

    def describe(self) -> str:
        parts = []
        if self.versus_default is not None:
            parts.append(f"{self.versus_default} than the step's default")
        if self.min_last is not None:
            parts.append(f"min(last {CHALLENGE.last_epochs}) {self.min_last:.2f} %")
        return ", ".join(parts) or "no prediction"


def outcome(min_last: float, default: StepReference | None) -> str | None:
    """better / same / worse than the step's default settings, judged on the default's seeds:
    'same' while the result lies within the range its reference seeds reached."""
    span = default.min_last_spread if default is not None else None
    if span is None:
        return None
    return "better" if min_last > span.high else "worse" if min_last < span.low else "same"


# --- what the board shows of a setting -------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """What every seed of one configuration shares."""

    config: TrainConfig
    what: str  # "step 5" or "design c8,c8,M,..."
    differs: str  # from the step's own settings, in words ('' = the step as it is)
    params: int  # of the built network: known before the run starts (a queued run shows it too)
    macs: int
    full: bool  # all images, every epoch: a run that can be judged against the challenge

    @property
    def is_default(self) -> bool:
        """The step's own network, toggles and recipe."""
        return not self.differs and not self.config.is_design


def size_of(config: TrainConfig) -> tuple[int, int]:
    """Parameters and multiply-adds per image of a config's network, from its shapes (nothing is built)."""
    size = network_size(config.layers())
    return size.params, size.macs


class SettingCache:
    """Setting key -> Setting, filled on demand from the store (one query per batch of new keys).
    One per store file and server: a setting never changes once recorded."""

    def __init__(self) -> None:
        self._settings: dict[str, Setting] = {}
        self._lock = threading.Lock()

    def get(self, store: RunStore, keys: list[str]) -> dict[str, Setting]:
        with self._lock:
            missing = [k for k in dict.fromkeys(keys) if k not in self._settings]
        found = {key: setting_of(config) for key, config in store.configs(missing).items()}
        with self._lock:
            self._settings.update(found)
            return {k: self._settings[k] for k in keys if k in self._settings}


def setting_of(config: TrainConfig) -> Setting:
    own = TrainConfig.for_step(config.step, seed=config.seed, device=config.device, max_batches=config.max_batches,
                               train_fraction=config.train_fraction, test_limit=config.test_limit)
    names = [n for n in differing([config, own]) if n not in ("size", "seed", "net")]
    what = f"design {body_text(config.net)}" if config.is_design else f"step {config.step}"
    return Setting(config, what, describe(config, names) if names else "", *size_of(config), config.full_data)


# --- the board ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BoardEntry:
    row: BoardRow
    setting: Setting

    @property
    def progress(self) -> float:
        return min(1.0, self.row.epochs_done / max(1, self.setting.config.recipe.epochs))

    @property
    def verdict(self) -> str:
        """Met / not met / '' while the run has not finished all its epochs."""
        config, row = self.setting.config, self.row
        if row.status != "completed" or row.epochs_done < config.recipe.epochs:
            return ""
        met = self.setting.full and CHALLENGE.meets(row.params, row.min_last, config.recipe.epochs)
        return "met" if met else "not met" if self.setting.full else "quick run: not judged"

    def as_row(self) -> dict[str, Any]:
        """One flat row for the board's table (every text a student typed stays a plain value)."""
        prediction = Prediction.from_text(self.row.tags.prediction)
        return {"run": self.row.id, "name": self.row.tags.student, "what": self.setting.what,
                "differs": self.setting.differs, "seed": self.row.seed, "params": self.row.params,
                "multiply-adds": self.setting.macs, "status": self.row.status, "progress": self.progress,
                f"min(last {CHALLENGE.last_epochs})": self.row.min_last, "verdict": self.verdict,
                "predicted": "" if prediction.empty else prediction.describe()}


def board(store: RunStore, since: float, settings: SettingCache, limit: int | None = None,
          predicted_only: bool = False) -> list[BoardEntry]:
    """The class's runs, newest first, each with its setting."""
    rows = store.board(since, limit, predicted_only)
    known = settings.get(store, [r.config_key for r in rows])
    return [BoardEntry(r, known[r.config_key]) for r in rows if r.config_key in known]


# --- the leaderboard ------------------------------------------------------------------------------------

@dataclass
class Standing:
    """One design (every seed of one full-budget setting) on the leaderboard."""

    setting: Setting
    seeds: dict[int, float] = field(default_factory=dict)  # seed -> min(last 3) of its best completed run
    params: int = 0
    mark: str = ""  # '' for the class's designs; a reference mark says what it is

    @property
    def worst(self) -> float:
        return min(self.seeds.values())

    @property
    def best(self) -> float:
        return max(self.seeds.values())

    @property
    def holds(self) -> bool:
        """Every seed run so far holds the challenge's accuracy (whatever their number)."""
        return bool(self.seeds) and CHALLENGE.meets(self.params, self.worst, self.setting.config.recipe.epochs)

    @property
    def counts(self) -> bool:
        return self.holds and len(self.seeds) >= CHALLENGE.min_seeds

    @property
    def seeds_missing(self) -> list[int]:
        """The next seeds to train so that the design can count."""
        have = set(self.seeds)
        missing, seed = [], 1
        while len(have) + len(missing) < CHALLENGE.min_seeds:
            if seed not in have:
                missing.append(seed)
            seed += 1
        return missing


def leaderboard(store: RunStore, since: float, settings: SettingCache) -> tuple[list[Standing], list[Standing]]:
    """(designs that count, ranked by parameters then multiply-adds; designs that hold on every
    seed so far but have fewer than CHALLENGE.min_seeds). Only completed full-data runs of at most the
    challenge's epochs are judged; a seed trained twice counts with its better run."""
    results = store.seed_results(since)
    known = settings.get(store, [r.config_key for r in results])
    standings: dict[str, Standing] = {}
    for result in results:
        setting = known.get(result.config_key)
        if setting is None or not setting.full or setting.config.recipe.epochs > CHALLENGE.max_epochs:
            continue
        standing = standings.setdefault(result.config_key, Standing(setting, params=result.params))
        standing.seeds[result.seed] = result.min_last
    ranked = sorted((s for s in standings.values() if s.holds), key=lambda s: (s.params, s.setting.macs, -s.worst))
    return [s for s in ranked if s.counts], [s for s in ranked if not s.counts]


def reference_marks(references: dict[int, StepReference]) -> list[Standing]:
    """The marks to beat: the final step's reference network, on all its reference seeds."""
    final = references.get(FINAL_STEP)
    if final is None:
        return []
    mark = Standing(setting_of(final.first.config), params=final.params,
                    mark=f"step {final.step} reference ({len(final.runs)} seeds, {final.first.provenance.device})")
    for run in final.runs:
        if run.min_last is not None and not run.provenance.reduced:
            mark.seeds[run.seed] = run.min_last
    return [mark] if mark.seeds else []


def writeup_mark() -> dict[str, Any]:
    """The write-up's own final network, as the write-up reports it (one run, best test accuracy;
    it gives no per-epoch figures, so it cannot be judged on min(last 3) here)."""
    w = get_step(FINAL_STEP).writeup
    return {"params": w.params, "best_test": w.best_test_acc, "note": w.note}


# --- the frontier ----------------------------------------------------------------------------------

def class_frontier_points(standings: list[Standing], references: dict[int, StepReference]) -> list[dict[str, Any]]:
    """One point per design (its seeds' mean min(last 3), with the range) and one per lifecycle
    step's reference runs: what the frontier chart draws."""
    points = []
    for s in standings:
        figures = spread(list(s.seeds.values()))
        points.append({"kind": s.mark or "class design", "label": s.setting.what + (f" ({s.setting.differs})"
                                                                                  if s.setting.differs else ""),
                       "net": s.setting.config.net, "step": s.setting.config.step, "params": s.params,
                       "min_last": figures.mean, "low": figures.low, "high": figures.high, "seeds": figures.n})
    for number, ref in sorted(references.items()):
        figures = ref.min_last_spread
        if figures is None:
            continue
        # a reduced reference run (step 1's, on a CPU) is drawn, but says it is not comparable
        kind = "lifecycle step (reduced run)" if ref.reduced else "lifecycle step"
        points.append({"kind": kind, "label": f"step {number}: {ref.title}", "net": ref.first.config.net,
                       "step": number, "params": ref.params, "min_last": figures.mean, "low": figures.low,
                       "high": figures.high, "seeds": figures.n})
    return points


# --- predictions against outcomes ------------------------------------------------------------------

def prediction_table(entries: list[BoardEntry], references: dict[int, StepReference]) -> list[dict[str, Any]]:
    """Per step and change: how many predicted better / same / worse, how many turned out so, and
    how far the predicted min(last 3) figures were from what happened."""
    groups: dict[tuple[int, str], dict[str, Any]] = {}
    for entry in entries:
        row, setting = entry.row, entry.setting
        prediction = Prediction.from_text(row.tags.prediction)
        if prediction.empty or row.status != "completed" or row.min_last is None:
            continue
        key = (row.step, setting.differs if not setting.config.is_design else f"design {body_text(setting.config.net)}")
        group = groups.setdefault(key, {"step": row.step, "change": key[1] or "the step's own settings",
                                        **{f"predicted {o}": 0 for o in OUTCOMES},
                                        **{f"was {o}": 0 for o in OUTCOMES}, "errors": []})
        if prediction.versus_default is not None:
            group[f"predicted {prediction.versus_default}"] += 1
            result = outcome(row.min_last, references.get(row.step))
            if result is not None:
                group[f"was {result}"] += 1
        if prediction.min_last is not None:
            group["errors"].append(row.min_last - prediction.min_last)
    table = []
    for group in groups.values():
        errors = group.pop("errors")
        group["runs with a figure"] = len(errors)
        group["mean (result - prediction), points"] = round(sum(errors) / len(errors), 2) if errors else None
        table.append(group)
    return sorted(table, key=lambda g: (g["step"], g["change"]))


# --- the teacher's key --------------------------------------------------------------------------------

def key_matches(expected: str | None, given: str) -> bool:
    """Constant-time comparison of the key typed with the server's; False when none is set."""
    if not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


class KeyGate:
    """Every try of the teacher's key, right or wrong, takes the next free slot of `delay` seconds for
    the whole server, in the order the tries came, and is compared when its slot comes: guessing runs at
    one try per `delay` however many tabs a student opens (a right key cannot be told apart sooner). A
    try whose slot is more than `most_wait` seconds away is refused at once, so a flood of guesses
    neither piles up waiting threads nor keeps the teacher waiting for long."""

    def __init__(self, delay: float = 1.0, most_wait: float = 10.0, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.delay, self.most_wait = delay, most_wait
        self._sleep, self._clock = sleep or time.sleep, clock or time.monotonic
        self._lock, self._next_slot, self.wrong, self.refused = threading.Lock(), 0.0, 0, 0

    def check(self, expected: str | None, given: str) -> bool | None:
        """True or False once compared; None when refused unheard (too many tries waiting)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            if slot - now > self.most_wait:
                self.refused += 1
                return None
            self._next_slot = slot + self.delay
        self._sleep(slot - now)
        right = key_matches(expected, given)
        if not right:
            with self._lock:
                self.wrong += 1
        return right


EXERCISES_FILE = ROOT / "assets" / "exercises.json"


@dataclass(frozen=True)
class ClassExercise:
    step: int
    locked: tuple[str, ...]
    settings: dict[str, str]
    ask: str


def class_exercises(path: Path = EXERCISES_FILE) -> list[ClassExercise]:
    """The ready set of exercises, one per step (assets/exercises.json): every main control of the step page
    fixed except the step's own, and the quick budget."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    main, settings = raw["main_controls"], raw["settings"]
    return [ClassExercise(e["step"], tuple(k for k in main if k not in e["open"]), dict(settings), e["ask"])
            for e in raw["exercises"]]


def add_class_exercises(store: RunStore, path: Path = EXERCISES_FILE) -> list[tuple[ClassExercise, int]]:
    """Each exercise added to the store: (exercise, its id), for the links `/step_N?exercise=ID`."""
    return [(e, store.add_exercise(f"step_{e.step}", e.settings, list(e.locked), [])) for e in class_exercises(path)]


def may_change_run(run_session: str, my_session: str, teacher: bool, key_set: bool) -> bool:
    """Cancel or delete a run: the teacher may touch any; a student only their own session's runs;
    with no key set (one user on a laptop) everything is allowed."""
    return not key_set or teacher or (bool(my_session) and run_session == my_session)
