"""The learning-rate range test, against a problem whose answer is known: least squares with
curvature L, where gradient descent converges for rates below 2/L and blows up above it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.analysis.lr_find import lr_find, range_test, rates
from core.training.config import TrainConfig
from core.training.data import load_mnist

CURVATURE = 100.0  # the loss's second derivative: gradient descent diverges above 2 / CURVATURE


def least_squares(seed: int = 0):
    """y = 3 x + noise, x with variance CURVATURE: the mean squared loss / 2 has exactly that curvature
    (up to the batch's own spread, about 6 % with 512 samples)."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)

    def batch(_: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(512, 1, generator=generator) * math.sqrt(CURVATURE)
        return x, 3 * x + 0.1 * torch.randn(512, 1, generator=generator)

    return model, torch.optim.SGD(model.parameters(), lr=0.0), batch


def test_the_rates_rise_geometrically_from_the_first_to_the_last():
    lrs = rates(5, 1e-3, 10.0)
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(10.0)
    assert all(b / a == pytest.approx(10.0) for a, b in zip(lrs, lrs[1:]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_test_finds_where_gradient_descent_blows_up_and_suggests_a_rate_below_it(seed):
    model, optimizer, batch = least_squares(seed)
    result = range_test(model, optimizer, batch, lambda out, y: 0.5 * ((out - y) ** 2).mean(), batches=300,
                        lr_min=1e-5, lr_max=1.0)
    limit = 2 / CURVATURE
    # stopped past 2/L, a few batches late: the smoothed loss follows the blow-up with a lag
    assert result.diverged_at is not None and limit <= result.diverged_at <= 2 * limit
    assert 0.005 * limit <= result.suggested < 0.1 * limit  # where it learns fastest: well below the limit
    assert result.lowest < result.diverged_at
    assert len(result.lrs) == len(result.losses) and result.lrs == sorted(result.lrs)


def test_a_step_is_tested_on_mnist_with_its_own_optimiser_and_the_same_seed_gives_the_same_curve(mnist_root):
    data = load_mnist(str(mnist_root), download=False)
    config = TrainConfig.for_step(9, device="cpu")
    first, again = lr_find(config, data, batches=60), lr_find(config, data, batches=60)
    assert first.losses == again.losses and first.suggested == again.suggested
    assert all(math.isfinite(v) for v in first.losses)
    assert first.lrs[0] < first.suggested <= first.lrs[-1]


def test_the_recipe_panel_runs_the_test_and_marks_the_recipes_peak(monkeypatch, mnist_root):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    from test_app import open_page

    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run()
    at = open_page(at, "app_pages/step_9.py")
    at.button(key="lr_find_step_9").click().run()
    assert not at.exception
    assert any("batches in" in c.value and "lowest loss at" in c.value for c in at.caption)
    (chart,) = [c for c in at.get("vega_lite_chart") if "peak: 0.1" in str(c.proto)]  # its marks, in its data
    assert "steepest fall" in str(chart.proto) and '"type": "log"' in chart.proto.spec


def test_a_network_too_big_for_the_app_is_refused_with_its_time(monkeypatch, mnist_root):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    from test_app import open_page

    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run()
    at = open_page(at, "app_pages/step_1.py")
    assert not [b for b in at.button if b.key == "lr_find_step_1"]
    assert any("more than the 30 s the app gives the test" in i.value and "lr-find --step 1" in i.value
               for i in at.info)
