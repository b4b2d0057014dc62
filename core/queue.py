"""One training queue per process, shared by every browser session.

When a class presses Train at once, running every run in its own thread makes them all crawl
(each fights the others for the same cores). Here runs wait in one first-in-first-out queue and
a bounded number of workers take them in turn: one on a CPU (PyTorch then uses all its cores),
one per GPU. A queued run knows its place and when it should start, can be cancelled, and starts
by itself. The page only ever reads a job's `snapshot()`; plain Python, no UI imports.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from core.data import MNISTTensors
from core.model import build_model, count_params, device_label, pick_device
from core.store import RunRecorder, RunStore, open_store, status_of
from core.train import BatchEvent, DoneEvent, EpochEvent, TrainConfig, fit

FINAL_STATES = ("finished", "stopped", "failed", "cancelled")


@dataclass
class Snapshot:
    status: str  # queued | running | finished | stopped | failed | cancelled
    batches: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    progress: float  # 0..1
    elapsed: float  # seconds since the run started (0 while queued)
    eta: float | None  # seconds left while running
    reason: str
    params: int | None
    device: str
    run_id: int | None  # its id in the run store, once recorded
    ahead: int  # runs before it in the queue (while queued)
    starts_in: float | None  # estimated seconds until it starts (while queued)
    warnings: list[str]

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


@dataclass(eq=False)
class Job:
    config: TrainConfig
    load_data: Callable[[], MNISTTensors]
    label: str = ""
    estimate_s: float = 60.0  # for the queue's start-time estimates
    db: Path | None = None  # run store to record into; None: the default one
    source: str = "app"
    record: bool = True
    status: str = "queued"
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _batches: list[dict[str, Any]] = field(default_factory=list)
    _epochs: list[dict[str, Any]] = field(default_factory=list)
    _done: DoneEvent | None = None
    _reason: str = ""
    _progress: float = 0.0
    _started: float = 0.0
    _finished: float | None = None
    _run_id: int | None = None
    _warnings: list[str] = field(default_factory=list)
    _queue: "RunQueue | None" = None
    _finished_event: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """Stop a running job after its current batch; cancel a queued one."""
        if self._queue is not None and self._queue.cancel(self):
            return
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (finished, stopped, failed or cancelled)."""
        return self._finished_event.wait(timeout)

    def remaining_s(self) -> float:
        """Seconds this job still needs: measured while it runs, estimated before."""
        with self._lock:
            if self.status == "running" and self._progress > 0:
                elapsed = time.perf_counter() - self._started
                return elapsed * (1 - self._progress) / self._progress
            if self.status == "running":
                return max(0.0, self.estimate_s - (time.perf_counter() - self._started))
            return self.estimate_s if self.status == "queued" else 0.0

    def warn(self, message: str) -> None:
        with self._lock:
            if message not in self._warnings:
                self._warnings.append(message)

    # --- called by the worker -------------------------------------------------------------------

    def _run(self, store: RunStore | None) -> None:
        recorder = RunRecorder(store if self.record else None, self.warn)
        device = pick_device(self.config.device)
        try:
            data = self.load_data()
            params = count_params(build_model(self.config.layers()))
            recorder.start(self.config, self.source, device_label(device), params, self.label)
            with self._lock:
                self._run_id = recorder.run_id
            for event in fit(self.config, data, self._stop):
                self._record(event, recorder)
        except Exception as exc:  # shown to the user; a worker must never die silently
            with self._lock:
                self._reason = f"{type(exc).__name__}: {exc}"
            recorder.finish("failed", self._reason)

    def _record(self, event: BatchEvent | EpochEvent | DoneEvent, recorder: RunRecorder) -> None:
        if isinstance(event, EpochEvent):
            recorder.epoch(event.row())
        elif isinstance(event, DoneEvent):
            recorder.finish(status_of(event.reason), event.reason, event.weights)
        with self._lock:
            if isinstance(event, BatchEvent):
                self._batches.append({"step": event.step, "epoch": event.epoch, "loss": event.loss,
                                      "acc": event.acc, "lr": event.lr})
                self._progress = event.step / event.total_steps
            elif isinstance(event, EpochEvent):
                self._epochs.append(event.row())
            else:
                self._done = event

    def _set(self, status: str) -> None:
        with self._lock:
            self.status = status
            if status == "running":
                self._started = time.perf_counter()
            if status in FINAL_STATES:
                self._finished = time.perf_counter()
        if status in FINAL_STATES:
            self._finished_event.set()

    def _final_status(self) -> str:
        with self._lock:
            if self._done is None:
                return "failed"
            return {"completed": "finished", "stopped": "stopped"}.get(status_of(self._done.reason), "failed")

    def snapshot(self) -> Snapshot:
        ahead, starts_in = self._queue.ahead(self) if self._queue is not None and self.status == "queued" else (0, None)
        with self._lock:
            now = self._finished or time.perf_counter()
            elapsed = now - self._started if self._started else 0.0
            reason = self._done.reason if self._done is not None and not self._reason else self._reason
            eta = None
            if self.status == "running" and self._progress > 0:
                eta = elapsed * (1 - self._progress) / self._progress
            return Snapshot(self.status, list(self._batches), list(self._epochs), self._progress, elapsed, eta,
                            reason, self._done.params if self._done else None, self._done.device if self._done else "",
                            self._run_id, ahead, starts_in, list(self._warnings))


class RunQueue:
    def __init__(self, workers: int | None = None, devices: list[str] | None = None) -> None:
        if devices is None:
            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
            devices = [f"cuda:{i}" for i in range(gpus)] if gpus else [None] * (workers or 1)
        self.devices = devices[:workers] if workers else devices
        self._cv = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: list[Job] = []
        self._threads: list[threading.Thread] = []
        self._stores: dict[Path | None, tuple[RunStore | None, list[str]]] = {}
        self._stores_lock = threading.Lock()

    @property
    def workers(self) -> int:
        return len(self.devices)

    def submit(self, job: Job) -> Job:
        with self._cv:
            job._queue = self
            self._waiting.append(job)
            self._start_workers()
            self._cv.notify()
        return job

    def cancel(self, job: Job) -> bool:
        """Take a job out of the queue before it starts; False if it already started."""
        with self._cv:
            if job not in self._waiting:
                return False
            self._waiting.remove(job)
        with job._lock:
            job._reason = "cancelled before it started"
        job._set("cancelled")
        return True

    def ahead(self, job: Job) -> tuple[int, float]:
        """(runs before this one, estimated seconds until it starts)."""
        with self._cv:
            if job not in self._waiting:
                return 0, 0.0
            before = list(self._running) + list(self._waiting)[:list(self._waiting).index(job)]
        work = sum(j.remaining_s() for j in before)
        return len(before), work / self.workers

    def jobs(self) -> list[Job]:
        with self._cv:
            return list(self._running) + list(self._waiting)

    def store(self, db: Path | None, warn: Callable[[str], None]) -> RunStore | None:
        """One RunStore per database file, shared by the workers (it keeps a connection per thread)."""
        with self._stores_lock:
            if db not in self._stores:
                problems: list[str] = []
                self._stores[db] = (open_store(db, problems.append), problems)
            store, problems = self._stores[db]
        for message in problems:  # every job whose runs go unrecorded is told so, not just the first
            warn(message)
        return store

    def _start_workers(self) -> None:
        while len(self._threads) < self.workers:
            device = self.devices[len(self._threads)]
            thread = threading.Thread(target=self._work, args=(device,), daemon=True,
                                      name=f"train-worker-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def _work(self, device: str | None) -> None:
        while True:
            with self._cv:
                while not self._waiting:
                    self._cv.wait()
                job = self._waiting.popleft()
                self._running.append(job)
            if device is not None and job.config.device in ("auto", "cuda"):
                job.config = replace(job.config, device=device)
            job._set("running")
            try:
                job._run(self.store(job.db, job.warn) if job.record else None)
            finally:
                with self._cv:
                    self._running.remove(job)
                job._set(job._final_status())
