"""Slow motion: a run paused between two batches, then stepped through one optimiser step at a time.

Whoever drives a run (the worker, on the page's commands) holds its `Pause`; `fit` asks it before every
batch whether it may go on. While the run is paused, `fit` waits there; each `step()` lets exactly one
batch through, and that batch is reported in full as a `StepEvent`: the digits it trained on (as
augmented), their labels and the network's predictions, the batch's loss, and the first convolution's
filters before and after the step. Pausing changes no number: a paused run computes what the same run
never paused computes (tests/test_slow_motion.py checks it to the last bit).

A pause a student walked away from must not hold the class's queue: it ends by itself PAUSE_LIMIT_S
after the last command, and the run goes on; and a run is paused for at most PAUSE_TOTAL_S in all, however
often someone clicks. The time a run waits is not training time: `fit` leaves it out of its timings.
"""

from __future__ import annotations

import threading
import time

import torch
from torch import nn

from core.training.augmentation import MNIST_MEAN, MNIST_STD
from core.training.events import StepEvent

PAUSE_LIMIT_S = 300.0
PAUSE_TOTAL_S = 900.0
SHOWN_DIGITS = 16  # the batch's first digits, drawn with their predictions


class Pause:
    """A run's pause switch and its one-batch steps. Thread-safe: commands arrive on another thread."""

    def __init__(self, limit_s: float = PAUSE_LIMIT_S, total_s: float = PAUSE_TOTAL_S) -> None:
        self.limit_s, self.total_s = limit_s, total_s
        self._changed = threading.Condition()
        self._paused = False
        self._steps = 0  # batches granted while paused, not yet taken
        self._last_command = 0.0
        self._first_pause: float | None = None

    def pause(self) -> None:
        self._command(paused=True)

    def step(self) -> None:
        """One more batch, then paused again (nothing while running)."""
        self._command(step=True)

    def resume(self) -> None:
        self._command(paused=False)

    def _command(self, paused: bool | None = None, step: bool = False) -> None:
        with self._changed:
            if paused is not None:
                self._paused, self._steps = paused, 0
            if paused and self._first_pause is None:
                self._first_pause = time.monotonic()
            if step and self._paused:
                self._steps += 1
            self._last_command = time.monotonic()
            self._changed.notify_all()

    @property
    def paused(self) -> bool:
        with self._changed:
            return self._paused and not self._expired()

    def _expired(self) -> bool:
        return pause_expired(self._last_command, self._first_pause, self.limit_s, self.total_s)

    def wait_turn(self, stop: threading.Event | None = None) -> bool:
        """Before a batch: wait while paused with no step granted. True when this batch is a step to show;
        False when the run goes on as usual (never paused, resumed, stopped, or the pause ran out)."""
        with self._changed:
            while self._paused and not self._steps:
                if (stop is not None and stop.is_set()) or self._expired():
                    self._paused = False
                    return False
                self._changed.wait(0.1)  # a stop is a flag, not a notification: look again soon
            if self._paused:
                self._steps -= 1
                return True
            return False


def pause_expired(last_command: float, first_pause: float | None, limit_s: float = PAUSE_LIMIT_S,
                  total_s: float = PAUSE_TOTAL_S) -> bool:
    """Has a pause run out: nobody clicked for limit_s, or the run was first paused total_s ago (monotonic
    seconds; the server's queue asks the same of its own clock)."""
    now = time.monotonic()
    return now - last_command > limit_s or (first_pause is not None and now - first_pause > total_s)


def first_filters(model: nn.Module) -> torch.Tensor | None:
    """The first convolution's weights over its first input channel, [filters, k, k], copied."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return None if conv is None else conv.weight[:, 0].detach().float().cpu().clone()


def step_event(epoch: int, batch: int, step: int, total_steps: int, loss: float, lr: float, x: torch.Tensor,
               y: torch.Tensor, scores: torch.Tensor, before: torch.Tensor | None,
               after: torch.Tensor | None) -> StepEvent:
    """The batch `x` (normalised, [B, 1, H, W]) back in pixel values, with what the network answered."""
    shown = x[:SHOWN_DIGITS, 0].detach().float().cpu()
    pixels = (shown * MNIST_STD + MNIST_MEAN).mul(255).round().clamp(0, 255).to(torch.uint8)
    empty: list[list[list[float]]] = []
    return StepEvent(epoch, batch, step, total_steps, loss, lr, pixels.tolist(), y[:SHOWN_DIGITS].tolist(),
                     scores[:SHOWN_DIGITS].argmax(-1).tolist(), before.tolist() if before is not None else empty,
                     after.tolist() if after is not None else empty)
