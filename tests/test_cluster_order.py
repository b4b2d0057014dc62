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


def test_the_queued_list_and_the_room_count_every_servers_runs():
    order = ClusterOrder()
    a = order.join("A", 1, 60, "s1", "ada", ["config a"])
    order.join("B", 2, 60, "s2", "bo", ["config b1", "config b2"])
    assert order.queued("A") == [("ada", "config a"), ("bo", "config b1"), ("bo", "config b2")]
    assert order.room("A") == (0, 2) and order.room("B") == (0, 1)  # (training anywhere, waiting elsewhere)
    order.try_start("A", a, capacity=4)
    assert order.queued("B") == [("bo", "config b1"), ("bo", "config b2")] and order.room("B") == (1, 0)


def test_the_live_board_keeps_each_stores_runs_apart_and_forgets_ended_ones(monkeypatch):
    from core.serving.cluster import LivePublisher
    from core.serving.cluster_order import LIVE_KEEP_S, LiveRuns
    from core.serving.executor import Started
    from core.training.events import BatchEvent, DoneEvent

    now = [1000.0]
    monkeypatch.setattr(order_module.time, "time", lambda: now[0])
    board = LiveRuns()

    class Remote:  # the board as a Ray actor handle: board.publish.remote(...)
        publish = type("Call", (), {"remote": staticmethod(board.publish)})

    one, other = LivePublisher(Remote, {1: "store-a"}), LivePublisher(Remote, {1: "store-b"})
    for publisher in (one, other):  # run 7 of two different stores: two runs, not one
        publisher.add(1, Started(1, 7, 5648, "CPU (1 thread)"))
    one.add(1, BatchEvent(1, 10, 100, 10, 1000, 0.5, 90.0, 0.1, 1000.0))
    one.sent_at = 0.0
    one.flush()
    assert board.read(("store-a", 7))["batches"][0]["loss"] == 0.5 and board.read(("store-a", 7))["status"] == "running"
    assert board.read(("store-b", 7)) is None  # nothing sent yet for it: its first flush comes later
    one.add(1, DoneEvent("completed", [], 5648, "CPU (1 thread)", 1.0))
    assert board.read(("store-a", 7))["status"] == "ended"
    other.end()  # its actor died: every server's pages stop showing it as training
    assert board.read(("store-b", 7))["status"] == "ended"
    now[0] += LIVE_KEEP_S + 1
    board.publish(("store-c", 1), {"status": "running"}, [], [])  # any publish forgets what is old
    assert board.read(("store-a", 7)) is None and board.read(("store-b", 7)) is None


def test_a_train_actor_keeps_a_stop_and_each_runs_messages_in_whatever_order_its_calls_run(tiny_mnist_root):
    """A Ray actor answers its calls in several threads, in no set order; and the pool asks every idle actor
    `hello` while it looks for one, so a slow actor's hello can run after the next run's stop. Neither that
    hello nor a poll of the last run may undo a stop or mix two runs' messages (the actor, without Ray)."""
    from core.serving.cluster import TrainActor
    from core.serving.executor import RunSpec, Tagged
    from core.training.config import TrainConfig

    def spec(job_id: int) -> RunSpec:
        config = TrainConfig.for_step(9, epochs=2, max_batches=2, device="cpu", log_every=1, seed=job_id)
        return RunSpec(job_id, config, str(tiny_mnist_root), False, record=False)

    def done(messages) -> object:
        (end,) = [m.event for m in messages if isinstance(m, Tagged) and m.event.kind == "done"]
        return end

    actor = TrainActor(None, 1)
    actor.train("first", [spec(1)])
    assert done(actor.poll("first", 0)).completed
    actor.stop(2)  # the next run's stop, sent as it starts...
    actor.hello()  # ...and a hello an earlier look at the pool sent, run only now
    assert actor.poll("second", 0) == []  # the next run's relay, polling before its train() has begun
    actor.train("second", [spec(2)])
    assert done(actor.poll("second", 0)).stopped
    assert actor.poll("first", 0) == []  # the last run's messages are gone, not served as this run's
