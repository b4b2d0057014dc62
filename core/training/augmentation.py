"""Data augmentation, batched on the training device with per-image random parameters.

`torchvision.transforms.v2` draws one parameter set per call, so applying it to a batch would
rotate every digit by the same angle. Training therefore uses `augment_batch`: one random
affine matrix and one brightness/contrast pair *per image*, applied to the whole batch with a
single `affine_grid` + `grid_sample`. `v2_transform` gives the per-image torchvision
equivalent, for previews and comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 0.0  # degrees, uniform in [-r, r]
    translate: float = 0.0  # fraction of the image side, per axis, uniform in [-t, t]
    scale: float = 0.0  # zoom factor uniform in [1-s, 1+s]
    shear: float = 0.0  # degrees, horizontal shear, uniform in [-s, s]
    brightness: float = 0.0  # intensity multiplied by U[1-b, 1+b]
    contrast: float = 0.0  # distance from the image mean multiplied by U[1-c, 1+c]
    erase: float = 0.0  # side of a blanked square (fraction of the image), half of the images; 0 = off

    def __post_init__(self) -> None:
        limits = {"rotation": 180.0, "translate": 0.5, "scale": 0.9, "shear": 60.0,
                  "brightness": 0.9, "contrast": 0.9, "erase": 0.9}
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= limits[f.name] or math.isnan(value):
                raise ValueError(f"augmentation {f.name} must be between 0 and {limits[f.name]}, got {value}")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self))

    @property
    def geometric(self) -> bool:
        return any((self.rotation, self.translate, self.scale, self.shear))

    def describe(self) -> str:
        if not self.enabled:
            return "none"
        parts = {"rotation": "rot ±{:g}°", "translate": "shift ±{:.0%}", "scale": "scale ±{:.0%}",
                 "shear": "shear ±{:g}°", "brightness": "brightness ±{:.0%}", "contrast": "contrast ±{:.0%}",
                 "erase": "erase {:.0%}"}
        return ", ".join(fmt.format(getattr(self, name)) for name, fmt in parts.items() if getattr(self, name) > 0)


def _uniform(n: int, bound: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=generator, device=device) * 2 - 1) * bound


def affine_matrices(n: int, cfg: AugmentConfig, generator: torch.Generator | None,
                    device: torch.device) -> torch.Tensor:
    """Per-image random affine maps for `affine_grid`, drawn within the config's bounds."""
    angle = _uniform(n, cfg.rotation, generator, device)
    shear = _uniform(n, cfg.shear, generator, device)
    zoom = 1 + _uniform(n, cfg.scale, generator, device)
    shift = torch.stack([_uniform(n, cfg.translate, generator, device) for _ in range(2)], dim=1)
    return affine_theta(angle, shear, zoom, shift)


def affine_theta(angle: torch.Tensor, shear: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Inverse affine maps (output -> input coordinates) for `affine_grid`, in the normalised
    [-1, 1] frame (square images, so the frame is isotropic), from per-image parameters: rotation
    and horizontal shear in degrees, zoom factor, and shift [x, y] as a fraction of the image side.
    Rotation, zoom and shift are torchvision's `affine` (tests/test_augment.py checks it pixel by
    pixel); the shear leans the other way, which a symmetric random draw does not notice."""
    angle, shear = torch.deg2rad(angle), torch.tan(torch.deg2rad(shear))
    cos, sin = torch.cos(angle), torch.sin(angle)
    # forward map A = zoom * R(angle) @ Shear; grid_sample needs its inverse.
    forward = torch.stack([
        torch.stack([cos, cos * shear - sin], dim=1),
        torch.stack([sin, sin * shear + cos], dim=1),
    ], dim=1) * zoom[:, None, None]
    inverse = torch.linalg.inv(forward)
    offset = -(inverse @ (2 * shift)[:, :, None])  # the frame spans 2 units per image side
    return torch.cat([inverse, offset], dim=2)


_PIXEL_CENTRES: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """F.affine_grid(theta, [n, c, height, width], align_corners=False), written out: each output
    pixel's sampling point is x * theta[:, :, 0] + y * theta[:, :, 1] + theta[:, :, 2]. PyTorch
    computes the same sums as a batched matrix product, which on the 2-core CPU took 0.27 ms a
    batch against 0.10 ms here, with the same bits over 500 random batches (tests/test_augment.py
    holds it to a millionth of the frame, as another CPU's matrix kernel may round differently)."""
    key = (height, width, theta.device, theta.dtype)
    if key not in _PIXEL_CENTRES:  # PyTorch's own pixel centres: the identity map's grid, [2, H * W]
        identity = torch.eye(2, 3, device=theta.device, dtype=theta.dtype)[None]
        _PIXEL_CENTRES[key] = F.affine_grid(identity, [1, 1, height, width], align_corners=False).view(-1, 2).T
    x, y = _PIXEL_CENTRES[key]
    points = x * theta[:, :, 0:1] + y * theta[:, :, 1:2] + theta[:, :, 2:3]  # [n, 2, H * W]
    return points.transpose(1, 2).reshape(len(theta), height, width, 2)


@dataclass(frozen=True)
class AugmentDraw:
    """One batch's random augmentation parameters, one row per image (None: that part is off)."""

    theta: torch.Tensor | None  # [n, 2, 3] inverse affine maps
    contrast: torch.Tensor | None  # [n] factors
    brightness: torch.Tensor | None  # [n] factors
    erase: torch.Tensor | None  # [n, 3]: centre row, centre column, 1 where a square is blanked

    @staticmethod
    def join(draws: list[AugmentDraw]) -> AugmentDraw:
        """Several batches' draws as one (of the same config), in order."""
        def cat(name: str) -> torch.Tensor | None:
            parts = [getattr(d, name) for d in draws]
            return None if parts[0] is None else torch.cat(parts)
        return AugmentDraw(cat("theta"), cat("contrast"), cat("brightness"), cat("erase"))


def draw_augment(n: int, cfg: AugmentConfig, generator: torch.Generator | None, device: torch.device,
                 side: int = 28) -> AugmentDraw:
    """Draw the parameters for n images, always in the same order from `generator`: a batch
    augmented from its draw is the batch `augment_batch` makes from the same stream."""
    theta = affine_matrices(n, cfg, generator, device) if cfg.geometric else None
    contrast = 1 + _uniform(n, cfg.contrast, generator, device) if cfg.contrast > 0 else None
    brightness = 1 + _uniform(n, cfg.brightness, generator, device) if cfg.brightness > 0 else None
    erase = None
    if cfg.erase > 0:
        cy = (torch.rand(n, generator=generator, device=device) * side).floor()
        cx = (torch.rand(n, generator=generator, device=device) * side).floor()
        apply = (torch.rand(n, generator=generator, device=device) < 0.5).float()
        erase = torch.stack([cy, cx, apply], dim=1)
    return AugmentDraw(theta, contrast, brightness, erase)


def apply_augment(images: torch.Tensor, cfg: AugmentConfig, draw: AugmentDraw) -> torch.Tensor:
    """images: float [B, 1, H, W] in [0, 1], augmented with `draw` (one row per image); a new tensor."""
    n = images.shape[0]
    out = images
    if draw.theta is not None:
        grid = affine_grid(draw.theta.to(images.dtype), images.shape[2], images.shape[3])
        out = F.grid_sample(out, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if draw.contrast is not None:
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * draw.contrast.view(n, 1, 1, 1) + mean
    if draw.brightness is not None:
        out = out * draw.brightness.view(n, 1, 1, 1)
    if draw.erase is not None:
        out = _erase(out, cfg.erase, draw.erase)
    return out.clamp_(0, 1)


def augment_batch(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """images: float [B, 1, H, W] in [0, 1]. Returns a new tensor in [0, 1]."""
    if not cfg.enabled:
        return images
    return apply_augment(images, cfg, draw_augment(images.shape[0], cfg, generator, images.device, images.shape[2]))


def _erase(images: torch.Tensor, side: float, where: torch.Tensor) -> torch.Tensor:
    """Blank one square per image where `where` says (centre row, centre column, on/off): cutout."""
    n, _, h, w = images.shape
    device = images.device
    half = max(1, round(side * h / 2))
    cy, cx, apply = where[:, 0].long(), where[:, 1].long(), where[:, 2].bool()
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    box = ((rows - cy.view(n, 1, 1)).abs() < half) & ((cols - cx.view(n, 1, 1)).abs() < half) & apply.view(n, 1, 1)
    return images.masked_fill(box[:, None], 0.0)


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W] -> float [B, 1, H, W] in [0, 1]."""
    return images_u8.unsqueeze(1).float().div_(255)


def normalize(images: torch.Tensor) -> torch.Tensor:
    return (images - MNIST_MEAN) / MNIST_STD


def v2_transform(cfg: AugmentConfig):
    """The per-image torchvision equivalent (one parameter draw per call): for previews."""
    from torchvision.transforms import v2

    steps = []
    if cfg.geometric:
        steps.append(v2.RandomAffine(degrees=cfg.rotation, translate=(cfg.translate, cfg.translate),
                                     scale=(1 - cfg.scale, 1 + cfg.scale), shear=cfg.shear))
    if cfg.brightness or cfg.contrast:
        steps.append(v2.ColorJitter(brightness=cfg.brightness or None, contrast=cfg.contrast or None))
    if cfg.erase:
        area = cfg.erase ** 2
        steps.append(v2.RandomErasing(p=0.5, scale=(area, area), ratio=(1.0, 1.0)))
    return v2.Compose(steps) if steps else v2.Identity()
