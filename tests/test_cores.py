"""Cores shared among the runs that wait (core.serving.cores): the split, the plan, the curve, and a CPU
server that trains two runs at once, each told its threads as runs start and end, with results that do
not depend on the thread count beyond float rounding."""

import json

import pytest
import torch
from conftest import wait_for

from core.serving.cores import (
    WORKER_MEMORY_MB,
    ThreadCurve,
    cpu_plan,
    load_curve,
    serial_fraction,
    share_threads,
)
from core.serving.executor import ProcessExecutor
from core.serving.run_queue import Job, RunQueue
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.loop import fit


@pytest.mark.parametrize("cores", [1, 2, 3, 8, 16, 64])
def test_the_split_gives_every_core_to_the_runs_and_every_run_a_core(cores):
    for runs in range(1, cores + 1):
        split = share_threads(cores, runs)
        assert len(split) == runs and sum(split) == cores and min(split) >= 1
        assert max(split) - min(split) <= 1 and split == sorted(split, reverse=True)  # earlier runs first
    assert share_threads(cores, 1) == [cores]  # a run alone has the whole machine, as before


def test_the_plan_takes_the_best_of_the_curve_within_memory():
    curve = ThreadCurve(4, {1: 100.0, 2: 150.0, 3: 170.0, 4: 180.0}, "test")
    assert cpu_plan(4, memory_mb=10**6, share=True, curve=curve).workers == 4
    # memory for two workers only (MEMORY_SHARE of it)
    two = cpu_plan(4, memory_mb=2 * WORKER_MEMORY_MB / 0.5 + 1, share=True, curve=curve)
    assert two.workers == 2 and "memory allows 2" in two.why
    assert cpu_plan(4, memory_mb=10, share=True, curve=curve).workers == 1
    assert cpu_plan(4, memory_mb=10**6, share=False, curve=curve).workers == 1  # the setting of before
    worse = ThreadCurve(4, {1: 100.0, 2: 90.0, 3: 80.0, 4: 70.0}, "test")  # a network threads pay for
    assert cpu_plan(4, memory_mb=10**6, share=True, curve=worse).workers == 1
    assert curve.gain(2) == pytest.approx(1.5)


def test_the_curve_is_the_measured_one_for_these_cores_else_the_model_fitted_on_it(tmp_path):
    path = tmp_path / "threads.json"
    path.write_text(json.dumps({"cores": 2, "processor": "test CPU", "date": "2026-12-07",
                                "alone": [{"threads": 1, "images_per_s": 4000}, {"threads": 2, "images_per_s": 6000}],
                                "together": [{"runs": 1, "images_per_s": 6000}, {"runs": 2, "images_per_s": 8000}]}))
    measured = load_curve(2, path)
    assert measured.images_per_s == {1: 6000.0, 2: 8000.0} and measured.source.startswith("measured")
    modelled = load_curve(8, path)
    serial = serial_fraction(4000, 2, 6000)
    assert serial == pytest.approx(1 / 3)  # Amdahl: 2 threads at 1.5x
    assert modelled.source.startswith("model") and set(modelled.images_per_s) == set(range(1, 9))
    assert modelled.images_per_s[1] == pytest.approx(4000 / (serial + (1 - serial) / 8))
    assert modelled.images_per_s[8] == pytest.approx(8 * 4000)  # eight runs of one thread each
    assert modelled.best_runs(8) == 8 and modelled.best_runs(3) == 3
    assert load_curve(2, tmp_path / "missing.json").best_runs(2) == 1  # nothing measured: as before


def quick(seed, **kw):
    base = dict(epochs=1, max_batches=6, device="cpu", log_every=1, batch_size=64, seed=seed)
    base.update(kw)
    return TrainConfig.for_step(9, **base)


def test_a_run_does_not_depend_on_its_thread_count_beyond_float_rounding(mnist_root):
    data = load_mnist(str(mnist_root), download=False)
    before = torch.get_num_threads()
    finals = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            done = list(fit(quick(3, epochs=2), data, look_inside=False))[-1]
            finals.append(done)
    finally:
        torch.set_num_threads(before)
    one, two = finals
    for name, weight in one.weights.items():
        torch.testing.assert_close(weight, two.weights[name], rtol=1e-4, atol=1e-5, msg=name)
    for a, b in zip(one.history, two.history):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)


def test_a_cpu_server_trains_two_runs_at_once_splitting_its_cores_and_gives_them_back(mnist_root):
    """Two cores, two workers: a run alone has both; when a second starts each is told one; when one ends
    the other gets both back. Every run says the threads it trained with; the results equal each seed's
    run alone to float rounding."""
    executor = ProcessExecutor([None, None], cores=2)
    executor.parallel_gain = 1.2
    queue = RunQueue(executor)
    try:
        first = queue.submit(Job(quick(1, epochs=200, max_batches=8), str(mnist_root), False, record=False))
        wait_for(lambda: first.snapshot().threads == (2,), 300)  # alone: every core
        second = queue.submit(Job(quick(2, epochs=2), str(mnist_root), False, record=False))
        wait_for(lambda: executor.threads_now() == {0: 1, 1: 1}, 300)  # both train, on one core each
        assert second.wait(300) and second.snapshot().status == "completed"
        wait_for(lambda: first.snapshot().threads[-1] == 2, 300)  # given back when the second ended
        assert first.snapshot().threads[:2] == (2, 1)
        assert second.snapshot().threads == (1,)
        first.stop()
        assert first.wait(300)
        assert not second._alone and not first._alone and queue._paces == []  # shared time teaches no pace
        alone = list(fit(quick(2, epochs=2), load_mnist(str(mnist_root), download=False), look_inside=False))[-1]
        assert [e["train_loss"] for e in second.snapshot().epochs] == pytest.approx(
            [e.train_loss for e in alone.history], rel=1e-4)
    finally:
        queue.close()
