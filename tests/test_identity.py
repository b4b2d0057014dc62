"""A student's identity across reloads: a signed cookie carries the id and name; a forged or
altered token gives a new identity; a reloaded page takes up the live view of its run."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.serving.identity import COOKIE, new_student, server_secret, sign, verify
from core.serving.run_queue import Job
from core.serving.store import RunTags
from core.training.config import TrainConfig

APP = str(Path(__file__).resolve().parents[1] / "app.py")
KEY = "open sesame"


def test_a_token_carries_its_id_and_name_and_nothing_else_verifies():
    secret, ann = server_secret(), new_student()
    token = sign(ann, "Ann *bold* <b>", secret)
    assert verify(token, secret) == (ann, "Ann *bold* <b>")
    assert set(token) <= set("0123456789abcdefABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz-_.")  # script-safe
    student, name, signature = token.split(".")
    bob = new_student()
    assert verify(f"{bob}.{name}.{signature}", secret) is None  # another's id with ann's signature
    assert verify(sign(ann, "Ann", b"another server's secret"), secret) is None
    assert verify(f"{student}.{name}.{signature[:-1]}0", secret) in (None,) or signature.endswith("0")
    for junk in (None, "", "a.b", "x" * 32 + "..", "not a token at all", f"{ann}.{name}.é{signature[1:]}"):
        assert verify(junk, secret) is None


def test_the_secret_is_the_environments_else_one_kept_in_a_file_only_this_user_reads(tmp_path, monkeypatch):
    import os
    import stat

    from core.serving import identity

    monkeypatch.setenv(identity.SECRET_ENV, "shared by every app server")
    assert server_secret() == b"shared by every app server"
    monkeypatch.delenv(identity.SECRET_ENV)
    kept = tmp_path / "runs" / ".identity_secret"
    first = identity._kept_secret(kept)
    identity._kept_secret.cache_clear()
    assert identity._kept_secret(kept) == first and len(first) == 32  # a restart keeps it
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    (tmp_path / "locked").mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere
        assert len(identity._kept_secret(tmp_path / "locked" / "s")) == 32  # a secret of the process's own


@pytest.fixture
def browser(monkeypatch, mnist_root):
    """A browser whose cookie jar the test fills: `browser(token)` opens the app with it."""
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    monkeypatch.setenv("LIFECYCLE_TEACHER_KEY", KEY)
    jar: dict[str, str] = {}
    monkeypatch.setattr("ui.classroom.browser_cookie", jar.get)

    def open_with(token: str | None) -> AppTest:
        jar.clear()
        if token:
            jar[COOKIE] = token
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        assert not at.exception
        return at
    return open_with


def test_a_new_browser_gets_an_id_and_is_asked_to_keep_it(browser):
    at = browser(None)
    assert len(at.session_state["session_id"]) == 32
    assert "_cookie_due" not in at.session_state  # the page wrote the cookie (components.html) on this run


def test_a_reload_keeps_the_id_and_name_and_a_forged_one_is_not_accepted(browser):
    ann = new_student()
    at = browser(sign(ann, "Ann", server_secret()))
    assert at.session_state["session_id"] == ann and at.session_state["student_name"] == "Ann"
    forged = sign(ann, "Ann", KEY.encode())  # a guess that the secret is the teacher's key: it is not
    at = browser(forged)
    assert at.session_state["session_id"] != ann


def test_a_reloaded_step_page_takes_up_the_live_view_of_its_run(browser, tiny_mnist_root):
    """The page follows the run it took up until the run ends (here: cancelled by a timer, as the
    queue is paused so that the run is still waiting when the page opens)."""
    import threading

    from ui.state import run_queue

    ann = new_student()
    queue = run_queue()
    queue.pause()
    try:
        job = queue.submit(Job(TrainConfig.for_step(9, epochs=1, max_batches=1, device="cpu"), str(tiny_mnist_root),
                               False, record=False, tags=RunTags(ann, "Ann", ""), page="9"))
        threading.Timer(3.0, job.stop).start()
        at = browser(sign(ann, "Ann", server_secret()))
        at.switch_page("app_pages/step_9.py").run()
        assert at.session_state["live_jobs_9"] == [job] and job.snapshot().status == "cancelled"
        other = browser(None)
        other.switch_page("app_pages/step_9.py").run()
        assert other.session_state["live_jobs_9"] == []  # another student's page does not take it up
    finally:
        queue.pause(False)
