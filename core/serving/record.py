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
from core.serving.store import RunStore, RunTags, StoreError
from core.training.config import TrainConfig
from core.training.data import MNISTTensors
from core.training.device import device_label, pick_device
from core.training.events import STOPPED, BatchEvent, DoneEvent, EpochEvent, Event
from core.training.inside import Sample
from core.training.loop import build_for, fit_seeds, same_but_seed
from core.training.slow_motion import Pause

CTRL_C = "stopped by the user (Ctrl-C)"


class RunRecorder:
    """Writes one run into a store as its events arrive. A store that fails is reported once
    (through `warn`) and then left alone: training never stops because history cannot be kept."""

    def __init__(self, store: RunStore | None, warn: Callable[[str], None]) -> None:
        self.store, self.warn = store, warn
        self.run_id: int | None = None
        self._inside: list[Sample] = []  # the epoch's looks inside, written with the epoch (one transaction, not ~90)

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

    def record(self, event: Event) -> None:
        """Write what the event adds to the run: a look inside (kept until its epoch ends), an epoch, or the end."""
        if isinstance(event, BatchEvent) and event.inside is not None:
            self._inside.append(Sample(event.step, event.epoch, event.inside, event.filters))
        elif isinstance(event, EpochEvent):
            self._flush_inside()
            self.epoch(event.row())
        elif isinstance(event, DoneEvent):
            self._flush_inside()  # a stopped run keeps its last epoch's part too
            self.finish(status_of(event.reason), event.reason, event.weights)

    def _flush_inside(self) -> None:
        samples, self._inside = self._inside, []
        if self.run_id is not None and samples:
            self._try(lambda: self.store.add_inside(self.run_id, samples))

    def follow(self, events: Iterator[Event]) -> Iterator[Event]:
        """Pass the trainer's events on, recording each epoch and the end as they go by. A run that
        raises (or is interrupted with Ctrl-C) is recorded as failed (stopped) before it leaves."""
        for _, event in follow_seeds([self], ((0, e) for e in events)):
            yield event


def follow_seeds(recorders: list[RunRecorder], events: Iterator[tuple[int, Event]]) -> Iterator[tuple[int, Event]]:
    """`RunRecorder.follow` for the seeds of a group (events tagged with the seed's index): each
    seed's events go into its own record; when training raises, every seed not yet ended is
    recorded as failed (or stopped, on Ctrl-C)."""
    ended: set[int] = set()

    def finish_the_rest(status: str, reason: str) -> None:
        for g, recorder in enumerate(recorders):
            if g not in ended:
                recorder.finish(status, reason)

    try:
        for g, event in events:
            recorders[g].record(event)
            if isinstance(event, DoneEvent):
                ended.add(g)
            yield g, event
    except KeyboardInterrupt:
        finish_the_rest("stopped", CTRL_C)
        raise
    except Exception as exc:
        finish_the_rest("failed", f"{type(exc).__name__}: {exc}")
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


@dataclass
class RecordedSeeds:
    """Seeds of one setting trained as one group, each with its row open in the store; iterate
    `events` ((index into the configs, event)) to train them."""

    params: int
    device: str
    run_ids: list[int | None]
    events: Iterator[tuple[int, Event]]


def start_recorded_seeds(configs: list[TrainConfig], data: MNISTTensors, recorders: list[RunRecorder], source: str,
                         limits: str, tags: RunTags = RunTags(), stop: threading.Event | None = None,
                         pause: Pause | None = None) -> RecordedSeeds:
    """Open each seed's record and return the group's events: nothing trains until they are iterated."""
    same_but_seed(configs)
    device = device_label(pick_device(configs[0].device))
    models = [build_for(c) for c in configs]  # built once: counted here, trained by fit_seeds (each seed's weights)
    params = count_params(models[0])
    for config, recorder in zip(configs, recorders):
        recorder.start(config, source, device, params, limits, tags)
    return RecordedSeeds(params, device, [r.run_id for r in recorders],
                         follow_seeds(recorders, fit_seeds(configs, data, stop, models, pause)))


def start_recorded(config: TrainConfig, data: MNISTTensors, recorder: RunRecorder, source: str, limits: str,
                   tags: RunTags = RunTags(), stop: threading.Event | None = None) -> RecordedRun:
    """Open the run's record and return its events: nothing trains until they are iterated."""
    seeds = start_recorded_seeds([config], data, [recorder], source, limits, tags, stop)
    return RecordedRun(seeds.params, seeds.device, seeds.run_ids[0], (event for _, event in seeds.events))
