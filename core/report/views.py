"""Shared views of steps and stacks (CLI, app and tests all use these)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.architecture.builder import build_model, count_params, macs, summarize
from core.architecture.notation import format_net, net_of
from core.architecture.spec import MNIST_SIDE, Layer, SpecError, layers_from_dicts
from core.project import ASSETS
from core.report.lessons import load_lesson
from core.training.config import TrainConfig
from core.training.steps import STEPS, get_step, with_toggles


def _layers_doc(layers: list[Layer], input_size: int = MNIST_SIDE) -> dict[str, Any]:
    model = build_model(layers, input_size)
    rows = summarize(layers, input_size, model)
    return {"params": count_params(model), "rf": rows[-1].rf if rows else 1, "macs": macs(model, input_size),
            "layers": [r.as_dict() | {"label": r.label} for r in rows]}


def describe_step(number: int, batchnorm: bool | None = None, dropout: float | None = None,
                  gap: bool | None = None) -> dict[str, Any]:
    step = get_step(number)
    toggles = with_toggles(step, batchnorm, dropout, gap)
    doc = _layers_doc(step.layers(toggles))
    return {"step": number, "title": step.title, "toggles": asdict(toggles), **doc}


def describe_config(config: TrainConfig) -> dict[str, Any]:
    """The per-layer document of a training config's network (a step's own or a design)."""
    doc = _layers_doc(config.layers())
    return {"step": config.step, "title": get_step(config.step).title, "net": config.net, "design": config.is_design,
            "toggles": asdict(config.toggles), **doc}


def describe_stack(raw: Any, input_size: int = MNIST_SIDE) -> dict[str, Any]:
    """A user-supplied stack (list of dicts) -> the same per-layer document as a step."""
    layers = layers_from_dicts(raw)
    try:
        return _layers_doc(layers, input_size)
    except SpecError:
        raise
    except (RuntimeError, ValueError) as exc:  # a safety net: PyTorch refused the stack
        raise SpecError(f"PyTorch could not run this stack: {str(exc).splitlines()[0]}") from exc


def step_overview() -> list[dict[str, Any]]:
    rows = []
    for step in STEPS:
        doc = _layers_doc(step.layers())
        lesson = load_lesson(step.number)
        rows.append({
            "number": step.number, "title": step.title, "net": format_net(net_of(step.spec, step.toggles.gap)),
            "params": doc["params"], "rf": doc["rf"],
            "macs": doc["macs"], "toggles": asdict(step.toggles), "recipe": asdict(step.recipe),
            "augment": step.recipe.augment.describe(), "target": list(lesson.target),
            "analysis": list(lesson.analysis), "writeup": asdict(step.writeup),
        })
    return rows


def lesson_facts(number: int) -> dict[str, str]:
    """Figures a lesson may quote as `{step:params}`, `{step:macs}`, `{writeup:macs}`: computed here,
    never typed into the prose."""
    from core.architecture.writeup import writeup_final_model

    doc = describe_step(number)
    return {"step:params": f"{doc['params']:,}", "step:macs": f"{doc['macs'] / 1e6:.2f} M",
            "step:rf": str(doc["rf"]), "writeup:macs": f"{macs(writeup_final_model()) / 1e6:.2f} M"} | lr_facts(number) \
        | inside_facts(number)


LR_FIND_DIR = ASSETS / "lr_find"


def lr_facts(number: int, folder: Path = LR_FIND_DIR) -> dict[str, str]:
    """`{lrfind:...}`: the learning-rate range test recorded for a step (`python -m core lr-find --step N
    --output assets/lr_find/step_N.json`), with its provenance; empty when none was recorded."""
    path = folder / f"step_{number}.json"
    if not path.exists():
        return {}
    doc = json.loads(path.read_text(encoding="utf-8"))
    blew = f"blew up at {doc['diverged_at']:.2g}" if doc["diverged_at"] else "never blew up"
    return {"lrfind:steepest": f"{doc['suggested']:.2g}", "lrfind:blew": blew, "lrfind:batches": str(len(doc["lrs"])),
            "lrfind:provenance": f"`{doc['command']}`, {doc['processor']}, {doc['threads']} threads, "
                                 f"torch {doc['torch']}, {doc['date']}"}


INSIDE_DIR = ASSETS / "inside"


def inside_facts(number: int, folder: Path = INSIDE_DIR) -> dict[str, str]:
    """`{inside:...}`: a step as it is and with one toggle flipped, looked inside (`python -m core inside
    --step N --output assets/inside/step_N.json`): for each, the range of its ReLUs' output spreads from
    layer to layer, how the gradient reaching the first convolution compares with the last's, the last
    convolution's gradient and the middle 90 % of its weights, and (over several epochs) how far one
    step moves the first convolution's weights epoch by epoch; with the provenance. A second recording of
    the step, `step_N_NAME.json`, gives `{inside:NAME-...}`. Empty when none was recorded."""
    facts: dict[str, str] = {}
    recipe = TrainConfig.for_step(number).recipe
    for path in sorted(folder.glob(f"step_{number}.json")) + sorted(folder.glob(f"step_{number}_*.json")):
        name = path.stem.removeprefix(f"step_{number}").removeprefix("_")
        doc = json.loads(path.read_text(encoding="utf-8"))
        # the last epoch trained wholly on augmented digits, when the recipe finishes clean
        augmented = int((1 - recipe.clean_fraction) * doc["epochs"]) if recipe.clean_fraction else None
        facts |= inside_file_facts(doc, f"inside:{name}-" if name else "inside:", augmented)
    return facts


def inside_file_facts(doc: dict[str, Any], prefix: str, last_augmented: int | None = None) -> dict[str, str]:
    facts = {f"{prefix}provenance": f"`{doc['command']}`: seeds {', '.join(map(str, doc['seeds']))}, "
                                    f"{doc['epochs']} epoch{'s' if doc['epochs'] > 1 else ''}, {doc['processor']}, "
                                    f"{doc['threads']} threads, torch {doc['torch']}, {doc['date']}"}
    for variant, key in zip(doc["variants"], ("as-is", "flipped")):
        key = prefix + key
        layers = variant["layers"]
        spreads = [m["act_std"] for name, m in layers.items() if "zero_frac" in m]  # the ReLUs, in order
        convs = [m for name, m in layers.items() if name.startswith("conv") and "grad_norm" in m]
        grads = [m["grad_norm"] for m in convs]
        facts[f"{key}-relu-spread"] = f"{min(spreads):.2f} to {max(spreads):.2f}"
        facts[f"{key}-relu-spread-first-last"] = f"{spreads[0]:.2f} in the first to {spreads[-1]:.2f} in the last"
        facts[f"{key}-grad-first-vs-last"] = f"{grads[0] / grads[-1]:.2g}"
        facts[f"{key}-update-first-last"] = (f"{convs[0]['update_ratio']:.1e} of their size on the first "
                                             f"convolution and {convs[-1]['update_ratio']:.1e} on the last")
        facts[f"{key}-grad-last"] = f"{grads[-1]:.2f}"
        if "w_p05" in convs[-1]:
            facts[f"{key}-last-weights"] = f"{convs[-1]['w_p05']:.2f} and {convs[-1]['w_p95']:.2f}"
        facts[f"{key}-dead"] = f"{100 * max(m['zero_frac'] for m in layers.values() if 'zero_frac' in m):.0f} %"
        facts |= epoch_facts(key, variant.get("by_epoch", []), last_augmented)
    return facts


def epoch_facts(key: str, epochs: list[dict[str, dict[str, float]]], last_augmented: int | None = None) -> dict[str, str]:
    """How far one step moves the first convolution's weights, epoch by epoch: the learning rate's schedule
    as the weights feel it; and the last convolution's gradient at the end of the augmented epochs and in
    the last one, across the clean finish (files recorded with `by_epoch` and more than one epoch)."""
    if len(epochs) < 2:
        return {}
    convs = [name for name in epochs[0] if name.startswith("conv")]
    ratios = [epoch[convs[0]]["update_ratio"] for epoch in epochs]
    top = max(range(len(ratios)), key=ratios.__getitem__)
    facts = {f"{key}-update-by-epoch": f"{ratios[0]:.1e} in the first epoch, {ratios[top]:.1e} at most "
                                       f"(epoch {top + 1}) and {ratios[-1]:.1e} in the last"}
    if last_augmented is not None and 1 <= last_augmented < len(epochs):
        grads = [epoch[convs[-1]]["grad_norm"] for epoch in epochs]
        facts[f"{key}-grad-last-clean-finish"] = (f"{grads[last_augmented - 1]:.3f} in epoch {last_augmented} and "
                                                  f"{grads[-1]:.3f} in epoch {len(epochs)}")
    return facts
