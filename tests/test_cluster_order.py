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
