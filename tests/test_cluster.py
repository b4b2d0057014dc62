"""Runs on a Ray cluster: the server's queue hands each run to a Ray actor that the cluster places;
events stream back in order, Stop and Cancel work as on one machine, a killed worker interrupts its
run with the epochs it finished, a wrong address says which one, and results equal the same seed
trained alone. Against the cluster at LIFECYCLE_TEST_RAY (.ci/run starts a head and a second node
on loopback), recording into both store backends."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT, require_or_skip

from core.runs.cluster import (
    ClusterChoice,
    ClusterError,
    RayExecutor,
    connect,
    make_executor,
)
from core.runs.run_queue import Job, RunQueue
from core.runs.store import RunStore
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.loop import run


@pytest.fixture(scope="module")
def address() -> str:
    address = os.environ.get("LIFECYCLE_TEST_RAY")
    if not address:
        require_or_skip("a Ray cluster", "set LIFECYCLE_TEST_RAY=HOST:PORT of a running `ray start --head`")
    try:
        import ray  # noqa: F401
    except ImportError:
        require_or_skip("Ray", "pip install -r requirements-cluster.txt")
    return address


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


def wait_for(predicate, seconds=120):
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_the_cluster_trains_queued_runs_and_each_equals_its_seed_alone(queue, mnist_root, store_at):
    assert queue.workers >= 2  # the test cluster has room for two runs at once
    jobs = [queue.submit(job(quick(seed=s), mnist_root, db=store_at)) for s in (1, 2, 3)]
    assert all(j.wait(300) for j in jobs)
    snaps = [j.snapshot() for j in jobs]
    assert [s.status for s in snaps] == ["completed"] * 3, [s.reason for s in snaps]
    data = load_mnist(str(mnist_root), download=False)
    for seed, snap in zip((1, 2, 3), snaps):
        alone = run(quick(seed=seed), data).history
        assert [e["train_loss"] for e in snap.epochs] == pytest.approx([e.train_loss for e in alone], rel=1e-5)
        assert [e["test_acc"] for e in snap.epochs] == pytest.approx([e.test_acc for e in alone], abs=0.01)
        assert snap.batches and snap.batches[-1]["step"] == 6  # batches streamed back, not just epochs
    stored = RunStore(store_at).runs()
    assert sorted(r.seed for r in stored) == [1, 2, 3] and {r.status for r in stored} == {"completed"}
    assert {r.id for r in stored} == {s.run_id for s in snaps} and all(r.has_weights for r in stored)


def test_seeds_together_stop_and_cancel_work_as_on_one_machine(queue, mnist_root):
    blockers = [queue.submit(job(quick(seed=s, epochs=200), mnist_root)) for s in (7, 8)]  # fill both slots
    wait_for(lambda: all(b.snapshot().status == "running" for b in blockers))
    waiting = queue.submit_seeds([job(quick(seed=s), mnist_root, estimate_s=10) for s in (1, 2)])
    assert [j.snapshot().status for j in waiting] == ["queued", "queued"]
    assert [j.snapshot().ahead for j in waiting] == [2, 3]  # a queued run shows its place...
    assert waiting[0].snapshot().starts_in is not None  # ...and its expected start
    waiting[1].stop()  # cancelled before it started
    wait_for(lambda: len(blockers[0].snapshot().epochs) >= 1, 300)
    for b in blockers:
        b.stop()
    assert all(b.wait(120) for b in blockers) and waiting[0].wait(300)
    assert [b.snapshot().status for b in blockers] == ["stopped", "stopped"]
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
            "import core.cli, core.runs.run_queue, core.runs.executor, core.runs.store, core.runs.cluster\n"
            "assert 'ray' not in sys.modules and 'psycopg' not in sys.modules, 'imported without being asked'\n"
            "sys.modules['ray'] = None\n"
            "from core.runs.cluster import ClusterChoice, ClusterError, make_executor\n"
            "try:\n"
            "    make_executor(ClusterChoice('127.0.0.1:6379'), lambda: None, print)\n"
            "except ClusterError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "requirements-cluster.txt" in out.stdout
