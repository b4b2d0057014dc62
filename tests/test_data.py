import gzip
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import synthetic_digits

from core.project import ROOT
from core.training.data import FILES, DataError, load_mnist, raw_dir, resolve_root


def test_loads_idx_files_into_uint8_tensors_pixel_for_pixel(mnist_root):
    data = load_mnist(str(mnist_root), download=False)
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    for (images, labels), seed, n in (((data.train_images, data.train_labels), 0, 1200),
                                      ((data.test_images, data.test_labels), 1, 400)):
        written_images, written_labels = synthetic_digits(n, seed)  # what conftest wrote into the IDX files
        assert torch.equal(images, torch.from_numpy(written_images))
        assert torch.equal(labels, torch.from_numpy(written_labels).long())


def test_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "env"))
    assert resolve_root("explicit") .name == "explicit"
    assert resolve_root(None) == tmp_path / "env"
    monkeypatch.delenv("MNIST_DIR")
    assert resolve_root(None).name == "data"


def test_missing_files_are_named_with_instructions(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist(str(tmp_path / "empty"), download=False)
    message = str(info.value)
    for name in FILES:
        assert name in message
    assert str((tmp_path / "empty" / "MNIST" / "raw").resolve()) in message


def test_truncated_file_is_reported(fresh_mnist_root):
    path = raw_dir(fresh_mnist_root) / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="train-images-idx3-ubyte is truncated or corrupt"):
        load_mnist(str(fresh_mnist_root), download=False)


def test_corrupt_header_is_reported(fresh_mnist_root):
    path = raw_dir(fresh_mnist_root) / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is not an MNIST IDX file"):
        load_mnist(str(fresh_mnist_root), download=False)


def test_bad_labels_are_reported(fresh_mnist_root):
    path = raw_dir(fresh_mnist_root) / "train-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[10] = 77
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="labels outside 0-9"):
        load_mnist(str(fresh_mnist_root), download=False)


def test_gzip_only_files_are_unpacked(fresh_mnist_root):
    folder = raw_dir(fresh_mnist_root)
    for name in FILES:
        with open(folder / name, "rb") as src, gzip.open(folder / f"{name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        (folder / name).unlink()
    data = load_mnist(str(fresh_mnist_root), download=False)
    assert len(data.train_images) == 200


def test_broken_gzip_is_reported(fresh_mnist_root):
    folder = raw_dir(fresh_mnist_root)
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataError, match="not a valid gzip file"):
        load_mnist(str(fresh_mnist_root), download=False)


def test_reads_what_torchvision_reads(mnist_root):
    from torchvision.datasets import MNIST

    data = load_mnist(str(mnist_root), download=False)
    for train, images, labels in ((True, data.train_images, data.train_labels),
                                  (False, data.test_images, data.test_labels)):
        reference = MNIST(str(mnist_root), train=train, download=False)
        assert torch.equal(images, reference.data) and torch.equal(labels, reference.targets)


def test_training_never_imports_torchvision_or_the_compiler(mnist_root):
    """Each costs more than a second at every start: torchvision only a download needs, and
    TorchDynamo nothing here (torch.optim's optimisers import it; core.training.optim's do not)."""
    code = ("import sys; from core.training.data import load_mnist; from core.training.loop import run; "
            "from core.training.config import TrainConfig; "
            f"run(TrainConfig.for_step(9, epochs=1, max_batches=1, device='cpu'), load_mnist({str(mnist_root)!r}, "
            "download=False)); print('torchvision' in sys.modules, 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"
