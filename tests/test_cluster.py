"""Runs on a Ray cluster: the server's queue hands each run to a Ray actor that the cluster places;
events stream back in order, Stop and Cancel work as on one machine, a killed worker interrupts its
run with the epochs it finished, a wrong address says which one, and results equal the same seed
trained alone. Against the cluster at LIFECYCLE_TEST_RAY (.ci/run starts a head and a second node
on loopback), recording into both store backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import RAY_CLUSTER, ROOT, ray_cluster_alone, require_or_skip, wait_for

from core.serving.cluster import (
    ClusterChoice,
    ClusterError,
    RayExecutor,
    connect,
    make_executor,
)
from core.serving.run_queue import Job, RunQueue
from core.serving.store import RunStore, RunTags
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.loop import run

pytestmark = RAY_CLUSTER


@pytest.fixture(scope="module")
def address() -> str:
    address = os.environ.get("LIFECYCLE_TEST_RAY")
    if not address:
        require_or_skip("a Ray cluster", "set LIFECYCLE_TEST_RAY=HOST:PORT of a running `ray start --head`")
    try:
        import ray  # noqa: F401
    except ImportError:
        require_or_skip("Ray", "pip install -r requirements-cluster.txt")
    with ray_cluster_alone():
        yield address


@pytest.fixture(scope="module")
def queue(address):
    q = RunQueue(RayExecutor(address))
    yield q
    q.close()


def quick(**kw) -> TrainConfig:
    base = dict(epochs=2, max_batches=3, device="cpu", log_every=1, seed=0, batch_size=128)
    return TrainConfig.for_step(9, **(base | kw))


def job(config: TrainConfig, root, **kw) -> Job:
    return Job(config, str(root), False, **kw)


def hold_paused(blockers: list[Job]) -> None:
    """Blockers that only hold their slot wait paused (slow motion) once they train: their CPU goes to the tests
    beside them. A paused run still holds its slot, and a Stop still ends it."""
    wait_for(lambda: all(b.snapshot().batches for b in blockers), 300)
    for b in blockers:
        assert b.slow_motion("pause") is None


def test_the_cluster_trains_queued_runs_and_each_equals_its_seed_alone(queue, mnist_root, store_at):
    assert queue.workers >= 2  # the test cluster has room for two runs at once
    jobs = [queue.submit(job(quick(seed=s), mnist_root, db=store_at)) for s in (1, 2, 3)]
    assert all(j.wait(300) for j in jobs)
    snaps = [j.snapshot() for j in jobs]
    assert [s.status for s in snaps] == ["completed"] * 3, [s.reason for s in snaps]
    data = load_mnist(str(mnist_root), download=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a cluster run (1 CPU): the same sums in the same order
    try:
        alone = {seed: run(quick(seed=seed), data).history for seed in (1, 2, 3)}
    finally:
        torch.set_num_threads(threads)
    for seed, snap in zip((1, 2, 3), snaps):
        assert [e["train_loss"] for e in snap.epochs] == [e.train_loss for e in alone[seed]]  # bit for bit
        assert [e["test_acc"] for e in snap.epochs] == [e.test_acc for e in alone[seed]]
        assert snap.batches and snap.batches[-1]["step"] == 6  # batches streamed back, not just epochs
    stored = RunStore(store_at).runs()
    assert sorted(r.seed for r in stored) == [1, 2, 3] and {r.status for r in stored} == {"completed"}
    assert {r.id for r in stored} == {s.run_id for s in snaps} and all(r.has_weights for r in stored)


def test_seeds_together_stop_and_cancel_work_as_on_one_machine(queue, mnist_root):
    room = queue.workers
    blockers = [queue.submit(job(quick(seed=7 + i, epochs=200), mnist_root)) for i in range(room)]  # fill every slot
    wait_for(lambda: all(b.snapshot().status == "running" for b in blockers))
    hold_paused(blockers[1:])  # the first trains on: its epoch below
    waiting = queue.submit_seeds([job(quick(seed=s), mnist_root, estimate_s=10) for s in (1, 2)])
    assert [j.snapshot().status for j in waiting] == ["queued", "queued"]
    assert [j.snapshot().ahead for j in waiting] == [room, room + 1]  # a queued run shows its place...
    assert waiting[0].snapshot().starts_in is not None  # ...and its expected start
    waiting[1].stop()  # cancelled before it started
    wait_for(lambda: len(blockers[0].snapshot().epochs) >= 1, 300)
    for b in blockers:
        b.stop()
    assert all(b.wait(120) for b in blockers) and waiting[0].wait(300)
    assert {b.snapshot().status for b in blockers} == {"stopped"}
    assert waiting[0].snapshot().status == "completed" and waiting[1].snapshot().status == "cancelled"


def test_a_killed_ray_worker_interrupts_its_run_and_keeps_its_epochs(queue, mnist_root, store_at):
    long = queue.submit(job(quick(seed=4, epochs=200, max_batches=2), mnist_root, db=store_at))
    wait_for(lambda: len(long.snapshot().epochs) >= 2, 300)
    slot = next(s for s, (_, ids) in queue.executor._running.items() if long.id in ids)
    assert queue.executor.kill_worker(slot) is not None
    assert long.wait(120)
    snap = long.snapshot()
    assert snap.status == "interrupted" and "Ray worker" in snap.reason and "died" in snap.reason, snap.reason
    stored = RunStore(store_at).get(snap.run_id)
    assert stored.status == "interrupted" and len(stored.epochs) >= 2  # the epochs it finished are kept
    after = queue.submit(job(quick(seed=5), mnist_root))  # and the cluster takes the next run
    assert after.wait(300) and after.snapshot().status == "completed"


def test_a_wrong_address_names_it_at_once_and_falls_back_only_when_chosen(address):
    started = time.monotonic()
    with pytest.raises(ClusterError) as info:
        make_executor(ClusterChoice("127.0.0.1:9"), lambda: "local", lambda m: None)
    assert "127.0.0.1:9" in str(info.value) and time.monotonic() - started < 10
    warnings = []
    assert make_executor(ClusterChoice("127.0.0.1:9", fallback_local=True), lambda: "local", warnings.append) == "local"
    assert len(warnings) == 1 and "127.0.0.1:9" in warnings[0] and "this machine" in warnings[0]
    with pytest.raises(ClusterError, match="host:port"):
        connect("no-port-here")


def test_without_ray_nothing_imports_it_and_asking_for_a_cluster_says_what_to_install():
    code = ("import sys\n"
            "import core.cli, core.serving.run_queue, core.serving.executor, core.serving.store, core.serving.cluster\n"
            "assert 'ray' not in sys.modules and 'psycopg' not in sys.modules, 'imported without being asked'\n"
            "sys.modules['ray'] = None\n"
            "from core.serving.cluster import ClusterChoice, ClusterError, make_executor\n"
            "try:\n"
            "    make_executor(ClusterChoice('127.0.0.1:6379'), lambda: None, print)\n"
            "except ClusterError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "requirements-cluster.txt" in out.stdout


def test_the_cluster_benchmark_times_the_runs_and_checks_each_against_its_seed_alone(address, mnist_root):
    from conftest import run_cli

    out = run_cli("bench", "--sessions", "2", "--cluster", address, "--data-dir", str(mnist_root), "--no-download",
                  "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["sessions"] == 2 and doc["cluster"].startswith(f"Ray cluster at {address}")
    assert doc["queued_seconds"] > 0 and doc["back_to_back_seconds"] > 0
    assert doc["identical_results"] is True  # the same training, bit for bit, wherever it ran
    wrong = run_cli("bench", "--sessions", "2", "--cluster", "127.0.0.1:9", "--data-dir", str(mnist_root))
    assert wrong.returncode == 2 and "127.0.0.1:9" in wrong.stderr and "Traceback" not in wrong.stderr


def test_two_servers_share_one_order_and_see_each_others_runs_in_the_store(address, mnist_root, store_at):
    """Two app servers (two queues, each with its own executor, as two processes would have) on one
    cluster and one store: a run submitted on B after one on A waits behind it, counts A's runs in
    its place, and A's runs are in the store B reads."""
    a, b = RunQueue(RayExecutor(address)), RunQueue(RayExecutor(address))
    try:
        room = a.workers
        blockers = [a.submit(job(quick(seed=10 + i, epochs=200), mnist_root, db=store_at)) for i in range(room)]
        wait_for(lambda: all(x.snapshot().status == "running" for x in blockers), 300)
        hold_paused(blockers[1:])  # the first trains on: B watches its batches grow below
        first = a.submit(job(quick(seed=1), mnist_root, db=store_at, estimate_s=10, tags=RunTags(student="ada")))
        second = b.submit(job(quick(seed=2), mnist_root, db=store_at, estimate_s=10, tags=RunTags(student="bo")))
        assert first.snapshot().ahead == room and second.snapshot().ahead == room + 1  # B counts A's runs
        assert [(name, c.seed) for name, c in b.queued()] == [("ada", 1), ("bo", 2)]  # B's board lists A's queued run
        wait_for(lambda: blockers[0].snapshot().run_id is not None, 120)
        watched = blockers[0].snapshot().run_id  # B's pages watch A's run live: its batches grow on B
        wait_for(lambda: (b.live(watched, store_at) or {}).get("batches"), 60)
        seen = len(b.live(watched, store_at)["batches"])
        wait_for(lambda: len(b.live(watched, store_at)["batches"]) > seen, 60)
        assert b.live(watched, store_at)["status"] == "running" and "here" not in b.live(watched, store_at)
        blockers[0].stop()
        wait_for(lambda: first.snapshot().status != "queued", 120)
        assert second.snapshot().status == "queued"  # A's run was first, so it started first
        for x in blockers[1:]:
            x.stop()
        assert first.wait(300) and second.wait(300)
        assert [first.snapshot().status, second.snapshot().status] == ["completed", "completed"]
        seen_by_b = {r.seed for r in RunStore(store_at).runs()}
        assert {1, 2, 10} <= seen_by_b
        wait_for(lambda: b.live(watched, store_at)["status"] == "ended", 60)  # and it sees the run end
    finally:
        a.close(), b.close()


def test_warm_actors_are_reused_and_a_dead_one_is_replaced(queue, mnist_root):
    """A run takes an actor that has already imported torch; one killed while idle is replaced."""
    executor = queue.executor

    def pool_full() -> bool:  # the actors of the test before may still be giving their CPUs back: warm again
        queue.start()
        return executor.warm_actors() + len(executor._running) >= executor.slots

    wait_for(pool_full, 120, every=0.5)
    with executor._lock:
        pool = [actor for actor, _ in executor._idle]
    executor._ray.get([actor.hello.remote() for actor in pool], timeout=300)  # warm: torch imported, answering
    asked = executor.started_actors
    for seed in (1, 2, 3):  # one after another: each takes a warm actor and gives it back
        done = queue.submit(job(quick(seed=seed, epochs=1), mnist_root, record=False))
        assert done.wait(300) and done.snapshot().status == "completed"
    assert executor.started_actors == asked  # no run paid for a new process
    with executor._lock:
        idle = [actor for actor, _ in executor._idle]
    for actor in idle:  # every warm actor dies, as a PC switched off would kill them
        pid, _ = executor._ray.get(actor.hello.remote())
        os.kill(pid, 9)
    after = queue.submit(job(quick(seed=4, epochs=1), mnist_root, record=False))
    assert after.wait(300) and after.snapshot().status == "completed", after.snapshot().reason
    assert executor.started_actors > asked  # a fresh actor took the run


def test_a_cluster_that_grows_or_shrinks_is_seen_without_a_click(queue, monkeypatch):
    executor = queue.executor
    cpus = {"CPU": float(executor.slots * executor.cpus_per_run)}
    monkeypatch.setattr(executor._ray, "cluster_resources", lambda: dict(cpus))
    before = executor.slots
    cpus["CPU"] += 2 * executor.cpus_per_run  # a PC of two cores joins
    monkeypatch.setattr(executor, "_resources_at", 0.0)  # as if the last look were long ago: the pool looks again
    wait_for(lambda: executor.slots == before + 2 and queue.workers == before + 2, 30)
    cpus["CPU"] = executor.cpus_per_run  # and then every PC but one leaves
    monkeypatch.setattr(executor, "_resources_at", 0.0)
    wait_for(lambda: queue.workers == 1, 30)
    cpus["CPU"] = float(before * executor.cpus_per_run)  # back as it was, for the tests after this one
    monkeypatch.setattr(executor, "_resources_at", 0.0)
    wait_for(lambda: queue.workers == before, 30)


def test_a_run_on_the_cluster_pauses_steps_and_resumes(queue, mnist_root):
    """Slow motion reaches the Ray actor that trains the run, as it reaches a local worker."""
    running = queue.submit(job(quick(epochs=200), mnist_root, record=False))
    try:
        wait_for(lambda: running.snapshot().params is not None and running.snapshot().batches, 300)
        assert running.slow_motion("pause") is None
        time.sleep(0.5)  # the actor takes the pause between two batches
        assert running.slow_motion("step") is None
        wait_for(lambda: running.snapshot().steps_shown == 1, 60)
        shown = running.snapshot().last_step
        assert shown.digits and shown.filters_after and shown.filters_before != shown.filters_after
        assert running.slow_motion("resume") is None
        wait_for(lambda: running.snapshot().batches[-1]["step"] > shown.step + 3, 120)
    finally:
        running.stop()
        assert running.wait(120)
