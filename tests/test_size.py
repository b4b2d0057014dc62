"""A network's size from its spec, checked against the built model (sum of p.numel()), torchinfo's
multiply-adds and the shapes of a real forward pass; a link's network above the limits is refused
before any module is built."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from core.architecture.builder import build_model, count_params, macs, summarize
from core.architecture.notation import LARGEST_NET, parse_net
from core.architecture.size import MAX_PARAMS, check_size, size_of
from core.architecture.spec import SpecError, Toggles, expand
from core.training.config import TrainConfig



def random_designs(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    designs = []
    while len(designs) < count:
        tokens = []
        for _ in range(rng.randint(1, 6)):
            kind = rng.choice(["c", "c", "c", "M", "A"])
            if kind != "c":
                tokens.append(kind)
                continue
            channels = rng.choice([4, 8, 12, 16])
            token = f"c{channels}" + rng.choice(["", "p1", "k1", "k5p2", "d2p2", "s2"]) + rng.choice(["", "b"])
            tokens.append(token + (f"g{channels}" if rng.random() < 0.2 and tokens and tokens[-1].startswith(
                f"c{channels}") else ""))
        text = ",".join(tokens + [rng.choice(["G", "F", "Gb", "Fb"])])
        try:
            parse_net(text)
        except SpecError:
            continue
        designs.append(text)
    return designs


@pytest.mark.parametrize("step", range(1, 10))
def test_every_step_is_sized_as_built(step):
    layers = TrainConfig.for_step(step).layers()
    size, model = size_of(layers), build_model(layers)
    assert size.params == count_params(model)
    assert size.macs == macs(model)
    assert list(size.layer_params) == [row.params for row in summarize(layers, model=model)]


@pytest.mark.parametrize("text", random_designs(12))
@pytest.mark.parametrize("batchnorm,dropout", [(True, 0.1), (False, 0.0)])
def test_random_designs_are_sized_as_built_and_as_run(text, batchnorm, dropout):
    layers = expand(parse_net(text).spec, Toggles(batchnorm=batchnorm, dropout=dropout, gap=parse_net(text).gap))
    size, model = size_of(layers), build_model(layers)
    assert size.params == count_params(model) and size.macs == macs(model)
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel())) for m in model]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    assert size.activations == sum(outputs)


def test_the_largest_link_is_refused_before_a_module_is_built(monkeypatch):
    def no_building(*args, **kwargs):
        raise AssertionError("a module was built")

    monkeypatch.setattr(nn.Conv2d, "__init__", no_building)
    size = size_of(expand(parse_net(LARGEST_NET).spec, Toggles(batchnorm=True, gap=True)))
    assert size.params == 585_253_888  # the network of the issue, with step 9's BatchNorm
    config = TrainConfig.for_step(9, net=LARGEST_NET)  # a config is only text: reading a stored run never fails
    with pytest.raises(SpecError, match=f"too big to build: {size.params:,} parameters.*{MAX_PARAMS:,}"):
        check_size(config.layers())
    with pytest.raises(SpecError, match="too big to build"):
        build_model(config.layers())
    from core.serving.limits import ServerLimits, run_problems

    (problem,) = run_problems(config, 60.0, ServerLimits())  # and the queue refuses it, before its time or memory
    assert "too big to build here" in problem


@pytest.mark.parametrize("text,limit", [("c1024p1,c1024p1,c1024p1,G", "parameters"),
                                        ("c64p1," * 20 + "G", "multiply-adds"),
                                        ("c256p1," + "c256g256p1," * 4 + "G", "values in its layers' outputs")])
def test_each_limit_names_itself(text, limit):
    with pytest.raises(SpecError, match=f"too big to build: [0-9,]+( M)? {limit}"):
        check_size(TrainConfig.for_step(9, net=text).layers())
