"""A training run in a background thread, for interactive front ends.

The app must stay responsive while a model trains: a click on any widget reruns the page
script, which would kill a training loop running inside it. So the loop runs here, in a
thread owned by one browser session, and the page only reads `snapshot()`s. Plain Python:
no UI imports.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from core.data import MNISTTensors
from core.train import BatchEvent, DoneEvent, EpochEvent, TrainConfig, fit


@dataclass
class Snapshot:
    status: str  # "running", "finished", "stopped", "failed"
    batches: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    progress: float  # 0..1
    elapsed: float
    eta: float | None
    reason: str
    params: int | None
    device: str

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass
class TrainingJob:
    config: TrainConfig
    load_data: Callable[[], MNISTTensors]
    label: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _batches: list[dict[str, Any]] = field(default_factory=list)
    _epochs: list[dict[str, Any]] = field(default_factory=list)
    _done: DoneEvent | None = None
    _error: str = ""
    _progress: float = 0.0
    _started: float = 0.0
    _finished: float | None = None
    _thread: threading.Thread | None = None

    def start(self) -> "TrainingJob":
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=f"train-step{self.config.step}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            data = self.load_data()
            for event in fit(self.config, data, self._stop):
                self._record(event)
        except Exception as exc:  # shown to the user; the thread must never die silently
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._finished = time.perf_counter()

    def _record(self, event: BatchEvent | EpochEvent | DoneEvent) -> None:
        with self._lock:
            if isinstance(event, BatchEvent):
                self._batches.append({"step": event.step, "epoch": event.epoch, "loss": event.loss,
                                      "acc": event.acc, "lr": event.lr})
                self._progress = event.step / event.total_steps
            elif isinstance(event, EpochEvent):
                self._epochs.append({k: getattr(event, k) for k in
                                     ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds",
                                      "images_per_s")})
            else:
                self._done = event

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = self._finished or time.perf_counter()
            elapsed = now - self._started if self._started else 0.0
            if self._error:
                status, reason = "failed", self._error
            elif self._done is not None:
                status = "finished" if self._done.completed else (
                    "stopped" if self._done.reason == "stopped by request" else "failed")
                reason = self._done.reason
            elif self._finished is not None:
                status, reason = "failed", "the run ended without a result"
            else:
                status, reason = "running", ""
            eta = elapsed * (1 - self._progress) / self._progress if status == "running" and self._progress > 0 else None
            return Snapshot(status, list(self._batches), list(self._epochs), self._progress, elapsed, eta, reason,
                            self._done.params if self._done else None, self._done.device if self._done else "")
