"""Recording a run as it trains, the one way every front end does it (the CLI and the app's worker
processes): count its parameters, open its row in the run store, and pass the trainer's events on
while each epoch and the end are written. A store that fails mid-run costs the history, never the run."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from core.architecture.builder import count_params
from core.runs.store import RunStore, RunTags, StoreError
from core.training.config import TrainConfig
from core.training.data import MNISTTensors
from core.training.device import device_label, pick_device
from core.training.events import STOPPED, DoneEvent, EpochEvent, Event
from core.training.loop import build_for, fit

CTRL_C = "stopped by the user (Ctrl-C)"


class RunRecorder:
    """Writes one run into a store as its events arrive. A store that fails is reported once
    (through `warn`) and then left alone: training never stops because history cannot be kept."""

    def __init__(self, store: RunStore | None, warn: Callable[[str], None]) -> None:
        self.store, self.warn = store, warn
        self.run_id: int | None = None

    def _try(self, fn: Callable[[], Any]) -> Any:
        if self.store is None:
            return None
        try:
            return fn()
        except StoreError as exc:
            self.warn(f"{exc}. Training goes on without history.")
            self.store = None
            return None

    def start(self, config: TrainConfig, source: str, device: str, params: int, limits: str,
              tags: RunTags = RunTags()) -> None:
        self.run_id = self._try(lambda: self.store.start_run(config, source, device, params, limits, tags))

    def epoch(self, row: dict[str, float]) -> None:
        if self.run_id is not None:
            self._try(lambda: self.store.add_epoch(self.run_id, row))

    def finish(self, status: str, reason: str, weights: dict[str, torch.Tensor] | None = None) -> None:
        if self.run_id is not None:
            self._try(lambda: self.store.finish_run(self.run_id, status, reason, weights))

    def follow(self, events: Iterator[Event]) -> Iterator[Event]:
        """Pass the trainer's events on, recording each epoch and the end as they go by. A run that
        raises (or is interrupted with Ctrl-C) is recorded as failed (stopped) before it leaves."""
        try:
            for event in events:
                if isinstance(event, EpochEvent):
                    self.epoch(event.row())
                elif isinstance(event, DoneEvent):
                    self.finish(status_of(event.reason), event.reason, event.weights)
                yield event
        except KeyboardInterrupt:
            self.finish("stopped", CTRL_C)
            raise
        except Exception as exc:
            self.finish("failed", f"{type(exc).__name__}: {exc}")
            raise


def status_of(reason: str) -> str:
    """A DoneEvent's reason -> the stored status."""
    return "completed" if reason == "completed" else "stopped" if reason == STOPPED else "failed"


def open_store(path: str | os.PathLike | None, warn: Callable[[str], None]) -> RunStore | None:
    """The store, or None (after one warning) when it cannot be opened."""
    try:
        return RunStore(path)
    except StoreError as exc:
        warn(f"{exc}. Runs are not recorded.")
        return None


@dataclass
class RecordedRun:
    """A run whose row is open in the store (run_id None: not recorded); iterate `events` to train it."""

    params: int
    device: str
    run_id: int | None
    events: Iterator[Event]


def start_recorded(config: TrainConfig, data: MNISTTensors, recorder: RunRecorder, source: str, limits: str,
                   tags: RunTags = RunTags(), stop: threading.Event | None = None) -> RecordedRun:
    """Open the run's record and return its events: nothing trains until they are iterated."""
    device = device_label(pick_device(config.device))
    model = build_for(config)  # built once: counted here, trained by fit (the seed's weights either way)
    params = count_params(model)
    recorder.start(config, source, device, params, limits, tags)
    return RecordedRun(params, device, recorder.run_id, recorder.follow(fit(config, data, stop, model)))
