"""Reference runs: train the nine steps on real MNIST, record every epoch with its provenance in
assets/reference_runs.json, and generate LIFECYCLE.md from that file (never by hand)."""

from __future__ import annotations

import fcntl
import json
import platform
import shlex
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from core.data import load_mnist
from core.lifecycle import describe_step
from core.model import device_label, pick_device
from core.steps import STEPS, get_step
from core.train import CHALLENGE, TrainConfig, challenge_verdict, run, seconds_per_image, eval_images_for_budget


def parse_steps(text: str) -> list[int]:
    numbers: list[int] = []
    for part in text.replace(" ", "").split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            numbers.extend(range(int(lo), int(hi) + 1))
        elif part:
            numbers.append(int(part))
    for n in numbers:
        get_step(n)  # validates
    return sorted(set(numbers))


def parse_seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds must be distinct non-negative integers, got {text!r}")
    return seeds


def run_label(config: TrainConfig, n_train: int, n_test: int, budget: float | None) -> str:
    if config.max_batches is None and config.test_limit is None:
        return f"full: {config.epochs} epochs on all {n_train:,} training images"
    images = min(n_train, (config.max_batches or n_train) * config.batch_size)
    tested = f", tested on the first {config.test_limit:,} of {n_test:,} test images" if config.test_limit else ""
    return (f"reduced to fit {budget:.0f} s: {config.epochs} epochs of {images:,} training images{tested}")


def measured_summary(epochs: list[dict[str, Any]]) -> dict[str, Any]:
    tests = [e["test_acc"] for e in epochs]
    return {"best_train_acc": max(e["train_acc"] for e in epochs), "best_test_acc": max(tests),
            "min_last3_test_acc": min(tests[-3:]), "last_test_acc": tests[-1],
            "train_seconds": round(sum(e["seconds"] for e in epochs), 1)}


def fit_budget(config: TrainConfig, budget: float, n_train: int, n_test: int) -> TrainConfig:
    """Keep all epochs but use fewer batches per epoch (and, if evaluation alone would take a
    third of the budget, fewer test images) so the run takes about `budget` seconds."""
    per_image = seconds_per_image(config)
    test = eval_images_for_budget(config.epochs, per_image[1], budget, n_test)
    left = budget - config.epochs * test * per_image[1]
    batches = int(left / (config.epochs * config.batch_size * per_image[0]))
    full = -(-n_train // config.batch_size)
    return replace(config, max_batches=None if batches >= full else max(1, batches),
                   test_limit=None if test >= n_test else test)


def run_step(number: int, data, seed: int, device: str, budget: float | None, command: str,
             log: Callable[[str], None]) -> dict[str, Any]:
    config = TrainConfig.for_step(number, seed=seed, device=device)
    if budget:
        config = fit_budget(config, budget, len(data.train_images), len(data.test_images))
    max_batches = config.max_batches
    label = run_label(config, len(data.train_images), len(data.test_images), budget)
    log(f"step {number}: {get_step(number).title} -- {label}")
    started = time.perf_counter()
    done = run(config, data)
    wall = time.perf_counter() - started
    epochs = [{k: round(getattr(e, k), 5) if isinstance(getattr(e, k), float) else getattr(e, k)
               for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")}
              for e in done.history]
    images = len(data.train_images) if max_batches is None else min(len(data.train_images),
                                                                     max_batches * config.batch_size)
    doc = describe_step(number)
    passed, verdict = challenge_verdict(done.params, [e["test_acc"] for e in epochs], config.epochs)
    log(f"  {verdict} ({wall:.0f} s)")
    return {
        "step": number, "title": get_step(number).title, "params": done.params, "rf": doc["rf"],
        "config": config.as_dict(), "epochs": epochs, "stopped_reason": done.reason,
        "summary": measured_summary(epochs) if epochs else {}, "challenge": {"passed": passed, "verdict": verdict},
        "provenance": {
            "command": command, "seed": seed, "device": done.device, "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
            "wall_seconds": round(wall, 1), "reduced": max_batches is not None,
            "train_images_per_epoch": images, "test_images": config.test_limit or len(data.test_images),
            "label": label,
        },
    }


def reproduce(steps: Iterable[int], data_dir: str | None, download: bool, seed: int, device: str,
              budget: float | None, output: str, markdown: str, merge: bool, argv: list[str],
              log: Callable[[str], None], seeds: Iterable[int] | None = None) -> dict[str, Any]:
    dev = pick_device(device)
    data = load_mnist(data_dir, download=download, device=dev)
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv[1:])
    path = Path(output)
    runs: dict[int, dict[str, Any]] = {}
    seeds = list(seeds or [seed])
    log(f"reference runs on {device_label(dev)}, seed(s) {', '.join(map(str, seeds))}")
    for i, number in enumerate(steps):
        per_seed = [run_step(number, data, s, str(dev), budget, command, log) for s in seeds]
        # after every step: a stop in mid-way keeps what was done; without --merge the first
        # step starts the file afresh and later ones join it
        runs = save_step(path, Path(markdown), combine_seeds(per_seed), merge=merge or i > 0)
    log(f"wrote {path} and {markdown}")
    return {"runs": [runs[k] for k in sorted(runs)]}


def combine_seeds(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """One entry per step: the first seed's run (charts, provenance) plus, when several seeds
    ran, every seed's history and the spread of min(last 3) across them."""
    entry = dict(per_seed[0])
    if len(per_seed) > 1:
        mins = [r["summary"]["min_last3_test_acc"] for r in per_seed]
        entry["seeds"] = [{"seed": r["provenance"]["seed"], "test_acc": [e["test_acc"] for e in r["epochs"]],
                           "train_acc": [e["train_acc"] for e in r["epochs"]], "summary": r["summary"],
                           "passed": r["challenge"]["passed"], "wall_seconds": r["provenance"]["wall_seconds"]}
                          for r in per_seed]
        entry["across_seeds"] = {"min_last3_min": min(mins), "min_last3_mean": round(sum(mins) / len(mins), 3),
                                 "all_passed": all(r["challenge"]["passed"] for r in per_seed)}
    return entry


def save_step(path: Path, markdown: Path, entry: dict[str, Any], merge: bool) -> dict[int, dict[str, Any]]:
    """Write one finished step into the reference file, regenerate the markdown from it, and
    return everything the file now holds. With `merge`, the file is re-read under an exclusive
    lock first, so two reproduce processes (say, one per CPU core) can fill the same file
    without losing each other's steps; without it, the file is started afresh."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = load_reference(path) if merge else {}
        runs[entry["step"]] = entry
        write_reference(path, runs)
        write_markdown(markdown, runs)
        return runs


def write_reference(path: Path, runs: dict[int, dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"challenge": CHALLENGE, "runs": [runs[k] for k in sorted(runs)]}, indent=1))
    tmp.replace(path)


def load_reference(path: str | Path = "assets/reference_runs.json") -> dict[int, dict[str, Any]]:
    """Reference runs by step number; {} when the file is absent or unreadable."""
    try:
        return {r["step"]: r for r in json.loads(Path(path).read_text())["runs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def measured_note(number: int, runs: dict[int, dict[str, Any]]) -> str:
    """One generated sentence from the reference runs: the step's result, its train-test gap at
    the last epoch, and the change from the step before (when both ran on the full budget)."""
    r = runs.get(number)
    if not r or not r.get("summary"):
        return ""
    m, last = r["summary"], r["epochs"][-1]
    text = (f"{r['params']:,} parameters, best test {m['best_test_acc']:.2f} %, last epoch train "
            f"{last['train_acc']:.2f} % vs test {last['test_acc']:.2f} % "
            f"(gap {last['train_acc'] - last['test_acc']:+.2f} points)")
    if r["provenance"]["reduced"]:
        return text + f"; {r['provenance']['label']}, so not comparable with full runs."
    before = runs.get(number - 1)
    if before and before.get("summary") and not before["provenance"]["reduced"]:
        delta = m["best_test_acc"] - before["summary"]["best_test_acc"]
        text += (f"; {delta:+.2f} points of best test accuracy with {r['params'] / before['params']:.2f}x the "
                 f"parameters of step {number - 1}")
    return text + "."


def seed_table(runs: dict[int, dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for k in sorted(runs):
        r = runs[k]
        if "seeds" not in r:
            continue
        a = r["across_seeds"]
        lines += ["", f"## Step {k} across seeds", "",
                  f"min(last 3 epochs) over seeds: minimum **{a['min_last3_min']:.2f} %**, mean "
                  f"**{a['min_last3_mean']:.2f} %**; every seed passed the challenge: "
                  f"**{'yes' if a['all_passed'] else 'no'}**.", "",
                  "| seed | test accuracy per epoch | best | min last 3 | passed | s |",
                  "|---:|---|---:|---:|---|---:|"]
        for one in r["seeds"]:
            lines.append(f"| {one['seed']} | {' '.join(f'{t:.2f}' for t in one['test_acc'])} | "
                         f"{one['summary']['best_test_acc']:.2f} | {one['summary']['min_last3_test_acc']:.2f} | "
                         f"{'yes' if one['passed'] else 'no'} | {one['wall_seconds']:.0f} |")
    return lines


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def write_markdown(path: Path, runs: dict[int, dict[str, Any]]) -> None:
    lines = [
        "# The lifecycle, measured",
        "",
        "Generated by `python -m core reproduce` from `assets/reference_runs.json`; do not edit by hand.",
        "Accuracies are percentages on the 10,000 MNIST test images. *Seed* columns are what the seed",
        "write-up reported (not measured here); *measured* columns come from the runs below. *s* is",
        "training time in seconds on the device named under Provenance (`CPU (1 thread)`: one of two",
        "single-thread runs sharing a 2-core machine, one per core).",
        "",
        "| step | title | params | final RF | best train | best test | min last 3 | s | seed params | seed train | seed test | run |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for step in STEPS:
        r = runs.get(step.number)
        if r is None:
            lines.append(f"| {step.number} | {step.title} | | | | | | | {step.seed.params} | "
                         f"{step.seed.best_train_acc} | {step.seed.best_test_acc} | not run |")
            continue
        m = r["summary"]
        lines.append(
            f"| {step.number} | {step.title} | {r['params']:,} | {r['rf']} | {_fmt(m.get('best_train_acc'))} | "
            f"{_fmt(m.get('best_test_acc'))} | {_fmt(m.get('min_last3_test_acc'))} | "
            f"{_fmt(m.get('train_seconds'), '.0f')} | {step.seed.params} | {step.seed.best_train_acc} | "
            f"{step.seed.best_test_acc} | {r['provenance']['label']} |")
    lines += ["", "## Provenance", ""]
    for k in sorted(runs):
        p = runs[k]["provenance"]
        seeds = [one["seed"] for one in runs[k].get("seeds", [])]
        seed_text = f"seeds {', '.join(map(str, seeds))} (columns above: seed {p['seed']})" if seeds else f"seed {p['seed']}"
        lines.append(f"- step {k}: `{p['command']}` — {seed_text}, {p['device']}, torch {p['torch']}, "
                     f"{p['date']}, {p['wall_seconds']} s wall; {p['label']}; {runs[k]['challenge']['verdict']}")
    lines += seed_table(runs)
    lines += ["", "## Why each step helped, or did not", ""]
    for step in STEPS:
        lines.append(f"### {step.number}. {step.title}")
        lines.append("")
        lines += [f"- {t}" for t in step.target]
        lines += [f"- {t}" for t in step.analysis]
        note = measured_note(step.number, runs)
        if note:
            lines.append(f"- *Measured here:* {note}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
