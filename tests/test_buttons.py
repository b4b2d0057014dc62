"""The buttons no other test clicked, each clicked as a student would, and what follows checked:
Design's Start, the board's Stop it (a student's own run only), the augmentation viewer's Reseed,
and Check again once MNIST is in place. (A queued run's Cancel is clicked in tests/test_e2e_browser.py,
its page follows the run until it ends, which AppTest cannot interrupt.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_app import open_page

from core.serving.run_queue import Job
from core.serving.store import RunTags
from core.training.config import TrainConfig

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def student(monkeypatch, mnist_root):
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    monkeypatch.setenv("LIFECYCLE_TEACHER_KEY", "open sesame")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


@pytest.fixture
def paused_queue():
    """The app's queue, paused: a run queued by a test stays queued until the test ends it."""
    from ui.state import run_queue

    queue = run_queue()
    queue.pause()
    yield queue
    queue.clear()
    queue.pause(False)


def queued(queue, root: Path, session: str, seed: int = 1, page: str = "") -> Job:
    config = TrainConfig.for_step(9, epochs=1, max_batches=1, device="cpu", seed=seed)
    return queue.submit(Job(config, str(root), False, record=False, tags=RunTags(session, "", ""), page=page))


def test_design_start_replaces_the_stack_with_an_empty_one(student):
    at = open_page(student, "app_pages/design.py")
    at.selectbox(key="design_start").set_value("empty").run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception
    assert at.query_params["net"] == ["G"] or at.query_params["net"] == "G"


def test_the_boards_stop_lists_only_my_runs_and_stops_the_one_picked(student, paused_queue, tiny_mnist_root):
    at = open_page(student, "app_pages/board.py")
    mine = queued(paused_queue, tiny_mnist_root, at.session_state["session_id"], seed=1)
    theirs = queued(paused_queue, tiny_mnist_root, "another student", seed=2)
    at.run()
    options = at.selectbox(key="board_stop_pick").options
    assert len(options) == 1 and "seed 1" in options[0]  # another student's run is not mine to stop
    at.button(key="board_stop").click().run()
    assert mine.snapshot().status == "cancelled" and theirs.snapshot().status == "queued"


def test_reseed_draws_other_augmentations(student):
    at = open_page(student, "app_pages/augmentation.py")
    before = next(c.value for c in at.caption if "seed" in c.value)
    at.button(key="reseed").click().run()
    after = next(c.value for c in at.caption if "seed" in c.value)
    assert before.endswith("seed 0") and after.endswith("seed 1")


def test_check_again_finds_files_put_in_place_meanwhile(monkeypatch, tmp_path, mnist_root):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MNIST_DOWNLOAD", "0")  # offline: the page says where the files go
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at = open_page(at, "app_pages/step_9.py")
    assert not [b for b in at.button if b.key == "train_9"]
    shutil.copytree(mnist_root / "MNIST", tmp_path / "data" / "MNIST")  # the teacher copies them in
    at.button(key="_check_mnist").click().run()
    assert at.button(key="train_9") and not at.button(key="train_9").disabled
