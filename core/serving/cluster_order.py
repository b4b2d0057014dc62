"""One queue order for every app server of a class (issue: several servers, one cluster).

Each server keeps its own `RunQueue` (what its pages read), but when its runs train on a Ray cluster
they also take a ticket in one `ClusterOrder`, a named Ray actor that every server of the cluster
shares. A server starts a run only when its ticket's turn has come: the first ticket not yet started
in turn order, with fewer tickets training than the cluster has room for. Turns go round the students
of every server (a student's second run waits behind everyone's first, as on one machine), ties in the
order submitted, and a queued run's place and expected start count the other servers' runs too. A server that stops answering (crashed, unplugged) has its tickets dropped after
`SILENT_S`, so it cannot hold the class up. Plain Python, testable without Ray.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

SILENT_S = 30.0  # a server not heard from for this long has its tickets dropped
# The order and the live board are detached actors: they outlive the servers, and so an upgrade of the app.
# Their names carry the version of their calls, so that servers of a new version never call an old actor.
CALLS_VERSION = 2
ORDER_NAME, ORDER_NAMESPACE = f"lifecycle-order-{CALLS_VERSION}", "lifecycle"


@dataclass
class Ticket:
    id: int
    server: str
    jobs: int  # runs in it (seeds trained side by side take one slot)
    estimate_s: float
    started_at: float | None = None
    student: str = ""  # whose runs: the turns go round the students (as on one machine, core.serving.run_queue)
    name: str = ""  # the name the student typed, for the board's list of queued runs
    configs: list[Any] = field(default_factory=list)  # what each of its runs trains (TrainConfig), for that list


@dataclass
class ClusterOrder:
    tickets: list[Ticket] = field(default_factory=list)  # in the order they were taken
    heard: dict[str, float] = field(default_factory=dict)  # server -> when it last called
    served: dict[str, int] = field(default_factory=dict)  # student -> tickets started since the order was empty
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def join(self, server: str, jobs: int, estimate_s: float, student: str = "", name: str = "",
             configs: list[Any] | None = None) -> int:
        self._beat(server)
        ticket = Ticket(next(self._ids), server, jobs, estimate_s, student=student, name=name, configs=list(configs or []))
        self.tickets.append(ticket)
        return ticket.id

    def in_turn(self) -> list[Ticket]:
        """The tickets training, then the waiting ones in the order they will start: round-robin across
        students (a student's place counts the tickets they started since the order was last empty and
        their tickets waiting before it), ties in the order taken."""
        earlier: dict[str, int] = {}
        ranked = []
        for ticket in (t for t in self.tickets if t.started_at is None):
            ranked.append((self.served.get(ticket.student, 0) + earlier.get(ticket.student, 0), ticket.id, ticket))
            earlier[ticket.student] = earlier.get(ticket.student, 0) + 1
        return [t for t in self.tickets if t.started_at is not None] + [t for *_, t in sorted(ranked, key=lambda r: r[:2])]

    def leave(self, server: str, ticket_id: int, jobs: int = 1) -> None:
        """`jobs` of the ticket's runs left (cancelled, or ended); the ticket goes with its last one."""
        self._beat(server)
        for ticket in self.tickets:
            if ticket.id == ticket_id:
                ticket.jobs -= jobs
                if ticket.jobs <= 0:
                    self.tickets.remove(ticket)
                return

    def finish(self, server: str, ticket_id: int) -> None:
        self._beat(server)
        self.tickets = [t for t in self.tickets if t.id != ticket_id]
        if not self.tickets:
            self.served.clear()  # an empty order: the next class starts even

    def try_start(self, server: str, ticket_id: int, capacity: int) -> bool:
        """Start the ticket if its turn has come; True when it may train now."""
        return self.next_start(server, capacity, ticket_id) == ticket_id

    def next_start(self, server: str, capacity: int, ticket_id: int | None = None) -> int | None:
        """Start the next ticket in turn if it is this server's (and `ticket_id`, when given) and the
        cluster has room; its id, else None. A server asks which of its tickets may start, not whether
        one chosen by it may: its own order and the cluster's may differ."""
        self._beat(server)
        self._drop_silent()
        training = sum(1 for t in self.tickets if t.started_at is not None)
        first_waiting = next((t for t in self.in_turn() if t.started_at is None), None)
        if (first_waiting is None or first_waiting.server != server or training >= capacity
                or ticket_id not in (None, first_waiting.id)):
            return None
        first_waiting.started_at = time.time()
        self.served[first_waiting.student] = self.served.get(first_waiting.student, 0) + 1
        return first_waiting.id

    def position(self, server: str, ticket_id: int | None) -> tuple[int, float]:
        """(runs ahead of the ticket across every server, their seconds left one after another);
        ticket None: of a run submitted now."""
        self._beat(server)
        now, ahead, seconds = time.time(), 0, 0.0
        for ticket in self.in_turn():
            if ticket.id == ticket_id:
                break
            ahead += ticket.jobs
            spent = now - ticket.started_at if ticket.started_at is not None else 0.0
            seconds += max(0.0, ticket.estimate_s - spent)
        return ahead, seconds

    def queued(self, server: str) -> list[tuple[str, Any]]:
        """Every server's waiting runs in the order they will start: (the student's name, its config)."""
        self._beat(server)
        return [(t.name, config) for t in self.in_turn() if t.started_at is None for config in t.configs]

    def room(self, server: str) -> tuple[int, int]:
        """(tickets training on the cluster now, runs of other servers waiting for their turn): a server's idle
        warm actors hold cluster CPUs, and make room when the runs that train or wait need them."""
        self._beat(server)
        return (sum(1 for t in self.tickets if t.started_at is not None),
                sum(t.jobs for t in self.tickets if t.started_at is None and t.server != server))

    def beat(self, server: str) -> None:
        self._beat(server)

    def _beat(self, server: str) -> None:
        self.heard[server] = time.time()

    def _drop_silent(self) -> None:
        now = time.time()
        silent = {s for s, at in self.heard.items() if now - at > SILENT_S}
        if silent:
            self.tickets = [t for t in self.tickets if t.server not in silent]
            for server in silent:
                del self.heard[server]


LIVE_NAME = f"lifecycle-live-{CALLS_VERSION}"
LIVE_BATCHES = 2000  # the batches kept per run: the live chart shows the last ones
LIVE_KEEP_S = 600.0  # an ended run stays readable this long (a page that looks a little late still sees its end)


@dataclass
class LiveRuns:
    """The live state of every run training on the cluster, by (store, stored run id), for every server's pages: the
    server that relays a run publishes what its actor sends (core.serving.cluster.RayExecutor), any server
    reads it. A named Ray actor, like the order; plain Python, testable without Ray."""

    runs: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    def publish(self, run: tuple[str, int], state: dict[str, Any], batches: list[dict[str, Any]],
                epochs: list[dict[str, Any]]) -> None:
        entry = self.runs.setdefault(run, {"batches": [], "epochs": [], "status": "running"})
        entry.update(state)
        entry["batches"] = (entry["batches"] + batches)[-LIVE_BATCHES:]
        entry["epochs"] = entry["epochs"] + epochs
        entry["at"] = time.time()
        self._forget_ended()

    def read(self, run: tuple[str, int]) -> dict[str, Any] | None:
        entry = self.runs.get(run)
        return None if entry is None else {**entry, "batches": list(entry["batches"]), "epochs": list(entry["epochs"])}

    def _forget_ended(self) -> None:
        """Ended runs after LIVE_KEEP_S; and runs not heard of for as long (their server is gone)."""
        now = time.time()
        for run_id in [r for r, e in self.runs.items() if now - e["at"] > LIVE_KEEP_S]:
            del self.runs[run_id]
