"""`python -m core inside`: a step trained as it is and with one toggle flipped (BatchNorm, by default),
on the same seeds, looking inside the network; each variant's per-layer means, averaged over the seeds,
with the provenance, for the lesson to quote (`{inside:...}`, core.report.views.inside_facts)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable

from core.training.config import TrainConfig
from core.training.data import MNISTTensors
from core.training.inside import Sample, layer_means
from core.training.loop import fit

TOGGLES = {"bn": "batchnorm", "dropout": "dropout", "gap": "gap"}


def flipped(config: TrainConfig, toggle: str) -> TrainConfig:
    """The step with one toggle the other way (dropout: 0.1 where it was off, off where it was on)."""
    field = TOGGLES[toggle]
    value = getattr(config.toggles, field)
    return config.with_overrides(**{field: (0.0 if value else 0.1) if field == "dropout" else not value})


def inside_of(config: TrainConfig, data: MNISTTensors) -> list[Sample]:
    samples = []
    for event in fit(config, data):
        if event.kind == "batch" and event.inside is not None:
            samples.append(Sample(event.step, event.epoch, event.inside))
        elif event.kind == "done" and not event.completed:
            raise RuntimeError(f"step {config.step}, seed {config.seed}: {event.reason}")
    return samples


def record_inside(step: int, toggle: str, seeds: list[int], epochs: int, batches: int | None, data: MNISTTensors,
                  log: Callable[[str], None]) -> dict[str, Any]:
    if toggle not in TOGGLES:
        raise ValueError(f"--flip takes one of {', '.join(TOGGLES)}, not {toggle!r}")
    if not seeds or not 1 <= epochs <= 15:
        raise ValueError("--seeds needs at least one seed, and --epochs 1 to 15")
    base = TrainConfig.for_step(step, epochs=epochs, max_batches=batches, device="cpu")
    variants = []
    for config in (base, flipped(base, toggle)):
        per_seed = []
        for seed in seeds:
            per_seed.append(layer_means(inside_of(config.with_overrides(seed=seed), data)))
            log(f"  step {step}, {TOGGLES[toggle]}={getattr(config.toggles, TOGGLES[toggle])}, seed {seed}: done")
        layers = {layer: {metric: sum(s[layer][metric] for s in per_seed) / len(per_seed) for metric in metrics}
                  for layer, metrics in per_seed[0].items()}
        variants.append({"toggles": asdict(config.toggles), "net": config.net, "layers": layers})
    return {"step": step, "flip": toggle, "seeds": seeds, "epochs": epochs, "max_batches": batches,
            "variants": variants}
