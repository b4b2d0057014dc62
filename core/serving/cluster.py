"""Training on a Ray cluster: the executor for more runs than one machine can train.

`RayExecutor` implements the same calls as `core.serving.executor.ProcessExecutor`, so the server's
queue (`core.serving.run_queue`) is unchanged: it still decides which run goes next, shows each queued
run its place and expected start, and relays the run's events to the page. Each run becomes a Ray
actor that asks the cluster for `cpus_per_run` CPUs (or a GPU, where the cluster has them), so Ray
places it on whichever machine has room. The actor trains with the same code as a local worker
(`core.serving.executor._train`: the one trainer, recording into the run store itself), keeps the
events in order, and the server fetches them a few times a second; Stop reaches it as a message.
When the actor's process dies (a PC switched off, a kill), the run is interrupted with the epochs it
recorded and the next run gets a fresh actor.

A run records into the store from the machine it trains on, so a cluster of several machines needs
a store they all reach: PostgreSQL (`LIFECYCLE_RUNS=postgresql://...`). A SQLite file works only
when every Ray node is this machine.

Ray is optional (`pip install -r requirements-cluster.txt`): it is imported here only, and only
when an address is given.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from core.project import ROOT
from core.serving.executor import (
    READY_TIMEOUT_S,
    Executor,
    Failed,
    Message,
    Pauses,
    ProcessExecutor,
    RunSpec,
    Started,
    Tagged,
    ThreadShare,
    WorkerLost,
    _StopFlag,
    _train,
)
from core.training.events import BatchEvent, DoneEvent, EpochEvent
from core.words import counted

POLL_S = 0.2  # how often the server asks a running actor for new events
# Warm actors: a run takes an actor that already imported torch and loaded MNIST, and gives it back after.
IDLE_S = 300.0  # a warm actor no run used for this long goes back to the cluster
KEEP_EVERY_S = 2.0  # how often the pool looks at its actors and at the cluster
WARM_HELLO_S = 10.0  # a warm actor that does not answer this soon is taken for dead and replaced
RESOURCES_EVERY_S = 10.0  # how often the cluster's size is read again (a node that joins or leaves)
SILENT_S = 60.0  # an actor that does not answer a poll for this long is taken for lost
CONNECT_TIMEOUT_S = 5.0
DEFAULT_CPUS_PER_RUN = 1


class ClusterError(RuntimeError):
    """The cluster cannot be used; the message names the address and says what to do."""


@dataclass(frozen=True)
class ClusterChoice:
    """Where the queue's runs train: `address` None = this machine's worker processes."""

    address: str | None = None
    fallback_local: bool = False  # when the cluster cannot be reached: train here instead of refusing
    cpus_per_run: int = DEFAULT_CPUS_PER_RUN

    @classmethod
    def from_env(cls) -> ClusterChoice:
        """RAY_ADDRESS (Ray's own variable), LIFECYCLE_RAY_FALLBACK=1, LIFECYCLE_RAY_CPUS."""
        cpus = os.environ.get("LIFECYCLE_RAY_CPUS", "")
        return cls(os.environ.get("RAY_ADDRESS") or None, os.environ.get("LIFECYCLE_RAY_FALLBACK", "") == "1",
                   int(cpus) if cpus.isdigit() and int(cpus) > 0 else DEFAULT_CPUS_PER_RUN)


def _import_ray(address: str) -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError(f"training on the Ray cluster at {address} needs Ray, which is not installed here: "
                           "pip install -r requirements-cluster.txt") from None
    return ray


def _probe(address: str) -> None:
    """Fail fast with a clear message when nothing answers at host:port (ray.init would retry for
    minutes). 'auto' (a node of the cluster finds its head itself) is left to Ray."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"Ray cluster address {address!r} is not host:port (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}. Is `ray start --head` "
                           "running there, and is the port open from this machine?") from None


_connect_lock = threading.Lock()
_joined: list[str] = []  # the address this process joined (Ray allows one cluster per process)


def connect(address: str) -> Any:
    """Join the Ray cluster at `address` as a driver (once per process); the `ray` module."""
    ray = _import_ray(address)
    with _connect_lock:
        _probe(address)
        if _joined and _joined[0] != address:
            raise ClusterError(f"this server already trains on the Ray cluster at {_joined[0]}; one process joins "
                               f"one cluster: restart it to use {address}")
        if ray.is_initialized():
            return ray
        try:
            # the project's code goes to every worker with the job, so worker PCs need only the packages
            ray.init(address=address, logging_level="ERROR", log_to_driver=False,
                     runtime_env={"py_modules": [str(ROOT / "core")]})
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError... all mean the same here
            raise ClusterError(f"cannot join the Ray cluster at {address}: {type(exc).__name__}: {exc}") from None
        _joined.append(address)
    return ray


class TrainActor:
    """One run on a cluster machine (wrapped with ray.remote in `RayExecutor`): `train` runs in one of
    the actor's threads while `poll` and `stop` answer in others."""

    def __init__(self, device: str | None, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        # A run's messages are kept under its own token, and stops are never forgotten: the pool asks idle actors
        # `hello` and keeps the first to answer, so a slower actor's hello can still be waiting when a later
        # run takes it, and (threaded actor: no order among calls) run after that run's stop or messages.
        self.device, self.threads, self.outboxes, self.stopped = device, max(1, threads), {}, set()
        self.lock = threading.Lock()
        self.pauses = Pauses()

    def hello(self) -> tuple[int, str]:
        """(pid, the machine's name), for messages and for tests that kill it as a crash would. It changes
        nothing: it may run at any time, even during a run."""
        return os.getpid(), socket.gethostname()

    def warm(self, data_dir: str | None, download: bool) -> None:
        """Load MNIST now, so that the next run on this actor starts training at once."""
        from core.serving.executor import _warm

        spec = _here(RunSpec(0, None, data_dir, download))  # type: ignore[arg-type]
        _warm(spec.data_dir, download, self.device)

    def train(self, token: str, specs: list[RunSpec]) -> None:
        ids = {spec.job_id for spec in specs}
        outbox: list[Any] = []
        with self.lock:
            self.outboxes = {token: outbox}  # the last run's messages go: its relay has read them all

        def send(message: Any) -> None:
            with self.lock:
                outbox.append(message)

        with self.pauses.of(specs) as pause:
            _train([_here(spec) for spec in specs], self.device, send, _StopFlag(ids, self.stopped, self.lock), {},
                   pause, ThreadShare(self.threads))

    def poll(self, token: str, start: int) -> list[Any]:
        """Run `token`'s messages from `start` on (none yet when its train() has not begun)."""
        with self.lock:
            return self.outboxes.get(token, [])[start:]

    def stop(self, job_id: int) -> None:
        with self.lock:
            self.stopped.add(job_id)

    def slow_motion(self, job_id: int, action: str) -> None:
        self.pauses.command(job_id, action)


def _here(spec: RunSpec) -> RunSpec:
    """The MNIST folder the server named, or this machine's $MNIST_DIR when that folder is not here."""
    if spec.data_dir and not Path(spec.data_dir).exists() and os.environ.get("MNIST_DIR"):
        return replace(spec, data_dir=os.environ["MNIST_DIR"])
    return spec


class OrderClient:
    """This server's handle on the cluster-wide order (core.serving.cluster_order): one named, detached
    Ray actor that every server of the cluster finds by name. The server beats every BEAT_S, so that
    its running tickets are not taken for a crashed server's."""

    BEAT_S = 5.0

    def __init__(self, ray: Any) -> None:
        from core.serving.cluster_order import ORDER_NAME, ORDER_NAMESPACE, ClusterOrder

        self._ray, self.server = ray, uuid.uuid4().hex
        self._actor = ray.remote(num_cpus=0)(ClusterOrder).options(
            name=ORDER_NAME, namespace=ORDER_NAMESPACE, lifetime="detached", get_if_exists=True).remote()
        self._closed = threading.Event()
        threading.Thread(target=self._beat, name="cluster-order-beat", daemon=True).start()

    def _call(self, method: str, *args: Any) -> Any:
        return self._ray.get(getattr(self._actor, method).remote(self.server, *args), timeout=30)

    def join(self, jobs: int, estimate_s: float, student: str = "", name: str = "", configs: list[Any] | None = None) -> int:
        return self._call("join", jobs, estimate_s, student, name, configs)

    def queued(self) -> list[tuple[str, Any]]:
        return self._call("queued")

    def room(self) -> tuple[int, int]:
        return tuple(self._call("room"))

    def leave(self, ticket: int) -> None:
        self._call("leave", ticket)

    def finish(self, ticket: int) -> None:
        self._call("finish", ticket)

    def try_start(self, ticket: int, capacity: int) -> bool:
        return self._call("try_start", ticket, capacity)

    def next_start(self, capacity: int) -> int | None:
        return self._call("next_start", capacity)

    def position(self, ticket: int | None) -> tuple[int, float]:
        return tuple(self._call("position", ticket))

    def close(self) -> None:
        self._closed.set()

    def _beat(self) -> None:
        # until closed, or Ray shut down (a call then would start a new Ray session of its own)
        while not self._closed.wait(self.BEAT_S) and self._ray.is_initialized():
            try:
                self._actor.beat.remote(self.server)
            except Exception:  # noqa: BLE001  (a beat that cannot be sent is tried again)
                pass


def store_key(db: str | None) -> str:
    """A run store's name on the live board: run ids are unique within one store, and the store's own name (a
    PostgreSQL URL holds its password) must not travel to every server's board."""
    return hashlib.sha256(str(db).encode()).hexdigest()[:16]


class LivePublisher:
    """What one run's actor sends, passed on to the cluster's live board (core.serving.cluster_order.LiveRuns)
    about once a second, so that every server's pages can watch the run, not only this server's."""

    EVERY_S = 1.0

    def __init__(self, board: Any, stores: dict[int, str]) -> None:
        self.board, self.stores = board, stores  # job -> store_key of the store it records into
        self.keys: dict[int, tuple[str, int]] = {}  # job -> its key on the board, once it has a stored run
        self.state: dict[int, dict[str, Any]] = {}
        self.batches: dict[int, list[dict[str, Any]]] = {}
        self.epochs: dict[int, list[dict[str, Any]]] = {}
        self.sent_at = 0.0

    def add(self, job_id: int, message: Any) -> None:
        if isinstance(message, Started) and message.run_id is not None:
            self.keys[job_id] = (self.stores.get(job_id, ""), message.run_id)
            self.state[job_id] = {"params": message.params, "device": message.device, "status": "running",
                                  "progress": 0.0}
        elif isinstance(message, BatchEvent):
            self.batches.setdefault(job_id, []).append(
                {"step": message.step, "epoch": message.epoch, "loss": message.loss, "acc": message.acc,
                 "lr": message.lr, "progress": message.step / message.total_steps})
        elif isinstance(message, EpochEvent):
            self.epochs.setdefault(job_id, []).append(message.row())
        elif isinstance(message, (DoneEvent, Failed)):
            self._publish(job_id, ended=True)

    def flush(self) -> None:
        """Publish what came since the last time, at most once every EVERY_S."""
        now = time.monotonic()
        if now - self.sent_at < self.EVERY_S:
            return
        self.sent_at = now
        for job_id in list(self.keys):
            self._publish(job_id)

    def end(self) -> None:
        """Every job still on the board has ended (its actor too, perhaps)."""
        for job_id in list(self.keys):
            self._publish(job_id, ended=True)

    def _publish(self, job_id: int, ended: bool = False) -> None:
        key = self.keys.get(job_id)
        if key is None or self.board is None:
            return
        batches, epochs = self.batches.pop(job_id, []), self.epochs.pop(job_id, [])
        state = self.state[job_id]
        if batches:
            state["progress"] = batches[-1]["progress"]
        if ended:
            state["status"] = "ended"
            del self.keys[job_id]  # published for the last time
        try:
            self.board.publish.remote(key, dict(state), batches, epochs)
        except Exception:  # noqa: BLE001  (the live board is a view: the run goes on without it)
            pass


class RayExecutor:
    """Runs on a Ray cluster, `slots` at a time (the cluster's CPUs / cpus_per_run, or its GPUs, read again
    every RESOURCES_EVERY_S, so a node that joins or leaves counts without a click). Actors are kept warm
    between runs: a run takes one that has imported torch and loaded MNIST, and gives it back after; a dead
    one is replaced. A warm actor holds its CPU, so the pool hands its idle actors back after IDLE_S, and at
    once when another server of the cluster has runs that wait."""

    def __init__(self, address: str, cpus_per_run: int = DEFAULT_CPUS_PER_RUN) -> None:
        self.address, self.cpus_per_run = address, max(1, cpus_per_run)
        self._ray = connect(address)
        self.gpus, self._slots, self._resources_at = 0, 1, 0.0
        self._read_resources()
        self._actor_class = self._ray.remote(max_concurrency=4)(TrainActor)
        self._running: dict[int, tuple[Any, set[int]]] = {}  # slot -> (actor, its jobs)
        self._pids: dict[int, int] = {}  # slot -> its actor's process
        self._idle: list[tuple[Any, float]] = []  # warm actors between runs, with when each was last given back
        self._warm_folder: tuple[str | None, bool] | None = None  # what a new warm actor loads
        self.order = OrderClient(self._ray)  # one queue order for every server of this cluster
        from core.serving.cluster_order import LIVE_NAME, ORDER_NAMESPACE, LiveRuns

        self.live_board = self._ray.remote(num_cpus=0)(LiveRuns).options(
            name=LIVE_NAME, namespace=ORDER_NAMESPACE, lifetime="detached", get_if_exists=True).remote()
        self._lock = threading.Lock()
        self._take_lock = threading.Lock()
        self._early_stops: set[int] = set()  # jobs stopped before their actor was found: told once it is
        self._closed = threading.Event()
        self.started_actors = 0  # actors this server asked the cluster for (the benchmark reports it)
        threading.Thread(target=self._keep_pool, name="ray-pool", daemon=True).start()

    @property
    def slots(self) -> int:
        """The size last read: never a remote call, since pages and the queue read it under their locks (the
        pool's thread reads the cluster's size again every RESOURCES_EVERY_S)."""
        return self._slots

    def _read_resources(self) -> None:
        self._resources_at = time.monotonic()
        try:
            resources = self._ray.cluster_resources()
        except Exception:  # noqa: BLE001  (the last size stands until the cluster answers again)
            return
        self.gpus = int(resources.get("GPU", 0))
        self._slots = self.gpus or max(1, int(resources.get("CPU", 1)) // self.cpus_per_run)

    def describe(self) -> str:
        nodes = self._nodes()
        slots = self.slots
        unit = counted(self.gpus, "GPU") if self.gpus else counted(slots * self.cpus_per_run, "CPU")
        where = f"{counted(len(nodes), 'node')} on {counted(self.machines(), 'machine')}"
        return f"Ray cluster at {self.address}: {where}, {unit}, {counted(slots, 'run')} at a time"

    def machines(self) -> int:
        """Distinct machines (a node's address): runs on another machine record into the store from there."""
        return len({n.get("NodeManagerAddress") for n in self._nodes()})

    def _nodes(self) -> list[dict[str, Any]]:
        return [n for n in self._ray.nodes() if n.get("Alive")]

    def start(self) -> None:
        """Warm as many actors as the cluster trains runs at once, so the first runs do not wait for torch."""
        self._fill_pool()

    def warm(self, data_dir: str | None, download: bool) -> None:
        """Fill the pool, and have every warm actor load MNIST on its machine (new ones load it as they start)."""
        self._warm_folder = (data_dir, download)
        with self._lock:
            actors = [actor for actor, _ in self._idle]
        for actor in actors:
            actor.warm.remote(data_dir, download)
        self._fill_pool()

    def _new_actor(self) -> Any:
        options = {"num_gpus": 1, "num_cpus": 1} if self.gpus else {"num_cpus": self.cpus_per_run}
        actor = self._actor_class.options(max_restarts=0, **options).remote(None, self.cpus_per_run)
        self.started_actors += 1
        if self._warm_folder is not None:
            actor.warm.remote(*self._warm_folder)
        return actor

    def _fill_pool(self) -> list[Any]:
        """Warm actors up to the room the cluster has free now (another server's may hold the rest); the new ones."""
        try:
            free = int(self._ray.available_resources().get("GPU" if self.gpus else "CPU", 0)
                       // (1 if self.gpus else self.cpus_per_run))
        except Exception:  # noqa: BLE001  (the cluster does not answer: warm nothing now)
            return []
        with self._lock:
            missing = min(free, self.slots - len(self._idle) - len(self._running))
            new = [self._new_actor() for _ in range(max(0, missing))]
            self._idle += [(actor, time.monotonic()) for actor in new]
        return new

    def _take_actor(self) -> tuple[Any, tuple[int, str]]:
        """The first warm actor to answer (a dead one is replaced; one still starting or not yet placed stays
        in the pool), else a fresh one: (actor, (pid, host))."""
        ray = self._ray
        with self._take_lock:  # one slot at a time: another slot's run must not find the pool empty meanwhile
            with self._lock:
                idle, self._idle = self._idle, []
            calls = {actor.hello.remote(): (actor, since) for actor, since in idle}
            while calls:
                ready, _ = ray.wait(list(calls), num_returns=1, timeout=WARM_HELLO_S)
                if not ready:
                    break
                actor, _ = calls.pop(ready[0])
                try:
                    answer = ray.get(ready[0])
                except Exception:  # noqa: BLE001  (a dead or lost actor: the next one)
                    ray.kill(actor, no_restart=True)
                    continue
                with self._lock:
                    self._idle += list(calls.values())
                return actor, answer
            with self._lock:  # none answered in time: they stay (they may be placed later); a fresh one is asked for
                self._idle += list(calls.values())
        actor = self._new_actor()
        try:
            return actor, ray.get(actor.hello.remote(), timeout=READY_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            ray.kill(actor, no_restart=True)
            raise WorkerLost(f"no machine of the Ray cluster took the run within {READY_TIMEOUT_S:.0f} s") from None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            raise WorkerLost(f"a Ray worker died as it started ({_short(exc)})") from None

    def _keep_pool(self) -> None:
        """The pool's thread: read the cluster's size again now and then, and hand idle actors back."""
        while not self._closed.wait(KEEP_EVERY_S) and self._ray.is_initialized():
            try:
                if time.monotonic() - self._resources_at > RESOURCES_EVERY_S:
                    self._read_resources()
                self._hand_back_idle()
            except Exception:  # noqa: BLE001  (this thread must not die: the idle actors would keep their CPUs)
                pass

    def _hand_back_idle(self) -> None:
        """Idle actors go back after IDLE_S; and at once those the cluster's runs need: every one when another
        server's runs wait, else as many as the runs training everywhere leave no room for."""
        try:
            training, waiting_elsewhere = self.order.room()
        except Exception:  # noqa: BLE001  (the order cannot be read now: keep the pool as it is)
            training, waiting_elsewhere = 0, 0
        now = time.monotonic()
        with self._lock:
            fresh = [(a, since) for a, since in self._idle if now - since <= IDLE_S]
            keep = 0 if waiting_elsewhere else max(0, self.slots - training)
            kept = sorted(fresh, key=lambda item: item[1], reverse=True)[:keep]
            leaving = [a for a, _ in self._idle if all(a is not k for k, _ in kept)]
            self._idle = kept
        for actor in leaving:
            self._ray.kill(actor, no_restart=True)

    def warm_actors(self) -> int:
        with self._lock:
            return len(self._idle)

    def pace(self) -> float | None:
        return None

    def run(self, slot: int, specs: list[RunSpec], on_message: Callable[[int, Message], None]) -> None:
        ray = self._ray
        actor, (pid, host) = self._take_actor()
        ids = {spec.job_id for spec in specs}
        with self._lock:
            self._running[slot] = (actor, ids)
            self._pids[slot] = pid
            early, self._early_stops = ids & self._early_stops, self._early_stops - ids
        for job_id in early:
            actor.stop.remote(job_id)  # before train(): its stop flag is set from the first batch
        where, healthy = f"the Ray worker on {host} (pid {pid})", False
        try:
            token = uuid.uuid4().hex
            finished = actor.train.remote(token, list(specs))
            self._relay(actor, token, finished, specs, on_message)
            ray.get(finished, timeout=SILENT_S)  # its train() has returned: nothing more can reach the next run
            healthy = True
        except ray.exceptions.GetTimeoutError:
            raise WorkerLost(f"{where} stopped answering for {SILENT_S:.0f} s") from None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.ObjectLostError) as exc:
            raise WorkerLost(f"{where} died ({_short(exc)})") from None
        finally:
            with self._lock:
                self._running.pop(slot, None)
                self._pids.pop(slot, None)
                keep = healthy and not self._closed.is_set() and len(self._idle) + len(self._running) < self.slots
                if keep:  # warm for the next run
                    self._idle.append((actor, time.monotonic()))
            if not keep:
                ray.kill(actor, no_restart=True)

    def live(self, run_id: int, db: str) -> dict[str, Any] | None:
        """A run of store `db` training anywhere on the cluster, as the live board has it (None when it has not)."""
        try:
            return self._ray.get(self.live_board.read.remote((store_key(db), run_id)), timeout=10)
        except Exception:  # noqa: BLE001  (the live board is a view: the page says it cannot be read)
            return None

    def _relay(self, actor: Any, token: str, finished: Any, specs: list[RunSpec],
               on_message: Callable[[int, Message], None]) -> None:
        """Pass the actor's messages on in order until every job has ended (or the actor has), and on to
        the cluster's live board."""
        running = {spec.job_id for spec in specs}
        live = LivePublisher(self.live_board, {spec.job_id: store_key(spec.db) for spec in specs})
        try:
            self._relay_until_done(actor, token, finished, running, on_message, live)
        finally:
            live.end()  # also when the actor died: every server's pages stop showing it as training

    def _relay_until_done(self, actor: Any, token: str, finished: Any, running: set[int],
                          on_message: Callable[[int, Message], None], live: LivePublisher) -> None:
        ray, cursor = self._ray, 0

        def tell(job_id: int, message: Message) -> None:  # this server's pages, and every server's
            on_message(job_id, message)
            live.add(job_id, message)

        while running:
            live.flush()
            messages = ray.get(actor.poll.remote(token, cursor), timeout=SILENT_S)
            cursor += len(messages)
            for message in messages:
                job_id, message = (message.job_id, message.event) if isinstance(message, Tagged) \
                    else (message.job_id, message)
                tell(job_id, message)
                if isinstance(message, (DoneEvent, Failed)):
                    running.discard(job_id)
            if messages or not running:
                continue
            done, _ = ray.wait([finished], timeout=POLL_S)
            if done:
                ray.get(finished)  # raises if the actor died
                for message in ray.get(actor.poll.remote(token, cursor)):  # the last ones, sent before it returned
                    job_id = message.job_id
                    tell(job_id, message.event if isinstance(message, Tagged) else message)
                    running.discard(job_id)
                for job_id in running:
                    tell(job_id, Failed(job_id, "the Ray worker ended the run without finishing it"))
                return

    def stop(self, slot: int, job_id: int) -> None:
        with self._lock:
            actor, _ = self._running.get(slot, (None, set()))
            if actor is None:  # its actor is still being found: it is told as soon as it is
                self._early_stops.add(job_id)
        if actor is not None:
            actor.stop.remote(job_id)

    def slow_motion(self, slot: int, job_id: int, action: str) -> None:
        with self._lock:
            actor, _ = self._running.get(slot, (None, set()))
        if actor is not None:
            actor.slow_motion.remote(job_id, action)

    def kill_worker(self, slot: int) -> int | None:
        """Kill a slot's actor process as a crash would (tests, benchmark; the actor must be on this
        machine); its pid."""
        pid = self._pids.get(slot)
        if pid is not None:
            os.kill(pid, 9)
        return pid

    def close(self) -> None:
        self._closed.set()
        self.order.close()
        with self._lock:
            actors = [actor for actor, _ in self._running.values()] + [actor for actor, _ in self._idle]
            self._idle = []
        for actor in actors:
            self._ray.kill(actor, no_restart=True)


class UnavailableExecutor:
    """Stands in for a cluster that could not be joined when falling back to this machine was not
    chosen: the queue refuses every run with the reason (RunQueue.problems), and trains none here."""

    slots = 1

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def start(self) -> None: ...

    def warm(self, data_dir: str | None, download: bool) -> None: ...

    def pace(self) -> float | None:
        return None

    def run(self, slot: int, specs: list[RunSpec], on_message: Callable[[int, Message], None]) -> None:
        for spec in specs:
            on_message(spec.job_id, Failed(spec.job_id, self.problem))

    def stop(self, slot: int, job_id: int) -> None: ...

    def slow_motion(self, slot: int, job_id: int, action: str) -> None: ...

    def close(self) -> None: ...


def _short(exc: BaseException) -> str:
    """An error of Ray's, short, and without the paths of the machine it happened on (a page shows it)."""
    text = re.sub(r"(?<![\w.])/[\w./@:+-]+", "<path>", " ".join(str(exc).split()))
    return text[:200] + ("..." if len(text) > 200 else "")


def make_executor(choice: ClusterChoice, local: Callable[[], Executor], warn: Callable[[str], None]) -> Executor:
    """The executor `choice` asks for: this machine's (`local()`), or a Ray cluster. A cluster that
    cannot be reached raises ClusterError, unless the choice allows falling back to this machine
    (then `warn` says so)."""
    if choice.address is None:
        return local()
    try:
        return RayExecutor(choice.address, choice.cpus_per_run)
    except ClusterError as exc:
        if not choice.fallback_local:
            raise
        warn(f"{exc}. Training on this machine instead, as chosen.")
        return local()


def local_executor() -> ProcessExecutor:
    from core.serving.run_queue import default_executor

    return default_executor()

