"""Saliency and adversarial examples against references: a linear classifier, whose smallest fooling
L-infinity perturbation is known in closed form (its score gap over the L1 norm of the weights'
difference), and autograd's gradient written out by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.analysis.attacks import attack, robustness, saliency, scores, smallest_fooling
from core.training.augmentation import MNIST_STD


def linear_classifier(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 2), nn.LogSoftmax(dim=1))
    return model.eval()


def grey_digit(seed: int = 1) -> torch.Tensor:
    """Pixels near mid-grey, so clamping to [0, 1] never binds for budgets below 0.4."""
    return 0.5 + 0.1 * (torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) - 0.5)


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_smallest_fooling_budget_of_a_linear_classifier_is_its_closed_form(method, seed):
    model, x = linear_classifier(seed), grey_digit(seed)
    with torch.no_grad():
        out = scores(model, x)[0]
    label = int(out.argmax())
    weights = model[1].weight.detach()
    gap = float(out[label] - out[1 - label])  # log-probabilities differ by the logits' difference
    exact = gap / float((weights[label] - weights[1 - label]).abs().sum() / MNIST_STD)
    grid = [round(0.0005 * k, 4) for k in range(0, 801)]
    fooled = smallest_fooling(model, x[0, 0], label, grid, method)
    assert exact < 0.4, "the test digit must be fooled before clamping could bind"
    assert fooled is not None and exact <= fooled.budget <= exact + 0.0005 + 1e-6
    assert fooled.prediction == 1 - label and (fooled.image - x[0, 0]).abs().max() <= fooled.budget + 1e-6


def test_saliency_is_the_gradient_of_the_predicted_class_times_the_input():
    model, x = linear_classifier(), grey_digit()
    maps, predicted = saliency(model, x)
    with torch.no_grad():
        p = scores(model, x).exp()[0]
    w = model[1].weight.detach()
    c = int(predicted[0])
    by_hand = ((w[c] - (p[:, None] * w).sum(0)) / MNIST_STD).view(28, 28) * x[0, 0]  # d log p_c / dx, times x
    assert torch.allclose(maps[0], by_hand, atol=1e-6)


def test_an_attack_stays_in_its_budget_and_in_the_pixel_range():
    model = linear_classifier()
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    y = scores(model, x).argmax(1)
    for method in ("fgsm", "pgd"):
        adv = attack(model, x, y, 0.1, method)
        assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert torch.equal(attack(model, x, y, 0.0), x)
    with pytest.raises(ValueError, match="fgsm or pgd"):
        attack(model, x, y, 0.1, "magic")


def test_robustness_starts_at_the_clean_accuracy_and_falls_with_the_budget():
    model = linear_classifier()
    x = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        y = scores(model, x).argmax(1)
    y[:50] = 1 - y[:50]  # a quarter read wrong before any attack
    curve = robustness(model, x, y, (0.0, 0.01, 0.05, 0.2), "pgd", batch=64)
    assert curve.accuracy[0] == pytest.approx(75.0) and curve.digits == 200
    assert curve.accuracy == sorted(curve.accuracy, reverse=True) and curve.accuracy[-1] < curve.accuracy[0]


def test_the_inspect_page_shows_saliency_fools_the_shipped_network_and_draws_its_curve(monkeypatch, mnist_root):
    """The shipped step-9 network on a test digit: its saliency, the smallest PGD change that makes it read
    another digit (within 0.3 per pixel), and its robustness curve computed on the page."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    from test_app import open_page

    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run()
    at = open_page(at, "app_pages/inspect.py")
    assert any("Saliency (gradient × input)" in c.value for c in at.caption)
    at.slider(key="fool_budget").set_value(0.3).run()
    said = " ".join(m.value for m in at.markdown) + " ".join(i.value for i in at.info)
    assert "makes it read a" in said or "It holds" in said
    at.button(key="looks_curve").click().run()
    assert not at.exception
    assert any("just computed" in str(c.proto) for c in at.get("vega_lite_chart"))


def test_the_command_line_records_a_curve_with_its_provenance_and_replaces_it_on_a_rerun(mnist_root, tmp_path):
    import json

    from conftest import run_cli

    out = tmp_path / "robustness.json"
    for _ in range(2):
        done = run_cli("robustness", "--step", "9", "--data-dir", str(mnist_root), "--no-download", "--digits", "40",
                       "--budgets", "0,0.1", "--output", str(out), "--json")
        assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["budgets"] == [0.0, 0.1] and doc["digits"] == 40 and doc["params"] == 5648
    assert doc["command"].startswith("python -m core robustness --step 9") and doc["date"] and doc["processor"]
    (curve,) = json.loads(out.read_text())["curves"]  # the second run replaced the first
    assert curve["accuracy"] == doc["accuracy"]
    bad = run_cli("robustness", "--step", "9", "--budgets", "2", "--no-download")
    assert bad.returncode == 2 and "--budgets" in bad.stderr


def test_the_lr_find_command_writes_what_the_lesson_quotes(mnist_root, tmp_path):
    import json

    from conftest import run_cli

    from core.report.views import lr_facts

    done = run_cli("lr-find", "--step", "9", "--data-dir", str(mnist_root), "--no-download", "--batches", "30",
                   "--output", str(tmp_path / "step_9.json"))
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "step_9.json").read_text())
    facts = lr_facts(9, tmp_path)
    assert facts["lrfind:steepest"] == f"{doc['suggested']:.2g}" and facts["lrfind:batches"] == str(len(doc["lrs"]))
    assert doc["command"] in facts["lrfind:provenance"] and "steepest fall at lr" in done.stdout
    assert lr_facts(8, tmp_path) == {}


def test_every_recorded_curve_carries_its_provenance():
    from core.results.robustness import load_curves

    curves = load_curves()
    assert {c["name"] for c in curves} >= {"step 9 reference, seed 1"}
    for c in curves:
        assert c["command"].startswith("python -m core robustness") and c["date"] and c["processor"], c["name"]
        assert len(c["budgets"]) == len(c["accuracy"]) and c["budgets"] == sorted(c["budgets"]) and c["digits"] == 1000
