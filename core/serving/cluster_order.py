"""One queue order for every app server of a class (issue: several servers, one cluster).

Each server keeps its own `RunQueue` (what its pages read), but when its runs train on a Ray cluster
they also take a ticket in one `ClusterOrder`, a named Ray actor that every server of the cluster
shares. A server starts a run only when its ticket's turn has come: the first ticket not yet started,
with fewer tickets training than the cluster has room for. So runs start in the order they were
submitted across all servers, and a queued run's place and expected start count the other servers'
runs too. A server that stops answering (crashed, unplugged) has its tickets dropped after
`SILENT_S`, so it cannot hold the class up. Plain Python, testable without Ray.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

SILENT_S = 30.0  # a server not heard from for this long has its tickets dropped
ORDER_NAME, ORDER_NAMESPACE = "lifecycle-order", "lifecycle"


@dataclass
class Ticket:
    id: int
    server: str
    jobs: int  # runs in it (seeds trained side by side take one slot)
    estimate_s: float
    started_at: float | None = None


@dataclass
class ClusterOrder:
    tickets: list[Ticket] = field(default_factory=list)  # in the order they were taken
    heard: dict[str, float] = field(default_factory=dict)  # server -> when it last called
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def join(self, server: str, jobs: int, estimate_s: float) -> int:
        self._beat(server)
        ticket = Ticket(next(self._ids), server, jobs, estimate_s)
        self.tickets.append(ticket)
        return ticket.id

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

    def try_start(self, server: str, ticket_id: int, capacity: int) -> bool:
        """Start the ticket if its turn has come; True when it may train now."""
        self._beat(server)
        self._drop_silent()
        training = sum(1 for t in self.tickets if t.started_at is not None)
        first_waiting = next((t for t in self.tickets if t.started_at is None), None)
        if first_waiting is None or first_waiting.id != ticket_id or training >= capacity:
            return False
        first_waiting.started_at = time.time()
        return True

    def position(self, server: str, ticket_id: int | None) -> tuple[int, float]:
        """(runs ahead of the ticket across every server, their seconds left one after another);
        ticket None: of a run submitted now."""
        self._beat(server)
        now, ahead, seconds = time.time(), 0, 0.0
        for ticket in self.tickets:
            if ticket.id == ticket_id:
                break
            ahead += ticket.jobs
            spent = now - ticket.started_at if ticket.started_at is not None else 0.0
            seconds += max(0.0, ticket.estimate_s - spent)
        return ahead, seconds

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
