"""The ablation in words: what each part of the final recipe is worth, as the phrases a lesson quotes
(`{ablation:...}`) and the LIFECYCLE.md section, made from assets/ablation.json's records."""

from __future__ import annotations

from core.architecture.challenge import CHALLENGE
from core.report.frontier import pct_text
from core.results.ablation import AblationResult, ablation_rows
from core.results.compare import differing, flat
from core.results.summary import points, same_setting
from core.training.config import TrainConfig


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
        lines.append(f"| {row['taken away']} | {row['params']:,} | {row['seeds']} | {pct_text(row['min last 3: mean'])} | "
                     f"{pct_text(row['lowest seed'])} | {pct_text(row['highest seed'])} | {_signed(row.get('vs full recipe'))} | "
                     f"{row.get('beyond the seed spread?', '—')}{' — ' + row['note'] if 'note' in row else ''} |")
    return lines


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
