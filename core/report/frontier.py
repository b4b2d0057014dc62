"""The frontier search in words: the phrases a lesson quotes (`{frontier:...}`) and the LIFECYCLE.md
section, made from the records in assets/frontier.json (core.results.frontier reads them)."""

from __future__ import annotations

from dataclasses import dataclass

from core.architecture.challenge import CHALLENGE
from core.results.frontier import (
    CONFIRM_SEEDS,
    FrontierEntry,
    closest_below,
    frontier_rows,
    missed_elsewhere,
    same_design,
    smallest_holding,
    widest_margin,
)
from core.results.summary import seed_list


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
        held = sum(CHALLENGE.holds(v) for v in _on(e, common))
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
