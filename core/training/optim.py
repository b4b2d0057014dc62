"""SGD (with Nesterov momentum) and Adam, written out with PyTorch's foreach ops.

They compute what `torch.optim.SGD(nesterov=True)` and `torch.optim.Adam` compute (tests/test_train.py
steps both side by side), and keep the same `param_groups` the learning-rate schedule writes to.
Why not torch.optim itself: creating any torch.optim optimiser imports TorchDynamo (its methods are
wrapped to keep the compiler out), about 1.2 s on this CPU at the start of every process -- a tenth
of a whole training epoch of step 9. Nothing here needs the compiler.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn


class Optimizer:
    """The part of torch.optim.Optimizer the trainer uses: one parameter group, `zero_grad`, `step`."""

    def __init__(self, params: Iterable[nn.Parameter], **group: Any) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.param_groups: list[dict[str, Any]] = [group | {"params": self.params}]

    @property
    def group(self) -> dict[str, Any]:
        return self.param_groups[0]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _with_grads(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        live = [p for p in self.params if p.grad is not None]
        return live, [p.grad for p in live]


class SGD(Optimizer):
    def __init__(self, params: Iterable[nn.Parameter], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        self.buffers: dict[nn.Parameter, torch.Tensor] = {}

    @torch.no_grad()
    def step(self) -> None:
        g = self.group
        params, grads = self._with_grads()
        if not params:
            return
        if g["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=g["weight_decay"])
        if g["momentum"]:
            held = [p in self.buffers for p in params]
            old = [(self.buffers[p], d) for p, d, h in zip(params, grads, held) if h]
            if old:
                torch._foreach_mul_([b for b, _ in old], g["momentum"])
                torch._foreach_add_([b for b, _ in old], [d for _, d in old])
            for p, d, h in zip(params, grads, held):
                if not h:  # a buffer starts at its parameter's first gradient, as in torch.optim
                    self.buffers[p] = d.clone()
            buffers = [self.buffers[p] for p in params]
            grads = torch._foreach_add(grads, buffers, alpha=g["momentum"]) if g["nesterov"] else buffers
        torch._foreach_add_(params, grads, alpha=-g["lr"])


class Adam(Optimizer):
    def __init__(self, params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.steps = 0
        self.first = [torch.zeros_like(p) for p in self.params]  # moving averages of the gradient
        self.second = [torch.zeros_like(p) for p in self.params]  # ... and of its square

    @torch.no_grad()
    def step(self) -> None:
        g = self.group
        beta1, beta2 = g["betas"]
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        grads = [p.grad for p in params]
        first, second = [self.first[i] for i in live], [self.second[i] for i in live]
        self.steps += 1
        if g["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=g["weight_decay"])
        torch._foreach_lerp_(first, grads, 1 - beta1)
        torch._foreach_mul_(second, beta2)
        torch._foreach_addcmul_(second, grads, grads, 1 - beta2)
        step_size = g["lr"] / (1 - beta1 ** self.steps)
        denom = torch._foreach_sqrt(second)
        torch._foreach_div_(denom, math.sqrt(1 - beta2 ** self.steps))
        torch._foreach_add_(denom, g["eps"])
        torch._foreach_addcdiv_(params, first, denom, -step_size)
