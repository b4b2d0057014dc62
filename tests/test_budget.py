"""The quick budget is a property of the network and the recipe, never of a timing: the same
config is always shrunk to the same run, and the cost model reads its figures off the spec."""

import pytest
import torch
from torch import nn

from core.architecture.builder import build_model, macs
from core.training.budget import (
    CPU_TRAIN,
    describe_limits,
    estimate_seconds,
    fit_to_budget,
    modelled_speed,
    work_of,
)
from core.training.config import TrainConfig
from core.training.steps import STEPS


def measured_work(model: nn.Module) -> tuple[int, int]:
    """(multiply-adds of the convolutions and linears, output elements of the other layers) of one
    image, measured with forward hooks on the built model."""
    counts = [0, 0]

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            counts[0] += output[0].numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, nn.Linear):
            counts[0] += module.in_features * module.out_features
        elif not isinstance(module, nn.Dropout):
            counts[1] += output[0].numel()

    for module in model:
        module.register_forward_hook(hook)
    model.eval()(torch.zeros(1, 1, 28, 28))
    return counts[0], counts[1]


@pytest.mark.parametrize("number", [s.number for s in STEPS])
def test_the_work_read_off_the_spec_is_what_the_built_model_does(number):
    layers = TrainConfig.for_step(number, dropout=0.1 if number > 1 else None).layers()
    work = work_of(layers)
    assert (work.macs, work.activations) == measured_work(build_model(layers))
    # torchinfo counts the same convolutions, plus the biases' and BatchNorm's few additions
    assert 0 <= macs(build_model(layers)) - work.macs < 0.002 * work.macs


def test_dropout_and_batchnorm_count_as_work():
    plain = work_of(TrainConfig.for_step(9).layers())
    with_dropout = work_of(TrainConfig.for_step(9, dropout=0.1).layers())
    without_bn = work_of(TrainConfig.for_step(9, batchnorm=False).layers())
    assert with_dropout.dropped > 0 == plain.dropped and with_dropout.macs == plain.macs
    assert without_bn.activations < plain.activations
    assert CPU_TRAIN.seconds(with_dropout, 64) > CPU_TRAIN.seconds(plain, 64) > CPU_TRAIN.seconds(without_bn, 64)


def test_the_quick_run_of_a_config_is_always_the_same_run():
    config = TrainConfig.for_step(9, seed=3)
    runs = {fit_to_budget(config, modelled_speed(config), 60.0, 20, 3) for _ in range(3)}
    assert len(runs) == 1
    (quick,) = runs
    assert quick.max_batches is not None and quick.recipe.epochs == 15  # fewer images per epoch, every epoch
    assert estimate_seconds(quick, modelled_speed(quick)) == pytest.approx(60.0, rel=0.05)
    assert describe_limits(quick).startswith("reduced: 15 epochs of ")


def test_a_network_too_big_for_the_budget_keeps_a_few_real_epochs():
    config = TrainConfig.for_step(1)  # the 6.4M-parameter baseline
    quick = fit_to_budget(config, modelled_speed(config), 60.0, 20, 3)
    assert quick.recipe.epochs == 3 and quick.test_limit is not None


def test_a_bigger_network_gets_fewer_images_for_the_same_time():
    small, big = TrainConfig.for_step(9), TrainConfig.for_step(2)
    assert modelled_speed(big).train_s > modelled_speed(small).train_s
    quick_small = fit_to_budget(small, modelled_speed(small), 60.0)
    quick_big = fit_to_budget(big, modelled_speed(big), 60.0)
    assert quick_big.max_batches * quick_big.recipe.batch_size < quick_small.max_batches * quick_small.recipe.batch_size


def test_a_reference_with_fewer_epochs_than_its_recipe_is_labelled_reduced():
    short = TrainConfig.for_step(1, epochs=2)
    assert describe_limits(short, 60_000, 10_000, 15) == \
        "reduced: 2 of the recipe's 15 epochs, on all 60,000 training images"
    assert describe_limits(short, 60_000, 10_000).startswith("full: 2 epochs")  # a quick run's own choice of epochs
    assert describe_limits(TrainConfig.for_step(1), 60_000, 10_000, 15).startswith("full: 15 epochs")


def test_the_cost_fit_recovers_known_costs_and_never_a_negative_one():
    """`bench --cost-model` fits CPU_TRAIN's coefficients by least squares on relative error, each >= 0:
    times made from known costs give those costs back, and a feature that would fit below zero is dropped."""
    from core.experiments.bench import _nonnegative_fit

    truth = [8e-5, 7.6e-11, 4.6e-9, 1.6e-8, 7.7e-3]
    rows = [[1.0, m, a, d, 1 / b] for m, a, d, b in
            [(6e5, 3e4, 0, 128), (2e6, 8e4, 1e4, 64), (1.5e7, 2e5, 0, 32), (4e8, 1e6, 5e4, 128), (9e5, 5e4, 2e4, 256),
             (3e6, 1e5, 0, 512), (7e7, 4e5, 3e4, 64)]]
    times = [sum(c * x for c, x in zip(truth, r)) for r in rows]
    assert [round(c / t, 6) for c, t in zip(_nonnegative_fit(rows, times), truth)] == [1.0] * 5
    # times that fall as the activations grow: unconstrained, that cost would come out negative
    falling = [t - 6e-9 * r[2] for t, r in zip(times, rows)]
    fitted = _nonnegative_fit(rows, falling)
    assert min(fitted) >= 0.0 and fitted[2] == 0.0


def test_bench_cost_model_times_each_config_and_models_every_one(tiny_mnist_root, monkeypatch):
    """The whole `bench --cost-model` path on a few small configs: each timed, the fit non-negative, and
    every config given a modelled time beside its measured one."""
    import core.experiments.bench as bench

    configs = [TrainConfig.for_step(n, device="cpu", batch_size=b) for n, b in ((9, 32), (9, 128), (7, 64), (8, 64),
                                                                                (6, 256), (5, 32))]
    monkeypatch.setattr(bench, "cost_model_configs", lambda: configs)
    lines: list[str] = []
    doc = bench.run_cost_model(str(tiny_mnist_root), False, lines.append, train_seconds=0.05)
    assert [(s["step"], s["batch_size"]) for s in doc["samples"]] == [(c.step, c.recipe.batch_size) for c in configs]
    assert all(s["train_us_measured"] > 0 and s["train_us_modelled"] > 0 and s["eval_us_measured"] > 0
               for s in doc["samples"])
    assert min(doc["train"].values()) >= 0 and min(doc["eval"].values()) >= 0
    assert any(line.startswith("CPU_TRAIN = CostModel(") for line in lines)
    assert "configurations" in lines[-1]


def test_a_quick_run_is_refused_for_its_network_not_for_a_slow_measured_pace():
    """A network that, shrunk to the quick budget, would still need ten minutes: refused. Step 9's quick
    run is not, even after the server measured runs eight times slower than the model (a busy machine);
    a server measured much faster (a GPU) takes the big one quickly too. (Every network within the
    size limits, core.architecture.size, fits the quick budget today: the big one is its modelled time.)"""
    from core.serving.limits import quick_run_problem

    config = TrainConfig.for_step(9)
    quick = fit_to_budget(config, modelled_speed(config), 60.0, 20, 3)
    step9_s = estimate_seconds(quick, modelled_speed(quick))
    big_s = 600.0
    assert "far beyond the ≈ 1 min budget" in quick_run_problem(quick, big_s, 1.0, 60.0, 3)
    assert describe_limits(quick).removeprefix("reduced: ") in quick_run_problem(quick, big_s, 1.0, 60.0, 3)
    assert quick_run_problem(quick, step9_s, 1.0, 60.0, 3) is None
    assert quick_run_problem(quick, step9_s, 8.6, 60.0, 3) is None
    assert quick_run_problem(quick, big_s, 0.01, 60.0, 3) is None