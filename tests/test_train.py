"""The trainer: events, determinism, stop, NaN, schedules, weight average, and runs too small to
have a schedule (every combination must end with a result, never a traceback)."""

import itertools
import math
import threading

import pytest
import torch

from core.architecture.challenge import CHALLENGE, min_last
from core.architecture.spec import Toggles
from core.report.views import describe_step
from core.training.augmentation import AugmentConfig
from core.training.average import WeightAverage
from core.training.config import TrainConfig
from core.training.data import DataError, load_mnist
from core.training.events import BatchEvent, DoneEvent, EpochEvent
from core.training.loop import build_for, fit, run
from core.training.recipe import OPTIMIZERS, SCHEDULES, Recipe
from core.training.schedule import schedule_at


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
    assert done.params == describe_step(9)["params"]


def test_done_carries_the_tested_weights(data):
    config = quick(epochs=1, max_batches=3, ema=0.0)
    raw = run(config, data)
    model = build_for(config)
    model.load_state_dict(raw.weights)  # the weights fit the config's network
    assert all(t.device.type == "cpu" for t in raw.weights.values())
    averaged = run(quick(epochs=1, max_batches=3, ema=0.99), data)
    assert not torch.equal(raw.weights["conv1.weight"], averaged.weights["conv1.weight"])


def test_same_seed_same_history_other_seed_other_history(data):
    a = run(quick(epochs=1, max_batches=4), data).history
    b = run(quick(epochs=1, max_batches=4), data).history
    c = run(quick(epochs=1, max_batches=4, seed=5), data).history
    assert a[0].row() == {**b[0].row(), "seconds": a[0].seconds, "images_per_s": a[0].images_per_s}
    assert a[0].train_loss != c[0].train_loss


def test_epoch_row_is_the_one_record_of_an_epoch(data):
    epoch = run(quick(epochs=1, max_batches=2), data).history[0]
    row = epoch.row()
    assert set(row) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "images_per_s"}
    assert row["epoch"] == 1 and 0 <= row["test_acc"] <= 100 and row["seconds"] > 0


def test_quick_run_knobs(data):
    done = run(quick(epochs=2, max_batches=3, train_fraction=0.5), data)
    assert done.completed and len(done.history) == 2
    batches = [e for e in fit(quick(epochs=1, train_fraction=0.25), data) if isinstance(e, BatchEvent)]
    assert batches[-1].batches == 3  # 300 images / 128
    limited = run(quick(epochs=1, max_batches=1, test_limit=50), data).history[0]
    correct = limited.test_acc / 100 * 50  # tested on exactly 50 images: a whole number of them right
    assert correct == pytest.approx(round(correct), abs=1e-9)


def test_stop_keeps_the_partial_history(data):
    stop = threading.Event()
    history = []
    for event in fit(quick(epochs=5), data, stop):
        if isinstance(event, EpochEvent):
            history.append(event)
            stop.set()
        last = event
    assert last.reason == "stopped by request" and last.stopped
    assert len(last.history) == 1 == len(history)


def test_nan_loss_stops_with_a_reason(data):
    config = quick(epochs=2)
    model = build_for(config)
    with torch.no_grad():
        model.conv1.weight[0, 0, 0, 0] = float("nan")  # what a diverged run looks like
    events = list(fit(config, data, model=model))
    done = events[-1]
    assert not done.completed and not any(isinstance(e, EpochEvent) for e in events)
    assert "loss became" in done.reason and "learning rate" in done.reason
    assert done.weights is None  # nothing was tested


@pytest.mark.parametrize("optimizer, schedule", itertools.product(OPTIMIZERS, SCHEDULES))
@pytest.mark.parametrize("epochs, max_batches", [(1, 1), (1, 5), (2, 2), (3, 1)])
def test_every_schedule_and_optimizer_survives_tiny_runs(data, optimizer, schedule, epochs, max_batches):
    """`train --step 9 --epochs 1 --max-batches 5` used to die inside OneCycleLR (5 steps in all)."""
    done = run(quick(epochs=epochs, max_batches=max_batches, optimizer=optimizer, schedule=schedule), data)
    assert done.completed and len(done.history) == epochs
    assert all(math.isfinite(e.lr) and e.lr > 0 for e in done.history)


@pytest.mark.parametrize("total", [1, 2, 5, 10, 93, 14070])
def test_one_cycle_matches_torch_where_torch_works(total):
    recipe = Recipe(lr=0.1, schedule="onecycle")
    ours = [schedule_at(recipe, t, total) for t in range(total)]
    assert all(0 < lr <= 0.1 + 1e-12 and 0.85 - 1e-12 <= m <= 0.95 + 1e-12 for lr, m in ours)
    if total == 5:  # torch's OneCycleLR divides by zero here; ours skips the sub-step warm-up
        assert ours[0][0] == pytest.approx(0.1)
        return
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    torch_sched = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=total, pct_start=0.2,
                                                      div_factor=10, final_div_factor=100, anneal_strategy="cos")
    for t in range(total):
        group = optimizer.param_groups[0]
        assert ours[t][0] == pytest.approx(group["lr"], rel=1e-12, abs=1e-15)
        assert ours[t][1] == pytest.approx(group["momentum"], rel=1e-12)
        optimizer.step()
        torch_sched.step()


def test_a_settled_finish_is_one_cycle_over_the_rest_of_the_run_then_its_lowest_rate():
    total, settle = 1000, 0.15
    settled = Recipe(lr=0.1, schedule="onecycle", settle_fraction=settle)
    shorter = [schedule_at(Recipe(lr=0.1, schedule="onecycle"), t, 850) for t in range(850)]
    ours = [schedule_at(settled, t, total) for t in range(total)]
    assert ours[:850] == shorter  # the whole one-cycle, 15 % sooner
    assert set(ours[849:]) == {ours[849]} and ours[849] == (pytest.approx(0.1 / 1000), 0.95)  # then held there
    plain = [schedule_at(Recipe(lr=0.1, schedule="onecycle"), t, total) for t in range(total)]
    assert plain[900][0] > 10 * ours[900][0]  # without it the rate is still falling there


def test_step_and_constant_schedules():
    recipe = Recipe(lr=0.1, schedule="step")
    assert [schedule_at(recipe, t, 9)[0] for t in (0, 2, 3, 6, 8)] == pytest.approx([0.1, 0.1, 0.01, 0.001, 0.001])
    assert schedule_at(Recipe(lr=0.3), 7, 9) == (0.3, None)


@pytest.mark.parametrize("bad, says", [
    (dict(epochs=0), "epochs must be between 1 and 200, got 0"),
    (dict(lr=-1.0), r"learning rate must be in \(0, 10\], got -1.0"),
    (dict(lr=float("nan")), "learning rate .* got nan"),
    (dict(train_fraction=1.5), "train fraction .* got 1.5"),
    (dict(max_batches=0), "max batches must be >= 1, got 0"),
    (dict(optimizer="rmsprop"), "optimizer must be one of sgd, adam, got 'rmsprop'"),
    (dict(clean_fraction=1.5), "un-augmented fraction .* got 1.5"),
    (dict(ema=1.0), r"EMA decay must be in \[0, 1\), got 1.0"),
    (dict(ema=-0.1), "EMA decay .* got -0.1"),
    (dict(batch_size=0), "batch size must be between 1 and 8192, got 0"),
    (dict(dropout=1.0), r"dropout rate must be in \[0, 1\), got 1.0"),
    (dict(seed=-1), "seed must be a non-negative integer, got -1"),
    (dict(weight_decay=-1e-3), "weight decay .* got -0.001"),
])
def test_bad_configs_are_refused_with_what_is_wrong(bad, says):
    with pytest.raises(ValueError, match=says):
        quick(**bad)


def test_unknown_device_is_refused_when_training(data):
    with pytest.raises(ValueError, match="unknown device"):
        run(quick(device="tpu"), data)


def test_overrides_reach_the_dataclass_that_owns_them():
    config = TrainConfig.for_step(4, batchnorm=False, lr=0.2, seed=7, augment=AugmentConfig(rotation=5))
    assert config.toggles == Toggles(batchnorm=False, dropout=0.0, gap=False)
    assert config.recipe.lr == 0.2 and config.recipe.augment.rotation == 5 and config.seed == 7
    assert TrainConfig.for_step(4, lr=None).recipe.lr == TrainConfig.for_step(4).recipe.lr  # None keeps
    with pytest.raises(ValueError, match="unknown training setting 'learning_rate'"):
        TrainConfig.for_step(4, learning_rate=0.1)


def test_config_round_trips_through_a_dict():
    config = TrainConfig.for_step(9, seed=3, max_batches=7, dropout=0.05)
    assert TrainConfig.from_dict(config.as_dict()) == config
    with pytest.raises(TypeError, match="colour"):
        TrainConfig.from_dict({**config.as_dict(), "colour": "red"})


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
    model = build_for(TrainConfig.for_step(9))
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
    assert CHALLENGE.verdict(9_000, [99.0, 99.45, 99.41, 99.5], 15)[0]
    ok, why = CHALLENGE.verdict(9_000, [99.5, 99.39, 99.5], 15)
    assert not ok and "99.39" in why
    assert not CHALLENGE.verdict(10_000, [99.5] * 3, 15)[0]
    assert not CHALLENGE.verdict(9_000, [99.5] * 3, 20)[0]
    assert not CHALLENGE.verdict(9_000, [99.5] * 2, 15)[0]
    assert min_last([99.0, 99.5, 99.41, 99.6]) == 99.41 and min_last([99.0]) is None


def test_data_errors_surface_as_data_errors(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_mnist(str(tmp_path / "none"), download=False)


@pytest.mark.parametrize("kind, options", [
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("sgd", {"momentum": 0.0}),
    ("adam", {"weight_decay": 1e-3}),
])
def test_our_optimisers_step_as_torch_optim_does(kind, options):
    from core.training.optim import SGD, Adam
    from core.training.schedule import apply_schedule

    config = TrainConfig.for_step(9)
    ours, theirs = build_for(config), build_for(config)
    ours_opt = (SGD if kind == "sgd" else Adam)(ours.parameters(), lr=0.05, **options)
    theirs_opt = (torch.optim.SGD if kind == "sgd" else torch.optim.Adam)(theirs.parameters(), lr=0.05, **options)
    generator = torch.Generator().manual_seed(0)
    for step in range(6):
        x = torch.randn(16, 1, 28, 28, generator=generator)
        y = torch.randint(0, 10, (16,), generator=generator)
        for model, opt in ((ours, ours_opt), (theirs, theirs_opt)):
            # the schedule changes the rate (and momentum) between steps, as one-cycle does
            apply_schedule(opt, 0.05 * (step + 1), 0.9 - 0.01 * step if options.get("momentum") else None)
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.nll_loss(model(x), y).backward()
            opt.step()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert any((a != 0).any() for a in ours.state_dict().values())
