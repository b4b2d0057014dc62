"""Shared fixtures. Tests never touch ../shared/mnist: they write their own small IDX files
so the real loading code (header checks + torchvision.datasets.MNIST) runs on them."""

from __future__ import annotations

import io
import math
import os
import struct
import subprocess
import sys
import tempfile
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two test workers on two cores: each trains with one thread, and so do the servers and commands it
    # starts. Two runs of two threads each on two cores wait for each other at every barrier of torch's
    # thread pool, which made the suite slower in parallel than one after another.
    os.environ["OMP_NUM_THREADS"] = "1"
    # The tests that do ask for two threads (cores shared among runs, the benchmarks' thread counts) run beside
    # the other test worker, which keeps a core busy: a thread spinning at torch's barrier then waits for one the
    # scheduler has put aside (the class benchmark test's command: 337 s beside a busy core, 48 s so). Sleeping costs a
    # lone run some speed (which no test measures) and changes no result.
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
# A server the tests start trains one run at a time on one core, as the tests of its queue expect; the tests
# of cores shared among several runs (tests/test_cores.py) ask for more explicitly.
os.environ["LIFECYCLE_CPUS"] = "1"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m core ARGS` run inside this process (the same `main`, its stdout, stderr and exit
    code), which saves each call the two seconds of a fresh interpreter importing torch. Tests of
    the real process (a second process, Ctrl-C, imports) start one with `subprocess` instead."""
    import torch

    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    with mock.patch.dict(os.environ, env or {}), redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors and --help
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            torch.set_num_threads(threads)  # --threads must not leak into the next test
    return subprocess.CompletedProcess(["python", "-m", "core", *args], code, out.getvalue(), err.getvalue())


def wait_for(predicate, seconds: float = 120, every: float = 0.02) -> None:
    """Poll every `every` seconds until `predicate()` holds; fail the test after `seconds`."""
    import time

    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(every)


def project_modules(*folders: str) -> list[str]:
    """Every importable module under the given top-level folders, as dotted names (subpackages too)."""
    return sorted(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for folder in folders for path in (ROOT / folder).rglob("*.py") if path.stem != "__main__")


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A learnable stand-in for MNIST: class c is a stripe texture with one of 5 orientations
    and one of 2 periods, random phase, plus noise. Local texture, so GAP heads can learn it."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    images = np.empty((n, 28, 28), np.uint8)
    for i, c in enumerate(labels):
        angle = math.pi * (c % 5) / 5
        period = 4.0 if c < 5 else 8.0
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period + phase)
        img = (wave > 0) * 200 + rng.normal(0, 20, (28, 28))
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    return images, labels


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    with open(folder / f"{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


def make_mnist_root(root: Path, n_train: int = 1200, n_test: int = 400) -> Path:
    raw = root / "MNIST" / "raw"
    write_idx(raw, "train", *synthetic_digits(n_train, 0))
    write_idx(raw, "t10k", *synthetic_digits(n_test, 1))
    return root


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    return make_mnist_root(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def tiny_mnist_root(tmp_path_factory) -> Path:
    """300 training and 100 test images: for tests that train whole 15-epoch runs, several of them."""
    return make_mnist_root(tmp_path_factory.mktemp("tiny_mnist"), 300, 100)


@pytest.fixture
def fresh_mnist_root(tmp_path) -> Path:
    """A private copy that a test may damage."""
    return make_mnist_root(tmp_path / "data", 200, 100)


@pytest.fixture(autouse=True)
def server_settings_from_the_environment():
    """What a teacher changed on the Data page is the server's (one process), so each test starts
    from the environment again."""
    yield
    state = sys.modules.get("ui.state")
    if state is not None:
        state._server_settings.clear()


@pytest.fixture(autouse=True)
def test_identity_secret(monkeypatch):
    """Students' cookies are signed with this, not with a secret kept in the project's runs/ folder."""
    monkeypatch.setenv("LIFECYCLE_IDENTITY_SECRET", "the tests' own identity secret")


@pytest.fixture(autouse=True)
def private_run_store(tmp_path, monkeypatch) -> Path:
    """Every test records its runs in a file of its own, never in the project's runs/ folder."""
    path = tmp_path / "runs" / "runs.sqlite3"
    monkeypatch.setenv("LIFECYCLE_RUNS", str(path))
    return path


# --- the cluster backends: PostgreSQL (and Ray, in test_cluster.py) --------------------------------
# The store and queue tests run against SQLite always, and against PostgreSQL when
# LIFECYCLE_TEST_POSTGRES names a server (a URL to a database that may create others; .ci/run starts one
# on loopback). REQUIRE_CLUSTER=1 (set by .ci/run) turns a missing server into a failure, not a skip.

def require_or_skip(what: str, why: str) -> None:
    if os.environ.get("REQUIRE_CLUSTER"):
        raise RuntimeError(f"REQUIRE_CLUSTER is set but {what} is missing: {why}")
    pytest.skip(f"{what} not available: {why}")


@contextmanager
def ray_cluster_alone():
    """Tests take turns on the one Ray cluster that .ci/run starts: two test workers on it at once would share
    its CPUs and its one cluster-wide order, and each would count the other's runs in its queue."""
    try:
        import fcntl
    except ImportError:  # no test workers in parallel where there is no fcntl (Windows)
        yield
        return
    with open(Path(tempfile.gettempdir()) / "lifecycle-tests-ray-cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def postgres_database() -> tuple[str, callable]:
    """A fresh, empty PostgreSQL database for one test: (its URL, a function that drops it)."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    admin = os.environ.get("LIFECYCLE_TEST_POSTGRES")
    if not admin:
        require_or_skip("PostgreSQL", "set LIFECYCLE_TEST_POSTGRES=postgresql://user:password@127.0.0.1/postgres")
    try:
        import psycopg
    except ImportError:
        require_or_skip("psycopg", "pip install -r requirements-cluster.txt")
    name = f"lifecycle_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return url, drop


@pytest.fixture(params=["sqlite", "postgresql"])
def store_at(request, tmp_path, monkeypatch):
    """Where a test's run store lives, once per backend (also made the default, $LIFECYCLE_RUNS)."""
    if request.param == "sqlite":
        path = tmp_path / "runs.sqlite3"
        monkeypatch.setenv("LIFECYCLE_RUNS", str(path))
        yield path
        return
    url, drop = postgres_database()
    monkeypatch.setenv("LIFECYCLE_RUNS", url)
    try:
        yield url
    finally:
        import gc

        gc.collect()  # stores the test dropped close their connections before the database goes
        drop()


# The tests that use the one Ray cluster run one after another on one test worker (`--dist loadgroup` in
# pytest.ini): on two workers, one would wait for the other's cluster tests (ray_cluster_alone) doing nothing.
RAY_CLUSTER = pytest.mark.xdist_group("ray_cluster")


def pytest_collection_modifyitems(items) -> None:
    """The browser tests first: they are the longest (half of the suite's time), and the two test workers
    (`-n 2` in pytest.ini) finish together only if the long ones do not come last."""
    items.sort(key=lambda item: item.path.name != "test_e2e_browser.py")
