"""The server's one training queue: runs train in a worker process (never in the server's),
one after another; each knows its place, a queued run can be cancelled, a running one stopped,
results equal the same seed run alone, every run is recorded (in each store backend), and a worker
that dies interrupts its run with the reason while the next run gets a fresh worker."""

import os

import pytest
from conftest import wait_for

from core.serving.executor import WORKER_NICENESS, ProcessExecutor
from core.serving.run_queue import Job, RunQueue
from core.serving.store import RunStore
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.loop import run


@pytest.fixture(scope="module")
def data(mnist_root):
    return load_mnist(str(mnist_root), download=False)


@pytest.fixture(scope="module")
def queue():
    """One queue (and worker process) for the module, as one server has: each test leaves it empty."""
    q = RunQueue()
    q.start()
    yield q
    q.close()


def quick(**kw):
    base = dict(epochs=1, max_batches=3, device="cpu", log_every=1, seed=0, batch_size=128)
    base.update(kw)
    return TrainConfig.for_step(9, **base)


def job(config, root, **kw):
    return Job(config, str(root), False, **kw)


def test_runs_train_in_a_worker_process_one_after_another_and_match_the_same_seed_alone(
        queue, data, mnist_root, store_at):
    assert queue.workers == 1  # one worker on a CPU: every run gets all the cores
    jobs = [queue.submit(job(quick(seed=s), mnist_root, estimate_s=5)) for s in (1, 2, 3)]
    for j in jobs:
        assert j.wait(300)
    snaps = [j.snapshot() for j in jobs]
    assert [s.status for s in snaps] == ["completed"] * 3, [s.reason for s in snaps]
    (pid,) = queue.executor.worker_pids()
    assert pid is not None and pid != os.getpid()  # the training happened in another process
    if hasattr(os, "getpriority"):  # Unix: the server's pages come before training when both want a core
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS)
    for seed, snap in zip((1, 2, 3), snaps):
        alone = run(quick(seed=seed), data).history
        assert [e["test_acc"] for e in snap.epochs] == [e.test_acc for e in alone]
        assert [e["train_loss"] for e in snap.epochs] == [e.train_loss for e in alone]
    stored = RunStore(store_at).runs()
    assert sorted(r.seed for r in stored) == [1, 2, 3] and {r.status for r in stored} == {"completed"}
    assert {r.id for r in stored} == {s.run_id for s in snaps}  # each snapshot knows its stored run
    assert all(r.has_weights for r in stored)  # the worker stored the tested weights


def test_seeds_submitted_together_train_side_by_side_each_with_its_own_record(
        queue, data, mnist_root, store_at):
    blocker = queue.submit(job(quick(seed=9, epochs=200), mnist_root, estimate_s=30))
    wait_for(lambda: blocker.snapshot().status == "running")
    jobs = queue.submit_seeds([job(quick(seed=s, epochs=2), mnist_root, estimate_s=5) for s in (1, 2, 3)])
    assert [j.snapshot().ahead for j in jobs] == [1, 2, 3]  # each keeps its own place while queued
    jobs[1].stop()  # cancelled before the start: the other two train without it
    blocker.stop()
    assert all(j.wait(300) for j in jobs)
    snaps = [j.snapshot() for j in jobs]
    assert [s.status for s in snaps] == ["completed", "cancelled", "completed"], [s.reason for s in snaps]
    for seed, snap in ((1, snaps[0]), (3, snaps[2])):
        alone = run(quick(seed=seed, epochs=2), data).history
        # one grouped network: the same figures as alone, up to floating-point summation order
        assert [e["train_loss"] for e in snap.epochs] == pytest.approx([e.train_loss for e in alone], rel=1e-4)
        assert [e["test_acc"] for e in snap.epochs] == pytest.approx([e.test_acc for e in alone], abs=0.25)
        assert snap.batches and snap.batches[-1]["step"] == 6  # the batch curve reached each job
    stored = {r.id: r for r in RunStore(store_at).runs()}
    assert {stored[s.run_id].seed for s in (snaps[0], snaps[2])} == {1, 3}
    assert all(stored[s.run_id].status == "completed" and stored[s.run_id].has_weights for s in (snaps[0], snaps[2]))
    with pytest.raises(ValueError, match="differ only in their seed"):
        queue.submit_seeds([job(quick(seed=1), mnist_root), job(quick(seed=2, lr=0.5), mnist_root)])


def test_a_queued_run_knows_its_place_and_can_be_cancelled(queue, mnist_root):
    first = queue.submit(job(quick(seed=1, epochs=200), mnist_root, estimate_s=30))
    second = queue.submit(job(quick(seed=2), mnist_root, estimate_s=20))
    third = queue.submit(job(quick(seed=3), mnist_root, estimate_s=10))
    wait_for(lambda: first.snapshot().status == "running")
    s2, s3 = second.snapshot(), third.snapshot()
    assert (s2.status, s2.ahead) == ("queued", 1) and (s3.status, s3.ahead) == ("queued", 2)
    assert s2.starts_in is not None and s3.starts_in == pytest.approx(s2.starts_in + 20, abs=1.5)
    second.stop()  # a queued job is cancelled, not started
    assert second.snapshot().status == "cancelled" and third.snapshot().ahead == 1
    first.stop()  # a running one stops after its current batch
    assert first.wait(120) and third.wait(300)
    assert first.snapshot().status == "stopped" and len(first.snapshot().epochs) < 200
    assert third.snapshot().status == "completed"
    assert second.snapshot().epochs == [] and second.snapshot().run_id is None


def test_a_stop_reaches_only_its_own_run(queue, mnist_root):
    """A stop that arrives after its run ended must not stop the next one."""
    first = queue.submit(job(quick(seed=1), mnist_root))
    assert first.wait(300)
    first.stop()
    second = queue.submit(job(quick(seed=2, epochs=2), mnist_root))
    assert second.wait(300) and second.snapshot().status == "completed"


def test_a_failing_run_fails_with_its_message_and_the_queue_goes_on(queue, mnist_root, tmp_path):
    bad = queue.submit(Job(quick(), str(tmp_path / "no-mnist-here"), False))
    good = queue.submit(job(quick(), mnist_root))
    assert bad.wait(120) and good.wait(300)
    assert bad.snapshot().status == "failed" and "train-images-idx3-ubyte" in bad.snapshot().reason
    assert good.snapshot().status == "completed"


def test_a_killed_worker_interrupts_its_run_with_the_reason_and_a_fresh_one_takes_the_next(
        mnist_root, store_at):
    queue = RunQueue(ProcessExecutor([None]))
    try:
        long = queue.submit(job(quick(epochs=200, max_batches=2), mnist_root))
        wait_for(lambda: len(long.snapshot().epochs) >= 2, 300)
        killed = queue.executor.kill_worker(0)
        assert long.wait(60)
        snap = long.snapshot()
        assert snap.status == "interrupted" and "killed" in snap.reason and "SIGKILL" in snap.reason, snap.reason
        stored = RunStore(store_at).get(snap.run_id)
        assert stored.status == "interrupted" and "killed" in stored.reason
        assert len(stored.epochs) >= 2  # the epochs it finished are kept
        after = queue.submit(job(quick(seed=5), mnist_root))
        assert after.wait(300) and after.snapshot().status == "completed"
        assert queue.executor.worker_pids()[0] not in (None, killed)
    finally:
        queue.close()


def test_a_killed_worker_interrupts_every_seed_it_was_training_side_by_side(mnist_root, store_at):
    queue = RunQueue(ProcessExecutor([None]))
    try:
        jobs = queue.submit_seeds([job(quick(seed=s, epochs=200, max_batches=2), mnist_root) for s in (1, 2)])
        wait_for(lambda: all(len(j.snapshot().epochs) >= 2 for j in jobs), 300)
        queue.executor.kill_worker(0)
        assert all(j.wait(60) for j in jobs)
        store = RunStore(store_at)
        for j in jobs:
            snap = j.snapshot()
            assert snap.status == "interrupted" and "killed" in snap.reason, snap.reason
            stored = store.get(snap.run_id)
            assert stored.status == "interrupted" and len(stored.epochs) >= 2  # the epochs it finished are kept
        after = queue.submit(job(quick(seed=5), mnist_root))
        assert after.wait(300) and after.snapshot().status == "completed"
    finally:
        queue.close()


def test_a_broken_store_is_a_warning_not_a_failure(queue, mnist_root, tmp_path):
    bad_db = tmp_path / "not-a-db.sqlite3"
    bad_db.write_bytes(b"garbage" * 1000)
    jobs = [queue.submit(job(quick(seed=s), mnist_root, db=bad_db)) for s in (1, 2)]
    for j in jobs:
        assert j.wait(300)
    for snap in (j.snapshot() for j in jobs):
        assert snap.status == "completed" and snap.run_id is None
        assert any("damaged" in w and "not recorded" in w for w in snap.warnings)  # every job is told, not just the first


def test_unrecorded_jobs_leave_no_trace(queue, mnist_root, store_at):
    j = queue.submit(job(quick(), mnist_root, record=False))
    assert j.wait(300) and j.snapshot().status == "completed"
    assert RunStore(store_at).runs() == []


def test_the_estimate_scales_with_the_measured_pace(queue):
    config = quick(epochs=3, max_batches=10)
    assert queue.pace() > 0
    assert queue.estimate(config.with_overrides(epochs=6)) == pytest.approx(2 * queue.estimate(config), rel=1e-6)


def test_a_replaced_queue_lets_its_runs_finish_then_hands_back_its_worker(mnist_root, store_at):
    """The Data page's cluster change makes a new queue; the old one's worker process must not stay."""
    queue = RunQueue(ProcessExecutor([None]))
    running = queue.submit(job(quick(epochs=2), mnist_root))
    wait_for(lambda: running.snapshot().status == "running", 300)
    retiring = queue.close_when_idle()
    assert running.wait(300) and running.snapshot().status == "completed"  # not cut short
    retiring.join(30)
    assert not retiring.is_alive() and queue.executor.worker_pids() == [None]


def test_one_slow_run_does_not_set_the_pace_alone(queue):
    """A run slowed by something else (a busy machine, a laptop asleep) must not make every estimate
    (and so the server's limits) eight times longer; three such runs in a row do."""
    from core.training.budget import estimate_seconds, modelled_speed

    config, learned = quick(epochs=3, max_batches=10), queue._paces
    try:
        queue._paces = [8.6]
        assert queue.pace() == 1.0
        assert queue.estimate(config) == pytest.approx(estimate_seconds(config, modelled_speed(config)))
        queue._paces = [8.6, 8.0]
        assert queue.pace() == 8.0
        queue._paces = [8.6, 8.0, 9.0]
        assert queue.pace() == 8.6
    finally:
        queue._paces = learned


# --- a fair share for every student (no training: an executor whose runs end when the test says) ----

class GatedExecutor:
    """One slot; each run waits until `release()`; records which jobs started, in order."""

    slots = 1

    def __init__(self) -> None:
        import threading

        self.started: list[list[int]] = []
        self._gate = threading.Semaphore(0)

    def start(self) -> None: ...
    def warm(self, data_dir, download) -> None: ...
    def pace(self): return None
    def stop(self, slot, job_id) -> None: ...
    def slow_motion(self, slot, job_id, action) -> None: ...
    def close(self) -> None: ...

    def run(self, slot, specs, on_message) -> None:
        self.started.append([spec.job_id for spec in specs])
        self._gate.acquire()

    def release(self, runs: int = 1) -> None:
        for _ in range(runs):
            self._gate.release()


class InstantExecutor(GatedExecutor):
    """Two slots; each run ends at once; records the slot each run trained on."""

    slots = 2

    def __init__(self) -> None:
        super().__init__()
        self.slots_used: list[int] = []

    def run(self, slot, specs, on_message) -> None:
        self.slots_used.append(slot)


def test_a_lone_run_takes_the_first_slot_whichever_thread_wakes_first():
    """The first slot's worker is the one warmed ahead (MNIST loaded), so a run, or a seed group, that finds every
    slot free trains there, also when the second slot's thread wakes between the first's waking and its taking it."""
    import sys

    executor = InstantExecutor()
    queue = RunQueue(executor)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads switch as often as they can: a moment between two steps is met
    try:
        for seed in range(100):
            wait_for(lambda: not queue._busy_slots)  # both slots free again
            assert queue.submit(student_job("ann", seed)).wait(30)
            wait_for(lambda: not queue._busy_slots)
            group = queue.submit_seeds([student_job("ann", seed), student_job("ann", seed + 1000)])  # side by side
            assert all(job.wait(30) for job in group)
    finally:
        sys.setswitchinterval(interval)
        queue.close()
    assert executor.slots_used == [0] * 200


def student_job(student: str, seed: int = 0) -> Job:
    from core.serving.store import RunTags

    return Job(quick(seed=seed), None, False, record=False, tags=RunTags(student, student, ""))


@pytest.fixture
def gated():
    from core.serving.limits import ServerLimits

    executor = GatedExecutor()
    queue = RunQueue(executor, limits=ServerLimits(runs_per_student=3, max_queued=8))
    yield queue, executor
    queue.clear()
    executor.release(20)


def test_a_student_holds_at_most_k_runs_whatever_the_tabs_and_a_group_counts_its_seeds(gated):
    from core.serving.run_queue import LimitError

    queue, _ = gated
    queue.submit_seeds([student_job("ann", s) for s in (1, 2, 3)])  # Train 3 seeds: 3 of ann's 3
    with pytest.raises(LimitError, match="each student may have 3 at once"):
        queue.submit(student_job("ann", 4))  # another tab, the same student
    queue.submit(student_job("bob"))  # another student is not held up by ann
    assert sum(j.tags.session == "ann" for j in queue.active_jobs()) == 3


def test_ten_tabs_pressing_at_once_get_one_students_share_and_no_more(gated):
    """Ten threads (ten tabs of one browser) each press Train 3 seeds at the same moment."""
    import threading

    from core.serving.run_queue import LimitError

    queue, _ = gated
    outcomes, start = [], threading.Barrier(10)

    def press(tab: int) -> None:
        start.wait()
        try:
            queue.submit_seeds([student_job("ann", 10 * tab + s) for s in (1, 2, 3)])
            outcomes.append("queued")
        except LimitError:
            outcomes.append("refused")

    tabs = [threading.Thread(target=press, args=(t,)) for t in range(10)]
    for t in tabs:
        t.start()
    for t in tabs:
        t.join()
    assert sorted(outcomes) == ["queued"] + ["refused"] * 9
    assert len(queue.active_jobs()) == 3


def test_the_class_queue_has_a_cap_with_its_reason(gated):
    from core.serving.run_queue import LimitError

    queue, _ = gated
    for student in "abcdefgh":
        queue.submit(student_job(student))
    with pytest.raises(LimitError, match=r"class's queue is full \(8 runs"):
        queue.submit(student_job("i"))


def test_runs_start_round_robin_and_the_places_shown_are_that_order(gated):
    queue, executor = gated
    ann = [queue.submit(student_job("ann", s)) for s in (1, 2, 3)]
    wait_for(lambda: executor.started)  # ann's first run trains
    bob = queue.submit(student_job("bob", 1))
    cat = queue.submit(student_job("cat", 1))
    assert queue.in_turn() == [bob, cat, ann[1], ann[2]]  # ann's second waits behind everyone's first
    assert [j.snapshot().ahead for j in (bob, cat, ann[1], ann[2])] == [1, 2, 3, 4]
    for _ in range(4):
        executor.release()
        count = len(executor.started)
        wait_for(lambda: len(executor.started) > count or not queue.in_turn())
    order = [ids[0] for ids in executor.started]
    assert order == [j.id for j in (ann[0], bob, cat, ann[1], ann[2])]


def test_the_teacher_pauses_clears_and_stops_one_students_runs(gated):
    queue, executor = gated
    queue.pause()
    ann = [queue.submit(student_job("ann", s)) for s in (1, 2)]
    bob = queue.submit(student_job("bob"))
    import time

    time.sleep(0.2)
    assert executor.started == []  # paused: nothing starts
    assert queue.stop_student("ann") == 2
    assert [j.snapshot().status for j in ann] == ["cancelled"] * 2 and bob.snapshot().status == "queued"
    assert queue.clear() == 1 and bob.snapshot().status == "cancelled"
    queue.pause(False)
    fresh = queue.submit(student_job("cat"))
    wait_for(lambda: executor.started == [[fresh.id]])
