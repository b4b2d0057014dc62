"""Paths through controls that no other test takes, each taken through the page (AppTest) and its effect
checked: Design's Start from a step, a predict-first class started by the teacher, an exercise that hides
its fixed controls, the teacher's key refused while too many tries wait, Verify refused past a student's
share of the queue, and a Delete the run store refuses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_app import open_page, params_shown
from test_classroom import full_run, record

from core.architecture.challenge import CHALLENGE
from core.report.views import describe_step
from core.serving.store import RunStore, RunTags, StoreError
from core.training.config import TrainConfig

APP = str(Path(__file__).resolve().parents[1] / "app.py")
KEY = "open sesame"


@pytest.fixture
def app(monkeypatch, mnist_root):
    """A laptop server: no teacher's key, so this session may do what a teacher does (as in test_class_app)."""
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    monkeypatch.delenv("LIFECYCLE_TEACHER_KEY", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


@pytest.fixture
def keyed_app(monkeypatch, mnist_root):
    """A classroom server: the teacher's key is set (as in test_class_app)."""
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    monkeypatch.setenv("LIFECYCLE_TEACHER_KEY", KEY)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def query_value(at: AppTest, key: str) -> str:
    """One query parameter as a string (AppTest gives a list or a string, by version)."""
    value = at.query_params[key]
    return value[-1] if isinstance(value, list) else value


# --- 1. Design: Start from a step ------------------------------------------------------------------

def test_design_start_from_a_step_opens_that_steps_network_and_its_controls(app):
    at = open_page(app, "app_pages/design.py")
    step4 = TrainConfig.for_step(4)
    assert step4.toggles.batchnorm and not step4.toggles.gap  # what the Start below must bring back
    at.toggle(key="bn").set_value(False).run()  # a control changed away from step 4's default
    assert at.toggle(key="bn").value is False
    assert query_value(at, "net") != step4.net
    at.selectbox(key="design_start").set_value("4").run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception, at.exception
    assert query_value(at, "net") == step4.net and query_value(at, "from") == "4"
    assert at.toggle(key="bn").value is True  # back to step 4's own
    assert at.toggle(key="gap").value is False  # step 4's head: no GAP (the design page's default step has one)
    assert params_shown(at) == describe_step(4)["params"]
    assert any(f"`{step4.net}`" in c.value and "recipe and references of step 4" in c.value for c in at.caption)


# --- 2. the board: a predict-first class, started by the teacher ----------------------------------

def test_the_teacher_starts_a_predict_first_class(keyed_app, private_run_store):
    at = open_page(keyed_app, "app_pages/board.py")
    at.text_input(key="_teacher_key").input(KEY).run()
    at.button(key="unlock").click().run()
    assert at.session_state["teacher"]
    at.text_input(key="_class_name").input("Tuesday").run()
    at.checkbox(key="_predict_first").check().run()
    at.button(key="start_class").click().run()
    assert not at.exception, at.exception
    klass = RunStore(private_run_store).current_class()
    assert klass is not None and klass.name == "Tuesday" and klass.predict_first is True
    at = open_page(at, "app_pages/step_4.py")  # and a step page now keeps its result folded
    assert any("Predict first" in i.value for i in at.info)


def test_a_class_started_without_predict_first_is_not_one(keyed_app, private_run_store):
    """The same path with the box left alone: the flag above came from the box, not from a default."""
    at = open_page(keyed_app, "app_pages/board.py")
    at.text_input(key="_teacher_key").input(KEY).run()
    at.button(key="unlock").click().run()
    at.button(key="start_class").click().run()
    klass = RunStore(private_run_store).current_class()
    assert klass is not None and klass.predict_first is False


# --- 3. an exercise that hides its fixed controls -------------------------------------------------

def test_an_exercise_made_with_hide_on_hides_its_fixed_controls(app, private_run_store):
    at = open_page(app, "app_pages/step_5.py", dropout="0.3")
    at.multiselect(key="_exercise_open_step_5").set_value(["dropout"]).run()
    at.toggle(key="_exercise_hide_step_5").set_value(True).run()
    at.button(key="_exercise_make_step_5").click().run()
    assert not at.exception, at.exception
    exercise = RunStore(private_run_store).exercise(1)
    assert exercise is not None and exercise.page == "step_5" and exercise.settings["dropout"] == "0.3"
    assert not exercise.locked
    assert "bn" in exercise.hidden and "gap" in exercise.hidden and "dropout" not in exercise.hidden
    assert any("exercise=1" in c.value for c in at.code)
    # the link: the fixed controls are not drawn at all (not even locked), the open one is
    at = open_page(at, "app_pages/step_5.py", exercise="1")
    keys = {w.key for w in (*at.toggle, *at.slider)}
    assert not keys & {"bn", "bn__locked", "gap", "gap__locked"}
    assert at.slider(key="dropout").value == 0.3
    assert any("hidden" in c.value and "Exercise 1" in c.value for c in at.caption)


# --- 4. the teacher's key while too many tries wait ------------------------------------------------

def test_the_key_is_refused_unheard_while_too_many_tries_wait(keyed_app, monkeypatch):
    import ui.classroom
    from core.classroom import KeyGate

    gate = KeyGate(delay=60.0, most_wait=10.0)  # the server's gate, with another tab's try just taken:
    assert gate.check(KEY, "a guess") is False  # the next free slot is a minute away, past the 10 s wait
    monkeypatch.setattr(ui.classroom, "key_gate", lambda: gate)
    at = open_page(keyed_app, "app_pages/board.py")
    at.text_input(key="_teacher_key").input(KEY).run()  # the right key, even
    at.button(key="unlock").click().run()
    assert not at.exception, at.exception
    assert gate.refused == 1
    assert not at.session_state["teacher"]
    (error,) = at.error
    assert error.value == "Too many keys are being tried on this server just now: press *Unlock* again in a minute."
    assert not [b for b in at.button if b.key == "start_class"]  # still a student's board
    assert at.button(key="unlock")


# --- 5. Verify past the student's share of the queue ----------------------------------------------

def test_verify_queues_nothing_past_the_students_share_and_says_why(app, private_run_store, tiny_mnist_root):
    from core.serving.run_queue import Job
    from ui.state import run_queue

    store = RunStore(private_run_store)
    record(store, full_run("c6,M,c8,c8,G", 1), [99.6] * 15, params=3000)  # one seed: Verify offers the rest
    at = open_page(app, "app_pages/board.py")
    at.segmented_control(key="board_view").set_value("leaderboard").run()
    missing = ", ".join(map(str, range(2, CHALLENGE.min_seeds + 1)))
    (verify,) = [b for b in at.button if b.label == f"Verify on seeds {missing}"]

    queue = run_queue()
    before, was_paused = queue.limits, queue.paused
    queue.pause()  # what the test queues stays queued
    try:
        queue.set_limits(replace(before, runs_per_student=CHALLENGE.min_seeds - 1))
        config = TrainConfig.for_step(9, epochs=1, max_batches=1, device="cpu")
        mine = queue.submit(Job(config, str(tiny_mnist_root), False, record=False,
                                tags=RunTags(at.session_state["session_id"], "", "")))  # 1 + the 2 missing seeds > 2
        verify.click().run()
        assert not at.exception, at.exception
        queued = [j for j in queue.active_jobs() if j.config.net == "c6,M,c8,c8,G"]
        assert queued == []  # no seed of it: all or none
        assert [j for j in queue.active_jobs() if j.tags.session == at.session_state["session_id"]] == [mine]
        (said,) = [t.value for t in at.toast if t.value.startswith("Not queued")]  # the callback's toast
        assert "you have 1 run queued or training" in said and f"may have {CHALLENGE.min_seeds - 1} at once" in said
    finally:
        queue.clear()
        queue.set_limits(before)
        queue.pause(was_paused)


# --- 6. Runs: a Delete the store refuses ----------------------------------------------------------

def test_a_delete_the_store_refuses_is_reported_on_the_page(app, private_run_store, monkeypatch):
    store = RunStore(private_run_store)
    record(store, full_run(), [99.5] * 3)

    def refuse(self, run_id):
        raise StoreError("the run store is read-only just now")

    monkeypatch.setattr(RunStore, "delete_run", refuse)
    at = open_page(app, "app_pages/runs.py")
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    delete = next(b for b in at.button if b.label.startswith("Delete"))
    assert not delete.disabled
    delete.click().run()
    assert not at.exception, at.exception
    assert len(RunStore(private_run_store).runs()) == 1  # nothing deleted
    assert any("read-only just now" in e.value for e in at.error), [e.value for e in at.error]
    assert "runs_delete_error" not in at.session_state  # shown once, not again on the next selection


# --- 7. Runs: a run training now, watched live from a link -------------------------------------------

def test_a_run_training_now_is_watched_live_from_a_link_and_a_bad_link_says_so(app, mnist_root, private_run_store):
    from conftest import wait_for

    from core.serving.run_queue import Job
    from ui.state import run_queue

    long = run_queue().submit(Job(TrainConfig.for_step(9, epochs=200, max_batches=3, device="cpu", log_every=1),
                                  str(mnist_root), False, db=private_run_store))
    try:
        wait_for(lambda: long.snapshot().run_id is not None and long.snapshot().batches, 300)
        at = open_page(app, "app_pages/runs.py")
        at.query_params["watch"] = str(long.snapshot().run_id)
        at.run()
        assert not at.exception, at.exception
        live = [p for p in at.get("progress") if p.proto.text.startswith(f"Run {long.snapshot().run_id}, live")]
        assert live and "running" in live[0].proto.text
        assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # its batch curve
        for bad in ("../../etc", "²", "1" * 13):  # a path, a digit Python's int() refuses, too long
            at.query_params["watch"] = bad
            at.run()
            assert not at.exception and any("is not a number" in w.value for w in at.warning), bad
            assert all(bad not in w.value for w in at.warning)  # not echoed into the page
    finally:
        long.stop()
        assert long.wait(120)
