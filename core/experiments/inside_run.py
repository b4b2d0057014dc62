"""`python -m core inside`: a step trained as it is and with one toggle flipped (BatchNorm, by default),
on the same seeds, looking inside the network; each variant's per-layer means, averaged over the seeds,
with the provenance, for the lesson to quote (`{inside:...}`, core.report.views.inside_facts)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable

from core.results.ablation import get_ablation
from core.training.config import TrainConfig
from core.training.data import MNISTTensors
from core.training.inside import Sample, layer_means
from core.training.loop import fit

TOGGLES = {"bn": "batchnorm", "dropout": "dropout", "gap": "gap"}
# parts of a recipe a lesson explains, flipped to what the ablation compares them with (core.results.ablation)
RECIPE_FLIPS = {"one-cycle": "constant-lr", "augment": "no-augment"}
FLIPS = (*TOGGLES, *RECIPE_FLIPS)


def flipped(config: TrainConfig, flip: str) -> TrainConfig:
    """The step with one toggle the other way (dropout: 0.1 where it was off, off where it was on), or one
    part of its recipe replaced as the ablation replaces it (one-cycle by a constant 0.01, no augmentation)."""
    if flip in RECIPE_FLIPS:
        return config.with_overrides(**get_ablation(RECIPE_FLIPS[flip]).overrides)
    field = TOGGLES[flip]
    value = getattr(config.toggles, field)
    return config.with_overrides(**{field: (0.0 if value else 0.1) if field == "dropout" else not value})


def by_epoch(samples: list[Sample], epochs: int) -> list[dict[str, dict[str, float]]]:
    """Each epoch's layer means: how the inside moves through a run (one-cycle's rise and fall)."""
    return [layer_means([s for s in samples if s.epoch == epoch]) for epoch in range(1, epochs + 1)]


def averaged(tables: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Layer -> metric means over several seeds' tables (the metrics every seed has)."""
    return {layer: {metric: sum(t[layer][metric] for t in tables) / len(tables) for metric in metrics
                    if all(metric in t.get(layer, {}) for t in tables)}
            for layer, metrics in tables[0].items()}


def inside_of(config: TrainConfig, data: MNISTTensors) -> list[Sample]:
    samples = []
    for event in fit(config, data):
        if event.kind == "batch" and event.inside is not None:
            samples.append(Sample(event.step, event.epoch, event.inside))
        elif event.kind == "done" and not event.completed:
            raise RuntimeError(f"step {config.step}, seed {config.seed}: {event.reason}")
    return samples


def record_inside(step: int, flip: str, seeds: list[int], epochs: int, batches: int | None, data: MNISTTensors,
                  log: Callable[[str], None]) -> dict[str, Any]:
    if flip not in FLIPS:
        raise ValueError(f"--flip takes one of {', '.join(FLIPS)}, not {flip!r}")
    if not seeds or not 1 <= epochs <= 15:
        raise ValueError("--seeds needs at least one seed, and --epochs 1 to 15")
    base = TrainConfig.for_step(step, epochs=epochs, max_batches=batches, device="cpu")
    variants = []
    for config, name in ((base, "as it is"), (flipped(base, flip), f"{flip} flipped")):
        whole, epochwise = [], []
        for seed in seeds:
            samples = inside_of(config.with_overrides(seed=seed), data)
            whole.append(layer_means(samples))
            epochwise.append(by_epoch(samples, epochs))
            log(f"  step {step}, {name}, seed {seed}: done")
        variants.append({"toggles": asdict(config.toggles), "recipe": recipe_of(config), "net": config.net,
                         "layers": averaged(whole),
                         "by_epoch": [averaged([seed[e] for seed in epochwise]) for e in range(epochs)]})
    return {"step": step, "flip": flip, "seeds": seeds, "epochs": epochs, "max_batches": batches,
            "variants": variants}


def recipe_of(config: TrainConfig) -> dict[str, Any]:
    """What a recipe flip changes, in words a reader checks the file by."""
    return {"schedule": config.recipe.schedule, "lr": config.recipe.lr, "augment": config.recipe.augment.describe()}
