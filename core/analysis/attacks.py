"""What a trained network looks at, and how little it takes to fool it.

Images here are pixels in [0, 1] (MNIST's scale before normalisation), shaped [N, 1, 28, 28]; the
models are the project's, which take normalised images and give log-probabilities.

- `saliency`: gradient x input of the predicted class's log-probability, one map per digit.
- `attack`: FGSM (one step along the sign of the loss's gradient) or PGD (several smaller steps,
  each projected back into the L-infinity ball of radius `budget` and into [0, 1]).
- `smallest_fooling`: the smallest budget on a grid at which the attack changes the prediction.
- `robustness`: accuracy against the budget over a set of test digits.
tests/test_attacks.py checks them against a linear classifier, whose smallest fooling
perturbation is known in closed form, and against autograd.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.training.augmentation import normalize

BUDGETS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)  # L-infinity, in pixel units (1 = black to white)
PGD_STEPS = 10


def scores(model: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Log-probabilities [N, 10] of pixel images [N, 1, 28, 28] in [0, 1]."""
    return model(normalize(pixels))


def saliency(model: nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(gradient x input [N, 28, 28] of each digit's predicted class, the predictions [N])."""
    x = pixels.clone().requires_grad_(True)
    out = scores(model.eval(), x)
    predicted = out.argmax(1)
    out.gather(1, predicted[:, None]).sum().backward()
    return (x.grad * pixels)[:, 0].detach(), predicted


def attack(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, budget: float, method: str = "pgd",
           steps: int = PGD_STEPS) -> torch.Tensor:
    """Perturbed digits within `budget` of `pixels` (L-infinity) that raise the loss on `labels`."""
    model.eval()
    if budget <= 0:
        return pixels.clone()
    if method not in ("fgsm", "pgd"):
        raise ValueError(f"attack is fgsm or pgd, got {method!r}")
    rounds, step = (1, budget) if method == "fgsm" else (steps, 2.5 * budget / steps)
    adv = pixels.clone()
    for _ in range(rounds):
        adv.requires_grad_(True)
        loss = F.nll_loss(scores(model, adv), labels)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + step * grad.sign()
        adv = (pixels + (adv - pixels).clamp(-budget, budget)).clamp(0.0, 1.0)
    return adv.detach()


@dataclass(frozen=True)
class Fooled:
    budget: float  # the smallest on the grid that changed the prediction
    image: torch.Tensor  # the perturbed digit [28, 28]
    prediction: int
    probability: float


def smallest_fooling(model: nn.Module, pixel: torch.Tensor, label: int, budgets: list[float],
                     method: str = "pgd") -> Fooled | None:
    """The smallest budget of `budgets` (ascending) at which the attack makes the network read
    something other than `label`; None when none does."""
    x, y = pixel.reshape(1, 1, *pixel.shape[-2:]), torch.tensor([label])
    for budget in budgets:
        adv = attack(model, x, y, budget, method)
        with torch.no_grad():
            probs = scores(model, adv).exp()[0]
        if int(probs.argmax()) != label:
            return Fooled(budget, adv[0, 0], int(probs.argmax()), float(probs.max()))
    return None


@dataclass(frozen=True)
class Robustness:
    budgets: list[float]
    accuracy: list[float]  # % of the digits still read right at each budget
    digits: int
    method: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def robustness(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, budgets: tuple[float, ...] = BUDGETS,
               method: str = "fgsm", batch: int = 250) -> Robustness:
    started, accuracy = time.perf_counter(), []
    for budget in budgets:
        right = 0
        for start in range(0, len(pixels), batch):
            x, y = pixels[start:start + batch], labels[start:start + batch]
            adv = attack(model, x, y, budget, method)
            with torch.no_grad():
                right += int((scores(model, adv).argmax(1) == y).sum())
        accuracy.append(100.0 * right / max(1, len(pixels)))
    return Robustness(list(budgets), accuracy, len(pixels), method, time.perf_counter() - started)
