"""The server's one training queue: runs go one after another, each knows its place, a queued
run can be cancelled, results equal the same seed run alone, and every run is recorded."""

import threading
import time

import pytest

from core.data import DataError, load_mnist
from core.queue import Job, RunQueue
from core.store import RunStore
from core.train import TrainConfig, run


@pytest.fixture(scope="module")
def data(mnist_root):
    return load_mnist(str(mnist_root), download=False)


def quick(**kw):
    base = dict(epochs=1, max_batches=3, device="cpu", log_every=1, seed=0, batch_size=128)
    base.update(kw)
    return TrainConfig.for_step(9, **base)


def gated(data, gate: threading.Event):
    """A loader that waits for `gate`: keeps a job 'running' until the test says so."""
    def load():
        gate.wait(60)
        return data
    return load


def test_runs_one_after_another_and_match_the_same_seed_alone(data, private_run_store):
    queue = RunQueue()
    assert queue.workers == 1  # one worker on a CPU: every run gets all the cores
    jobs = [queue.submit(Job(quick(seed=s), lambda: data, estimate_s=5)) for s in (1, 2, 3)]
    for job in jobs:
        assert job.wait(300)
    snaps = [j.snapshot() for j in jobs]
    assert [s.status for s in snaps] == ["finished"] * 3
    for seed, snap in zip((1, 2, 3), snaps):
        alone = run(quick(seed=seed), data).history
        assert [e["test_acc"] for e in snap.epochs] == [e.test_acc for e in alone]
        assert [e["train_loss"] for e in snap.epochs] == [e.train_loss for e in alone]
    stored = RunStore(private_run_store).runs()
    assert sorted(r.seed for r in stored) == [1, 2, 3] and {r.status for r in stored} == {"completed"}
    assert {r.id for r in stored} == {s.run_id for s in snaps}  # each snapshot knows its stored run


def test_a_queued_run_knows_its_place_and_can_be_cancelled(data):
    queue = RunQueue()
    gate = threading.Event()
    first = queue.submit(Job(quick(seed=1), gated(data, gate), estimate_s=30))
    second = queue.submit(Job(quick(seed=2), lambda: data, estimate_s=20))
    third = queue.submit(Job(quick(seed=3), lambda: data, estimate_s=10))
    deadline = time.time() + 30
    while first.snapshot().status != "running" and time.time() < deadline:
        time.sleep(0.02)
    s2, s3 = second.snapshot(), third.snapshot()
    assert (s2.status, s2.ahead) == ("queued", 1) and (s3.status, s3.ahead) == ("queued", 2)
    assert 0 < s2.starts_in <= 30 and s3.starts_in == pytest.approx(s2.starts_in + 20, abs=1.5)
    second.stop()  # a queued job is cancelled, not started
    assert second.snapshot().status == "cancelled" and third.snapshot().ahead == 1
    gate.set()
    assert first.wait(300) and third.wait(300)
    assert first.snapshot().status == "finished" and third.snapshot().status == "finished"
    assert second.snapshot().epochs == [] and second.snapshot().run_id is None


def test_a_running_job_stops_after_its_current_batch(data):
    queue = RunQueue()
    job = queue.submit(Job(quick(epochs=50, max_batches=None), lambda: data))
    deadline = time.time() + 120
    while not job.snapshot().batches and time.time() < deadline:
        time.sleep(0.02)
    job.stop()
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.status == "stopped" and len(snap.epochs) < 50


def test_a_failing_loader_fails_the_job_with_its_message_and_the_queue_goes_on(data):
    queue = RunQueue()

    def broken():
        raise DataError("no files here")

    bad = queue.submit(Job(quick(), broken))
    good = queue.submit(Job(quick(), lambda: data))
    assert bad.wait(120) and good.wait(300)
    assert bad.snapshot().status == "failed" and "no files here" in bad.snapshot().reason
    assert good.snapshot().status == "finished"


def test_a_broken_store_is_a_warning_not_a_failure(data, tmp_path):
    bad_db = tmp_path / "not-a-db.sqlite3"
    bad_db.write_bytes(b"garbage" * 1000)
    queue = RunQueue()
    jobs = [queue.submit(Job(quick(seed=s), lambda: data, db=bad_db)) for s in (1, 2)]
    for job in jobs:
        assert job.wait(300)
    for snap in (j.snapshot() for j in jobs):
        assert snap.status == "finished" and snap.run_id is None
        assert any("damaged" in w and "not recorded" in w for w in snap.warnings)  # every job is told, not just the first


def test_unrecorded_jobs_leave_no_trace(data, private_run_store):
    queue = RunQueue()
    job = queue.submit(Job(quick(), lambda: data, record=False))
    assert job.wait(300) and job.snapshot().status == "finished"
    assert not private_run_store.exists() or RunStore(private_run_store).runs() == []
