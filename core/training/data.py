"""MNIST, loaded once into uint8 tensors on the training device.

The four IDX files are read straight from `<root>/MNIST/raw/`, the layout torchvision downloads
into (core.training.download fetches them). Each IDX header and size is checked first,
so a missing, truncated or corrupt file gives a message that names the file instead of a deep
stack trace.
"""

from __future__ import annotations

import gzip
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from core.architecture.spec import MNIST_SIDE, NUM_CLASSES

# file name -> IDX magic number (2051: images, 2049: labels)
FILES = {
    "train-images-idx3-ubyte": 2051,
    "train-labels-idx1-ubyte": 2049,
    "t10k-images-idx3-ubyte": 2051,
    "t10k-labels-idx1-ubyte": 2049,
}
DEFAULT_ROOT = "./data"


class DataError(RuntimeError):
    """MNIST could not be loaded; the message says what to do."""


@dataclass(frozen=True)
class MNISTTensors:
    train_images: torch.Tensor  # uint8 [N, 28, 28]
    train_labels: torch.Tensor  # int64 [N]
    test_images: torch.Tensor
    test_labels: torch.Tensor
    root: str

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    def to(self, device: torch.device) -> "MNISTTensors":
        if self.device == device:
            return self
        return MNISTTensors(*(t.to(device) for t in (self.train_images, self.train_labels,
                                                      self.test_images, self.test_labels)), root=self.root)


def resolve_root(data_dir: str | None = None) -> Path:
    """--data-dir, else $MNIST_DIR, else ./data."""
    return Path(data_dir or os.environ.get("MNIST_DIR") or DEFAULT_ROOT).expanduser()


def raw_dir(root: Path) -> Path:
    return root / "MNIST" / "raw"


def how_to_get_files(root: Path, online: bool = True) -> str:
    names = ", ".join(FILES)
    return (f"Put the four MNIST files ({names}; .gz versions also work) in {raw_dir(root).resolve()} "
            f"-- or point --data-dir / MNIST_DIR at a folder that has MNIST/raw/ inside"
            + (" -- or run once with internet access and they are downloaded (about 12 MB)." if online else "."))


def _read_header(path: Path) -> tuple[bytes, int]:
    """(first 16 bytes, uncompressed size) of an IDX file, .gz or plain."""
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                head = f.read(16)
                size = len(head)
                while chunk := f.read(1 << 20):
                    size += len(chunk)
            return head, size
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is not a valid gzip file ({exc}); delete it and fetch it again") from exc
    with open(path, "rb") as f:
        return f.read(16), path.stat().st_size


def check_file(path: Path, magic: int) -> None:
    head, size = _read_header(path)
    if len(head) < 8 or int.from_bytes(head[:4], "big") != magic:
        raise DataError(f"{path} is not an MNIST IDX file (bad header); delete it and fetch it again")
    n = int.from_bytes(head[4:8], "big")
    expected = 16 + n * MNIST_SIDE * MNIST_SIDE if magic == 2051 else 8 + n
    if magic == 2051 and (len(head) < 16 or head[8:16] != MNIST_SIDE.to_bytes(4, "big") * 2):
        raise DataError(f"{path} does not hold 28x28 images; delete it and fetch it again")
    if size != expected:
        raise DataError(f"{path} is truncated or corrupt: {size} bytes, expected {expected} for {n} items")
    if n == 0:
        raise DataError(f"{path} holds no items")


def _gunzip(packed: Path, plain: Path) -> None:
    try:
        with gzip.open(packed, "rb") as src, open(plain, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except OSError as exc:
        plain.unlink(missing_ok=True)
        raise DataError(f"could not unpack {packed} next to itself ({exc}); unpack it by hand with gunzip") from exc


def validate(root: Path) -> None:
    """Raise DataError naming every missing file, or the first corrupt one."""
    folder = raw_dir(root)
    missing = []
    for name, magic in FILES.items():
        plain, packed = folder / name, folder / f"{name}.gz"
        if plain.exists():
            check_file(plain, magic)
        elif packed.exists():
            check_file(packed, magic)
            _gunzip(packed, plain)  # read once, then kept uncompressed next to it, as torchvision does
        else:
            missing.append(name)
    if missing:
        raise DataError(f"MNIST files missing: {', '.join(missing)}. " + how_to_get_files(root))


def _read(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 [N, 28, 28], labels int64 [N]) straight from the checked IDX files: what
    torchvision's MNIST reads (tests/test_data.py compares the two), without importing torchvision,
    which would add more than a second to every process's start."""
    prefix = "train" if train else "t10k"
    images = _idx_payload(raw_dir(root) / f"{prefix}-images-idx3-ubyte", 16)
    labels = _idx_payload(raw_dir(root) / f"{prefix}-labels-idx1-ubyte", 8)
    return images.view(-1, MNIST_SIDE, MNIST_SIDE), labels.long()


def _idx_payload(path: Path, header: int) -> torch.Tensor:
    data = bytearray(path.read_bytes())  # writable, so torch can share it without a copy or a warning
    return torch.frombuffer(data, dtype=torch.uint8, offset=header)


def fetch(root: Path, progress=None) -> None:
    """Download the missing files (core.training.download), or raise DataError that also says how
    to get them by hand."""
    from core.training.download import fetch_mnist

    try:
        fetch_mnist(root, progress)
    except DataError as exc:
        raise DataError(f"{exc}. " + how_to_get_files(root, online=False)) from exc


def load_mnist(data_dir: str | None = None, download: bool = True, device: torch.device | str = "cpu") -> MNISTTensors:
    root = resolve_root(data_dir)
    if root.exists() and not root.is_dir():
        raise DataError(f"data folder {root} is a file, not a folder")
    try:
        validate(root)
    except DataError:
        if not download:
            raise
        fetch(root)
        validate(root)
    try:
        train_x, train_y = _read(root, True)
        test_x, test_y = _read(root, False)
    except Exception as exc:  # unreadable files
        raise DataError(f"could not read MNIST from {raw_dir(root)}: {exc}") from exc
    for labels, name in ((train_y, "train"), (test_y, "test")):
        if labels.numel() and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise DataError(f"MNIST {name} labels outside 0-9 in {raw_dir(root)}: the files are corrupt")
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DataError(f"MNIST image and label counts differ in {raw_dir(root)}: the files do not belong together")
    return MNISTTensors(train_x, train_y, test_x, test_y, str(root)).to(torch.device(device))


_cache: dict[tuple[str, str], MNISTTensors] = {}
_cache_lock = threading.Lock()
CACHED_COPIES = 2  # (folder, device) pairs kept: a server changed to another folder lets the old copy go


def load_cached(data_dir: str | None = None, download: bool = True, device: torch.device | str = "cpu") -> MNISTTensors:
    """One copy per (folder, device) per process, shared by every app session."""
    key = (str(resolve_root(data_dir).resolve()), str(device))
    with _cache_lock:
        if key not in _cache:
            while len(_cache) >= CACHED_COPIES:
                _cache.pop(next(iter(_cache)))
            _cache[key] = load_mnist(data_dir, download, device)
        return _cache[key]
