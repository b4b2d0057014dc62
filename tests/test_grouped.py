"""Several seeds trained as one grouped network give what separate runs give."""

import threading
from dataclasses import replace

import pytest
import torch

from core.architecture.builder import build_model
from core.architecture.grouped import SeedGroup
from core.architecture.spec import layers_from_dicts
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.events import STOPPED, DoneEvent
from core.training.loop import build_for, fit, fit_seeds, fit_side_by_side, run_seeds

SEEDS = (1, 2, 3)
# every layer type the builder knows, so every grouped module is checked against its single one
EVERY_LAYER = layers_from_dicts([
    {"type": "conv", "out_channels": 4, "padding": 1, "bias": True}, {"type": "bn"}, {"type": "relu"},
    {"type": "dropout", "p": 0.3}, {"type": "maxpool"}, {"type": "conv", "out_channels": 6, "dilation": 2},
    {"type": "bn"}, {"type": "relu"}, {"type": "conv", "out_channels": 6, "groups": 6, "padding": 1},  # depthwise
    {"type": "conv", "out_channels": 6, "groups": 2, "kernel_size": 1}, {"type": "avgpool"}, {"type": "flatten"},
    {"type": "linear", "out_features": 12, "bias": True}, {"type": "relu"}, {"type": "linear", "out_features": 10},
    {"type": "softmax"},
])


@pytest.fixture(scope="module")
def data(tiny_mnist_root):
    return load_mnist(str(tiny_mnist_root), download=False)


def models_for(layers, seeds=SEEDS):
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        out.append(build_model(layers))
    return out


@pytest.mark.parametrize("training", [False, True])
def test_a_group_computes_what_each_model_computes(training):
    models = models_for(EVERY_LAYER)
    group = SeedGroup(models).train(training)
    group.seed_streams(list(SEEDS), torch.device("cpu"))
    x = torch.randn(16, len(SEEDS), 28, 28)
    out = group(x)
    assert out.shape == (16, len(SEEDS), 10)
    for g, (seed, model) in enumerate(zip(SEEDS, models)):
        torch.manual_seed(seed)  # a run alone draws its dropout masks from the global stream, seeded so
        alone = model.train(training)(x[:, g:g + 1])
        torch.testing.assert_close(out[:, g], alone, rtol=1e-5, atol=1e-5)


def test_each_seed_gets_back_its_own_weights_under_its_own_names():
    models = models_for(EVERY_LAYER)
    group = SeedGroup(models)
    for g, model in enumerate(models):
        state = group.seed_state(g)
        assert list(state) == list(model.state_dict())
        for name, tensor in model.state_dict().items():
            assert torch.equal(state[name], tensor), name


def test_a_group_of_one_is_the_model_itself():
    model = models_for(EVERY_LAYER, seeds=(4,))[0]
    group = SeedGroup([model])
    assert group.net is model
    assert list(group.seed_state(0)) == list(model.state_dict())


def flat(weights: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([w.flatten() for w in weights.values() if w.is_floating_point()])


def configs(step, **overrides):
    return [TrainConfig.for_step(step, seed=s, epochs=2, log_every=1, device="cpu", **overrides) for s in SEEDS]


def untimed(event):
    """An event without its clock readings (seconds, images/s), which differ between any two runs, and
    without the look inside that only a single run takes (core.training.inside)."""
    if event.kind == "done":
        return replace(event, seconds=0.0, weights=None, history=[untimed(e) for e in event.history])
    extra = {"seconds": 0.0} if event.kind == "epoch" else {"inside": None, "filters": None}
    return replace(event, images_per_s=0.0, **extra)


@pytest.mark.parametrize("step", [1, 5, 9])  # 1: linear layers; 5: dropout; 9: augmentation and a weight average
def test_a_group_of_one_is_the_single_run_bit_for_bit(data, step):
    """The side-by-side machinery with one seed gives exactly what `fit`, the run read top to bottom, gives:
    every loss, accuracy and learning rate, and the final weights, equal to the last bit. `fit` looks inside
    the network on every batch it reports and the group does not, so this also shows that looking changes
    nothing."""
    # step 1's 6.4-million-parameter baseline: three batches of 32 an epoch run the same code at a tenth of the cost
    small = {"batch_size": 32, "max_batches": 3} if step == 1 else {}
    config = TrainConfig.for_step(step, seed=3, epochs=2, log_every=1, device="cpu", **small)
    alone = list(fit(config, data))
    grouped = [event for _, event in fit_side_by_side([config], data)]
    assert [untimed(e) for e in grouped] == [untimed(e) for e in alone]
    assert alone[-1].completed and len(alone) > 4
    assert alone[-1].weights.keys() == grouped[-1].weights.keys()
    for name, tensor in alone[-1].weights.items():
        assert torch.equal(grouped[-1].weights[name], tensor), name


def test_a_stopped_or_diverged_single_run_ends_as_a_group_of_one_does(data):
    config = TrainConfig.for_step(3, seed=2, epochs=2, log_every=1, device="cpu")
    stop = threading.Event()
    stop.set()
    assert [untimed(e) for e in fit(config, data, stop)] == [untimed(e) for _, e in fit_side_by_side([config], data, stop)]
    broken = []
    for _ in range(2):  # what a diverged run looks like: one weight that is not a number
        model = build_for(config)
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] = float("nan")
        broken.append(model)
    ends = [list(fit(config, data, model=broken[0]))[-1], [e for _, e in fit_side_by_side([config], data, models=broken[1:])][-1]]
    assert untimed(ends[0]) == untimed(ends[1]) and "learning rate" in ends[0].reason


@pytest.mark.parametrize("step", [9, 5])  # 9: per-image augmentation and a weight average; 5: dropout
def test_grouped_seeds_train_as_separate_runs_would(data, step):
    cfgs = configs(step)
    together: list[list] = [[] for _ in cfgs]
    for g, event in fit_seeds(cfgs, data):
        together[g].append(event)
    for g, config in enumerate(cfgs):
        alone = list(fit(config, data))
        first = [e.loss for e in alone if e.kind == "batch"][:3]
        grouped = [e.loss for e in together[g] if e.kind == "batch"][:3]
        # the first steps: the same numbers up to floating-point summation order. Before any update only the
        # forward pass's rounding differs; each update then grows it (after two of step 5 on these tiny digits
        # it reached 2e-5 relative on an AVX512 CPU)
        assert grouped[0] == pytest.approx(first[0], rel=1e-6), f"seed {config.seed}, first batch"
        assert grouped[1:] == pytest.approx(first[1:], rel=1e-4), f"seed {config.seed}"
        done_alone, done_grouped = alone[-1], together[g][-1]
        assert done_grouped.completed and len(done_grouped.history) == len(done_alone.history) == 2
        assert done_grouped.params == done_alone.params
        # the end: rounding differences grow with every step, but stay far below what another seed changes
        other = list(fit(TrainConfig.for_step(step, seed=99, epochs=2, log_every=1, device="cpu"), data))[-1]
        drift = (flat(done_grouped.weights) - flat(done_alone.weights)).norm()
        seed_gap = (flat(other.weights) - flat(done_alone.weights)).norm()
        assert drift < 0.1 * seed_gap, f"seed {config.seed}: {drift} vs {seed_gap}"
        accs = [e.test_acc for e in done_grouped.history]
        assert accs == pytest.approx([e.test_acc for e in done_alone.history], abs=2.0)  # 1 % = one test image


def test_a_seed_that_diverges_ends_alone(data):
    cfgs = configs(9)
    models = [build_for(c) for c in cfgs]
    with torch.no_grad():
        next(models[1].parameters()).fill_(float("nan"))
    finals = {}
    for g, event in fit_seeds(cfgs, data, models=models):
        if isinstance(event, DoneEvent):
            assert g not in finals, "one final event per seed"
            finals[g] = event
    assert "loss became nan at epoch 1, batch 1" in finals[1].reason
    assert finals[1].history == [] and finals[1].weights is None
    assert finals[0].completed and finals[2].completed and len(finals[0].history) == 2


def test_stop_ends_every_seed_with_its_history(data):
    stop = threading.Event()
    finals = {}
    for g, event in fit_seeds(configs(9), data, stop):
        if event.kind == "epoch" and event.epoch == 1 and g == len(SEEDS) - 1:
            stop.set()
        if isinstance(event, DoneEvent):
            finals[g] = event
    assert [finals[g].reason for g in range(len(SEEDS))] == [STOPPED] * len(SEEDS)
    assert all(len(finals[g].history) == 1 and finals[g].weights is not None for g in finals)


@pytest.mark.parametrize("change, says", [
    ({"lr": 0.05}, "differ only in their seed"),
    ({"seed": 1}, "need different seeds"),
])
def test_a_group_trains_one_setting(data, change, says):
    cfgs = configs(9)
    cfgs[1] = cfgs[1].with_overrides(**change)
    with pytest.raises(ValueError, match=says):
        run_seeds(cfgs, data)
