"""The class together, through the pages (AppTest): the board shows every session's runs with
their names as plain text, the teacher's key guards deleting and clearing, an exercise link locks
its controls, predictions are stored with runs and shown beside the outcome, and a predict-first
class keeps a step's result folded."""

from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_app import finish_jobs, open_page
from test_classroom import HOSTILE, full_run, record

from core.architecture.challenge import CHALLENGE
from core.classroom import Prediction
from core.serving.store import RunStore, RunTags

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def app(monkeypatch, mnist_root):
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    monkeypatch.delenv("LIFECYCLE_TEACHER_KEY", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


@pytest.fixture
def keyed_app(monkeypatch, mnist_root):
    """A classroom server: the teacher's key is set."""
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    monkeypatch.setenv("LIFECYCLE_TEACHER_KEY", "open sesame")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def board_frame(at: AppTest):
    return next(d.value for d in at.dataframe if "name" in d.value.columns and "verdict" in d.value.columns)


def test_the_board_shows_every_sessions_runs_with_names_as_plain_text(app, private_run_store):
    store = RunStore(private_run_store)
    for i, name in enumerate(HOSTILE):
        record(store, full_run(seed=i + 1), [99.5] * 15, RunTags(f"session {i}", name, ""))
    at = open_page(app, "app_pages/board.py")
    frame = board_frame(at)
    assert list(frame["name"]) == HOSTILE[::-1]
    assert not any(name and name in m.value for m in at.markdown for name in HOSTILE)  # never as markdown
    assert set(frame["verdict"]) == {"met"} and list(frame["what"])[0] == "design c8,c8,M,c12,c12,c12"


def test_a_verified_design_is_on_the_leaderboard_and_a_single_seed_is_not(app, private_run_store):
    store = RunStore(private_run_store)
    for seed in range(1, CHALLENGE.min_seeds + 1):
        record(store, full_run("c8,M,c12,c12,G", seed), [99.5] * 15, params=4000)
    record(store, full_run("c6,M,c8,c8,G", 1), [99.6] * 15, params=3000)
    at = open_page(app, "app_pages/board.py")
    at.segmented_control(key="board_view").set_value("leaderboard").run()
    table = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    assert list(table["design"])[0] == "design c8,M,c12,c12"  # the class's verified design: fewest parameters
    assert "design c6,M,c8,c8" not in list(table["design"])
    assert any("reference" in str(d) for d in table["design"])  # step 9's reference, the mark to beat
    verify = [b for b in at.button if b.label.startswith("Verify on seeds")]
    assert [b.label for b in verify] == ["Verify on seeds 2, 3"]
    verify[0].click().run()  # queues the two missing seeds of that design, as this session's runs
    assert not at.exception
    from ui.state import run_queue  # (AppTest does not keep a callback's toast)

    queued = [j for j in run_queue().active_jobs() if j.config.net == "c6,M,c8,c8,G"]
    assert sorted(j.config.seed for j in queued) == [2, 3]
    assert all(j.tags.session == at.session_state["session_id"] and j.limits.startswith("full") for j in queued)
    for job in queued:
        job.stop()


def test_the_frontier_says_which_steps_it_leaves_out(app, private_run_store):
    """A step whose reference has no min(last 3) (step 1's: 2 of 15 epochs on a CPU) has no mark: the caption
    says so, rather than calling an absent mark 'not comparable'."""
    from core.results.reference import load_references

    undrawn = [n for n, ref in load_references().items() if ref.min_last_spread is None]
    at = open_page(app, "app_pages/board.py")
    at.segmented_control(key="board_view").set_value("frontier").run()
    caption = next(c.value for c in at.caption if "One mark per design" in c.value)
    assert undrawn and all(f"Step {n} is not drawn" in caption for n in undrawn)
    assert not any(f"Step {n}'s reference is a reduced run" in caption for n in undrawn)


def test_a_student_cannot_delete_another_sessions_run_but_the_teacher_can(keyed_app, private_run_store):
    store = RunStore(private_run_store)
    record(store, full_run(), [99.5] * 3, RunTags("someone else", "B", ""))
    at = open_page(keyed_app, "app_pages/runs.py")
    at.dataframe[0].proto  # the table is there
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    delete = next(b for b in at.button if b.label.startswith("Delete"))
    assert delete.disabled and any("other browser sessions" in c.value for c in at.caption)

    at = open_page(at, "app_pages/board.py")
    at.text_input(key="_teacher_key").input("wrong").run()
    at.button(key="unlock").click().run()
    assert at.error and not at.session_state["teacher"]
    at.text_input(key="_teacher_key").input("open sesame").run()
    at.button(key="unlock").click().run()
    assert at.session_state["teacher"]
    at = open_page(at, "app_pages/runs.py")
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    delete = next(b for b in at.button if b.label.startswith("Delete"))
    assert not delete.disabled
    delete.click().run()
    assert RunStore(private_run_store).runs() == []


def test_clearing_the_board_needs_the_teachers_key(keyed_app, private_run_store):
    at = open_page(keyed_app, "app_pages/board.py")
    assert not [b for b in at.button if b.key == "start_class"]  # a student sees no way to start a class
    at.text_input(key="_teacher_key").input("open sesame").run()
    at.button(key="unlock").click().run()
    at.text_input(key="_class_name").input("Monday <b>group</b>").run()
    at.button(key="start_class").click().run()
    klass = RunStore(private_run_store).current_class()
    assert klass is not None and klass.name == "Monday <b>group</b>"
    title = next(m.value for m in at.markdown if m.value.startswith("#### Class board"))
    assert title == r"#### Class board · Monday \<b\>group\</b\>"  # shown as typed, never as HTML


def test_an_exercise_link_locks_its_controls_and_the_url_cannot_unlock_them(app, private_run_store):
    store = RunStore(private_run_store)
    number = store.add_exercise("step_5", {"bn": "true", "dropout": "0.2", "gap": "false"}, ["bn", "gap"],
                                ["dropout"])
    at = open_page(app, "app_pages/step_5.py", exercise=str(number), bn="false", dropout="0.0")
    locked = at.toggle(key="bn__locked")
    assert locked.disabled and locked.value is True
    assert not [t for t in at.toggle if t.key == "bn"] and not [s for s in at.slider if s.key == "dropout"]
    assert any("Exercise" in c.value for c in at.caption)
    (toast,) = at.toast
    assert "fixed by the teacher's exercise" in toast.value
    # the run it trains is the exercise's: dropout 0.2 (hidden), BatchNorm on (locked)
    shown = next(m.value for m in at.markdown if "parameters" in m.value and "receptive field" in m.value)
    from core.report.views import describe_step
    assert f"{describe_step(5, batchnorm=True, dropout=0.2, gap=False)['params']:,}" in shown
    assert not [p for p in at.get("page_link") if "Design" in str(p.proto.label)]  # no way out to Design
    # an exercise of another page does nothing here
    at = open_page(at, "app_pages/step_4.py", exercise=str(number))
    assert [t for t in at.toggle if t.key == "bn"]


def test_a_teacher_makes_an_exercise_from_the_page_as_set(app, private_run_store):
    at = open_page(app, "app_pages/step_5.py", dropout="0.3")
    at.multiselect(key="_exercise_open_step_5").set_value(["dropout"]).run()
    at.button(key="_exercise_make_step_5").click().run()
    exercise = RunStore(private_run_store).exercise(1)
    assert exercise.page == "step_5" and exercise.settings["dropout"] == "0.3"
    assert "bn" in exercise.locked and "dropout" not in exercise.locked | exercise.hidden
    assert any("exercise=1" in c.value for c in at.code)


def test_a_prediction_is_stored_with_the_run_and_shown_beside_the_outcome(app, private_run_store):
    at = open_page(app, "app_pages/step_9.py", epochs="3")
    at.text_input(key="_name_widget").input("Grace").run()
    at.radio(key="_versus_9").set_value("worse").run()
    at.number_input(key="_figure_9").set_value(97.5).run()
    at.button(key="train_9").click().run()
    (snap,) = finish_jobs(at, 9)
    assert snap.status == "completed", snap.reason
    (stored,) = RunStore(private_run_store).runs()
    assert stored.tags.student == "Grace" and Prediction.from_text(stored.tags.prediction) == Prediction(97.5, "worse")
    reveal = next(i.value for i in at.info if "You predicted" in i.value)
    assert "97.50" in reveal and "you said worse" in reveal
    at = open_page(at, "app_pages/board.py")
    assert list(board_frame(at)["name"]) == ["Grace"]


def test_a_predict_first_class_folds_a_steps_result_until_the_student_predicts(app, private_run_store):
    RunStore(private_run_store).start_class("predicting", predict_first=True)
    at = open_page(app, "app_pages/step_4.py")
    assert any("Predict first" in i.value for i in at.info)
    assert not [m for m in at.markdown if m.value == "**Analysis**"]
    at.radio(key="_versus_4").set_value("better").run()
    assert [m for m in at.markdown if m.value == "**Analysis**"]


def unlocked(at: AppTest) -> AppTest:
    at = open_page(at, "app_pages/board.py")
    at.text_input(key="_teacher_key").input("open sesame")
    at.button(key="unlock").click().run()
    assert not at.exception and at.session_state["teacher"]
    return at


def test_the_teachers_queue_tools_pause_stop_a_student_clear_and_set_the_share(keyed_app, tiny_mnist_root):
    from core.serving.run_queue import Job
    from ui.state import run_queue

    at = unlocked(keyed_app)
    at.button(key="queue_pause").click().run()
    queue = run_queue()
    assert queue.paused
    try:
        def queued(student: str, seed: int) -> Job:
            from core.training.config import TrainConfig

            config = TrainConfig.for_step(9, epochs=1, max_batches=1, device="cpu", seed=seed)
            return queue.submit(Job(config, str(tiny_mnist_root), False, record=False,
                                    tags=RunTags(student, f"name {student}", "")))

        ann = [queued("ann", 1), queued("ann", 2)]
        bob = queued("bob", 1)
        at.run()
        at.selectbox(key="_stop_student_pick").set_value("ann").run()
        at.button(key="stop_student").click().run()
        assert [j.snapshot().status for j in ann] == ["cancelled"] * 2 and bob.snapshot().status == "queued"
        assert any("Stopped 2 runs" in c.value for c in at.caption)
        at.button(key="queue_clear").click().run()
        assert bob.snapshot().status == "cancelled"
        at.number_input(key="_runs_per_student").set_value(5).run()
        assert queue.limits.runs_per_student == 5
    finally:
        at.button(key="queue_pause").click().run()  # "Go on"
        queue.set_limits(replace(queue.limits, runs_per_student=3))
    assert not queue.paused


def test_a_student_has_no_queue_tools(keyed_app):
    at = open_page(keyed_app, "app_pages/board.py")
    assert all(b.key not in ("queue_pause", "queue_clear", "stop_student") for b in at.button)


def test_the_ready_exercises_leave_each_step_its_own_control_and_fix_the_rest(app, private_run_store):
    """`python -m core exercises` adds one link per step; step 4's leaves BatchNorm to the student and fixes
    GAP, dropout, augmentation and the quick budget."""
    from conftest import run_cli

    done = run_cli("exercises", "--runs-db", str(private_run_store))
    assert done.returncode == 0, done.stderr
    links = {line.split()[1].rstrip(":"): line.split()[2] for line in done.stdout.splitlines()
             if line.strip().startswith("step ")}
    assert sorted(links, key=int) == [str(n) for n in range(1, 10)]
    page, query = links["4"].lstrip("/").split("?")
    at = open_page(app, f"app_pages/{page}.py", exercise=query.split("=")[1])
    assert [t for t in at.toggle if t.key == "bn"]  # the student's to change
    for fixed in ("gap", "aug"):
        assert at.toggle(key=f"{fixed}__locked").disabled
    assert not [r for r in at.radio if r.key == "budget"]  # the quick budget, fixed
    assert any("Exercise" in c.value for c in at.caption)
