"""Fetching MNIST, against a mirror served on loopback: a good download, a connection that breaks
mid-file, a file whose checksum is wrong, and the app's Download button on a page with no data."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
from conftest import make_mnist_root
from streamlit.testing.v1 import AppTest

from core.training import download
from core.training.data import FILES, DataError, load_mnist, raw_dir
from core.training.download import fetch_mnist

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="module")
def source_files(tmp_path_factory) -> tuple[dict[str, bytes], dict[str, str]]:
    """The four files of a small MNIST, gzipped as a mirror serves them, and their unpacked MD5s."""
    raw = raw_dir(make_mnist_root(tmp_path_factory.mktemp("source"), 300, 100))
    plain = {name: (raw / name).read_bytes() for name in FILES}
    return ({name: gzip.compress(data) for name, data in plain.items()},
            {name: hashlib.md5(data).hexdigest() for name, data in plain.items()})


class Mirror:
    """A loopback HTTP server for `<name>.gz`; `broken` names files whose connection drops halfway."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.broken, self.requests = dict(files), set(), []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.strip("/").removesuffix(".gz")
                mirror.requests.append(name)
                if name not in mirror.files:
                    self.send_error(404)
                    return
                body = mirror.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if name in mirror.broken else body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(source_files):
    served = Mirror(source_files[0])
    yield served
    served.close()


@pytest.fixture
def only_loopback(monkeypatch, source_files):
    """No test reaches the real mirrors, and the small files' checksums stand in for MNIST's."""
    monkeypatch.setattr(download, "MIRRORS", ())
    monkeypatch.setattr(download, "CHECKSUMS", source_files[1])


def test_the_mirrors_and_files_are_torchvisions():
    from torchvision.datasets import MNIST

    assert list(download.MIRRORS) == MNIST.mirrors
    assert {f"{name}.gz" for name in FILES} == {file for file, _ in MNIST.resources}
    assert set(download.CHECKSUMS) == set(FILES) == set(download.PACKED_BYTES)


def test_a_good_download_loads_with_progress_to_the_end(tmp_path, mirror, only_loopback, source_files):
    seen = []
    fetch_mnist(tmp_path, lambda done, total, name: seen.append((done, total, name)), sources=[mirror.url])
    data = load_mnist(str(tmp_path), download=False)
    assert len(data.train_images) == 300 and len(data.test_images) == 100
    assert {name for _, _, name in seen} == set(FILES)
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)  # never goes backwards
    assert seen[-1][0] == seen[-1][1] == sum(download.PACKED_BYTES.values())  # ends full (the totals are MNIST's)
    assert not list(raw_dir(tmp_path).glob("*.part"))


def test_a_broken_connection_leaves_no_file_and_says_so(tmp_path, mirror, only_loopback):
    mirror.broken.add("train-images-idx3-ubyte")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz from any mirror.*127\.0\.0\.1"):
        fetch_mnist(tmp_path, sources=[mirror.url])
    assert not (raw_dir(tmp_path) / "train-images-idx3-ubyte").exists()
    assert not list(raw_dir(tmp_path).glob("*.part"))


def test_a_bad_checksum_is_refused_and_the_next_mirror_is_tried(tmp_path, mirror, only_loopback, source_files):
    forged = Mirror({**source_files[0], "t10k-labels-idx1-ubyte": gzip.compress(b"\0" * 108)})
    try:
        with pytest.raises(DataError, match="checksum mismatch"):
            fetch_mnist(tmp_path, sources=[forged.url])
        assert not (raw_dir(tmp_path) / "t10k-labels-idx1-ubyte").exists()
        fetch_mnist(tmp_path, sources=[forged.url, mirror.url])  # the good mirror after the forged one
    finally:
        forged.close()
    assert load_mnist(str(tmp_path), download=False).test_labels.numel() == 100
    assert mirror.requests == ["t10k-labels-idx1-ubyte"]  # the files already in place are not fetched again


def test_no_mirror_at_all_says_how_to_get_the_files_by_hand(tmp_path, only_loopback, monkeypatch):
    monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:9/")  # nothing listens on port 9
    with pytest.raises(DataError, match=r"cannot connect.*Put the four MNIST files"):
        load_mnist(str(tmp_path / "nowhere"), download=True)


def test_the_app_offers_the_download_and_then_train(tmp_path, mirror, only_loopback, monkeypatch):
    """A fresh machine: no files, so the step page offers to fetch them; one click, and Train is there."""
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(download.MIRROR_ENV, mirror.url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("app_pages/step_9.py").run()
    assert any("MNIST is not on this server yet" in i.value for i in at.info)
    assert not at.get("button") or all(b.key != "train_9" for b in at.button)
    at.button(key="_fetch_mnist_button").click().run()
    assert not at.exception and not at.error
    assert at.button(key="train_9") and not at.button(key="train_9").disabled


def test_the_app_reports_a_failed_download_and_offers_it_again(tmp_path, mirror, only_loopback, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(download.MIRROR_ENV, mirror.url)
    mirror.broken.add("t10k-images-idx3-ubyte")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("app_pages/augmentation.py").run()
    at.button(key="_fetch_mnist_button").click().run()
    (error,) = at.error
    assert "download failed" in error.value and "Download MNIST" in error.value
    assert at.button(key="_fetch_mnist_button")  # the control the message names is on the page
    mirror.broken.clear()
    at.button(key="_fetch_mnist_button").click().run()
    assert not at.error and not any("not on this server" in i.value for i in at.info)


def test_a_gzip_bomb_stops_at_the_size_limit_and_leaves_nothing(tmp_path, mirror, only_loopback, monkeypatch):
    monkeypatch.setattr(download, "MAX_UNPACKED", 1 << 20)
    mirror.files["train-labels-idx1-ubyte"] = gzip.compress(b"\0" * (4 << 20))  # 4 MB of zeros in a few KB
    with pytest.raises(DataError, match="unpacks to more than 1 MB"):
        fetch_mnist(tmp_path, sources=[mirror.url])
    assert not (raw_dir(tmp_path) / "train-labels-idx1-ubyte").exists() and not list(raw_dir(tmp_path).glob("*.part"))
