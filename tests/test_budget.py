"""The quick budget is a property of the network and the recipe, never of a timing: the same
config is always shrunk to the same run, and the cost model reads its figures off the spec."""

import pytest
import torch
from torch import nn

from core.architecture.builder import build_model, macs
from core.training.budget import CPU_TRAIN, describe_limits, estimate_seconds, fit_to_budget, modelled_speed, work_of
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
