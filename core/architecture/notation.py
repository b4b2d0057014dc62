"""The network notation: a whole architecture in one short string, for links and the command line.

    c8,c8,M,c12,c12,c12,c12,G

Tokens, separated by commas, in order from the input:

- `c<N>`: a convolution with N output channels, 3x3, stride 1, no padding. Suffixes change it:
  `k<K>` kernel, `s<S>` stride, `p<P>` padding, `d<D>` dilation, `g<G>` groups, `b` with a bias.
  `c10k1` is a 1x1 transition; `c16p1` keeps the grid size; `c16g16` is depthwise (one 3x3 window per
  channel), usually followed by a 1x1 (`c16g16,c16k1`: a depthwise-separable convolution). BatchNorm,
  ReLU and dropout follow every convolution as the BatchNorm and dropout toggles say (they are not
  part of the notation).
- `M` / `A`: a 2x2 max / average pool; `M3` a 3x3 one; `s<S>` and `p<P>` as for convolutions.
- the head, last: `G` (global average pooling, then a 1x1 convolution to the 10 classes) or `F` (one
  convolution to the 10 classes whose kernel covers the whole last grid); `Gb` / `Fb` with a bias.

A lifecycle step is a design with a name and a lesson: every step's network is written in this
notation (`step_net`), and every front end (the app's links and editor, the CLI's `--net`) reads
and writes it with `parse_net` and `format_net`. `repair_net` turns a broken link into the nearest
valid design and says what it changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from core.architecture.spec import MNIST_SIDE, ArchSpec, Layer, SpecError

HEADS = {"G": True, "F": False}  # head letter -> global average pooling?
MAX_TOKENS = 64  # a longer stack is a typo or a test of the server, not a design
MAX_CHANNELS = 1024  # per convolution; the parameter and time limits catch the rest
MAX_KERNEL = MNIST_SIDE  # no window wider than the digit
# the largest link the notation accepts: every layer at its widest, the grid kept by padding (585 M parameters;
# core.architecture.size refuses to build it)
LARGEST_NET = ",".join([f"c{MAX_CHANNELS}p1"] * (MAX_TOKENS - 1) + ["G"])

_TOKEN = re.compile(r"(?P<kind>[cCmMaAgGfF])(?P<number>\d+)?(?P<rest>(?:[kKsSpPdDgG]\d+|[bB])*)")
_SUFFIX = re.compile(r"([kKsSpPdDgG])(\d+)|([bB])")


class NetError(SpecError):
    """A network string that cannot be read; the message names the token and says why."""


@dataclass(frozen=True)
class Net:
    body: tuple[Layer, ...]  # convolutions and pools
    gap: bool  # the head: True = GAP + 1x1, False = one convolution over the whole last grid
    head_bias: bool = False

    @property
    def spec(self) -> ArchSpec:
        return ArchSpec(body=self.body, bias_in_head=self.head_bias)

    @property
    def text(self) -> str:
        return format_net(self)


def _token_error(index: int, token: str, why: str) -> NetError:
    return NetError(f"layer {index} ({token!r}): {why}")


def parse_token(token: str, index: int) -> Layer | tuple[str, bool]:
    """One token -> a Layer, or ('head', bias) for the head."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise _token_error(index, token, "not a layer: use c<channels> (convolution), M or A (pool), "
                                         "G or F (head), e.g. c8,c8,M,c16,G")
    kind, number, rest = match["kind"].lower(), match["number"], match["rest"] or ""
    options: dict[str, int] = {}
    bias = False
    for key, value, flag in _SUFFIX.findall(rest):
        if flag:
            bias = True
            continue
        key = key.lower()
        if key in options:
            raise _token_error(index, token, f"'{key}' is given twice")
        options[key] = int(value)
    if kind in "gf":
        if number is not None or options:
            raise _token_error(index, token, "the head takes no numbers (G or F, with b for a bias)")
        return ("head", bias)
    if kind == "c":
        if number is None:
            raise _token_error(index, token, "a convolution needs its output channels, e.g. c16")
        channels = int(number)
        if channels < 1:
            raise _token_error(index, token, "a convolution needs at least 1 output channel")
        if channels > MAX_CHANNELS:
            raise _token_error(index, token, f"at most {MAX_CHANNELS:,} channels per convolution, got {channels:,}")
        kernel = options.get("k", 3)
        if not 1 <= kernel <= MAX_KERNEL:
            raise _token_error(index, token, f"kernel must be between 1 and {MAX_KERNEL}, got {kernel}")
        stride, dilation = options.get("s", 1), options.get("d", 1)
        if stride < 1 or dilation < 1:
            raise _token_error(index, token, "stride and dilation must be at least 1")
        padding = options.get("p", 0)
        if padding > kernel:
            raise _token_error(index, token, f"padding {padding} is more than the kernel {kernel}")
        groups = options.get("g", 1)
        if not 1 <= groups <= channels or channels % groups:
            raise _token_error(index, token, f"{groups} groups do not split its {channels} output channels evenly")
        return Layer("conv", channels, kernel, stride, padding, dilation, bias, act=True, groups=groups)
    if "d" in options or "g" in options or bias:
        raise _token_error(index, token, "a pool has no dilation, no groups and no bias")
    kernel = int(number) if number is not None else 2
    if not 1 <= kernel <= MAX_KERNEL:
        raise _token_error(index, token, f"pool size must be between 1 and {MAX_KERNEL}, got {kernel}")
    stride = options.get("s")
    if stride is not None and stride < 1:
        raise _token_error(index, token, "stride must be at least 1")
    padding = options.get("p", 0)
    if 2 * padding > kernel:
        raise _token_error(index, token, f"pool padding {padding} may be at most half the pool size {kernel}")
    return Layer("maxpool" if kind == "m" else "avgpool", kernel_size=kernel, stride=stride, padding=padding)


def split(text: str) -> list[str]:
    if not isinstance(text, str):
        raise NetError(f"a network is a string like c8,c8,M,c16,G, got {text!r}")
    return [t.strip() for t in text.replace(" ", "").split(",") if t.strip()]


def parse_net(text: str) -> Net:
    """Read a network string; raise NetError naming the first bad token. The geometry (does the
    grid stay at least 1x1?) is checked by the builder and the receptive-field table."""
    tokens = split(text)
    if not tokens:
        raise NetError("the network is empty: give at least a head, e.g. c8,M,c16,G")
    if len(tokens) > MAX_TOKENS:
        raise NetError(f"{len(tokens)} layers: at most {MAX_TOKENS} on this server")
    body: list[Layer] = []
    head: tuple[str, bool] | None = None
    for index, token in enumerate(tokens, start=1):
        parsed = parse_token(token, index)
        if isinstance(parsed, tuple):
            if index != len(tokens):
                raise _token_error(index, token, "the head (G or F) must be the last layer")
            head = parsed
        else:
            body.append(parsed)
    if head is None:
        raise NetError("no head: end the network with G (global average pooling + 1x1 to the 10 classes) "
                       "or F (one convolution over the whole last grid)")
    _check_grid(body, tokens)
    return Net(tuple(body), HEADS[_head_letter(tokens[-1])], head[1])


def _check_grid(body: list[Layer], tokens: list[str], input_size: int = MNIST_SIDE) -> None:
    """Raise NetError naming the first token whose window no longer fits the grid."""
    from core.architecture.receptive_field import output_size

    size, channels = input_size, 1
    for index, (layer, token) in enumerate(zip(body, tokens), start=1):
        if layer.type == "conv":
            if channels % layer.groups:
                raise _token_error(index, token, f"gets {channels} channels, which do not split evenly into its "
                                                 f"{layer.groups} groups")
            channels = layer.out_channels
        try:
            size = output_size([replace(layer, groups=1)], size)  # the grid alone: channels are checked above
        except SpecError:
            span = layer.dilation * (layer.kernel_size - 1) + 1
            raise _token_error(index, token, f"gets a {size}x{size} grid, but its {span}x{span} window (padding "
                                             f"{layer.padding}) does not fit: the grid would shrink below 1x1. "
                                             "Remove a pool or a convolution before it, or add padding") from None


def _head_letter(token: str) -> str:
    return token[0].upper()


def format_layer(layer: Layer) -> str:
    if layer.type == "conv":
        text = f"c{layer.out_channels}"
        text += f"k{layer.kernel_size}" if layer.kernel_size != 3 else ""
        text += f"s{layer.effective_stride}" if layer.effective_stride != 1 else ""
        text += f"p{layer.padding}" if layer.padding else ""
        text += f"d{layer.dilation}" if layer.dilation != 1 else ""
        text += f"g{layer.groups}" if layer.groups != 1 else ""
        return text + ("b" if layer.bias else "")
    if layer.type in ("maxpool", "avgpool"):
        text = "M" if layer.type == "maxpool" else "A"
        text += str(layer.kernel_size) if layer.kernel_size != 2 else ""
        text += f"s{layer.stride}" if layer.stride is not None and layer.stride != layer.kernel_size else ""
        return text + (f"p{layer.padding}" if layer.padding else "")
    raise NetError(f"a {layer.type} layer has no place in the notation (BatchNorm and dropout are toggles)")


def format_net(net: Net) -> str:
    return ",".join([*(format_layer(layer) for layer in net.body), ("G" if net.gap else "F") + ("b" if net.head_bias else "")])


def body_text(text: str) -> str:
    """A network string without its head: what differs between two designs with the same head."""
    return ",".join(split(text)[:-1])


def net_of(spec: ArchSpec, gap: bool) -> Net:
    return Net(tuple(spec.body), gap, spec.bias_in_head)


def repair_net(text: str, fallback: Net) -> tuple[Net, list[str]]:
    """The nearest valid design to a (link's) network string, and what was changed: unreadable
    tokens are dropped, a missing head becomes G, a head in the middle moves to the end. Nothing
    readable at all gives `fallback`."""
    changes: list[str] = []
    tokens = split(text) if isinstance(text, str) else []
    if len(tokens) > MAX_TOKENS:
        changes.append(f"kept the first {MAX_TOKENS} of {len(tokens)} layers")
        tokens = tokens[:MAX_TOKENS]
    body: list[Layer] = []
    head: tuple[bool, bool] | None = None
    for index, token in enumerate(tokens, start=1):
        try:
            parsed = parse_token(token, index)
        except NetError as exc:
            changes.append(f"dropped {exc}")
            continue
        if isinstance(parsed, tuple):
            if head is not None or index != len(tokens):
                changes.append(f"moved the head {token!r} to the end")
            head = (_head_letter(token) == "G", parsed[1])
        else:
            body.append(parsed)
    if not body and head is None:
        return fallback, [f"nothing readable in {text!r}: using {fallback.text}"]
    if head is None:
        head = (True, False)
        changes.append("added the head G (global average pooling + 1x1), which was missing")
    return Net(_fitting(body, changes), *head), changes


def _fitting(body: list[Layer], changes: list[str], input_size: int = MNIST_SIDE) -> tuple[Layer, ...]:
    """The body without the layers that would shrink the grid below 1x1."""
    from core.architecture.receptive_field import output_size

    kept: list[Layer] = []
    for index, layer in enumerate(body, start=1):
        try:
            output_size(kept + [layer], input_size)
        except SpecError:
            changes.append(f"dropped layer {index} ({format_layer(layer)}): the grid is already too small for it")
            continue
        kept.append(layer)
    return tuple(kept)
