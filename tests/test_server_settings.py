"""The server's settings belong to the server: a student (a server with a key, no key typed) sees
them read-only, never the database password or a server path, and cannot change them even by
forging the callback; a teacher may choose only a store this app made or a new file in an existing
folder, and nothing is created beside a refused path."""

from __future__ import annotations

import sqlite3
import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.architecture.notation import LARGEST_NET
from core.serving.store import (
    RunStore,
    StoreError,
    check_chosen_location,
    public_db_label,
)

APP = str(Path(__file__).resolve().parents[1] / "app.py")
KEY = "open sesame"
PASSWORD = "s3cretpw"


def every_text(at: AppTest) -> str:
    """Everything a page sends that a browser could read: elements' text and widgets' values."""
    parts = [str(getattr(e, "value", "")) for kind in ("markdown", "caption", "warning", "error", "info", "success",
                                                       "code", "text_input", "text_area", "toast")
             for e in getattr(at, kind)]
    parts += [str(w.proto) for w in at.text_input]  # labels, placeholders and default values too
    return "\n".join(parts)


@pytest.fixture
def student(monkeypatch, mnist_root):
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    monkeypatch.setenv("LIFECYCLE_TEACHER_KEY", KEY)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


# --- the store a browser may choose ----------------------------------------------------------------

def test_a_new_file_in_an_existing_folder_and_the_apps_own_store_are_accepted(tmp_path):
    check_chosen_location(tmp_path / "new.sqlite3")
    RunStore(tmp_path / "made.sqlite3").close()
    check_chosen_location(tmp_path / "made.sqlite3")
    check_chosen_location("postgresql://user:pw@host/db")


@pytest.mark.parametrize("name,why", [
    ("x.pth", "ending in .sqlite3"),
    ("notes.sqlite3", "not a run store made by this app"),
    ("other.sqlite3", "not a run store made by this app"),
    ("missing/runs.sqlite3", "folder of runs.sqlite3 does not exist"),
])
def test_other_files_and_missing_folders_are_refused_and_nothing_is_created(tmp_path, name, why):
    (tmp_path / "notes.sqlite3").write_text("a teacher's notes\n")
    with sqlite3.connect(tmp_path / "other.sqlite3") as conn:  # another program's database
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    with pytest.raises(StoreError, match=why):
        check_chosen_location(tmp_path / name)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_a_pth_in_the_environment_and_files_under_etc_are_refused():
    pth = Path(sysconfig.get_paths()["purelib"]) / "x.pth"
    for path in (pth, Path("/etc/passwd"), Path("/etc/no-such-folder/runs.sqlite3")):
        with pytest.raises(StoreError):
            check_chosen_location(path)
    assert not pth.exists()


def test_a_student_sees_a_store_as_host_and_database_only(tmp_path):
    assert public_db_label(f"postgresql://teacher:{PASSWORD}@db.school:5432/runs") == "db.school/runs"
    assert public_db_label(tmp_path / "elsewhere.sqlite3") == "elsewhere.sqlite3"


# --- the Data page, as a student and as the teacher ------------------------------------------------

def test_a_student_sees_the_settings_read_only_and_no_secret(student, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_RUNS", f"postgresql://teacher:{PASSWORD}@127.0.0.1:9/runs")
    student.switch_page("app_pages/data.py").run()
    assert not student.exception
    assert not student.text_input and not student.checkbox and not student.get("number_input")
    text = every_text(student)
    assert PASSWORD not in text and KEY not in text and "127.0.0.1/runs" in text, text
    assert str(Path.cwd()) not in text  # no server path


def test_a_forged_change_from_a_student_is_refused_where_it_is_applied(student, tmp_path):
    from ui.state import change_setting, runs_db

    student.switch_page("app_pages/data.py").run()
    refused = change_setting("runs_db", str(tmp_path / "mine.sqlite3"))  # what a forged callback would do
    assert refused and "only the teacher" in refused
    assert runs_db() != tmp_path / "mine.sqlite3" and not (tmp_path / "mine.sqlite3").exists()


def test_the_teacher_changes_the_store_for_every_session_and_a_bad_one_is_refused(student, tmp_path):
    teacher = AppTest.from_file(APP, default_timeout=120)
    teacher.run()
    teacher.switch_page("app_pages/board.py").run()
    teacher.text_input(key="_teacher_key").input(KEY)
    teacher.button(key="unlock").click().run()
    teacher.switch_page("app_pages/data.py").run()
    (notes := tmp_path / "notes.sqlite3").write_text("not a store")
    teacher.text_input(key="_runs_db_widget").input(str(notes)).run()
    assert any("refused" in e.value and "not a run store" in e.value for e in teacher.error)
    assert notes.read_text() == "not a store" and not list(tmp_path.glob("notes.sqlite3-*"))
    teacher.text_input(key="_runs_db_widget").input(str(tmp_path / "class.sqlite3")).run()
    assert not teacher.error and (tmp_path / "class.sqlite3").exists()
    assert teacher.text_input(key="_runs_db_widget").value == ""  # never sent back to the browser
    student.switch_page("app_pages/data.py").run()  # another session: the same store, by its name only
    assert any("class.sqlite3" in s.value for s in student.success)


# --- a design link of any size --------------------------------------------------------------------

@pytest.mark.parametrize("page", ["app_pages/design.py", "app_pages/step_9.py"])
def test_the_largest_link_is_refused_with_a_message(student, page):
    student.switch_page(page)
    student.query_params.update({"net": LARGEST_NET})
    student.run()
    assert not student.exception
    if page == "app_pages/design.py":
        assert any("too big to build" in e.value and "585,253,888 parameters" in e.value for e in student.error)


def test_an_open_server_says_so_on_every_page_and_how_to_close_it(monkeypatch, mnist_root):
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    monkeypatch.delenv("LIFECYCLE_TEACHER_KEY", raising=False)
    monkeypatch.setattr("ui.router.server_address", lambda: "0.0.0.0")  # started for a class, without a key
    at = AppTest.from_file(APP, default_timeout=120)
    for page in ("app_pages/home.py", "app_pages/step_4.py", "app_pages/board.py"):
        at.switch_page(page).run()
        (notice,) = [w.value for w in at.warning if "Open server" in w.value]
        assert "LIFECYCLE_TEACHER_KEY" in notice and "--server.address localhost" in notice
    monkeypatch.setattr("ui.router.server_address", lambda: "127.0.0.1")
    at.switch_page("app_pages/home.py").run()
    assert not [w for w in at.warning if "Open server" in w.value]  # this machine alone: nothing to say


def test_a_server_with_a_key_has_no_open_server_notice(student):
    assert not [w for w in student.warning if "Open server" in w.value]


ALL_PAGES = ["home", *(f"step_{n}" for n in range(1, 10)), "design", "board", "frontier", "inspect", "runs",
             "augmentation", "data"]


def test_no_page_sends_a_student_the_password_the_key_or_the_cluster_address(student, monkeypatch):
    """Every page, as a student on a server whose store is PostgreSQL and whose cluster cannot be reached
    (so its address would be in the reason why training is off)."""
    from ui.state import _cluster_setting

    monkeypatch.setenv("LIFECYCLE_RUNS", f"postgresql://teacher:{PASSWORD}@127.0.0.1:8/runs")
    monkeypatch.setitem(_cluster_setting(), "choice", replace(_cluster_setting()["choice"], address="127.0.0.1:9"))
    for page in ALL_PAGES:
        student.switch_page(f"app_pages/{page}.py").run()
        assert not student.exception, page
        sent = every_text(student)
        assert PASSWORD not in sent and KEY not in sent and "127.0.0.1:9" not in sent, page


def test_a_password_in_the_query_of_a_store_url_is_redacted_too():
    from core.serving.store_backends import redact

    shown = redact(f"postgresql://teacher@db.school/runs?sslmode=require&password={PASSWORD}&sslpassword=x")
    assert PASSWORD not in shown and "sslmode=require" in shown and "&password=***&sslpassword=***" in shown
    assert redact(f"postgresql://teacher:{PASSWORD}@db.school:5432/runs") == "postgresql://teacher:***@db.school:5432/runs"


def test_the_teacher_sets_the_mnist_folder_and_the_download_switch_for_every_session(monkeypatch, mnist_root, tmp_path):
    """No key on a laptop: its one user is the teacher. The folder and the switch apply to a second session."""
    from ui.state import allow_download, data_dir

    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("LIFECYCLE_TEACHER_KEY", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/data.py").run()
    at.text_input(key="_data_dir_widget").input(str(mnist_root)).run()
    at.checkbox(key="_download_widget").uncheck().run()
    assert not at.exception and any("MNIST found" in s.value for s in at.success)
    assert data_dir() == str(mnist_root) and allow_download() is False
    other = AppTest.from_file(APP, default_timeout=120)
    other.run()
    other.switch_page("app_pages/step_9.py").run()
    assert other.button(key="train_9")  # the other session trains from the folder the teacher set
