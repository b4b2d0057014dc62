import threading

import pytest
import torch

from core.augment import AugmentConfig
from core.data import DataError, load_mnist
from core.lifecycle import describe_step
from core.model import build_model
from core.steps import get_step
from core.train import BatchEvent, DoneEvent, EpochEvent, TrainConfig, WeightAverage, challenge_verdict, fit, run


@pytest.fixture(scope="module")
def data(mnist_root):
    return load_mnist(str(mnist_root), download=False)


def quick(step=9, **kw):
    base = dict(epochs=3, device="cpu", log_every=2, seed=0, lr=0.05, batch_size=128)  # pinned: tests count batches
    base.update(kw)
    return TrainConfig.for_step(step, **base)


def test_learns_the_synthetic_task(data):
    events = list(fit(quick(augment=AugmentConfig()), data))
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    batches = [e for e in events if isinstance(e, BatchEvent)]
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.completed and len(done.history) == 3
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert epochs[-1].test_acc > 60  # chance is 10 %
    assert batches and all(b.images_per_s > 0 for b in batches)
    assert batches[-1].step == batches[-1].total_steps == 3 * 10  # 1200 images / 128 per batch


def test_same_seed_same_history(data):
    a = run(quick(epochs=1, max_batches=4), data).history
    b = run(quick(epochs=1, max_batches=4), data).history
    assert a[0].train_loss == b[0].train_loss and a[0].test_acc == b[0].test_acc


def test_quick_run_knobs(data):
    done = run(quick(epochs=2, max_batches=3, train_fraction=0.5), data)
    assert done.completed and len(done.history) == 2
    batches = [e for e in fit(quick(epochs=1, train_fraction=0.25), data) if isinstance(e, BatchEvent)]
    assert batches[-1].batches == 3  # 300 images / 128


def test_stop_keeps_the_partial_history(data):
    stop = threading.Event()
    history = []
    for event in fit(quick(epochs=5), data, stop):
        if isinstance(event, EpochEvent):
            history.append(event)
            stop.set()
        last = event
    assert last.reason == "stopped by request"
    assert len(last.history) == 1 == len(history)


def test_nan_loss_stops_with_a_reason(data):
    config = quick(epochs=2)
    model = build_model(get_step(9).layers(config.toggles))
    with torch.no_grad():
        model.conv1.weight[0, 0, 0, 0] = float("nan")  # what a diverged run looks like
    events = list(fit(config, data, model=model))
    done = events[-1]
    assert not done.completed and not any(isinstance(e, EpochEvent) for e in events)
    assert "loss became" in done.reason and "learning rate" in done.reason


@pytest.mark.parametrize("optimizer, schedule", [("adam", "constant"), ("sgd", "step"), ("sgd", "onecycle")])
def test_optimizers_and_schedules(data, optimizer, schedule):
    done = run(quick(epochs=2, max_batches=4, optimizer=optimizer, schedule=schedule, lr=0.01), data)
    assert done.completed
    if schedule == "onecycle":
        assert done.history[-1].lr < 0.01 / 10  # annealed well below the peak


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(lr=-1.0), dict(train_fraction=1.5),
                                 dict(max_batches=0), dict(optimizer="rmsprop"), dict(device="tpu"),
                                 dict(clean_fraction=1.5), dict(ema=1.0), dict(ema=-0.1)])
def test_bad_configs_are_refused(data, bad):
    with pytest.raises(ValueError):
        run(quick(**bad), data)


def test_clean_tail_trains_on_unaugmented_images(data):
    strong = AugmentConfig(rotation=30, translate=0.2, erase=0.5)
    plain = run(quick(epochs=2, max_batches=4, augment=AugmentConfig(), clean_fraction=0.0), data).history
    all_clean = run(quick(epochs=2, max_batches=4, augment=strong, clean_fraction=1.0), data).history
    half = run(quick(epochs=2, max_batches=4, augment=strong, clean_fraction=0.5), data).history
    all_augmented = run(quick(epochs=2, max_batches=4, augment=strong, clean_fraction=0.0), data).history
    # a fully clean run is exactly the run without augmentation; a half-clean one matches the
    # augmented run for its first half (epoch 1) and departs from it in the clean half
    assert [e.train_loss for e in all_clean] == [e.train_loss for e in plain]
    assert half[0].train_loss == all_augmented[0].train_loss
    assert half[1].train_loss != all_augmented[1].train_loss


def test_weight_average_follows_the_ema_formula():
    model = build_model(get_step(9).layers())
    average = WeightAverage(model, decay=0.9)
    before = model.conv1.weight.detach().clone()
    with torch.no_grad():
        model.conv1.weight.add_(1.0)
        model.bn1.running_mean.add_(2.0)
    average.update()  # first update: decay ramps up, min(0.9, 2/11)
    keep = 2 / 11
    assert torch.allclose(average.model.conv1.weight, before + (1 - keep), atol=1e-6)
    assert torch.allclose(average.model.bn1.running_mean, torch.full_like(model.bn1.running_mean, 2 * (1 - keep)))
    for _ in range(100):
        average.update()  # the live weights stay put, so the average converges onto them
    assert torch.allclose(average.model.conv1.weight, model.conv1.weight, atol=1e-4)
    assert average.model.conv1.weight.data_ptr() != model.conv1.weight.data_ptr()


def test_training_with_a_weight_average_tests_the_average(data):
    raw = run(quick(epochs=2, max_batches=4, ema=0.0), data).history
    averaged = run(quick(epochs=2, max_batches=4, ema=0.99), data).history
    assert [e.train_loss for e in raw] == [e.train_loss for e in averaged]  # same training...
    assert [e.test_loss for e in raw] != [e.test_loss for e in averaged]  # ...different weights tested


def test_challenge_verdict():
    assert challenge_verdict(9_000, [99.0, 99.45, 99.41, 99.5], 15)[0]
    ok, why = challenge_verdict(9_000, [99.5, 99.39, 99.5], 15)
    assert not ok and "99.39" in why
    assert not challenge_verdict(10_000, [99.5] * 3, 15)[0]
    assert not challenge_verdict(9_000, [99.5] * 3, 20)[0]
    assert not challenge_verdict(9_000, [99.5] * 2, 15)[0]


def test_background_job_runs_stops_and_reports(data):
    from core.jobs import TrainingJob

    job = TrainingJob(quick(epochs=1, max_batches=3), lambda: data).start()
    job.join(60)
    snap = job.snapshot()
    assert snap.status == "finished" and snap.progress == 1.0 and len(snap.epochs) == 1 and snap.params == describe_step(9)["params"]

    job = TrainingJob(quick(epochs=50), lambda: data).start()
    while not job.snapshot().batches:
        job.join(0.05)
    job.stop()
    job.join(60)
    snap = job.snapshot()
    assert snap.status == "stopped" and len(snap.epochs) < 50

    def broken():
        raise DataError("no files here")

    job = TrainingJob(quick(), broken).start()
    job.join(60)
    snap = job.snapshot()
    assert snap.status == "failed" and "no files here" in snap.reason


def test_quick_budget_shrinks_a_slow_run():
    from core.train import estimate_seconds, quick_budget

    config = TrainConfig.for_step(1, device="cpu")
    slow = (0.02, 0.005)  # seconds per training / test image, like the 6.4M model on a laptop CPU
    quick_cfg = quick_budget(config, slow, target_s=60)
    assert quick_cfg.epochs <= 3 and quick_cfg.train_fraction < 0.1 and quick_cfg.test_limit < 10_000
    assert 40 < estimate_seconds(quick_cfg, slow) < 80
    assert estimate_seconds(config, slow) > 100 * estimate_seconds(quick_cfg, slow)
