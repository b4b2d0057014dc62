"""Inside the network (core.training.inside) against hooks, gradients and a step computed here, apart
from the probe."""

import copy

import pytest
import torch

from core.architecture.builder import build_model
from core.architecture.spec import layers_from_dicts
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.inside import IMAGES, METRICS, QUANTILE_NAMES, QUANTILES, WEIGHTS_EVERY, WEIGHTS_READ, Probe
from core.training.loop import build_for, fit, train_step
from core.training.schedule import make_optimizer

ODD = layers_from_dicts([  # a design with what the steps lack: dilation, a depthwise convolution, biases, dropout
    {"type": "conv", "out_channels": 6, "padding": 1, "bias": True}, {"type": "relu"}, {"type": "dropout", "p": 0.2},
    {"type": "conv", "out_channels": 6, "dilation": 2}, {"type": "bn"}, {"type": "relu"}, {"type": "maxpool"},
    {"type": "conv", "out_channels": 6, "groups": 6, "padding": 1}, {"type": "avgpool"}, {"type": "flatten"},
    {"type": "linear", "out_features": 10, "bias": True}, {"type": "softmax"},
])


@pytest.fixture(scope="module")
def data(tiny_mnist_root):
    return load_mnist(str(tiny_mnist_root), download=False)


def expected_figures(model, optimizer, x, y):
    """The figures of one step, taken with this test's own hooks, gradients and weights before and after."""
    outputs, figures = {}, {}
    handles = [m.register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o.detach().clone()))
               for name, m in model.named_children()]
    before = {name: m.weight.detach().clone() for name, m in model.named_children() if getattr(m, "weight", None) is not None}
    train_step(model, optimizer, x, y)
    for h in handles:
        h.remove()
    for name, m in model.named_children():
        out = outputs[name][:IMAGES]  # the probe reads the batch's first images
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d, torch.nn.ReLU)):
            figures[name] = {"act_mean": out.mean().item(), "act_std": out.std().item()}
        if isinstance(m, torch.nn.ReLU):
            figures[name]["zero_frac"] = (out == 0).sum().item() / out.numel()
        if name in before:
            figures[name]["grad_norm"] = torch.linalg.vector_norm(m.weight.grad).item()
            figures[name]["update_ratio"] = (torch.linalg.vector_norm(m.weight.detach() - before[name])
                                             / torch.linalg.vector_norm(before[name])).item()
    return figures


def weight_quantiles(model) -> dict[str, dict[str, float]]:
    """Each weighted layer's weight quantiles over all its weights (numpy's, not torch's)."""
    import numpy as np

    return {name: dict(zip(QUANTILE_NAMES, np.quantile(m.weight.detach().numpy().ravel(), QUANTILES)))
            for name, m in model.named_children() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d))}


@pytest.mark.parametrize("layers", [TrainConfig.for_step(1).layers(), TrainConfig.for_step(4).layers(),
                                    TrainConfig.for_step(9).layers(), ODD], ids=["step1", "step4", "step9", "odd"])
def test_the_probe_measures_what_independent_hooks_measure(layers):
    torch.manual_seed(0)
    model = build_model(layers)
    twin = copy.deepcopy(model)
    recipe = TrainConfig.for_step(9).recipe
    optimizer, twin_optimizer = make_optimizer(recipe, model), make_optimizer(recipe, twin)
    x, y = torch.randn(IMAGES + 8, 1, 28, 28), torch.randint(0, 10, (IMAGES + 8,))  # more than the probe reads
    probe = Probe(model)
    probe.arm(filters=True)
    torch.manual_seed(1)  # the same dropout masks for both
    train_step(model, optimizer, x, y, probe=probe)
    sample = probe.take(7, 1)
    torch.manual_seed(1)
    expected = expected_figures(twin, twin_optimizer, x, y)
    assert (sample.step, sample.epoch) == (7, 1)
    assert list(sample.layers) == list(expected)  # every watched layer, in the network's order
    for name, metrics in expected.items():
        measured = {k: v for k, v in sample.layers[name].items() if k not in QUANTILE_NAMES}
        assert measured == pytest.approx(metrics, rel=1e-4, abs=1e-7), name
    for name, quantiles in weight_quantiles(twin).items():  # of every weight, or of WEIGHTS_READ of them
        weights = dict(twin.named_children())[name].weight.detach()
        exact = weights.numel() <= WEIGHTS_READ
        tolerance = 1e-6 if exact else 0.05 * float(weights.max() - weights.min())
        for key, value in quantiles.items():
            assert sample.layers[name][key] == pytest.approx(value, abs=tolerance), (name, key)
    first = next(m for m in twin.children() if isinstance(m, torch.nn.Conv2d))
    assert torch.allclose(torch.tensor(sample.filters), first.weight.detach()[:, 0], atol=1e-5)
    for name, p in model.named_parameters():  # looking changed nothing
        assert torch.equal(p, dict(twin.named_parameters())[name]), name


def test_an_unarmed_probe_records_nothing_and_a_closed_one_leaves_no_hook():
    model = build_model(TrainConfig.for_step(9).layers())
    probe = Probe(model)
    train_step(model, make_optimizer(TrainConfig.for_step(9).recipe, model), torch.randn(8, 1, 28, 28),
               torch.randint(0, 10, (8,)), probe=probe)
    assert probe.take(1, 1) is None
    probe.close()
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("step", [1, 9])
def test_every_reported_batch_carries_every_layer_and_a_run_keeps_no_hook(data, step):
    config = TrainConfig.for_step(step, seed=1, epochs=1, log_every=2, device="cpu")
    model = build_for(config)
    events = list(fit(config, data, model=model))
    batches = [e for e in events if e.kind == "batch"]
    assert batches and all(e.inside is not None for e in batches)
    relus = [name for name, m in model.named_children() if isinstance(m, torch.nn.ReLU)]
    convs = [name for name, m in model.named_children() if isinstance(m, torch.nn.Conv2d)]
    for e in batches:
        assert set(relus) <= set(e.inside) and all("zero_frac" in e.inside[r] for r in relus)
        assert all(set(METRICS) - {"zero_frac"} <= set(e.inside[c]) for c in convs)
        assert all(0 <= e.inside[r]["zero_frac"] <= 1 for r in relus)
    # the weights' quantiles: on one report in WEIGHTS_EVERY, and wherever the filters are kept
    weighed = [e for e in batches if "w_p50" in e.inside[convs[0]]]
    assert {e.step for e in weighed} == {e.step for e in batches if (e.step // config.log_every) % WEIGHTS_EVERY == 1
                                         or e.filters is not None}
    for e in weighed:
        assert all(e.inside[c]["w_p05"] <= e.inside[c]["w_p50"] <= e.inside[c]["w_p95"] for c in convs)
    # the filters: at the first report and at the end of each epoch, as the run's first convolution has them
    with_filters = [e for e in batches if e.filters is not None]
    assert [e.step for e in with_filters] == sorted({batches[0].step, batches[-1].step})
    first = next(m for m in model.children() if isinstance(m, torch.nn.Conv2d))
    assert len(with_filters[-1].filters) == first.out_channels
    assert all(not m._forward_hooks for m in model.modules())


def test_a_recorded_run_keeps_every_look_inside_in_the_store(data, private_run_store):
    """The worker's recorder writes each epoch's samples with the epoch; a stopped run keeps its last part."""
    from core.serving.record import RunRecorder
    from core.serving.store import RunStore

    store = RunStore(private_run_store)
    config = TrainConfig.for_step(4, seed=1, epochs=2, log_every=3, device="cpu")
    recorder = RunRecorder(store, warn=pytest.fail)
    recorder.start(config, "cli", "cpu", 1, "x")
    events = list(fit(config, data))
    for event in events:
        recorder.record(event)
    sent = [(e.step, e.epoch, e.inside, e.filters) for e in events if e.kind == "batch"]
    assert [(s.step, s.epoch, s.layers, s.filters) for s in store.inside(recorder.run_id)] == sent
    assert any(f is not None for *_, f in sent)


def test_the_inside_command_records_a_step_and_its_flip_and_the_lesson_quotes_it(tiny_mnist_root, tmp_path):
    """`python -m core inside --step 4`: step 4 as it is (BatchNorm on) and with it off, on the same seeds; the
    lesson's figures are read from that file, ReLU by ReLU and convolution by convolution."""
    import json

    from conftest import run_cli

    from core.report.views import inside_facts

    out = tmp_path / "step_4.json"
    done = run_cli("inside", "--step", "4", "--seeds", "1,2", "--max-batches", "4", "--data-dir", str(tiny_mnist_root),
                   "--no-download", "--output", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    on, off = doc["variants"]
    assert on["toggles"]["batchnorm"] is True and off["toggles"]["batchnorm"] is False and doc["seeds"] == [1, 2]
    assert any(name.startswith("bn") for name in on["layers"]) and not any(n.startswith("bn") for n in off["layers"])
    assert doc["command"].startswith("python -m core inside --step 4") and doc["date"] and doc["processor"]
    facts = inside_facts(4, tmp_path)
    for variant, key in ((on, "as-is"), (off, "flipped")):
        relus = [m["act_std"] for m in variant["layers"].values() if "zero_frac" in m]
        convs = [m["grad_norm"] for n, m in variant["layers"].items() if n.startswith("conv")]
        assert facts[f"inside:{key}-relu-spread-first-last"] == f"{relus[0]:.2f} in the first to {relus[-1]:.2f} in the last"
        assert facts[f"inside:{key}-grad-first-vs-last"] == f"{convs[0] / convs[-1]:.2g}"
        assert facts[f"inside:{key}-grad-last"] == f"{convs[-1]:.2f}"
        last = [m for n, m in variant["layers"].items() if n.startswith("conv")][-1]
        assert facts[f"inside:{key}-last-weights"] == f"{last['w_p05']:.2f} and {last['w_p95']:.2f}"
    assert inside_facts(4, tmp_path / "none") == {}
    bad = run_cli("inside", "--step", "4", "--flip", "colour", "--data-dir", str(tiny_mnist_root), "--no-download")
    assert bad.returncode != 0 and "--flip" in bad.stderr and "Traceback" not in bad.stderr


def test_a_recipe_flip_is_the_ablations_and_each_epoch_is_kept(tiny_mnist_root, tmp_path):
    """`--flip one-cycle` trains step 9 with the ablation's constant 0.01 beside its one-cycle schedule, and
    keeps each epoch's means, from which the lesson quotes the first convolution's step size epoch by epoch."""
    import json

    from conftest import run_cli

    from core.report.views import inside_facts
    from core.results.ablation import get_ablation

    out = tmp_path / "step_9.json"
    done = run_cli("inside", "--step", "9", "--flip", "one-cycle", "--seeds", "1", "--epochs", "2", "--max-batches",
                   "12", "--data-dir", str(tiny_mnist_root), "--no-download", "--output", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    as_is, flipped = doc["variants"]
    constant = get_ablation("constant-lr").overrides
    assert as_is["recipe"]["schedule"] == "onecycle"
    assert (flipped["recipe"]["schedule"], flipped["recipe"]["lr"]) == (constant["schedule"], constant["lr"])
    for variant, key in ((as_is, "as-is"), (flipped, "flipped")):
        assert len(variant["by_epoch"]) == 2 and set(variant["by_epoch"][0]) == set(variant["layers"])
        ratios = [epoch["conv1"]["update_ratio"] for epoch in variant["by_epoch"]]
        top = max(range(2), key=ratios.__getitem__)
        assert inside_facts(9, tmp_path)[f"inside:{key}-update-by-epoch"] == (
            f"{ratios[0]:.1e} in the first epoch, {ratios[top]:.1e} at most (epoch {top + 1}) and {ratios[1]:.1e} in the last")
        # step 9 finishes clean: the last convolution's gradient at the last augmented epoch (of 2: the first) and the last
        grads = [epoch["conv7"]["grad_norm"] for epoch in variant["by_epoch"]]
        assert inside_facts(9, tmp_path)[f"inside:{key}-grad-last-clean-finish"] == (
            f"{grads[0]:.3f} in epoch 1 and {grads[1]:.3f} in epoch 2")
    (tmp_path / "step_9_schedule.json").write_text(out.read_text())  # a second recording of the step
    both = inside_facts(9, tmp_path)
    assert both["inside:schedule-flipped-update-by-epoch"] == both["inside:flipped-update-by-epoch"]
    assert both["inside:schedule-provenance"] == both["inside:provenance"]
    augment = run_cli("inside", "--step", "9", "--flip", "augment", "--seeds", "1", "--max-batches", "2", "--data-dir",
                      str(tiny_mnist_root), "--no-download", "--json")
    assert augment.returncode == 0, augment.stderr
    assert json.loads(augment.stdout)["variants"][1]["recipe"]["augment"] == get_ablation("no-augment").overrides[
        "augment"].describe()
