"""The final step and a roomier design on seeds their reference runs never used, in words: the
phrases a lesson quotes (`{unseen:...}`)."""

from __future__ import annotations

from pathlib import Path

from core.results.reference import DESIGN_UNSEEN_FILE, UNSEEN_FILE, SeedLows, design_unseen_lows, step_unseen_lows
from core.results.summary import seed_list


def summary(lows: SeedLows) -> str:
    """'42 of 45 held (seeds 47-91; lowest 99.39 % on seed 68, mean 99.49 %); below the line: seed 68
    (99.39 %), …'."""
    missed = {s: low for s, low in sorted(lows.lows.items()) if not lows.holds(low)}
    seed, low = min(lows.lows.items(), key=lambda item: (item[1], item[0]))
    text = (f"{len(lows.lows) - len(missed)} of {len(lows.lows)} held (seeds {seed_list(sorted(lows.lows))}; "
            f"lowest {low:.2f} % on seed {seed}, mean {sum(lows.lows.values()) / len(lows.lows):.2f} %)")
    if missed:
        text += "; below the line: " + ", ".join(f"seed {s} ({low:.2f} %)" for s, low in missed.items())
    return text


def unseen_facts(path: str | Path = UNSEEN_FILE) -> dict[str, str]:
    """`{unseen:seeds}` for a lesson: how the final step did on the seeds kept in `path` (held, lowest,
    mean, and every seed that missed); {} while there are none, or the file cannot be read."""
    step = step_unseen_lows(path)
    return {"unseen:seeds": summary(step)} if step is not None else {}


def design_unseen_facts(path: str | Path = DESIGN_UNSEEN_FILE,
                        step_path: str | Path = UNSEEN_FILE) -> dict[str, str]:
    """`{unseen:design}` for a lesson: the design of `path` on unseen seeds (held, lowest, mean, every miss)
    beside the final step on the same seeds, so the two are compared seed for seed; {} while there are
    none, or a file cannot be read."""
    design, step = design_unseen_lows(path), step_unseen_lows(step_path)
    if design is None or step is None:
        return {}
    text = f"{design.name} ({design.params:,} parameters): {summary(design)}"
    same = step.on(set(design.lows))
    if same.lows:  # the final step's figures only on the design's seeds, or the two are not compared
        which = "the same seeds" if same.lows.keys() == design.lows.keys() else "those seeds it was trained on"
        text += f". {step.name.capitalize()} on {which}: {summary(same)}"
    return {"unseen:design": text}
