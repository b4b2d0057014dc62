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

import os
import socket
import threading
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
    Tagged,
    WorkerLost,
    _StopFlag,
    _train,
)
from core.training.events import DoneEvent
from core.words import counted

POLL_S = 0.2  # how often the server asks a running actor for new events
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
        self.device, self.outbox, self.stopped = device, [], set()
        self.lock = threading.Lock()
        self.pauses = Pauses()

    def hello(self) -> tuple[int, str]:
        """(pid, the machine's name): for messages, and for tests that kill it as a crash would."""
        return os.getpid(), socket.gethostname()

    def train(self, specs: list[RunSpec]) -> None:
        ids = {spec.job_id for spec in specs}
        with self.pauses.of(specs) as pause:
            _train([_here(spec) for spec in specs], self.device, self._send, _StopFlag(ids, self.stopped, self.lock), {},
                   pause)

    def poll(self, start: int) -> list[Any]:
        with self.lock:
            return self.outbox[start:]

    def stop(self, job_id: int) -> None:
        with self.lock:
            self.stopped.add(job_id)

    def slow_motion(self, job_id: int, action: str) -> None:
        self.pauses.command(job_id, action)

    def _send(self, message: Any) -> None:
        with self.lock:
            self.outbox.append(message)


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

    def join(self, jobs: int, estimate_s: float, student: str = "") -> int:
        return self._call("join", jobs, estimate_s, student)

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


class RayExecutor:
    """Runs on a Ray cluster, `slots` at a time (the cluster's CPUs / cpus_per_run, or its GPUs)."""

    def __init__(self, address: str, cpus_per_run: int = DEFAULT_CPUS_PER_RUN) -> None:
        self.address, self.cpus_per_run = address, max(1, cpus_per_run)
        self._ray = connect(address)
        resources = self._ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self._slots = self.gpus or max(1, int(resources.get("CPU", 1)) // self.cpus_per_run)
        self._actor_class = self._ray.remote(max_concurrency=4)(TrainActor)
        self._running: dict[int, tuple[Any, set[int]]] = {}  # slot -> (actor, its jobs)
        self._pids: dict[int, int] = {}  # slot -> its actor's process
        self.order = OrderClient(self._ray)  # one queue order for every server of this cluster
        self._lock = threading.Lock()

    @property
    def slots(self) -> int:
        return self._slots

    def describe(self) -> str:
        nodes = self._nodes()
        unit = counted(self.gpus, "GPU") if self.gpus else counted(self._slots * self.cpus_per_run, "CPU")
        where = f"{counted(len(nodes), 'node')} on {counted(self.machines(), 'machine')}"
        return f"Ray cluster at {self.address}: {where}, {unit}, {counted(self._slots, 'run')} at a time"

    def machines(self) -> int:
        """Distinct machines (a node's address): runs on another machine record into the store from there."""
        return len({n.get("NodeManagerAddress") for n in self._nodes()})

    def _nodes(self) -> list[dict[str, Any]]:
        return [n for n in self._ray.nodes() if n.get("Alive")]

    def start(self) -> None:
        """Nothing to start ahead: each run asks the cluster for its own actor."""

    def warm(self, data_dir: str | None, download: bool) -> None:
        """Each run's actor loads MNIST itself, on its machine."""

    def pace(self) -> float | None:
        return None

    def run(self, slot: int, specs: list[RunSpec], on_message: Callable[[int, Message], None]) -> None:
        ray = self._ray
        options = {"num_gpus": 1, "num_cpus": 1} if self.gpus else {"num_cpus": self.cpus_per_run}
        actor = self._actor_class.options(max_restarts=0, **options).remote(None, self.cpus_per_run)
        ids = {spec.job_id for spec in specs}
        with self._lock:
            self._running[slot] = (actor, ids)
        where = "a Ray worker"
        try:
            try:
                pid, host = ray.get(actor.hello.remote(), timeout=READY_TIMEOUT_S)
            except ray.exceptions.GetTimeoutError:
                raise WorkerLost(f"no machine of the Ray cluster took the run within {READY_TIMEOUT_S:.0f} s") from None
            where = f"the Ray worker on {host} (pid {pid})"
            self._pids[slot] = pid
            finished = actor.train.remote(list(specs))
            self._relay(actor, finished, ids, on_message)
        except ray.exceptions.GetTimeoutError:
            raise WorkerLost(f"{where} stopped answering for {SILENT_S:.0f} s") from None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.ObjectLostError) as exc:
            raise WorkerLost(f"{where} died ({_short(exc)})") from None
        finally:
            with self._lock:
                self._running.pop(slot, None)
                self._pids.pop(slot, None)
            ray.kill(actor, no_restart=True)

    def _relay(self, actor: Any, finished: Any, ids: set[int], on_message: Callable[[int, Message], None]) -> None:
        """Pass the actor's messages on in order until every job has ended (or the actor has)."""
        ray, cursor, running = self._ray, 0, set(ids)
        while running:
            messages = ray.get(actor.poll.remote(cursor), timeout=SILENT_S)
            cursor += len(messages)
            for message in messages:
                job_id, message = (message.job_id, message.event) if isinstance(message, Tagged) \
                    else (message.job_id, message)
                on_message(job_id, message)
                if isinstance(message, (DoneEvent, Failed)):
                    running.discard(job_id)
            if messages or not running:
                continue
            done, _ = ray.wait([finished], timeout=POLL_S)
            if done:
                ray.get(finished)  # raises if the actor died
                for message in ray.get(actor.poll.remote(cursor)):  # the last ones, sent before it returned
                    job_id = message.job_id
                    on_message(job_id, message.event if isinstance(message, Tagged) else message)
                    running.discard(job_id)
                for job_id in running:
                    on_message(job_id, Failed(job_id, "the Ray worker ended the run without finishing it"))
                return

    def stop(self, slot: int, job_id: int) -> None:
        with self._lock:
            actor, _ = self._running.get(slot, (None, set()))
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
        self.order.close()
        with self._lock:
            actors = [actor for actor, _ in self._running.values()]
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
    text = " ".join(str(exc).split())
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
    from core.serving.run_queue import default_devices

    return ProcessExecutor(default_devices())

