"""Looking inside a trained network: predictions and mistakes, feature maps whose windows match an
empirical receptive field, the drawing/upload preprocessing, and exported files that run without
this project."""

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image, ImageDraw, ImageFont

from core.analysis.export import CLASS_NAME, export, model_source
from core.analysis.feature_maps import feature_maps
from core.analysis.predictions import TrainedModel, classify, predict, reference_model
from core.analysis.preprocess import (
    MAX_BYTES,
    ImageError,
    decode_upload,
    displace,
    to_mnist,
)
from core.report.views import describe_step
from core.results.reference import load_references
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.loop import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(mnist_root) -> TrainedModel:
    """A step-9 network trained briefly on the synthetic digits of conftest (no real MNIST)."""
    config = TrainConfig.for_step(9, epochs=1, max_batches=6, device="cpu", seed=0)
    done = run(config, load_mnist(str(mnist_root), download=False))
    return TrainedModel("test model", config, done.weights, "trained in the test")


def font_digits(seed: int, per_class: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Real-looking digits without MNIST: Pillow's own font at several sizes, stroke widths and
    slants, put through the MNIST preparation. float [N, 28, 28] in [0, 1], labels [N]."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for digit in range(10):
        for _ in range(per_class):
            size = int(rng.integers(60, 120))
            font = ImageFont.load_default(size=size)
            canvas = Image.new("L", (2 * size, 2 * size), 0)
            ImageDraw.Draw(canvas).text((size // 2, size // 4), str(digit), fill=255, font=font,
                                        stroke_width=int(rng.integers(2, 9)), stroke_fill=255)
            canvas = canvas.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR)
            images.append(to_mnist(np.asarray(canvas, np.float32) / 255))
            labels.append(digit)
    return np.stack(images), np.array(labels)


def test_one_batched_pass_gives_confusion_and_mistakes(trained, mnist_root):
    data = load_mnist(str(mnist_root), download=False)
    result = predict(trained.network(), data.test_images, data.test_labels)
    matrix = result.confusion()
    assert matrix.sum() == len(data.test_labels) and matrix.shape == (10, 10)
    assert result.accuracy == pytest.approx(100 * matrix.diagonal().sum().item() / len(data.test_labels))
    wrong = result.mistakes()
    assert len(wrong) == matrix.sum() - matrix.diagonal().sum()
    confidences = [float(result.confidence[i]) for i in wrong]
    assert confidences == sorted(confidences, reverse=True)  # most confident first
    for i in result.mistakes(true=3):
        assert int(result.labels[i]) == 3 and int(result.predicted[i]) != 3
    per_class = result.per_class()
    for digit in range(10):
        total = int(matrix[digit].sum())
        assert per_class[digit] == pytest.approx(100 * int(matrix[digit, digit]) / max(1, total))
    assert torch.allclose(result.probs.sum(1), torch.ones(len(result.labels)), atol=1e-5)


def test_feature_map_windows_match_an_empirical_receptive_field(trained):
    """Change pixels outside a unit's window: its activation must not move; inside: it must."""
    model = trained.network()
    torch.manual_seed(0)
    image = torch.rand(28, 28)
    maps = feature_maps(model, trained.layers, image)
    # Independent of feature_maps: every convolution's output shape, caught by forward hooks.
    seen: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:])))
             for m in model if isinstance(m, torch.nn.Conv2d)]
    model(image[None, None])
    for hook in hooks:
        hook.remove()
    spatial = [shape for shape in seen if shape[-1] > 1]
    assert [tuple(m.activations.shape) for m in maps] == spatial
    assert [m.name for m in maps] == [f"conv{i + 1}" for i in range(len(spatial))]
    for fmap in maps:
        h = fmap.activations.shape[1]
        for i, j in ((0, 0), (h // 2, h // 3), (h - 1, h - 1)):
            r0, r1, c0, c1 = fmap.window(i, j)
            outside = image.clone()
            mask = torch.ones(28, 28, dtype=torch.bool)
            mask[r0:r1 + 1, c0:c1 + 1] = False
            outside[mask] = torch.rand(int(mask.sum()))
            after = next(m for m in feature_maps(model, trained.layers, outside) if m.name == fmap.name)
            assert torch.allclose(after.activations[:, i, j], fmap.activations[:, i, j], atol=1e-5), (fmap.name, i, j)
            inside = image.clone()
            inside[r0:r1 + 1, c0:c1 + 1] = 1 - inside[r0:r1 + 1, c0:c1 + 1]
            moved = next(m for m in feature_maps(model, trained.layers, inside) if m.name == fmap.name)
            assert not torch.allclose(moved.activations[:, i, j], fmap.activations[:, i, j]), (fmap.name, i, j)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"GIF89a but not really an image at all", "not an image"),
    (b"%PDF-1.4 a document", "not an image"),
    (png(Image.new("L", (4100, 12), 255)), "at most 4096 per side"),
    (b"\x89PNG" + b"\x00" * (MAX_BYTES + 1), "up to 10 MB"),
], ids=["empty", "gif-text", "pdf", "too-wide", "too-big"])
def test_bad_uploads_get_a_clear_message(data, words):
    with pytest.raises(ImageError, match=words):
        decode_upload(data)


def test_a_truncated_image_is_refused():
    whole = png(Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)))
    with pytest.raises(ImageError, match="damaged or cut short|cannot be read"):
        decode_upload(whole[: len(whole) // 2])


def test_blank_drawings_and_photos_are_refused():
    with pytest.raises(ImageError, match="blank"):
        to_mnist(np.zeros((280, 280), np.float32))
    with pytest.raises(ImageError, match="blank"):
        to_mnist(decode_upload(png(Image.new("L", (300, 200), 240))))  # an empty sheet of paper


def test_preparation_matches_mnist_geometry():
    canvas = np.zeros((300, 500), np.float32)
    canvas[40:250, 300:330] = 1.0  # a tall bar far off centre: a '1'
    digit = to_mnist(canvas)
    rows, cols = np.nonzero(digit > 0.05)
    assert digit.shape == (28, 28) and rows.max() - rows.min() + 1 == 20  # the longer side fits 20 px
    ys, xs = np.mgrid[0:28, 0:28]
    # centre of mass within half a pixel of MNIST's (14, 14): a whole-pixel shift cannot do better
    assert abs((digit * ys).sum() / digit.sum() - 14) <= 0.5 + 1e-6
    assert abs((digit * xs).sum() / digit.sum() - 14) <= 0.5 + 1e-6
    photo = decode_upload(png(Image.fromarray(((1 - canvas) * 255).astype(np.uint8))))  # dark ink on white paper
    assert np.allclose(to_mnist(photo), digit, atol=0.02)


def test_prepared_digits_keep_their_predictions():
    """Real-looking digits, padded, shifted, rescaled and sometimes inverted, then prepared again:
    at least 99 % of the ones the network read correctly are still read correctly. Tests may not
    use MNIST, so the digits come from a font and the network is trained on them here, as an MNIST
    network is on MNIST; `python -m core inspect --preprocess-check` measures the same on the real
    test set with the shipped network."""
    from core.training.data import MNISTTensors

    def u8(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((a * 255).round().astype(np.uint8))

    train_x, train_y = font_digits(seed=10, per_class=200)
    test_x, test_y = font_digits(seed=0)
    fonts = MNISTTensors(u8(train_x), torch.from_numpy(train_y).long(), u8(test_x), torch.from_numpy(test_y).long(),
                         "font digits")
    config = TrainConfig.for_step(9, epochs=4, device="cpu", seed=0)
    model = TrainedModel("font model", config, run(config, fonts).weights, "trained in the test").network()
    rng = np.random.default_rng(1)
    before = [int(classify(model, torch.from_numpy(img)).argmax()) for img in test_x]
    after = [int(classify(model, torch.from_numpy(to_mnist(displace(img, rng)))).argmax()) for img in test_x]
    correct = [i for i, (b, y) in enumerate(zip(before, test_y)) if b == y]
    assert len(correct) >= 0.9 * len(test_y), f"the network reads only {len(correct)} of {len(test_y)} font digits"
    kept = sum(after[i] == test_y[i] for i in correct)
    assert kept >= 0.99 * len(correct), f"kept {kept} of {len(correct)}"


CLEAN_CHECK = """
import sys, importlib.util, torch
assert not any('core' == name.split('.')[0] for name in sys.modules), 'the project was imported'
spec = importlib.util.spec_from_file_location('exported', 'model.py')
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = getattr(module, {name!r})()
model.load_state_dict(torch.load('weights.pt', weights_only=True))
model.eval()
images = torch.load('images.pt', weights_only=True)
with torch.no_grad():
    torch.save(model(images), 'scores.pt')
"""


def test_exported_files_reproduce_the_predictions_without_this_project(trained, mnist_root, tmp_path):
    out = tmp_path / "export"
    paths = export(trained, out)
    assert [p.name for p in paths] == ["weights.pt", "model.py", "config.json"]
    assert json.loads((out / "config.json").read_text())["config"] == trained.config.as_dict()
    data = load_mnist(str(mnist_root), download=False)
    images = data.test_images[:100].float().div(255)[:, None]
    torch.save(images, out / "images.pt")
    result = subprocess.run([sys.executable, "-I", "-c", CLEAN_CHECK.format(name=CLASS_NAME)], cwd=out,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    theirs = torch.load(out / "scores.pt", weights_only=True)
    ours = torch.stack([torch.log(classify(trained.network(), img[0])) for img in images])
    assert torch.equal(theirs.argmax(1), ours.argmax(1))
    assert torch.allclose(theirs, ours, atol=1e-5)
    ours_batched = trained.network()((images - 0.1307) / 0.3081)
    assert torch.equal(theirs, ours_batched)  # the same operations in the same order: bit for bit
    assert "import core" not in model_source(trained) and "from core" not in model_source(trained)


def test_cli_export_and_inspect(mnist_root, tmp_path):
    cli = run_cli
    done = cli("export", "--step", "9", "--out", str(tmp_path / "ref"), "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "ref").iterdir()) == ["config.json", "model.py", "weights.pt"]
    trained_run = json.loads(cli("train", "--epochs", "1", "--max-batches", "2", "--data-dir", str(mnist_root),
                                 "--no-download", "--device", "cpu", "--json").stdout)
    done = cli("export", "--run", str(trained_run["run_id"]), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    missing = cli("export", "--run", "999", "--out", str(tmp_path / "none"))
    assert missing.returncode == 2 and "no run 999" in missing.stderr and "Traceback" not in missing.stderr
    no_weights = cli("export", "--step", "1", "--out", str(tmp_path / "big"))
    assert no_weights.returncode == 2 and "Traceback" not in no_weights.stderr
    report = cli("inspect", "--run", str(trained_run["run_id"]), "--data-dir", str(mnist_root), "--no-download",
                 "--json")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert sum(map(sum, doc["confusion"])) == 400 and 0 <= doc["accuracy"] <= 100
    assert doc["batched_pass_seconds"] > 0 and not math.isnan(doc["batched_pass_seconds"])


def test_folded_batchnorm_computes_the_same_function(trained):
    from core.experiments.bench import fold_batchnorm

    model = trained.network()
    folded = fold_batchnorm(model)
    x = torch.rand(16, 1, 28, 28)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded)
    assert torch.allclose(model(x), folded(x), atol=1e-4)


def test_the_shipped_reference_network_loads_with_its_provenance():
    """The Inspect page works from the first second: the step-9 reference weights are in assets/."""
    from core.architecture.builder import count_params

    ref = load_references()[9]
    shipped = reference_model(ref)
    network = shipped.network()
    assert count_params(network) == ref.params == describe_step(9)["params"]
    assert "python -m core reproduce" in shipped.provenance and shipped.config.seed == ref.runs[0].seed
    weights_file = ROOT / next(r.weights for r in ref.runs if r.weights)
    assert weights_file.stat().st_size < 100_000  # tens of KB
    assert torch.load(weights_file, weights_only=True).keys() == network.state_dict().keys()
