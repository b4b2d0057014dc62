"""The RF table against (a) an independent textbook recurrence and (b) the empirical receptive
field: the input pixels that receive gradient from one output unit of the built model."""

import random

import pytest
import torch
from torch import nn

from core.architecture.builder import build_model
from core.architecture.receptive_field import rf_table
from core.architecture.spec import SpecError, Toggles, layers_from_dicts
from core.report.views import describe_stack
from core.training.config import TrainConfig
from core.training.steps import get_step


def measurable(model: nn.Sequential) -> nn.Sequential:
    """Same geometry, but every path carries gradient: max-pool -> avg-pool (max passes
    gradient to one pixel only), positive weights, float64, eval mode (dropout off)."""
    model = model.double().eval()
    for name, module in list(model.named_children()):
        if isinstance(module, nn.MaxPool2d):
            setattr(model, name, nn.AvgPool2d(module.kernel_size, module.stride, module.padding))
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
    return model


def empirical_window(model: nn.Sequential, upto: int, i: int, j: int, size: int) -> tuple[int, int, int, int]:
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = model[:upto](x)
    unit = out[0, 0, i, j] if out.dim() == 4 else out[0, 0]
    (grad,) = torch.autograd.grad(unit, x)
    rows = grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = grad[0, 0].abs().sum(0).nonzero().flatten()
    return rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()


def check_stack(layers, size=28):
    """Units whose window lies inside the image must match exactly. Edge units whose window
    spills into the padding may see less than the clipped window (dilation and strides leave
    holes, so the first in-image tap can sit further in), never more."""
    rows = rf_table(layers, size)
    model = measurable(build_model(layers, size))
    exact = 0
    for k, row in enumerate(rows, start=1):
        if row.layer.type in ("flatten", "linear", "softmax"):
            continue
        _, h, w = row.out_shape
        for i, j in {(0, 0), (h // 2, w // 2), (h - 1, w - 1), (0, w - 1)}:
            got, want = empirical_window(model, k, i, j, size), row.window(i, j, size)
            lo_r, lo_c = row.start + i * row.jump, row.start + j * row.jump
            inside = min(lo_r, lo_c) >= 0 and max(lo_r, lo_c) + row.rf - 1 < size
            if inside:
                exact += 1
                assert got == want, (k, row.layer, i, j)
            else:
                assert want[0] <= got[0] <= got[1] <= want[1] and want[2] <= got[2] <= got[3] <= want[3], (k, row.layer)
    return exact


def textbook_rf(layers, size=28):
    """Independent recurrence, written separately from core.architecture.receptive_field on purpose."""
    r, j, out = 1, 1, []
    for layer in layers:
        if layer.type in ("conv", "maxpool", "avgpool"):
            k = layer.dilation * (layer.kernel_size - 1) + 1
            s = layer.stride or (1 if layer.type == "conv" else layer.kernel_size)
            size = (size + 2 * layer.padding - k) // s + 1
            r, j = r + (k - 1) * j, j * s
        elif layer.type == "gap":
            r, j, size = r + (size - 1) * j, j * size, 1
        out.append((r, j, size))
    return out


@pytest.mark.parametrize("number", range(2, 10))
@pytest.mark.parametrize("gap", [False, True])
def test_steps_match_the_empirical_rf(number, gap):
    check_stack(get_step(number).layers(Toggles(batchnorm=True, dropout=0.1, gap=gap)))


def test_step1_rf_matches_the_recurrence():
    layers = get_step(1).layers()
    ours = [(row.rf, row.jump, row.out_shape[1]) for row in rf_table(layers)]
    assert ours == textbook_rf(layers)
    assert ours[-3][0] == 40  # the head conv of step 1 sees a 40x40 window (clipped to 28 in the image)


def random_stack(rng: random.Random) -> list[dict]:
    stack, size = [], 28
    while size > 2 and len(stack) < 8:
        kind = rng.choice(["conv", "conv", "conv", "maxpool", "avgpool", "bn", "relu"])
        if kind == "conv":
            k, d = rng.choice([1, 3, 3, 5]), rng.choice([1, 1, 2])
            entry = {"type": "conv", "out_channels": rng.randint(1, 4), "kernel_size": k,
                     "padding": rng.randint(0, k // 2 * d), "stride": rng.choice([1, 1, 2]), "dilation": d}
        elif kind in ("maxpool", "avgpool"):
            k = rng.choice([2, 3])
            entry = {"type": kind, "kernel_size": k, "stride": rng.choice([1, 2, k]), "padding": rng.randint(0, k // 2)}
        else:
            entry = {"type": kind}
        trial = layers_from_dicts(stack + [entry])
        try:
            size = rf_table(trial)[-1].out_shape[1]
        except SpecError:
            break
        stack.append(entry)
    return stack + [{"type": "gap"}]


@pytest.mark.parametrize("seed", range(12))
def test_random_stacks_match_empirical_and_recurrence(seed):
    layers = layers_from_dicts(random_stack(random.Random(seed)))
    check_stack(layers)
    assert check_stack(layers, 96) > 0  # on a larger canvas the windows fit: exact matches
    assert [(r.rf, r.jump, r.out_shape[1]) for r in rf_table(layers)] == textbook_rf(layers)


def test_known_values():
    doc = describe_stack([{"type": "conv", "out_channels": 8, "kernel_size": 3}, {"type": "maxpool", "kernel_size": 2},
                          {"type": "conv", "out_channels": 4, "kernel_size": 3, "dilation": 2, "padding": 2},
                          {"type": "maxpool", "kernel_size": 3, "stride": 2}, {"type": "gap"}])
    got = [(r["type"], r["out_shape"], r["rf"], r["jump"], r["params"]) for r in doc["layers"]]
    assert got == [("conv", [8, 26, 26], 3, 1, 72), ("maxpool", [8, 13, 13], 4, 2, 0),
                   ("conv", [4, 13, 13], 12, 2, 288), ("maxpool", [4, 6, 6], 16, 4, 0),
                   ("gap", [4, 1, 1], 36, 24, 0)]
    assert doc["layers"][-1]["kernel_size"] == 6  # gap reports its input size


def test_collapsing_stack_names_the_layer():
    stack = [{"type": "conv", "out_channels": 4, "kernel_size": 5}] + [{"type": "maxpool"}] * 4 + \
            [{"type": "conv", "out_channels": 4}]
    with pytest.raises(SpecError, match=r"layer 6 \(conv 3x3 -> 4\).*collapses below 1x1"):
        describe_stack(stack)


@pytest.mark.parametrize("bad, message", [
    ([], "non-empty"),
    ([{"type": "pool"}], "unknown type"),
    ([{"type": "conv"}], "needs out_channels"),
    ([{"type": "conv", "out_channels": 4, "kernel_size": 0}], "kernel_size must be >= 1"),
    ([{"type": "conv", "out_channels": 4, "stride": 1.5}], "stride must be an integer"),
    ([{"type": "maxpool", "kernel_size": 2, "padding": 2}], "at most half"),
    ([{"type": "flatten"}, {"type": "conv", "out_channels": 2}], "after a flatten"),
    ([{"type": "conv", "out_channels": 2}, {"type": "linear", "out_features": 10}], "needs a flatten"),
    ([{"type": "conv", "out_channels": 2, "colour": 1}], "unknown field"),
    ([{"type": "conv", "out_channels": 4}, {"type": "conv", "out_channels": 6, "groups": 4}], "split evenly"),
    ([{"type": "conv", "out_channels": 4, "groups": 0}], "groups must be >= 1"),
    ("conv", "JSON list"),
])
def test_bad_stacks_are_refused_clearly(bad, message):
    with pytest.raises(SpecError, match=message):
        describe_stack(bad)


def test_flatten_linear_head():
    doc = describe_stack([{"type": "conv", "out_channels": 2}, {"type": "flatten"},
                          {"type": "linear", "out_features": 10}, {"type": "softmax"}])
    assert doc["layers"][1]["out_shape"] == [2 * 26 * 26, 1, 1]
    assert doc["layers"][2]["params"] == 2 * 26 * 26 * 10
    assert doc["layers"][2]["rf"] == 28  # a fully connected layer sees the whole image


def test_a_depthwise_separable_stack_matches_the_empirical_rf():
    """Groups change which channels a window reads, never how far it reaches."""
    layers = TrainConfig.for_step(9, net="c8,c16,M,c16g16,c32k1,c32g32,c32k1,c32g32,c36k1,c36g36,G").layers()
    assert check_stack(layers) > 0
    assert [(r.rf, r.jump, r.out_shape[1]) for r in rf_table(layers)] == textbook_rf(layers)
