"""The network notation (`c8,c8,M,c16,G`): every step is a design; parameters and receptive
fields of designs agree with an independent calculation written here from the textbook formulas;
bad strings give messages that name the token, never another exception; a broken link is
repaired to the nearest buildable design."""

import random

import pytest

from core.architecture.builder import build_model, count_params
from core.architecture.notation import MAX_TOKENS, Net, NetError, format_net, net_of, parse_net, repair_net
from core.architecture.receptive_field import rf_table
from core.architecture.spec import SpecError, Toggles, expand
from core.training.config import TrainConfig
from core.training.steps import STEPS


def independent(text: str, batchnorm: bool) -> tuple[int, int]:
    """(parameters, final receptive field) of a design string, computed from scratch: conv k*k*cin*cout/groups
    (+cout bias), BatchNorm 2 per channel, the head; RF grows by d*(k-1)*jump, jump by stride."""
    tokens = text.split(",")
    size, channels, params, rf, jump = 28, 1, 0, 1, 1
    for token in tokens[:-1]:
        fields = {"k": 3 if token[0] == "c" else 2, "s": None, "p": 0, "d": 1, "g": 1}
        head, rest = token[0], token[1:]
        number = ""
        while rest and rest[0].isdigit():
            number, rest = number + rest[0], rest[1:]
        bias = rest.endswith("b")
        rest = rest.rstrip("b")
        while rest:
            key, rest = rest[0], rest[1:]
            value = ""
            while rest and rest[0].isdigit():
                value, rest = value + rest[0], rest[1:]
            fields[key] = int(value)
        if head == "c":
            out, k = int(number), fields["k"]
            stride = fields["s"] or 1
            params += k * k * channels * out // fields["g"] + (out if bias else 0) + (2 * out if batchnorm else 0)
            channels = out
        else:
            k = int(number) if number else 2
            stride = fields["s"] or k
        span = fields["d"] * (k - 1) + 1
        size = (size + 2 * fields["p"] - span) // stride + 1
        rf += fields["d"] * (k - 1) * jump
        jump *= stride
    head = tokens[-1]
    head_bias = 10 if head.endswith("b") else 0
    if head.startswith("G"):
        params += channels * 10 + head_bias
        rf += (size - 1) * jump
    else:
        params += size * size * channels * 10 + head_bias
        rf += (size - 1) * jump
    return params, rf


@pytest.mark.parametrize("step", STEPS, ids=lambda s: f"step{s.number}")
def test_every_step_is_a_design_that_round_trips(step):
    net = net_of(step.spec, step.toggles.gap)
    assert parse_net(format_net(net)) == net
    config = TrainConfig.for_step(step.number)
    assert config.net == format_net(net) and not config.is_design
    assert config.layers() == step.layers()  # the same layers as the step's own spec


MY_DESIGNS = ["c8,c8,M,c16,c16,c16,c16,G", "c12,c16,M,c16,c16,c16,G", "c4p1,c4p1,c4p1,M,c8p1,c8p1,c8p1,M,c8,c8,c8,G",
              "c16p1,c16p1,M,c32k1,c32,A,c10k1,F", "c8s2,c16d2,c16,G", "c10,M3s2p1,c20k5,c20,Gb", "c32p1b,M,c64b,Fb",
              "c6,c12,c12k1,M,c12,c24,c24,c10k1,G",
              # depthwise-separable: a 3x3 per channel, then a 1x1 that mixes them; and a grouped 3x3
              "c8,c16,M,c16g16,c32k1,c32g32,c32k1,c32g32,c36k1,c36g36,G", "c8,c8g2p1d2,M,c12g4,c12k1b,F"]


@pytest.mark.parametrize("text", MY_DESIGNS)
@pytest.mark.parametrize("batchnorm", [True, False])
def test_designs_match_an_independent_parameter_and_receptive_field_count(text, batchnorm):
    config = TrainConfig.for_step(9, net=text, batchnorm=batchnorm)
    params, rf = independent(config.net, batchnorm)
    assert count_params(build_model(config.layers())) == params
    assert rf_table(config.layers())[-1].rf == rf


@pytest.mark.parametrize("text, where, why", [
    ("c8,c0,M,G", "layer 2 ('c0')", "at least 1 output channel"),
    ("c8,c99999,G", "layer 2 ('c99999')", "at most 1,024 channels"),
    ("c8,M,M,M,M,M,G", "layer 6 ('M')", "below 1x1"),
    ("c8k40,G", "layer 1 ('c8k40')", "kernel must be between 1 and 28"),
    ("c8,x3,G", "layer 2 ('x3')", "not a layer"),
    ("c8,c12g8,G", "layer 2 ('c12g8')", "8 groups do not split its 12 output channels evenly"),
    ("c8,c12,c10g5,G", "layer 3 ('c10g5')", "gets 12 channels, which do not split evenly into its 5 groups"),
    ("c8,Mg2,G", "layer 2 ('Mg2')", "a pool has no dilation, no groups"),
    ("c8,G,c8", "layer 2 ('G')", "must be the last"),
    ("c8,c16", "no head", "end the network with G"),
    ("", "empty", "at least a head"),
    (",".join(["c8p1"] * (MAX_TOKENS + 1)) + ",G", f"{MAX_TOKENS + 2} layers", f"at most {MAX_TOKENS}"),
])
def test_bad_designs_name_the_layer(text, where, why):
    with pytest.raises(NetError) as caught:
        parse_net(text)
    assert where in str(caught.value) and why in str(caught.value)


def test_the_gap_toggle_and_the_head_are_one_setting():
    design = TrainConfig.for_step(9, net="c8,M,c16,F")
    assert design.toggles.gap is False and design.is_design
    assert design.with_overrides(gap=True).net == "c8,M,c16,G"
    assert TrainConfig.for_step(4, gap=True).net.endswith(",G") and not TrainConfig.for_step(4, gap=True).is_design
    assert TrainConfig.from_dict(design.as_dict()) == design


def test_stored_configs_without_a_network_still_load():
    raw = TrainConfig.for_step(7).as_dict()
    raw.pop("net")  # runs recorded before designs existed
    assert TrainConfig.from_dict(raw) == TrainConfig.for_step(7)


def test_a_broken_link_becomes_the_nearest_buildable_design():
    fallback = parse_net("c8,G")
    net, changes = repair_net("c8,c0,M,M,M,M,M,c16,zz", fallback)
    assert net.text == "c8,M,M,M,M,G"
    assert any("c0" in c for c in changes) and any("zz" in c for c in changes)
    assert any("added the head" in c for c in changes) and any("too small" in c for c in changes)
    assert repair_net("%%%", fallback) == (fallback, [repair_net("%%%", fallback)[1][0]])


ALPHABET = list("cCmMaAgGfFkKsSpPdDbB0123456789,, x-")


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_strings_never_raise_anything_but_a_net_error(seed):
    rng = random.Random(seed)
    fallback = parse_net("c8,G")
    for _ in range(400):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        try:
            net = parse_net(text)
        except NetError:
            net = None
        if net is not None:  # whatever parses also builds, with the same parameters from its own string
            layers = expand(net.spec, Toggles(batchnorm=True, gap=net.gap))
            assert count_params(build_model(layers)) == count_params(build_model(expand(
                parse_net(net.text).spec, Toggles(batchnorm=True, gap=net.gap))))
        repaired, _ = repair_net(text, fallback)
        assert isinstance(repaired, Net)
        try:
            build_model(expand(repaired.spec, Toggles(gap=repaired.gap)))
        except SpecError as exc:  # pragma: no cover - the assertion below says which string
            pytest.fail(f"the repair of {text!r} ({repaired.text}) does not build: {exc}")


@pytest.mark.parametrize("seed", range(3))
def test_fuzzed_designs_on_the_command_line_exit_cleanly(seed, capsys):
    from core.cli import main

    rng = random.Random(100 + seed)
    for _ in range(25):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
        for command in (["summary", f"--net={text}"], ["rf", f"--net={text}", "--json"]):
            code = main(command)
            out, err = capsys.readouterr()
            assert code in (0, 2), (command, code, err)
            assert "Traceback" not in err
            if code == 2:
                assert err.startswith("error: ") and err.count("\n") == 1, err
