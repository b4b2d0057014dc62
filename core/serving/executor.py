"""Where runs train: in worker processes, never in the web server's own process.

Streamlit serves every browser session from threads of one Python process. A run trained there
shares that process's GIL with every page's rerun, so a class watching its runs slowed them
several times over. The server's queue (`core.serving.run_queue`) therefore only decides *which* run goes
next; an executor trains it elsewhere and streams its events back.

`ProcessExecutor` keeps one worker process per slot (on a CPU, as many as `core.serving.cores` plans, each
told its share of the cores as runs start and end; on GPUs, LIFECYCLE_RUNS_PER_GPU each): a fresh Python
(`python -c ...`, the same on Linux, macOS and Windows) that reads pickled messages on its stdin and writes
its events on its stdout. A worker loads MNIST once,
trains with the one trainer (`core.training.loop.fit_seeds`: one job, or the jobs of a "Train 3 seeds"
side by side), records each run into the run store itself and streams the runs' events back, tagged
with their job. When a worker dies, its stdout ends: its run is reported failed
with the reason and a fresh worker takes the next run. When the server dies, the worker's stdin
ends and it exits too (the run store then shows its run as interrupted).

Another executor (a cluster, say) implements the same `Executor` calls: `start`, `warm`, `pace`, `run`,
`stop` and `close`.
"""

from __future__ import annotations

import os
import pickle
import queue as stdlib_queue
import signal
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, Callable, Iterator, Protocol

from core.project import ROOT
from core.serving.store import RunTags
from core.training.config import TrainConfig
from core.training.events import BatchEvent, DoneEvent, EpochEvent, StepEvent
from core.training.slow_motion import Pause

READY_TIMEOUT_S = 300.0  # importing torch on a cold, busy machine can take a while
# A worker's scheduling priority below the web server's (Unix nice, 0-19): when both want a core, the pages'
# reruns and their websockets go first. A rerun is a tenth of a second of CPU; training runs for minutes
# and loses only that tenth, while a click no longer waits behind a worker that keeps every core busy.
WORKER_NICENESS = 10
BATCH_EVENT_EVERY_S = 0.25  # the page redraws once a second; more batch events only cost pickling


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to train and record one run (picklable, no callables)."""

    job_id: int
    config: TrainConfig
    data_dir: str | None = None
    download: bool = True
    db: str | None = None  # run store file; None: the default one
    record: bool = True
    limits: str = ""  # "full: ..." / "reduced: ...", recorded with the run
    source: str = "app"
    tags: RunTags = RunTags()


# --- messages from a worker (besides the trainer's own Batch/Epoch/Done events) ----------------

@dataclass(frozen=True)
class Ready:
    pid: int
    device: str
    pace: float | None  # on a GPU: measured seconds per modelled second (core.training.budget); None on a CPU


@dataclass(frozen=True)
class Started:
    job_id: int
    run_id: int | None  # in the run store; None when not recorded
    params: int
    device: str


@dataclass(frozen=True)
class RunWarning:
    job_id: int
    message: str


@dataclass(frozen=True)
class Failed:
    job_id: int
    reason: str


@dataclass(frozen=True)
class ThreadsUsed:
    """The CPU threads a job trains with from now on (at its start, and whenever the server's share changes)."""

    job_id: int
    threads: int


@dataclass(frozen=True)
class Tagged:
    """A trainer event of one job of the run (a run can train several jobs' seeds side by side)."""

    job_id: int
    event: BatchEvent | EpochEvent | DoneEvent | StepEvent


Message = Started | RunWarning | Failed | ThreadsUsed | BatchEvent | EpochEvent | DoneEvent | StepEvent


class WorkerLost(RuntimeError):
    """The worker ended in the middle of a run; the message says how."""


class Executor(Protocol):
    slots: int

    def start(self) -> None: ...

    def warm(self, data_dir: str | None, download: bool) -> None: ...

    def pace(self) -> float | None: ...

    def run(self, slot: int, specs: list[RunSpec], on_message: Callable[[int, Message], None]) -> None:
        """Train `specs` (one job, or the seeds of one setting side by side) on slot `slot`, calling
        `on_message(job_id, message)` as events arrive; returns when every job has ended; raises
        WorkerLost when the slot's worker died mid-run."""

    def stop(self, slot: int, job_id: int) -> None: ...

    def slow_motion(self, slot: int, job_id: int, action: str) -> None: ...

    def close(self) -> None: ...


# --- the process executor (server side) ----------------------------------------------------------

class _Worker:
    """One worker process, fed through its stdin and heard through its stdout (pickled, length-
    prefixed messages), restarted when it dies. A plain subprocess rather than multiprocessing:
    `spawn` would re-run the server's main script in the child, which only works when that
    script guards itself, and Streamlit's, pytest's or a user's may not."""

    def __init__(self, device: str | None, threads: int | None) -> None:
        self.device, self.threads = device, threads
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: Ready | None = None
        self._send_lock = threading.Lock()
        self._ready_lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
        self.process = subprocess.Popen([sys.executable, "-c", "from core.serving.executor import worker_process; "
                                         "worker_process()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        cwd=ROOT, env=env)
        self.ready = None
        self.send(("init", self.device, self.threads))

    def wait_ready(self) -> Ready:
        with self._ready_lock:
            if self.ready is None:
                process = self.process
                # a worker that has not said it is ready in time is killed, which ends the read below
                timer = threading.Timer(READY_TIMEOUT_S, lambda: process is not None and process.kill())
                timer.daemon = True
                timer.start()
                try:
                    message = self.recv()
                except WorkerLost as exc:
                    raise WorkerLost(f"the training process did not start ({exc})") from None
                finally:
                    timer.cancel()
                if not isinstance(message, Ready):
                    self.kill()
                    raise WorkerLost(f"the training process sent {type(message).__name__} before it was ready")
                self.ready = message
            return self.ready

    def send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            if self.process is None or self.process.stdin is None:
                return
            try:
                write_message(self.process.stdin, message)
            except (OSError, ValueError):  # a dead worker: run() notices and says so
                pass

    def recv(self) -> Any:
        if self.process is None or self.process.stdout is None:
            raise WorkerLost("the training process is not running")
        try:
            return read_message(self.process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise WorkerLost(self.death()) from None

    def death(self) -> str:
        """How the worker ended, in words."""
        if self.process is None:
            return "the training process is not running"
        try:
            code = self.process.wait(5)
        except subprocess.TimeoutExpired:
            return "the training process stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the training process was killed ({name})"
        return f"the training process exited with code {code}"

    def kill(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


def write_message(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("!Q", len(data)) + data)
    stream.flush()


def read_message(stream: BinaryIO) -> Any:
    header = _read_exactly(stream, 8)
    return pickle.loads(_read_exactly(stream, struct.unpack("!Q", header)[0]))


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the pipe ended")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class ProcessExecutor:
    """One worker process per slot: `devices` names each slot's device (None: the CPU; the same GPU may
    appear more than once, for small runs side by side on it). With `cores`, CPU workers share those cores:
    the runs training at once split them (core.serving.cores.share_threads), and each worker is told its
    new thread count whenever a run starts or ends."""

    def __init__(self, devices: list[str | None], threads: int | None = None, cores: int | None = None,
                 plan: str = "") -> None:
        self.devices, self.cores, self.plan = devices, cores, plan
        self._workers = [_Worker(device, threads) for device in devices]
        self._lock = threading.Lock()
        self._busy: list[int] = []  # slots training now, in the order their runs started
        self._told: dict[int, int] = {}  # slot -> the thread count it was last told
        self.parallel_gain: float = float(len(devices))  # images/s of every slot busy over one slot's

    @property
    def slots(self) -> int:
        return len(self._workers)

    @property
    def shares_cores(self) -> bool:
        return self.cores is not None

    def describe(self) -> str:
        from core.words import counted

        if self.shares_cores:
            return (f"On this server, {counted(self.slots, 'run')} at a time in worker processes sharing "
                    f"{counted(self.cores, 'core')}: a run alone has every core, runs at once split them. "
                    f"{self.plan}".strip())
        where = sorted({d or "the CPU" for d in self.devices})
        return f"On this server, {counted(self.slots, 'run')} at a time (worker processes on {', '.join(where)})."

    def _rebalance(self) -> None:
        """Tell each busy CPU worker its share of the cores (under self._lock)."""
        if self.cores is None:
            return
        from core.serving.cores import share_threads

        for slot, threads in zip(self._busy, share_threads(self.cores, len(self._busy))):
            if self._told.get(slot) != threads:
                self._told[slot] = threads
                self._workers[slot].send(("threads", threads))

    def threads_now(self) -> dict[int, int]:
        """slot -> threads, for the slots training now (tests, the benchmark)."""
        with self._lock:
            return {slot: self._told[slot] for slot in self._busy if slot in self._told}

    def start(self) -> None:
        """Start every worker now, so the first Train does not wait for torch to import."""
        with self._lock:
            for worker in self._workers:
                if not worker.alive:
                    worker.start()
                    # read its Ready (and GPU pace) as soon as it comes, so estimates use it before the first run
                    threading.Thread(target=self._ready_quietly, args=(worker,), daemon=True).start()

    @staticmethod
    def _ready_quietly(worker: _Worker) -> None:
        try:
            worker.wait_ready()
        except WorkerLost:
            pass  # the next run restarts it and reports why
    def pace(self) -> float | None:
        """The first ready worker's measured pace (seconds per modelled second), if any."""
        return next((w.ready.pace for w in self._workers if w.ready is not None and w.ready.pace is not None), None)

    def warm(self, data_dir: str | None, download: bool) -> None:
        """Ask the first worker of each device to load MNIST now (a failure here is ignored: the run reports it).
        A lone run trains on the first free slot (RunQueue takes the lowest); the other workers load MNIST with
        their first run, so a lone run never shares the cores with a worker loading data."""
        for device in dict.fromkeys(self.devices):
            self._workers[self.devices.index(device)].send(("warm", data_dir, download))

    def run(self, slot: int, specs: list[RunSpec], on_message: Callable[[int, Message], None]) -> None:
        worker = self._workers[slot]
        with self._lock:
            if not worker.alive:
                worker.kill()
                worker.start()
        try:
            worker.wait_ready()
        except WorkerLost:
            worker.kill()
            raise
        with self._lock:
            self._busy.append(slot)
            self._told.pop(slot, None)  # a restarted worker knows nothing: tell it again
            self._rebalance()
        worker.send(("run", list(specs)))
        running = {spec.job_id for spec in specs}
        try:
            while running:
                message = worker.recv()
                if isinstance(message, Ready):  # a late Ready of a restarted worker
                    worker.ready = message
                    continue
                job_id, message = (message.job_id, message.event) if isinstance(message, Tagged) \
                    else (message.job_id, message)
                on_message(job_id, message)
                if isinstance(message, (DoneEvent, Failed)):
                    running.discard(job_id)
        except WorkerLost:
            worker.kill()
            raise
        finally:
            with self._lock:
                self._busy.remove(slot)
                self._rebalance()

    def stop(self, slot: int, job_id: int) -> None:
        self._workers[slot].send(("stop", job_id))

    def slow_motion(self, slot: int, job_id: int, action: str) -> None:
        """Pause, step or resume a single run (SLOW_MOTION)."""
        self._workers[slot].send((action, job_id))

    def kill_worker(self, slot: int) -> int | None:
        """Kill a slot's worker as a crash would (for tests and the benchmark); its pid."""
        worker = self._workers[slot]
        if not worker.alive:
            return None
        assert worker.process is not None
        worker.process.kill()
        return worker.process.pid

    def worker_pids(self) -> list[int | None]:
        return [w.process.pid if w.alive and w.process is not None else None for w in self._workers]

    def close(self) -> None:
        for worker in self._workers:
            worker.kill()


# --- the worker process ------------------------------------------------------------------------

class _StopFlag:
    """What the trainer checks after every batch: has the server asked one of these jobs to stop?"""

    def __init__(self, job_ids: set[int], stopped: set[int], lock: threading.Lock) -> None:
        self.job_ids, self._stopped, self._lock = job_ids, stopped, lock

    def is_set(self) -> bool:
        """Seeds trained side by side stop together: a stop of any of their jobs stops them all."""
        with self._lock:
            return bool(self.job_ids & self._stopped)


SLOW_MOTION = ("pause", "step", "resume")  # what the page may ask of a single run (core.training.slow_motion)


class Pauses:
    """The pause switch of each single run a worker (or cluster actor) trains, by job, for the thread that
    reads the server's commands. Seeds trained side by side have none: slow motion shows one run."""

    def __init__(self) -> None:
        self._by_job: dict[int, Pause] = {}
        self._lock = threading.Lock()

    @contextmanager
    def of(self, specs: list[RunSpec]) -> Iterator[Pause | None]:
        if len(specs) != 1:
            yield None
            return
        pause = Pause()
        with self._lock:
            self._by_job[specs[0].job_id] = pause
        try:
            yield pause
        finally:
            with self._lock:
                self._by_job.pop(specs[0].job_id, None)

    def command(self, job_id: int, action: str) -> None:
        if action not in SLOW_MOTION:
            return
        with self._lock:
            pause = self._by_job.get(job_id)
        if pause is not None:
            getattr(pause, action)()


class ThreadShare:
    """The thread count the server wants a worker to train with. The command arrives on the listening thread,
    but torch's thread count belongs to the thread that trains, so the training loop applies it between
    two batches (`apply`, after every event of the trainer)."""

    def __init__(self, threads: int | None = None) -> None:
        self._wanted, self._applied = threads, None

    def want(self, threads: int) -> None:
        self._wanted = max(1, int(threads))

    def apply(self, send: Callable[[Any], None], job_ids: list[int], starting: bool = False) -> None:
        """Set the wanted count if it changed (at a run's start: in any case, so the run reports it)."""
        import torch

        wanted = self._wanted
        if wanted is not None and wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
        now = torch.get_num_threads()
        if starting or now != self._applied:
            self._applied = now
            for job_id in job_ids:
                send(ThreadsUsed(job_id, now))


def worker_process() -> None:
    """Entry point of a worker process (see _Worker.start): messages arrive on stdin, events leave
    on stdout. Anything else that would print to stdout is sent to stderr instead, so it can
    never corrupt the events."""
    events = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    commands = sys.stdin.buffer
    _, device, threads = read_message(commands)
    lower_priority(WORKER_NICENESS)
    worker_main(commands, events, device, threads)


def lower_priority(niceness: int) -> None:
    """Make this process `niceness` steps less urgent to the scheduler (where the OS has nice: not on
    Windows, where the worker keeps the server's priority)."""
    try:
        os.nice(niceness)
    except (AttributeError, OSError):  # no os.nice, or not allowed: training at the same priority still works
        pass


def worker_main(commands: BinaryIO, events: BinaryIO, device: str | None, threads: int | None) -> None:
    """Train the runs the server sends, one at a time."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    share = ThreadShare()
    inbox: stdlib_queue.Queue[tuple[Any, ...]] = stdlib_queue.Queue()
    stopped: set[int] = set()
    lock = threading.Lock()
    send_lock = threading.Lock()
    pauses = Pauses()

    def send(message: Any) -> None:
        with send_lock:
            write_message(events, message)

    def listen() -> None:
        while True:
            try:
                message = read_message(commands)
            except (EOFError, OSError, pickle.UnpicklingError):
                os._exit(0)  # the server is gone; its runs show as interrupted in the store
            if message[0] == "stop":
                with lock:
                    stopped.add(message[1])
            elif message[0] in SLOW_MOTION:
                pauses.command(message[1], message[0])
            elif message[0] == "threads":
                share.want(message[1])
            else:
                inbox.put(message)

    from core.training.budget import measure_pace
    from core.training.device import device_label, pick_device

    dev = pick_device(device or "auto")
    # the cost model was fitted on a CPU; on a GPU a short probe tells how far off it is until real runs do
    send(Ready(os.getpid(), device_label(dev), measure_pace(device or "auto") if dev.type != "cpu" else None))
    threading.Thread(target=listen, name="commands", daemon=True).start()
    stores: dict[str | None, tuple[Any, list[str]]] = {}
    while True:
        message = inbox.get()
        if message[0] == "warm":
            _warm(message[1], message[2], device)
        elif message[0] == "run":
            specs: list[RunSpec] = message[1]
            ids = {spec.job_id for spec in specs}
            with pauses.of(specs) as pause:
                _train(specs, device, send, _StopFlag(ids, stopped, lock), stores, pause, share)
            with lock:
                stopped.difference_update(ids)


def _warm(data_dir: str | None, download: bool, device: str | None) -> None:
    from core.training.data import DataError, load_cached
    from core.training.device import pick_device

    try:
        load_cached(data_dir, download=download, device=pick_device(device or "auto"))
    except (DataError, ValueError):
        pass


def _train(specs: list[RunSpec], device_name: str | None, send: Callable[[Any], None], stop: _StopFlag,
           stores: dict[str | None, tuple[Any, list[str]]], pause: Pause | None = None,
           share: ThreadShare | None = None) -> None:
    """Train the jobs' configs as one seed group (one job: a group of one), recording each job's run."""
    from core.serving.record import RunRecorder, open_store, start_recorded_seeds
    from core.training.data import load_cached
    from core.training.device import pick_device

    configs = [spec.config for spec in specs]
    if device_name is not None:
        configs = [replace(c, device=device_name) if c.device in ("auto", "cuda") else c for c in configs]
    lead = specs[0]

    def warner(job_id: int) -> Callable[[str], None]:
        return lambda message: send(RunWarning(job_id, message))

    store = None
    if lead.record:
        if lead.db not in stores:
            problems: list[str] = []
            stores[lead.db] = (open_store(lead.db, problems.append), problems)
        store, problems = stores[lead.db]
        for spec in specs:
            for problem in problems:  # every run that goes unrecorded is told so, not just the first
                warner(spec.job_id)(problem)
    recorders = [RunRecorder(store, warner(spec.job_id)) for spec in specs]
    ended: set[int] = set()  # jobs whose DoneEvent was sent: the server stops listening for them
    share = share or ThreadShare()
    job_ids = [spec.job_id for spec in specs]
    share.apply(send, job_ids, starting=True)
    try:
        data = load_cached(lead.data_dir, download=lead.download, device=pick_device(configs[0].device))
        run = start_recorded_seeds(configs, data, recorders, lead.source, lead.limits, lead.tags, stop, pause)
        for spec, run_id in zip(specs, run.run_ids):
            send(Started(spec.job_id, run_id, run.params, run.device))
        last_sent, sent_step = 0.0, None
        for g, event in run.events:
            share.apply(send, [j for j in job_ids if j not in ended])  # here, in the thread that trains
            if isinstance(event, BatchEvent):
                # every seed of a step reports at once: the step's events go together, or none of them
                if event.step != sent_step:
                    now = time.perf_counter()
                    if now - last_sent < BATCH_EVENT_EVERY_S and event.batch != event.batches:
                        continue
                    last_sent, sent_step = now, event.step
            elif isinstance(event, DoneEvent):
                event = replace(event, weights=None)  # stored by the recorder; the page needs none
                ended.add(specs[g].job_id)
            send(Tagged(specs[g].job_id, event))
    except Exception as exc:  # reported to the page; the worker lives on for the next run
        for spec in specs:
            if spec.job_id not in ended:
                send(Failed(spec.job_id, f"{type(exc).__name__}: {exc}"))
