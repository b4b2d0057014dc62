"""One training queue per server, shared by every browser session.

When a class presses Train at once, running every run at the same time makes them all crawl (each
fights the others for the same cores). Here runs wait in one queue, in turns that go round the
students, and each slot of an executor takes them in turn:
- on a CPU, as many worker processes as the measured thread curve and the memory pay for, sharing
  the cores (`core.serving.cores`: a run alone has every core);
- on GPUs, LIFECYCLE_RUNS_PER_GPU workers each;
- on a Ray cluster, as many runs as it has room for.
A queued run knows its place and when it should start, can be cancelled, and starts by itself. The
queue lives in the server, but no run trains there: the page only ever reads a job's `snapshot()`,
which the worker's events keep current. Plain Python, no UI.
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.serving.executor import (
    SLOW_MOTION,
    Executor,
    Failed,
    Message,
    ProcessExecutor,
    RunSpec,
    RunWarning,
    Started,
    ThreadsUsed,
    WorkerLost,
)
from core.serving.cores import cpu_count, cpu_plan
from core.serving.limits import ServerLimits, run_problems, share_problem
from core.serving.record import open_store
from core.serving.store import RunTags, resolve_db
from core.training.budget import Speed, estimate_seconds, modelled_speed
from core.training.config import TrainConfig
from core.training.data import resolve_root
from core.training.events import BatchEvent, DoneEvent, EpochEvent, StepEvent
from core.training.loop import same_but_seed
from core.training.slow_motion import PAUSE_TOTAL_S, pause_expired

ORDER_POLL_S = 0.5  # how often a run waiting for its cluster-wide turn asks again
SLOTS_EVERY_S = 5.0  # how often an idle slot looks again at how many runs the executor trains at once
PACE_RUNS_TO_TRUST = 3  # completed runs before the measured pace alone sets the estimates
FINAL_STATES = ("completed", "stopped", "failed", "cancelled", "interrupted")
_job_ids = itertools.count(1)


@dataclass
class Snapshot:
    status: str  # queued | running | completed | stopped | failed | cancelled | interrupted (its worker died)
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
    paused: bool = False  # training, but waiting between two batches (slow motion)
    last_step: StepEvent | None = None  # the last batch it was stepped through
    steps_shown: int = 0  # how many batches it was stepped through
    threads: tuple[int, ...] = ()  # the CPU threads it trained with, in order (they change as runs share cores)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


@dataclass(eq=False)
class Job:
    config: TrainConfig
    data_dir: str | None = None  # MNIST root; None: $MNIST_DIR or ./data
    download: bool = True
    limits: str = ""  # "full: ..." / "reduced: ...", recorded with the run
    estimate_s: float = 60.0  # for the queue's start-time estimates
    db: Path | None = None  # run store to record into; None: the default one
    source: str = "app"
    record: bool = True
    tags: RunTags = RunTags()
    page: str = ""  # the app page that started it, so a reloaded page takes up its live view
    status: str = "queued"
    id: int = field(default_factory=lambda: next(_job_ids))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _batches: list[dict[str, Any]] = field(default_factory=list)
    _epochs: list[dict[str, Any]] = field(default_factory=list)
    _done: DoneEvent | None = None
    _reason: str = ""
    _progress: float = 0.0
    _started: float = 0.0
    _finished: float | None = None
    _run_id: int | None = None
    _params: int | None = None
    _device: str = ""
    _warnings: list[str] = field(default_factory=list)
    _queue: "RunQueue | None" = None
    _partners: list[Job] | None = None  # the jobs submitted with it to train side by side (itself included)
    _slot: int | None = None
    _stop_requested: bool = False
    _worker_lost: bool = False  # its worker died mid-run
    _ticket: int | None = None  # its place in the cluster-wide order (core.serving.cluster_order), on a cluster
    _paused_since: float | None = None  # when its last slow-motion command came, while paused
    _first_pause: float | None = None
    _last_step: StepEvent | None = None
    _steps_shown: int = 0
    _threads: list[int] = field(default_factory=list)  # the CPU threads it trained with, each change kept
    _alone: bool = True  # no other run trained beside it on cores it shares (its time then teaches the pace)
    _finished_event: threading.Event = field(default_factory=threading.Event)

    def spec(self) -> RunSpec:
        """What the worker runs; folders are resolved here, where the server's settings apply."""
        return RunSpec(self.id, self.config, str(resolve_root(self.data_dir)), self.download,
                       str(resolve_db(self.db)), self.record, self.limits, self.source, self.tags)

    def stop(self) -> None:
        """Stop a running job after its current batch; cancel a queued one."""
        if self._queue is not None and self._queue.cancel(self):
            return
        with self._lock:
            self._stop_requested = True
            slot = self._slot
        if self._queue is not None and slot is not None:
            self._queue.executor.stop(slot, self.id)

    def slow_motion(self, action: str) -> str | None:
        """Pause a single training run between two batches, step it one batch at a time, or resume it
        (core.training.slow_motion). None when sent; otherwise why not. A paused run keeps its worker
        and counts in its student's share; it goes on by itself PAUSE_LIMIT_S after the last command, or
        PAUSE_TOTAL_S after it was first paused. Who may ask: the page sends commands only to its own
        session's runs (ui.training.live_jobs), as it does Stop."""
        if action not in SLOW_MOTION:
            return f"unknown slow-motion command {action!r}"
        with self._lock:
            slot, running, started = self._slot, self.status == "running", self._params is not None
            grouped = self._partners is not None and len(self._partners) > 1
            paused, first_pause = self._paused_now(), self._first_pause
        if grouped:
            return "seeds trained side by side move together; slow motion is for a run of one seed"
        if not running or slot is None or self._queue is None:
            return "only a run that is training can be paused"
        if not started:  # its worker has not set the run up yet, and would not know it
            return "the run is still starting; try again in a moment"
        if action != "pause" and not paused:
            return "the run is not paused"
        if action != "resume" and first_pause is not None and time.monotonic() - first_pause > PAUSE_TOTAL_S:
            return f"this run has been paused for {PAUSE_TOTAL_S / 60:.0f} minutes in all; it trains on at full speed"
        with self._lock:
            now = time.monotonic()
            self._paused_since = None if action == "resume" else now
            if action == "pause" and self._first_pause is None:
                self._first_pause = now
        self._queue.executor.slow_motion(slot, self.id, action)
        return None

    def _paused_now(self) -> bool:
        return self._paused_since is not None and not pause_expired(self._paused_since, self._first_pause)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (completed, stopped, failed or cancelled)."""
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

    # --- called by the queue, as the executor's messages arrive --------------------------------

    def _on_message(self, message: Message) -> None:
        if isinstance(message, RunWarning):
            self.warn(message.message)
            return
        if isinstance(message, ThreadsUsed):
            with self._lock:
                if not self._threads or self._threads[-1] != message.threads:
                    self._threads.append(message.threads)
            return
        with self._lock:
            if isinstance(message, Started):
                self._run_id, self._params, self._device = message.run_id, message.params, message.device
            elif isinstance(message, BatchEvent):
                self._batches.append({"step": message.step, "epoch": message.epoch, "loss": message.loss,
                                      "acc": message.acc, "lr": message.lr, "inside": message.inside,
                                      "filters": message.filters})
                self._progress = message.step / message.total_steps
            elif isinstance(message, StepEvent):
                self._last_step, self._steps_shown = message, self._steps_shown + 1
                self._progress = message.step / message.total_steps
            elif isinstance(message, EpochEvent):
                self._epochs.append(message.row())
            elif isinstance(message, DoneEvent):
                self._done = message
            elif isinstance(message, Failed):
                self._reason = message.reason

    def _set(self, status: str, reason: str = "") -> None:
        with self._lock:
            self.status = status
            if reason:
                self._reason = reason
            if status == "running":
                self._started = time.perf_counter()
            if status in FINAL_STATES:
                self._finished = time.perf_counter()
        if status in FINAL_STATES:
            self._finished_event.set()

    def _final_status(self) -> str:
        from core.serving.record import status_of

        with self._lock:
            if self._worker_lost:
                return "interrupted"
            if self._done is None or self._reason:
                return "failed"
            return status_of(self._done.reason)

    def snapshot(self) -> Snapshot:
        ahead, starts_in = self._queue.ahead(self) if self._queue is not None and self.status == "queued" else (0, None)
        with self._lock:
            now = self._finished or time.perf_counter()
            elapsed = now - self._started if self._started else 0.0
            reason = self._reason or (self._done.reason if self._done is not None else "")
            eta = None
            if self.status == "running" and self._progress > 0:
                eta = elapsed * (1 - self._progress) / self._progress
            paused = self.status == "running" and self._paused_now()
            return Snapshot(self.status, list(self._batches), list(self._epochs), self._progress, elapsed, eta,
                            reason, self._params, self._device, self._run_id, ahead, starts_in,
                            list(self._warnings), paused, self._last_step, self._steps_shown, tuple(self._threads))


def unfinished(jobs: list[Job]) -> list[Job]:
    """The jobs whose run has not told its end (a seed of a group can end before the others)."""
    return [job for job in jobs if job._done is None and not job._reason]


def _remaining_s(jobs: list[Job]) -> float:
    """Seconds the jobs still need, one after the other; jobs training side by side count once."""
    counted: set[int] = set()
    total = 0.0
    for job in jobs:
        if job.status == "running" and job._partners is not None:
            if id(job._partners) in counted:
                continue
            counted.add(id(job._partners))
        total += job.remaining_s()
    return total


RUNS_PER_GPU_ENV = "LIFECYCLE_RUNS_PER_GPU"  # small runs side by side on one GPU, in processes of their own
MAX_RUNS_PER_GPU = 16  # each holds a CUDA context of its own


def default_executor() -> ProcessExecutor:
    """On GPUs, $LIFECYCLE_RUNS_PER_GPU workers per GPU (default 1, until a GPU has measured what pays:
    docs/deployment.md); on a CPU, as many workers as the cores and memory pay for
    (core.serving.cores.cpu_plan), sharing the cores among the runs that train at once."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus:
        wanted = os.environ.get(RUNS_PER_GPU_ENV, "")
        per_gpu = min(int(wanted), MAX_RUNS_PER_GPU) if wanted.isdigit() and int(wanted) > 0 else 1
        devices = [f"cuda:{i}" for i in range(gpus) for _ in range(per_gpu)]
        # each worker feeds its GPU from a share of the cores; until measured, the GPUs, not their workers, add up
        executor = ProcessExecutor(devices, threads=max(1, cpu_count() // len(devices)))
        executor.parallel_gain = float(gpus)
        return executor
    plan = cpu_plan()
    executor = ProcessExecutor([None] * plan.workers, cores=plan.cores, plan=plan.why)
    executor.parallel_gain = plan.gain
    return executor


class LimitError(ValueError):
    """A run over the server's limits (core.serving.limits); the message says which and what to change."""


class RunQueue:
    def __init__(self, executor: Executor | None = None, limits: ServerLimits | None = None) -> None:
        self.executor = executor if executor is not None else default_executor()
        self.limits = limits  # None: no limits (a queue on your own machine)
        self.notes: list[str] = []  # what the server should say about where runs train (a fallback, say)
        # one order for every server of a cluster (core.serving.cluster_order), None on this machine
        self.order = getattr(self.executor, "order", None)
        self._cv = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: list[Job] = []
        self._threads: list[threading.Thread] = []
        self._paces: list[float] = []  # measured seconds per modelled second of the last completed runs
        self.paused = False  # the teacher's pause: queued runs wait, runs training go on
        self._served: Counter[str] = Counter()  # runs started per student since the queue was last empty
        self._stores: dict[Path | None, Any] = {}
        self._busy_slots: set[int] = set()  # slots whose thread is taking or training a run
        self._taking: set[int] = set()  # busy slots that have not yet taken their run from the queue

    @property
    def workers(self) -> int:
        return self.executor.slots

    @property
    def parallel(self) -> float:
        """How many runs' worth of training the executor does at once: its slots, or on a CPU whose
        cores the runs share, the measured (or modelled) gain of training several at once."""
        return float(getattr(self.executor, "parallel_gain", self.executor.slots) or 1.0)

    def start(self) -> None:
        """Start the workers ahead of the first run (they take a few seconds to import torch)."""
        self.executor.start()

    def submit(self, job: Job) -> Job:
        """Queue a job; raises LimitError (and queues nothing) when it is over the limits."""
        return self.submit_seeds([job])[0]

    def submit_seeds(self, jobs: list[Job]) -> list[Job]:
        """Queue jobs that differ only in their seed, to train side by side as one grouped network
        (core.training.loop.fit_seeds) when their turn comes; each keeps its own place, status and
        record, and a job cancelled before the start is left out. Raises LimitError or ValueError
        (and queues nothing) when one is over the limits or they are not one setting."""
        same_but_seed([j.config for j in jobs])
        problems = self.problems(jobs[0].config)
        if problems:
            raise LimitError("; ".join(problems))
        with self._cv:  # the fair share is checked and taken under one lock: ten tabs at once get no more
            self._check_share(jobs)
            ticket = (self.order.join(len(jobs), jobs[0].estimate_s, jobs[0].tags.session, jobs[0].tags.student,
                                      [job.config for job in jobs])
                      if self.order is not None else None)
            for job in jobs:
                job._queue = self
                job._partners = jobs if len(jobs) > 1 else None
                job._ticket = ticket
                self._waiting.append(job)
            self._start_threads()
            self._cv.notify_all()  # every slot looks: the lowest free one takes it
        return jobs

    def share_problem(self, student: str, adding: int) -> str | None:
        """Why `adding` more runs of this student may not join the queue now (None when they may)."""
        with self._cv:
            return self._share_problem(student, adding)

    def _share_problem(self, student: str, adding: int) -> str | None:
        if self.limits is None:
            return None
        active = list(self._running) + list(self._waiting)
        mine = sum(1 for j in active if j.tags.session == student) if student else 0
        return share_problem(self.limits, mine, len(active), adding)

    def _check_share(self, jobs: list[Job]) -> None:
        problem = self._share_problem(jobs[0].tags.session, len(jobs))
        if problem:
            raise LimitError(problem)

    def in_turn(self) -> list[Job]:
        """The queued jobs in the order they will start: round-robin across students, so a student's
        second run waits behind everyone's first. A student's place counts the runs they started since the
        queue was last empty and their runs queued before it; a group of seeds is one place; ties keep
        the order of arrival."""
        with self._cv:
            return self._in_turn()

    @staticmethod
    def _units(jobs: list[Job]) -> dict[int, list[Job]]:
        """The jobs by what one slot takes at once: a run alone, or the seeds of a group side by side."""
        units: dict[int, list[Job]] = {}
        for job in jobs:
            units.setdefault(id(job._partners) if job._partners else id(job), []).append(job)
        return units

    def _in_turn(self) -> list[Job]:
        if self.order is not None:  # a cluster's one order is its tickets' (first come, first served)
            return list(self._waiting)
        units = self._units(self._waiting)
        earlier: Counter[str] = Counter()
        ranked = []
        for arrival, unit in enumerate(units.values()):
            student = unit[0].tags.session
            ranked.append((self._served[student] + earlier[student], arrival, unit))
            earlier[student] += 1
        return [job for _, _, unit in sorted(ranked, key=lambda r: r[:2]) for job in unit]

    def cancel(self, job: Job) -> bool:
        """Take a job out of the queue before it starts; False if it already started."""
        with self._cv:
            if job not in self._waiting:
                return False
            self._waiting.remove(job)
        if self.order is not None and job._ticket is not None:
            self.order.leave(job._ticket)
        job._set("cancelled", "cancelled before it started")
        return True

    def ahead(self, job: Job) -> tuple[int, float]:
        """(runs before this one, estimated seconds until it starts): on a cluster, every server's."""
        with self._cv:  # a queued run's page asks every second: a cluster that grew meanwhile gets its slots now
            self._start_threads()
        if self.order is not None and job._ticket is not None:
            ahead, seconds = self.order.position(job._ticket)  # a remote call: not under the lock
            with self._cv:  # the seeds of its own group submitted before it count too, as on one machine
                group = [j for j in (job._partners or [job]) if j in self._waiting]
            if job not in group:  # not waiting (any more)
                return 0, 0.0
            return ahead + group.index(job), seconds / self.parallel
        with self._cv:
            if job not in self._waiting:
                return 0, 0.0
            waiting = self._in_turn()
            before = list(self._running) + waiting[:waiting.index(job)]
        return len(before), _remaining_s(before) / self.parallel

    def active_jobs(self) -> list[Job]:
        """The runs training now, then the queued ones in their order."""
        with self._cv:
            return list(self._running) + self._in_turn()

    def queued(self) -> list[tuple[str, TrainConfig]]:
        """The runs waiting, in the order they will start: (the student's name, its config); on a cluster,
        every server's."""
        if self.order is not None:
            try:
                return self.order.queued()
            except Exception:  # noqa: BLE001  (the order cannot be read now: this server's own, as a fallback)
                pass
        return [(job.tags.student, job.config) for job in self.in_turn()]

    def live(self, run_id: int, db: Path | str | None) -> dict[str, Any] | None:
        """Run `run_id` of store `db`, training now, for a page that watches it: {status, progress, batches, epochs,
        params, device}. This server's own runs from their jobs; on a cluster, any server's from the live board."""
        store = str(resolve_db(db))
        job = next((j for j in self.active_jobs() if j._run_id == run_id and str(resolve_db(j.db)) == store), None)
        if job is not None:
            snap = job.snapshot()
            batches = [{k: b[k] for k in ("step", "epoch", "loss", "acc", "lr")} for b in snap.batches]
            return {"status": "running" if snap.active else "ended", "progress": snap.progress, "params": snap.params,
                    "device": snap.device, "batches": batches, "epochs": snap.epochs, "here": True}
        read = getattr(self.executor, "live", None)
        return read(run_id, store) if read is not None else None

    def job_of_run(self, run_id: int) -> Job | None:
        """The job recording stored run `run_id`, while it trains on this server."""
        return next((j for j in self.active_jobs() if j._run_id == run_id), None)

    def load(self) -> tuple[int, float]:
        """(runs queued or running now, estimated seconds before a run submitted now would start): on a
        cluster, every server's."""
        if self.order is not None:
            ahead, seconds = self.order.position(None)
            return ahead, seconds / self.parallel
        with self._cv:
            before = list(self._running) + list(self._waiting)
        return len(before), _remaining_s(before) / self.parallel

    def pace(self) -> float:
        """Seconds per modelled second on this server: the median of the last few completed runs,
        with the prior (the workers' own probe on a GPU, else 1: the cost model's own CPU) standing
        in for runs not yet seen until there are PACE_RUNS_TO_TRUST of them, so one run slowed by
        something else (a busy machine, a laptop asleep mid-run) does not set the pace alone."""
        probe = self.executor.pace()
        prior = probe if probe is not None else 1.0
        if not self._paces:
            return prior
        return statistics.median(self._paces + [prior] * max(0, PACE_RUNS_TO_TRUST - len(self._paces)))

    def estimate(self, config: TrainConfig, speed: Speed | None = None) -> float:
        """How long `config` should take here, once it has started (queue time not included)."""
        return estimate_seconds(config, speed or modelled_speed(config)) * self.pace()

    def problems(self, config: TrainConfig) -> list[str]:
        """Why `config` may not be queued here ([] when it may, or when there are no limits); first of
        all, a cluster that could not be joined (core.serving.cluster.UnavailableExecutor)."""
        unavailable = getattr(self.executor, "problem", None)
        if unavailable:
            return [unavailable]
        return run_problems(config, self.estimate(config), self.limits) if self.limits is not None else []

    # --- the teacher's tools ------------------------------------------------------------------------

    def pause(self, paused: bool = True) -> None:
        """Hold every queued run (runs already training go on) until `pause(False)`."""
        with self._cv:
            self.paused = paused
            self._cv.notify_all()

    def clear(self) -> int:
        """Cancel every queued run; how many were cancelled."""
        return sum(self.cancel(job) for job in self.in_turn())

    def stop_student(self, student: str) -> int:
        """Stop every run of one student: queued ones leave the queue, training ones stop after their
        current batch; how many."""
        mine = [job for job in self.active_jobs() if job.tags.session == student]
        for job in mine:
            job.stop()
        return len(mine)

    def set_limits(self, limits: ServerLimits) -> None:
        self.limits = limits

    def close(self) -> None:
        self.executor.close()

    def close_when_idle(self) -> threading.Thread:
        """Close once the runs queued or training here have ended: a queue replaced by another (the
        server's cluster setting changed) lets its runs finish, then hands back its workers."""
        def wait_then_close() -> None:
            while jobs := self.active_jobs():
                for job in jobs:
                    job.wait()
            self.close()

        thread = threading.Thread(target=wait_then_close, daemon=True, name="retire-queue")
        thread.start()
        return thread

    def _start_threads(self) -> None:
        while len(self._threads) < self.workers:
            slot = len(self._threads)
            thread = threading.Thread(target=self._work, args=(slot,), daemon=True, name=f"train-slot-{slot}")
            self._threads.append(thread)
            thread.start()

    def _work(self, slot: int) -> None:
        """One per slot: wait for a run, then train it (`_train_next`)."""
        while True:
            with self._cv:
                # a slot beyond the executor's (a cluster that shrank) waits until the cluster grows again; a free
                # slot below this one takes the run first (the first worker is the warm one: MNIST loaded), and
                # a run (or seed group) that a slot which woke before this one is about to take is left to it
                while (len(self._units(self._waiting)) <= len(self._taking) or self.paused or slot >= self.workers
                       or self._lower_slot_free(slot)):
                    self._cv.wait(SLOTS_EVERY_S)
                self._start_threads()  # a cluster that grew: its new slots take runs too
                self._busy_slots.add(slot)
                self._taking.add(slot)
                self._cv.notify_all()  # a slot above this one that woke with it may take the next run
                lead = self._in_turn()[0]
            try:
                self._train_next(slot, lead)
            except Exception:  # noqa: BLE001  (a slot thread must never die: the slots above it would wait for it)
                pass
            finally:
                with self._cv:
                    self._busy_slots.discard(slot)
                    self._taking.discard(slot)
                    self._cv.notify_all()

    def _train_next(self, slot: int, lead: Job) -> None:
        """Take the next run (with the partners still waiting that train beside it), have the executor train
        it on this slot, relaying each job's events to it, and settle the jobs when it ends."""
        try:
            if self.order is not None:  # on a cluster, the cluster-wide order says which of this server's runs
                lead = self._cluster_lead(lead)
                if lead is None:
                    return
            jobs = self._claim(slot, lead)
        finally:
            with self._cv:
                self._taking.discard(slot)
                self._cv.notify_all()
        if not jobs:
            return
        by_id = {job.id: job for job in jobs}
        try:
            for job in jobs:
                if job._stop_requested:
                    self.executor.stop(slot, job.id)
            self.executor.run(slot, [job.spec() for job in jobs],
                              lambda job_id, m, by_id=by_id: by_id[job_id]._on_message(m))
        except WorkerLost as exc:
            for job in unfinished(jobs):
                self._interrupt(job, f"{exc}; the epochs it finished are kept, and a fresh training process "
                                "takes the next run")
        except Exception as exc:  # a slot thread must never die: the queue would stall
            for job in unfinished(jobs):
                job._on_message(Failed(job.id, f"{type(exc).__name__}: {exc}"))
        finally:
            self._settle(lead, jobs)

    def _claim(self, slot: int, lead: Job) -> list[Job]:
        """Move `lead` and its waiting partners from the queue to this slot ([] when that changed meanwhile)."""
        with self._cv:
            if self.paused or lead not in self._waiting or (self.order is None and self._in_turn()[0] is not lead):
                return []
            jobs = [lead] + [j for j in (lead._partners or []) if j is not lead and j in self._waiting]
            for job in jobs:
                self._waiting.remove(job)
            self._served[lead.tags.session] += 1
            self._running.extend(jobs)
            if getattr(self.executor, "shares_cores", False) and len(self._running) > len(jobs):
                for job in self._running:  # their cores are shared now: their times are not a lone run's
                    job._alone = False
            if self._waiting:
                self._cv.notify_all()  # the next run: another free slot may take it now
        for job in jobs:
            with job._lock:
                job._slot = slot
            job._set("running")
        return jobs

    def _settle(self, lead: Job, jobs: list[Job]) -> None:
        """The run ended: its place in the cluster's order goes, and each job gets its final status."""
        if self.order is not None and lead._ticket is not None:
            try:
                self.order.finish(lead._ticket)
            except Exception:  # noqa: BLE001  (the cluster went away: a silent server's tickets are dropped)
                pass
        with self._cv:
            for job in jobs:
                self._running.remove(job)
            if not self._running and not self._waiting:
                self._served.clear()  # an idle queue: the next class starts even
        for job in jobs:
            status = job._final_status()
            if status == "completed" and len(jobs) == 1 and job._alone:  # a group's time is not one run's
                self._learn_pace(job)
            job._set(status)

    def _lower_slot_free(self, slot: int) -> bool:
        return any(other not in self._busy_slots for other in range(min(slot, len(self._threads))))

    def _cluster_lead(self, fallback: Job) -> Job | None:
        """The run of this server whose turn has come in the cluster-wide order (round-robin across every
        server's students), or None after a short wait, so that the caller looks again."""
        try:
            ticket = self.order.next_start(self.workers)
        except Exception as exc:  # the order cannot be reached: train rather than stall the class
            fallback.warn(f"the cluster-wide queue order could not be read ({exc}); started in this server's order")
            return fallback
        if ticket is None:
            time.sleep(ORDER_POLL_S)
            return None
        with self._cv:
            lead = next((j for j in self._waiting if j._ticket == ticket), None)
        if lead is None:  # cancelled meanwhile: its place goes to the next
            try:
                self.order.finish(ticket)
            except Exception:  # noqa: BLE001  (a silent server's tickets are dropped in time)
                pass
        return lead

    def _interrupt(self, job: Job, reason: str) -> None:
        """The worker died mid-run: the job and its stored run are interrupted, with the reason and
        the epochs it finished."""
        job._on_message(Failed(job.id, reason))
        with job._lock:
            job._worker_lost = True
        run_id = job.snapshot().run_id
        if run_id is None or not job.record:
            return
        if job.db not in self._stores:
            self._stores[job.db] = open_store(job.db, job.warn)
        store = self._stores[job.db]
        if store is not None:
            try:
                store.finish_run(run_id, "interrupted", reason)
            except Exception as exc:  # the store's own trouble is a warning, as everywhere
                job.warn(f"could not mark run {run_id} interrupted in the run store: {exc}")

    def _learn_pace(self, job: Job) -> None:
        """Measured training seconds per modelled second: the median of the last few completed runs."""
        done = job._done
        modelled = estimate_seconds(job.config, modelled_speed(job.config))
        if done is None or modelled <= 0 or done.seconds <= 0:
            return
        self._paces = (self._paces + [done.seconds / modelled])[-5:]
