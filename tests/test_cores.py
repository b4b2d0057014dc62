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
    for broken in ("", "[]", '{"together": [], "alone": []}', '{"cores": 2, "together": [{"runs": 1}]}'):
        path.write_text(broken)  # a file this code cannot read: the setting of before, not a server that fails
        assert load_curve(2, path).best_runs(2) == 1 and load_curve(8, path).best_runs(8) == 1


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
        assert first._slot == 0  # the first worker, the one warmed ahead: a lone run never waits for MNIST
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


def test_on_gpus_each_takes_as_many_workers_as_set(monkeypatch):
    from core.serving.run_queue import default_executor

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LIFECYCLE_RUNS_PER_GPU", "3")
    executor = default_executor()
    assert executor.devices == ["cuda:0"] * 3 + ["cuda:1"] * 3 and not executor.shares_cores
    monkeypatch.setenv("LIFECYCLE_RUNS_PER_GPU", "many")  # not a number: one each, as before
    assert default_executor().devices == ["cuda:0", "cuda:1"]
    monkeypatch.setenv("LIFECYCLE_RUNS_PER_GPU", "500")  # each worker holds a CUDA context: at most 16 a GPU
    assert default_executor().slots == 2 * 16


def test_several_workers_train_at_once_on_one_device(mnist_root):
    """Two workers on one device, as two on one GPU would be (the CPU stands in for it): both train at once."""
    queue = RunQueue(ProcessExecutor(["cpu", "cpu"]))
    try:
        jobs = [queue.submit(Job(quick(s, epochs=200, max_batches=8), str(mnist_root), False, record=False))
                for s in (1, 2)]
        wait_for(lambda: all(j.snapshot().status == "running" and j.snapshot().batches for j in jobs), 300)
        assert {j._slot for j in jobs} == {0, 1} and all(j.snapshot().device.startswith("CPU") for j in jobs)
        for j in jobs:
            j.stop()
        assert all(j.wait(120) for j in jobs) and {j.snapshot().status for j in jobs} == {"stopped"}
    finally:
        queue.close()


def test_the_threads_benchmark_measures_alone_and_together_and_saves_the_curve_the_server_reads(
        tiny_mnist_root, tmp_path, monkeypatch):
    import core.experiments.bench_threads as bench
    from conftest import run_cli

    saved = tmp_path / "threads.json"
    monkeypatch.setattr(bench, "CURVE_FILE", saved)
    out = run_cli("bench", "threads", "--cores", "2", "--batches", "3", "--repeats", "1", "--save",
                  "--data-dir", str(tiny_mnist_root), "--no-download", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [r["threads"] for r in doc["alone"]] == [1, 2] and [r["threads"] for r in doc["together"]] == [[2], [1, 1]]
    assert all(r["images_per_s"] > 0 for r in doc["alone"] + doc["together"]) and doc["process_peak_mb"] > 100
    curve = load_curve(2, saved)
    assert curve.source.startswith("measured") and curve.images_per_s[2] == doc["together"][1]["images_per_s"]


def test_what_to_expect_on_bigger_servers_is_the_model_of_the_saved_curve_and_says_so():
    from conftest import run_cli

    out = run_cli("bench", "threads", "--expect", "8,64", "--students", "30", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["model"] is True and [r["cores"] for r in doc["rows"]] == [8, 64]
    eight, sixty_four = doc["rows"]
    assert eight["runs_at_once"] <= 8 and sixty_four["runs_at_once"] <= 30  # never more runs than students
    for row in doc["rows"]:
        assert sum(row["threads_each"]) == row["cores"]
        assert row["gain"] == pytest.approx(row["images_per_s_shared"] / row["images_per_s_one_at_a_time"], abs=0.01)
    bad = run_cli("bench", "threads", "--expect", "0")
    assert bad.returncode != 0 and "--expect" in bad.stderr and "Traceback" not in bad.stderr
    worse = run_cli("bench", "class", "--students", "0")
    assert worse.returncode != 0 and "--students" in worse.stderr and "Traceback" not in worse.stderr


def test_the_page_says_how_many_threads_trained_a_run():
    from core.serving.run_queue import Snapshot
    from ui.training import result_message, status_rows

    config = quick(1)
    epochs = [{"epoch": 1, "test_acc": 97.0, "train_loss": 0.1}]

    def snap(status, threads):
        return Snapshot(status, [], epochs, 0.5, 30.0, 20.0, "", 5648, "CPU (2 threads)", 1, 0, None, [],
                        threads=threads)

    shared = result_message([(config, snap("completed", (2, 1, 2)))])[1]
    alone = result_message([(config, snap("completed", (2,)))])[1]
    assert "on 1–2 CPU threads (the cores were shared with other runs)" in shared and "on 2 CPU threads" in alone
    job = Job(config, None, False)
    (row,) = status_rows([job], [snap("running", (2, 1))])
    assert row[1].endswith("· 1 CPU thread")  # while it trains: the threads it has now
