"""Turn a drawn or uploaded digit into what the network saw in training: MNIST's own recipe.

MNIST digits were size-normalised to fit a 20x20 box (keeping their aspect ratio), then placed in
a 28x28 image so that their centre of mass sits at the centre. Doing the same to a student's
digit is what makes the network read it like a test digit. Ink is bright on dark, as in MNIST: a
dark-on-light photo or scan is inverted first.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F

from core.architecture.spec import MNIST_SIDE

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 4096
BOX, SIZE = 20, MNIST_SIDE  # MNIST's digits fit a 20 x 20 box in the 28 x 28 image
INK = 0.15  # a pixel counts as ink above this fraction of the brightest one


class ImageError(ValueError):
    """An image that cannot become a digit; the message says why, for the user."""


def decode_upload(data: bytes) -> np.ndarray:
    """Uploaded bytes -> grey image as float [H, W] in [0, 1]. Refuses what is not an image,
    what is cut short, and what is too big to be a digit photo, each with its own message."""
    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise ImageError("the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(f"the file is {len(data) / 1e6:.1f} MB; images up to {MAX_BYTES // (1024 * 1024)} MB are read")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError("this is not an image Pillow can read (try PNG or JPEG)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"the image cannot be read: {exc}") from None
    if max(image.size) > MAX_SIDE:
        raise ImageError(f"the image is {image.size[0]}x{image.size[1]} pixels; at most {MAX_SIDE} per side")
    try:
        image.load()  # decoding happens here: a truncated file fails now, not later
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the image is damaged or cut short ({exc})") from None
    return grey(image)


def grey(image) -> np.ndarray:
    """A PIL image (any mode; transparency counts as background) -> float [H, W] in [0, 1]."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
        luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        alpha = rgba[..., 3]
        # on a transparent background the strokes are what is opaque; paint them on black or white
        # depending on which contrasts with their colour
        ink_is_dark = (luminance * alpha).sum() < 0.5 * alpha.sum()
        return alpha * (1 - luminance) if ink_is_dark else alpha * luminance
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def canvas_to_grey(rgba: np.ndarray) -> np.ndarray:
    """The drawing canvas's RGBA pixels (uint8 [H, W, 4]) -> float [H, W] in [0, 1]."""
    from PIL import Image

    return grey(Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA"))


def to_mnist(image: np.ndarray) -> np.ndarray:
    """float [H, W] in [0, 1], any size -> float [28, 28] in [0, 1], prepared like MNIST."""
    if image.ndim != 2 or min(image.shape) < 1:
        raise ImageError(f"expected a 2-D grey image, got shape {image.shape}")
    image = np.clip(np.nan_to_num(image.astype(np.float32)), 0, 1)
    background = float(np.median(np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])))
    if background > 0.5:  # dark ink on light paper: MNIST is light ink on black
        image, background = 1 - image, 1 - background
    image = np.clip((image - background) / max(1e-6, 1 - background), 0, 1)  # the paper becomes black
    if image.max() < 0.1:
        raise ImageError("the image is blank: draw or upload a digit")
    rows, cols = np.nonzero(image > INK * image.max())
    digit = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1] / image.max()
    h, w = digit.shape
    scale = BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = F.interpolate(torch.from_numpy(digit)[None, None], size=(new_h, new_w), mode="bilinear",
                            antialias=True, align_corners=False)[0, 0].clamp(0, 1).numpy()
    return centre_of_mass(resized)


def centre_of_mass(digit: np.ndarray) -> np.ndarray:
    """Place a digit of at most 28x28 so that its centre of mass lands where MNIST's do."""
    h, w = digit.shape
    total = digit.sum()
    cy = (digit.sum(1) * np.arange(h)).sum() / total
    cx = (digit.sum(0) * np.arange(w)).sum() / total
    # MNIST's digits have their centre of mass at pixel (14, 14) (measured: 13.997, 14.006 on average)
    top = int(np.clip(round(SIZE / 2 - cy), 0, SIZE - h))
    left = int(np.clip(round(SIZE / 2 - cx), 0, SIZE - w))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top:top + h, left:left + w] = digit
    return out


def displace(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 digit as a camera or a canvas might deliver it: rescaled (1x-4x: drawings and photos come larger than 28 px), placed at a
    random spot of a larger background, and, one time in two, as dark ink on light paper."""
    digit = torch.from_numpy(image.astype(np.float32))[None, None]
    factor = float(rng.uniform(1.0, 4.0))
    size = max(8, round(SIZE * factor))
    digit = F.interpolate(digit, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0, 0].numpy()
    canvas = np.zeros((size + int(rng.integers(8, 80)), size + int(rng.integers(8, 80))), np.float32)
    top = int(rng.integers(0, canvas.shape[0] - size + 1))
    left = int(rng.integers(0, canvas.shape[1] - size + 1))
    canvas[top:top + size, left:left + size] = digit
    return 1 - canvas if rng.random() < 0.5 else canvas


def robustness_check(model: torch.nn.Module, images_u8: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> dict:
    """Of the digits the model reads correctly as they are, how many does it still read after
    `displace` and `to_mnist`? (The preprocessing should hand it back what it saw in training.)"""
    from core.training.augmentation import normalize

    rng = np.random.default_rng(seed)
    model.eval()
    originals = images_u8.float().div(255)
    with torch.no_grad():
        before = model(normalize(originals[:, None])).argmax(1) == labels
        prepared = torch.stack([torch.from_numpy(to_mnist(displace(img.numpy(), rng))) for img in originals])
        after = model(normalize(prepared[:, None])).argmax(1) == labels
    correct_before = int(before.sum())
    kept = int((before & after).sum())
    return {"images": len(labels), "correct_before": correct_before, "kept": kept,
            "kept_percent": round(100.0 * kept / max(1, correct_before), 2), "seed": seed}
