"""Take a trained network home: its tested weights as a state_dict, a standalone `model.py`
written from the layer spec (needs only PyTorch, no import of this project), and its config.

The generated module applies MNIST's training normalisation itself, so it takes N x 1 x 28 x 28
images with pixel values in [0, 1] and returns 10 class scores (log-probabilities) per image."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import torch
from torch import nn

from core.analysis.predictions import TrainedModel
from core.architecture.builder import build_model, count_params, module_names
from core.architecture.receptive_field import rf_table
from core.training.augmentation import MNIST_MEAN, MNIST_STD
from core.training.steps import get_step

CLASS_NAME = "TinyCNN"


def _constructor(module: nn.Module) -> str:
    """Source that rebuilds one module of ours (only arguments that differ from PyTorch's defaults)."""
    if isinstance(module, nn.Conv2d):
        args = [str(module.in_channels), str(module.out_channels), f"kernel_size={module.kernel_size[0]}"]
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
            value = getattr(module, name)
            value = value[0] if isinstance(value, tuple) else value
            if value != default:
                args.append(f"{name}={value}")
        return f"nn.Conv2d({', '.join(args)}, bias={module.bias is not None})"
    if isinstance(module, nn.BatchNorm2d):
        return f"nn.BatchNorm2d({module.num_features})"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        extra = f", padding={module.padding}" if module.padding else ""
        return f"nn.{type(module).__name__}(kernel_size={module.kernel_size}, stride={module.stride}{extra})"
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "nn.AdaptiveAvgPool2d(1)"
    if isinstance(module, nn.Dropout):
        return f"nn.Dropout(p={module.p})"
    if isinstance(module, nn.Linear):
        return f"nn.Linear({module.in_features}, {module.out_features}, bias={module.bias is not None})"
    if isinstance(module, nn.LogSoftmax):
        return "nn.LogSoftmax(dim=1)"
    if isinstance(module, (nn.ReLU, nn.Flatten)):
        return f"nn.{type(module).__name__}()"
    raise TypeError(f"no source template for {type(module).__name__}")


def model_source(trained: TrainedModel) -> str:
    layers = trained.layers
    model = build_model(layers)
    names = module_names(layers)
    rows = rf_table(layers)
    step = get_step(trained.config.step)
    what = (f"A design ({trained.config.net}, trained with step {step.number}'s recipe)" if trained.config.is_design
            else f"Step {step.number} of the tiny-CNN lifecycle ({step.title})")
    width = max(len(n) for n in names)
    init = []
    for name, module, row in zip(names, model, rows):
        shape = "x".join(map(str, row.out_shape))
        init.append(f"self.{name:<{width}} = {_constructor(module)}  # -> {shape}, receptive field {row.rf}")
    forward = [f"x = self.{name}(x)" for name in names]
    header = textwrap.dedent(f'''\
        """{what}: {count_params(model):,} parameters.

        Written by `python -m core export` from the project's layer spec; needs only PyTorch.
        Weights: {trained.name} ({trained.provenance}).

        Input: N x 1 x 28 x 28 images, pixel values in [0, 1], a light digit on black as in MNIST
        (centred by its centre of mass, scaled to fit 20x20). Output: N x 10 class scores
        (log-probabilities); their argmax is the digit.

            model = {CLASS_NAME}()
            model.load_state_dict(torch.load("weights.pt", weights_only=True))
            model.eval()
            digits = model(images).argmax(1)
        """

        import torch
        from torch import nn


        class {CLASS_NAME}(nn.Module):
            MEAN, STD = {MNIST_MEAN}, {MNIST_STD}  # MNIST's training normalisation, applied in forward()

            def __init__(self) -> None:
                super().__init__()
        ''')
    body = "\n".join(" " * 8 + line for line in init)
    fwd = "\n".join(" " * 8 + line for line in forward)
    return (header + body + "\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
            "        x = (x - self.MEAN) / self.STD\n" + fwd + "\n        return x\n")


def weights_bytes(trained: TrainedModel) -> bytes:
    buffer = io.BytesIO()
    torch.save(trained.weights, buffer)
    return buffer.getvalue()


def config_json(trained: TrainedModel) -> str:
    return json.dumps({"model": trained.name, "provenance": trained.provenance, "class": CLASS_NAME,
                       "config": trained.config.as_dict()}, indent=2) + "\n"


FILES = ("weights.pt", "model.py", "config.json")


def export(trained: TrainedModel, out: Path) -> list[Path]:
    """Write the three files into `out` (created if missing); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    contents = {"weights.pt": weights_bytes(trained), "model.py": model_source(trained).encode(),
                "config.json": config_json(trained).encode()}
    paths = []
    for name in FILES:
        path = out / name
        path.write_bytes(contents[name])
        paths.append(path)
    return paths
