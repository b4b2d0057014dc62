"""G copies of one network trained as one: the seeds of a multi-seed run side by side.

Every convolution becomes one grouped convolution (group g holds seed g's filters), every
BatchNorm one BatchNorm over G times the channels (its statistics are per channel, so per seed),
and the head answers per seed. Nothing in the forward pass mixes two groups, so summing the G
losses gives each seed exactly the gradient it would get alone; SGD, Adam and the weight average
work element by element, so they do not mix seeds either. What changes is only how much work one
call does: G small convolutions become one wider one.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class GroupedLinear(nn.Module):
    """G linear layers on a flattened [B, G * features] input, as one grouped 1x1 convolution."""

    def __init__(self, linear: nn.Linear, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(groups * linear.in_features, groups * linear.out_features, 1,
                              bias=linear.bias is not None, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x[:, :, None, None]).flatten(1)


class GroupedDropout(nn.Module):
    """Dropout whose mask for seed g is drawn from seed g's own random stream, so each seed drops
    what it would drop training alone (where the stream is the global one, seeded with the seed)."""

    def __init__(self, p: float, groups: int) -> None:
        super().__init__()
        self.p, self.groups = p, groups
        self.streams: list[torch.Generator] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.streams is None:
            return F.dropout(x, self.p, training=True)
        masks = [torch.empty(plane.shape, device=x.device).bernoulli_(1 - self.p, generator=stream)
                 for plane, stream in zip(x.chunk(self.groups, dim=1), self.streams)]
        return x * torch.cat(masks, dim=1).div_(1 - self.p)


class GroupedLogSoftmax(nn.Module):
    """[B, G * classes] -> [B, G, classes] log-probabilities, one distribution per seed."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(x.view(x.shape[0], self.groups, -1), dim=2)


def _grouped(module: nn.Module, groups: int) -> nn.Module:
    if isinstance(module, nn.Conv2d):
        return nn.Conv2d(groups * module.in_channels, groups * module.out_channels, module.kernel_size,
                         module.stride, module.padding, module.dilation, bias=module.bias is not None,
                         groups=groups * module.groups)
    if isinstance(module, nn.BatchNorm2d):
        return nn.BatchNorm2d(groups * module.num_features, module.eps, module.momentum)
    if isinstance(module, nn.Linear):
        return GroupedLinear(module, groups)
    if isinstance(module, nn.LogSoftmax):
        return GroupedLogSoftmax(groups)
    if isinstance(module, nn.Dropout):
        return GroupedDropout(module.p, groups)
    if isinstance(module, (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)):
        return copy.deepcopy(module)  # element- or channel-wise: the same module serves every group
    raise TypeError(f"cannot train {type(module).__name__} seeds side by side")


class SeedGroup(nn.Module):
    """`models` (one per seed, the same architecture) as one network. Input [B, G, H, W]: image
    plane g is seed g's (own order, own augmentation); output [B, G, classes]. A group of one
    runs the model itself, unchanged."""

    def __init__(self, models: list[nn.Sequential]) -> None:
        super().__init__()
        if not models:
            raise ValueError("a seed group needs at least one model")
        self.size = len(models)
        self._shapes = {k: v.shape for k, v in models[0].state_dict().items()}
        if self.size == 1:
            self.net = models[0]
        else:
            self.net = nn.Sequential(*[_grouped(m, self.size) for m in models[0]])
            self.net.load_state_dict(self._joined([m.state_dict() for m in models]))
        # a group of one keeps the model's own keys; a wider one numbers its modules 0, 1, ...
        self._keys = dict(zip(self._shapes, self.net.state_dict()))

    def _joined(self, states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        keys = list(self.net.state_dict())
        joined = {}
        for key, name in zip(keys, self._shapes):
            parts = [s[name] for s in states]
            joined[key] = parts[0].clone() if parts[0].dim() == 0 else torch.cat([p.flatten(1) if p.dim() > 1
                                                                                  else p for p in parts])
            joined[key] = joined[key].reshape(self.net.state_dict()[key].shape)
        return joined

    def seed_streams(self, seeds: list[int], device: torch.device) -> None:
        """Give each seed's dropout its own stream, seeded as a run of that seed alone seeds the
        global one (a group of one keeps using the global stream)."""
        if self.size == 1:
            return
        streams = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]  # one per seed, all layers
        for module in self.net:
            if isinstance(module, GroupedDropout):
                module.streams = streams

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[:, None] if self.size == 1 else out

    def seed_state(self, index: int, state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Seed `index`'s weights under its own model's keys (from `state`, default this group's
        own), detached copies on the CPU: loadable into the single model."""
        state = state if state is not None else self.state_dict()
        out = {}
        for name, shape in self._shapes.items():
            tensor = state["net." + self._keys[name]].detach()
            piece = tensor if tensor.dim() == 0 else tensor.chunk(self.size)[index]
            out[name] = piece.reshape(shape).cpu().clone()
        return out
