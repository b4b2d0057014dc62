"""The cluster-wide queue order that several app servers share (core.serving.cluster_order): runs start
in the order they were submitted across servers, never more than the cluster has room for; a
cancelled run leaves its place; a server that went silent cannot hold the class up."""

import pytest

import core.serving.cluster_order as order_module
from core.serving.cluster_order import ClusterOrder


def test_runs_start_in_submission_order_across_servers_within_the_clusters_room():
    order = ClusterOrder()
    a1 = order.join("A", 1, 60)
    b1 = order.join("B", 3, 40)  # three seeds side by side: one slot, three runs
    a2 = order.join("A", 1, 20)
    assert not order.try_start("A", a2, capacity=2)  # not its turn: a1 and b1 come first
    assert order.try_start("A", a1, capacity=2) and order.try_start("B", b1, capacity=2)
    assert not order.try_start("A", a2, capacity=2)  # its turn, but the cluster is full
    assert order.position("A", a2)[0] == 4  # a1, and b1's three seeds
    assert order.position("B", None)[0] == 5  # a run submitted now waits for all of them
    order.finish("A", a1)
    assert order.try_start("A", a2, capacity=2)


def test_the_expected_start_counts_what_the_runs_ahead_have_left(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(order_module.time, "time", lambda: now[0])
    order = ClusterOrder()
    a1, b1 = order.join("A", 1, 60), order.join("B", 1, 30)
    order.try_start("A", a1, capacity=1)
    now[0] += 45  # a1 has about 15 s left
    assert order.position("B", b1) == (1, pytest.approx(15))


def test_a_cancelled_run_leaves_its_place_and_a_group_keeps_the_rest():
    order = ClusterOrder()
    group = order.join("A", 2, 30)
    b1 = order.join("B", 1, 30)
    order.leave("A", group)  # one of the two seeds cancelled: the group stays, one run smaller
    assert order.position("B", b1)[0] == 1
    order.leave("A", group)
    assert order.position("B", b1)[0] == 0 and order.try_start("B", b1, capacity=1)


def test_a_silent_servers_tickets_are_dropped(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(order_module.time, "time", lambda: now[0])
    order = ClusterOrder()
    crashed = order.join("A", 1, 60)
    order.try_start("A", crashed, capacity=1)
    b1 = order.join("B", 1, 30)
    assert not order.try_start("B", b1, capacity=1)
    now[0] += order_module.SILENT_S - 1
    order.beat("B")
    assert not order.try_start("B", b1, capacity=1)  # A may only be slow
    now[0] += 2
    assert order.try_start("B", b1, capacity=1)  # A said nothing for SILENT_S: its run no longer counts


def test_turns_go_round_the_students_of_every_server_and_each_server_starts_only_its_own():
    order = ClusterOrder()
    ann = [order.join("A", 1, 30, "ann") for _ in range(3)]
    bob = order.join("B", 1, 30, "bob")
    cat = order.join("A", 1, 30, "cat")
    assert order.next_start("B", capacity=1) is None  # ann's first is next, and it is server A's
    assert order.next_start("A", capacity=1) == ann[0]
    order.finish("A", ann[0])
    # ann has had a turn: bob and cat come before her second, though they came after it
    assert [t.id for t in order.in_turn()] == [bob, cat, ann[1], ann[2]]
    assert order.position("A", ann[1])[0] == 2
    assert order.next_start("A", capacity=1) is None and order.next_start("B", capacity=1) == bob
    order.finish("B", bob)
    assert order.next_start("A", capacity=1) == cat
    order.finish("A", cat)
    for ticket in ann[1:]:
        order.finish("A", order.next_start("A", capacity=1))
    assert not order.tickets and not order.served  # an empty order forgets who was served


class LocalOrder:
    """One server's handle on a ClusterOrder in this process: what core.serving.cluster.OrderClient is
    to the named Ray actor."""

    def __init__(self, order: ClusterOrder, server: str) -> None:
        self.order, self.server = order, server

    def __getattr__(self, method: str):
        return lambda *args: getattr(self.order, method)(self.server, *args)


def test_two_servers_queues_start_their_runs_round_robin_through_one_order():
    from test_queue import GatedExecutor, student_job

    from core.serving.run_queue import RunQueue

    shared = ClusterOrder()
    executors = [GatedExecutor(), GatedExecutor()]
    queues = []
    for name, executor in zip("AB", executors):
        executor.order = LocalOrder(shared, name)
        queues.append(RunQueue(executor))
    try:
        ann = [queues[0].submit(student_job("ann", s)) for s in (1, 2)]
        bob = queues[1].submit(student_job("bob", 1))
        from conftest import wait_for

        wait_for(lambda: executors[0].started, 10)  # ann's first: server A's, first in turn
        assert executors[0].started == [[ann[0].id]]
        executors[0].release()  # ann's first ends: with one slot in all, bob's turn comes before ann's second
        wait_for(lambda: executors[1].started, 10)
        assert executors[1].started == [[bob.id]] and executors[0].started == [[ann[0].id]]
        executors[1].release()
        wait_for(lambda: len(executors[0].started) == 2, 10)
        assert executors[0].started[1] == [ann[1].id]
    finally:
        for executor in executors:
            executor.release(5)
