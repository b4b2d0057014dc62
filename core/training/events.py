"""What the trainer yields: batch progress, epoch metrics and one final event. Whoever iterates
(CLI, app, store, tests) decides what to do with them."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass(frozen=True)
class BatchEvent:
    epoch: int
    batch: int  # 1-based within the epoch
    batches: int  # per epoch
    step: int  # global optimiser step, 1-based
    total_steps: int
    loss: float
    acc: float  # % on this batch (augmented training images)
    lr: float
    images_per_s: float
    # inside the network on this batch (core.training.inside): layer -> metric -> value; None when unprobed
    inside: dict[str, dict[str, float]] | None = None
    filters: list[list[list[float]]] | None = None  # the first convolution's, on the first and each epoch's last report
    kind: str = "batch"


@dataclass(frozen=True)
class EpochEvent:
    epoch: int
    train_loss: float
    train_acc: float  # % over the epoch's (augmented) training batches
    test_loss: float
    test_acc: float  # % on the test images
    lr: float  # learning rate of the epoch's last optimiser step
    seconds: float  # training plus the test evaluation
    images_per_s: float  # training throughput
    kind: str = "epoch"

    def row(self) -> dict[str, float]:
        """The epoch as one record: what the CLI prints, the run store keeps and charts draw."""
        return {name: getattr(self, name) for name in EPOCH_FIELDS}


EPOCH_FIELDS = tuple(f.name for f in fields(EpochEvent) if f.name != "kind")


@dataclass(frozen=True)
class DoneEvent:
    reason: str  # "completed", "stopped by request", or why it failed
    history: list[EpochEvent]
    params: int
    device: str
    seconds: float
    weights: dict[str, torch.Tensor] | None = None  # the tested weights (the average when EMA is on), on the CPU
    kind: str = "done"

    @property
    def completed(self) -> bool:
        return self.reason == "completed"

    @property
    def stopped(self) -> bool:
        return self.reason == STOPPED


@dataclass(frozen=True)
class StepEvent:
    """One optimiser step of a paused run, stepped through (core.training.slow_motion)."""

    epoch: int
    batch: int  # 1-based within the epoch
    step: int  # global optimiser step, 1-based
    total_steps: int
    loss: float
    lr: float
    digits: list[list[list[int]]]  # the batch's first digits as it trained on them, 0-255, [digit][row][column]
    labels: list[int]
    predictions: list[int]  # the network's answer for each, in this step's forward pass (before the update)
    filters_before: list[list[list[float]]]  # the first convolution's filters (first input channel)
    filters_after: list[list[list[float]]]
    kind: str = "step"


STOPPED = "stopped by request"
Event = BatchEvent | EpochEvent | DoneEvent | StepEvent
