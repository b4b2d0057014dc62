import itertools

import pytest
import torch
from torchinfo import summary

from core.architecture.builder import build_model, count_params
from core.architecture.spec import SpecError, Toggles
from core.report.lessons import load_lesson
from core.report.views import describe_step
from core.training.steps import STEPS, get_step

# The write-up's lifecycle table (parameters per step); ours must be within 20 %.
WRITEUP_PARAMS = {1: 6.3e6, 2: 51e3, 3: 12e3, 4: 12.2e3, 5: 12.2e3, 6: 9.8e3, 7: 12.5e3, 8: 12.5e3}

TOGGLES = [Toggles(bn, p, gap) for bn, p, gap in itertools.product((False, True), (0.0, 0.2), (False, True))]


@pytest.mark.parametrize("number", list(WRITEUP_PARAMS))
def test_step_params_follow_the_writeup_table(number):
    params = count_params(build_model(get_step(number).layers()))
    assert abs(params - WRITEUP_PARAMS[number]) <= 0.2 * WRITEUP_PARAMS[number], params


def test_final_step_is_under_budget():
    assert count_params(build_model(get_step(9).layers())) < 10_000


@pytest.mark.parametrize("number", range(1, 10))
def test_every_toggle_combination_builds_and_runs(number):
    step = get_step(number)
    counts = {}
    for t in TOGGLES:
        model = build_model(step.layers(t)).eval()
        out = model(torch.zeros(2, 1, 28, 28))
        assert out.shape == (2, 10)
        params = count_params(model)
        if number > 1:  # skip torchinfo's slow pass over the 6.3M model for every combination
            assert summary(model, input_size=(1, 1, 28, 28), verbose=0).total_params == params
        counts[t] = params
    for bn, p in itertools.product((False, True), (0.0, 0.2)):
        # dropout never changes the count; GAP always removes weights (the big last kernel)
        assert counts[Toggles(bn, 0.0, False)] == counts[Toggles(bn, p, False)]
        assert counts[Toggles(bn, p, True)] < counts[Toggles(bn, p, False)]
    # BatchNorm adds exactly two parameters per normalised channel
    layers = step.layers(Toggles(True, 0.0, False))
    channels = [layer.out_channels for layer in layers if layer.type == "conv" and layer.act]
    assert counts[Toggles(True, 0.0, False)] - counts[Toggles(False, 0.0, False)] == 2 * sum(channels)


def test_summary_total_matches_torchinfo_and_numel():
    doc = describe_step(9)
    model = build_model(get_step(9).layers())
    assert doc["params"] == sum(p.numel() for p in model.parameters())
    assert sum(row["params"] for row in doc["layers"]) == doc["params"]
    assert doc["params"] == summary(model, input_size=(1, 1, 28, 28), verbose=0).total_params


def test_toggles_are_reflected_in_the_layer_list():
    layers = get_step(3).layers(Toggles(batchnorm=True, dropout=0.1, gap=True))
    types = [layer.type for layer in layers]
    assert "bn" in types and "dropout" in types and "gap" in types
    assert types[-2:] == ["flatten", "softmax"]
    plain = [layer.type for layer in get_step(3).layers(Toggles())]
    assert "bn" not in plain and "dropout" not in plain and "gap" not in plain


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_bad_dropout_is_refused(rate):
    with pytest.raises(SpecError, match="dropout"):
        Toggles(dropout=rate)


def test_unknown_step():
    with pytest.raises(SpecError, match="unknown step"):
        get_step(10)


def test_every_step_has_its_texts_and_writeup_facts():
    assert [s.number for s in STEPS] == list(range(1, 10))
    for s in STEPS:
        lesson = load_lesson(s.number)
        assert s.title and lesson.target and lesson.analysis and lesson.in_depth
        assert 90 < s.writeup.best_test_acc < 100


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode, size", [
    (2, 2, 0, False, 24), (2, 2, 0, False, 25), (3, 2, 1, False, 13), (2, 2, 0, True, 11), (3, 1, 0, False, 9)])
def test_our_max_pool_picks_what_pytorchs_picks(kernel, stride, padding, ceil_mode, size):
    """The channels-last max-pool against nn.MaxPool2d: the same values and the same gradient, bit
    for bit, with ties (whole windows of zeros after a ReLU, repeated maxima) and infinities."""
    from torch import nn

    from core.architecture.pooling import MaxPool2d

    x = torch.relu(torch.randn(6, 5, size, size, generator=torch.Generator().manual_seed(size)))
    x[0, 0, :4, :4] = 0.75  # a window of equal maxima
    x[1, 1, 2:5, 2:5] = float("-inf")
    x[2, 2, 1, :] = float("inf")
    grads = []
    for pool in (MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode),
                 nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode)):
        inp = x.clone().requires_grad_()
        out = pool(inp)
        out.backward(torch.arange(out.numel(), dtype=out.dtype).view(out.shape))  # a distinct gradient per window
        grads.append((out.detach(), inp.grad))
    (ours, our_grad), (theirs, their_grad) = grads
    assert ours.is_contiguous() and our_grad.is_contiguous()
    assert torch.equal(ours, theirs) and torch.equal(our_grad, their_grad)


def test_a_built_model_pools_with_ours_and_gets_pytorchs_gradients():
    from torch import nn

    from core.architecture.pooling import MaxPool2d

    layers = get_step(9).layers()
    model = build_model(layers)
    pools = [name for name, module in model.named_children() if isinstance(module, nn.MaxPool2d)]
    assert pools and all(type(getattr(model, name)) is MaxPool2d for name in pools)
    assert "MaxPool2d" in str(summary(model, input_size=(1, 1, 28, 28), verbose=0))
    reference = build_model(layers)
    reference.load_state_dict(model.state_dict())
    for name in pools:
        setattr(reference, name, nn.MaxPool2d(2, 2))
    x = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for net in (model, reference):
        net(x).sum().backward()
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(model.parameters(), reference.parameters()))
