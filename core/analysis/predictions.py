"""Looking inside a trained network: one batched pass over the test set (confusion matrix, per-class
accuracy, the most confident mistakes), and every convolution's feature maps for one digit, each
map's units tied to their receptive-field windows by the same core.architecture.receptive_field arithmetic the calculator
uses. Plain PyTorch: the Inspect page draws what this computes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.architecture.builder import build_model
from core.architecture.spec import NUM_CLASSES, Layer
from core.project import ROOT
from core.results.reference import StepReference
from core.serving.store import RunStore
from core.training.augmentation import normalize, to_float
from core.training.config import TrainConfig
from core.training.loop import EVAL_BATCH


@dataclass(frozen=True)
class TrainedModel:
    """A network with the weights it was tested with, and where those weights come from."""

    name: str
    config: TrainConfig
    weights: dict[str, torch.Tensor]
    provenance: str

    @property
    def layers(self) -> list[Layer]:
        return self.config.layers()

    def network(self) -> nn.Sequential:
        model = build_model(self.layers)
        model.load_state_dict(self.weights)
        return model.eval()


class ModelError(ValueError):
    """Weights that cannot be found or do not fit their network."""


def reference_model(ref: StepReference) -> TrainedModel:
    """The first of a step's reference runs that shipped its weights (assets/models/)."""
    for run in ref.runs:
        if run.weights:
            path = Path(run.weights) if Path(run.weights).is_absolute() else ROOT / run.weights
            try:
                weights = torch.load(path, weights_only=True, map_location="cpu")
            except (OSError, RuntimeError, ValueError) as exc:
                raise ModelError(f"cannot load the step-{ref.step} reference weights {path}: {exc}") from exc
            p = run.provenance
            origin = f"`{p.command}` · {p.device} · torch {p.torch} · {p.date} · {p.limits}"
            if run.min_last is not None:
                origin += f" · min(last 3) {run.min_last:.2f} %"
            return TrainedModel(f"step {ref.step} reference, seed {run.seed}", run.config, weights, origin)
    raise ModelError(f"step {ref.step} has no shipped reference weights: train it and pick the run instead")


def stored_model(store: RunStore, run_id: int) -> TrainedModel:
    run = store.get(run_id)
    if run is None:
        raise ModelError(f"no run {run_id} in the run store")
    weights = store.weights(run_id)
    if weights is None:
        raise ModelError(f"run {run_id} kept no weights (it ended before its first epoch, or was interrupted)")
    score = f", min(last 3) {run.min_last:.2f} %" if run.min_last is not None else ""
    what = f"design {run.config.net}" if run.config.is_design else f"step {run.step}"
    return TrainedModel(f"run {run.id}: {what}, seed {run.seed}", run.config, weights,
                        f"run {run.id} of the run store · {run.source} · {run.device} · {run.started} · "
                        f"{run.limits} · {run.status}{score}")


@dataclass(frozen=True)
class Predictions:
    probs: torch.Tensor  # [N, 10] softmax probabilities
    labels: torch.Tensor  # [N]
    seconds: float  # the batched pass, for the benchmark figure

    @property
    def predicted(self) -> torch.Tensor:
        return self.probs.argmax(1)

    @property
    def confidence(self) -> torch.Tensor:
        return self.probs.max(1).values

    @property
    def accuracy(self) -> float:
        return 100.0 * (self.predicted == self.labels).float().mean().item()

    def confusion(self) -> torch.Tensor:
        """[true digit, predicted digit] -> count."""
        index = self.labels * NUM_CLASSES + self.predicted
        return torch.bincount(index, minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)

    def per_class(self) -> list[float]:
        matrix = self.confusion().float()
        return (100.0 * matrix.diagonal() / matrix.sum(1).clamp(min=1)).tolist()

    def mistakes(self, true: int | None = None, predicted: int | None = None) -> list[int]:
        """Indices of misclassified images, most confident first."""
        wrong = self.predicted != self.labels
        if true is not None:
            wrong &= self.labels == true
        if predicted is not None:
            wrong &= self.predicted == predicted
        index = torch.nonzero(wrong).flatten()
        return index[self.confidence[index].argsort(descending=True)].tolist()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = EVAL_BATCH) -> Predictions:
    """One batched pass over uint8 [N, 28, 28] images (the resident test set)."""
    model.eval()
    start = time.perf_counter()
    probs = torch.cat([model(normalize(to_float(images[i:i + batch_size]))).exp()
                       for i in range(0, len(images), batch_size)]) if len(images) else torch.empty(0, NUM_CLASSES)
    return Predictions(probs.cpu(), labels.cpu(), time.perf_counter() - start)


@torch.no_grad()
def classify(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """float [28, 28] in [0, 1] -> the 10 class probabilities."""
    model.eval()
    return model(normalize(image[None, None].float()))[0].exp()
