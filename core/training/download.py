"""Fetch MNIST's four files from the first mirror that answers, with progress and checksums.

torchvision's downloader prints to stdout and cannot report progress to a page, so the app and the
command line share this one instead. Each file is streamed to `<name>.part`, unpacked while it
arrives, checked against the published MD5 of the *unpacked* file (so any faithful gzip of it is
accepted, not only the one byte-exact .gz), and only then renamed into place: an interrupted or
corrupt download never leaves a file that looks finished.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from filelock import FileLock

from core.training.data import FILES, DataError, raw_dir

# torchvision.datasets.MNIST.mirrors (tests/test_download.py checks they agree)
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
MIRROR_ENV = "MNIST_MIRROR"  # a teacher's own copy (a school proxy, a USB stick served on the LAN)

# the published MD5 of each unpacked IDX file
CHECKSUMS = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# the .gz sizes on the mirrors, for one progress bar over all four before their headers arrive
PACKED_BYTES = {"train-images-idx3-ubyte": 9_912_422, "train-labels-idx1-ubyte": 28_881,
                "t10k-images-idx3-ubyte": 1_648_877, "t10k-labels-idx1-ubyte": 4_542}
TOTAL_MB = sum(PACKED_BYTES.values()) / 1e6
CHUNK = 1 << 16
MAX_UNPACKED = 64 << 20  # bytes of one unpacked file (MNIST's largest: 47 MB): a gzip bomb stops here
FILE_DEADLINE_S = 600.0  # a mirror that drips its bytes must not hold the folder's lock for ever

Progress = Callable[[int, int, str], None]  # (bytes so far, bytes in all, file name)


def mirrors() -> list[str]:
    """$MNIST_MIRROR (comma-separated base URLs) first, then torchvision's mirrors."""
    own = [m.strip() for m in os.environ.get(MIRROR_ENV, "").split(",") if m.strip()]
    return [m if m.endswith("/") else m + "/" for m in own] + list(MIRRORS)


def fetch_mnist(root: Path, progress: Progress | None = None, sources: Sequence[str] | None = None,
                checksums: dict[str, str] | None = None, timeout: float = 30.0) -> None:
    """Put the four files missing from `<root>/MNIST/raw/` there, or raise DataError saying what
    failed at every mirror. One download per folder at a time, across processes: a second caller
    waits and then finds the files in place."""
    folder = raw_dir(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the MNIST folder {folder}: {exc.strerror}") from exc
    sources = list(sources) if sources is not None else mirrors()
    checksums = checksums or CHECKSUMS
    with FileLock(str(folder / ".download.lock")):
        wanted = [name for name in FILES if not (folder / name).exists()]
        total, done = sum(PACKED_BYTES[name] for name in wanted), 0
        for name in wanted:
            def report(got: int, name: str = name, before: int = done) -> None:
                if progress is not None:
                    progress(min(before + got, total), total, name)
            done += _fetch_one(name, folder, sources, checksums[name], timeout, report)
        if progress is not None and wanted:
            progress(total, total, wanted[-1])  # full, even when the mirror's files were smaller than MNIST's


def _fetch_one(name: str, folder: Path, sources: list[str], md5: str, timeout: float,
               progress: Callable[[int], None]) -> int:
    """Fetch one file from the first mirror that gives a good copy; its packed size in bytes."""
    failures = []
    for base in sources:
        try:
            return _download(f"{base}{name}.gz", folder / name, md5, timeout, progress)
        except (OSError, EOFError, zlib.error, ValueError, http.client.HTTPException) as exc:  # network, HTTP,
            # gzip and checksum errors (HTTPException: a broken chunked reply or status line)
            failures.append(f"{base}: {_reason(exc)}")
    raise DataError(f"could not download {name}.gz from any mirror ({'; '.join(failures)})")


def _download(url: str, target: Path, md5: str, timeout: float, progress: Callable[[int], None]) -> int:
    part = target.with_name(target.name + ".part")
    digest, unpack, got, unpacked = hashlib.md5(), zlib.decompressobj(16 + zlib.MAX_WBITS), 0, 0
    request = urllib.request.Request(url, headers={"User-Agent": "tiny-cnn-lifecycle"})
    deadline = time.monotonic() + FILE_DEADLINE_S
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            while chunk := response.read(CHUNK):
                got += len(chunk)
                plain = unpack.decompress(chunk, MAX_UNPACKED + 1 - unpacked)
                unpacked += len(plain)
                if unpacked > MAX_UNPACKED or unpack.unconsumed_tail:
                    raise ValueError(f"unpacks to more than {MAX_UNPACKED >> 20} MB: not an MNIST file")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"still arriving after {FILE_DEADLINE_S:.0f} s")
                digest.update(plain)
                out.write(plain)
                progress(got)
            if not unpack.eof:
                raise EOFError("the connection closed before the end of the file")
        if digest.hexdigest() != md5:
            raise ValueError(f"checksum mismatch (md5 {digest.hexdigest()}, expected {md5})")
        os.replace(part, target)
        return got
    finally:
        part.unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, zlib.error):
        return f"not a gzip file ({exc})"
    return str(exc) or type(exc).__name__
