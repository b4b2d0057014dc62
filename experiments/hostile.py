"""A hostile class, as a benchmark that prints what each attack got: `python -m experiments.hostile`.

A server with a teacher's key, student sessions in Streamlit's AppTest trying each attack of the
issue about a class server no student can break, and then a second student who trains as usual: the
time from their Train to the first batch of their run is printed (the page draws its first chart from
that batch). Needs MNIST (`--data-dir`, default $MNIST_DIR or ./data).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.architecture.notation import LARGEST_NET  # noqa: E402

KEY, PASSWORD = "k3y-9zQ-s3cret", "s3cret-password"
PAGES = ["home", *(f"step_{n}" for n in range(1, 10)), "design", "board", "frontier", "inspect", "runs",
         "augmentation", "data"]
HOSTILE_NAME = "**b** [l](http://example.com) <b>h</b>"  # 40 characters: the longest name a run keeps


def report(attack: str, outcome: str) -> None:
    print(f"- {attack}: {outcome}", flush=True)


def browser(app: str, cookie: str | None = None):
    """A student's fresh session (a new tab or a reload), with the cookie its browser holds."""
    from streamlit.testing.v1 import AppTest

    import ui.classroom

    ui.classroom.browser_cookie = lambda name: cookie
    at = AppTest.from_file(app, default_timeout=300)
    at.run()
    return at


def everything_sent(at) -> str:
    kinds = ("markdown", "caption", "warning", "error", "info", "success", "code", "text_input", "toast")
    return "\n".join([str(getattr(e, "value", "")) for k in kinds for e in getattr(at, k)]
                     + [str(w.proto) for w in at.text_input])


def store_paths(scratch: Path) -> None:
    from core.serving.store import StoreError, check_chosen_location
    from ui.state import change_setting

    other = scratch / "other_program.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    text = scratch / "notes.sqlite3"
    text.write_text("a teacher's notes\n")
    paths = [Path(sysconfig.get_paths()["purelib"]) / "x.pth", Path("/etc/passwd"), Path("/etc/lifecycle.sqlite3"),
             other, text]
    before = {p: p.stat().st_mtime_ns for p in scratch.iterdir()}
    for path in paths:
        refused = change_setting("runs_db", str(path))  # what a student's forged callback would do
        try:
            check_chosen_location(path)
            why = "(a teacher could choose it)"
        except StoreError as exc:
            why = f"a teacher is refused too: {exc}"
        report(f"store path {path}", f"refused for a student ({refused}); {why}")
    changed = [p for p in scratch.iterdir() if before.get(p) != p.stat().st_mtime_ns]
    report("files written or changed beside them", str(changed or "none"))


def secrets_on_pages(app: str) -> None:
    os.environ["LIFECYCLE_RUNS"] = f"postgresql://teacher:{PASSWORD}@127.0.0.1:9/class"
    at = browser(app)
    leaks = []
    for page in PAGES:
        at.switch_page(f"app_pages/{page}.py")
        at.run()
        sent = everything_sent(at)
        leaks += [f"{page}: {what}" for what, secret in (("password", PASSWORD), ("key", KEY)) if secret in sent]
    report(f"the database password and the key searched on {len(PAGES)} pages", str(leaks or "found nowhere"))


def largest_link(app: str) -> None:
    from experiments.links import PAGES as LINK_PAGES
    from experiments.links import open_largest

    at = browser(app)
    for page in LINK_PAGES:
        ms, grown, said = open_largest(at, page)
        report(f"the largest link ({len(LARGEST_NET)} characters) on {page}", f"{ms:.0f} ms, peak memory "
               f"+{grown:.1f} MB; {said[:80]}")


def ten_tabs(app: str) -> str:
    from core.serving.identity import new_student, server_secret, sign
    from ui.state import run_queue

    token = sign(new_student(), "ten tabs", server_secret())
    queue = run_queue()
    queue.pause()
    tabs = [browser(app, token) for _ in range(10)]
    for at in tabs:
        at.switch_page("app_pages/step_9.py")
        at.query_params.update({"epochs": "1"})
        at.run()
    pressed = 0
    for at in tabs:
        button = at.button(key="train3_9")
        if not button.disabled:  # each tab's own button; the queue holds the student's share
            button.click()
            pressed += 1
            queue_thread_run(at)
    student_id = tabs[0].session_state["session_id"]
    held = sum(j.tags.session == student_id for j in queue.active_jobs())
    report("ten tabs of one browser, each pressing Train 3 seeds",
           f"{pressed} presses, {held} runs queued (the share is {queue.limits.runs_per_student}); the others were "
           "refused with the reason")
    return token


def queue_thread_run(at) -> None:
    """Run a session that pressed Train: its page then follows the queued runs (as a browser's does)
    until they end, so the run is left to go on after two seconds, once the click has been handled."""
    try:
        at.run(timeout=2)
    except RuntimeError:
        pass


def reload_mid_run(app: str, token: str) -> None:
    from ui.state import run_queue

    at = browser(app, token)
    mine = [j for j in run_queue().active_jobs() if j.tags.session == at.session_state["session_id"]]
    report("a reload while the runs wait", f"the same student ({len(mine)} runs still theirs to stop)")
    for job in mine:
        job.stop()
    run_queue().pause(False)


def markup_in_names(app: str) -> None:
    from core.serving.store import RunStore, RunTags
    from core.training.config import TrainConfig

    store = RunStore(os.environ["LIFECYCLE_RUNS"])
    run = store.start_run(TrainConfig.for_step(9, epochs=1), "app", "cpu", 5648, "reduced", RunTags("s", HOSTILE_NAME, ""))
    store.finish_run(run, "completed")
    at = browser(app)
    at.switch_page("app_pages/board.py")
    at.run()
    as_markdown = [m.value for m in at.markdown if "example.com" in m.value and "\\" not in m.value]
    report("markdown and HTML in a name", "shown as text" if not as_markdown else f"RENDERED: {as_markdown}")


def second_student_trains(app: str) -> None:
    import threading

    from ui.state import run_queue

    at = browser(app)
    at.switch_page("app_pages/step_9.py")
    at.query_params.update({"epochs": "1"})
    at.run()
    me, seen = at.session_state["session_id"], {}

    def watch() -> None:  # the first batch of this student's run, as the page's next redraw would draw it
        while time.perf_counter() - start < 120:
            mine = [j for j in run_queue().active_jobs() if j.tags.session == me]
            if mine and mine[0].snapshot().batches:
                seen["at"], seen["job"] = time.perf_counter(), mine[0]
                return
            time.sleep(0.01)

    at.button(key="train_9").click()
    start = time.perf_counter()
    watcher = threading.Thread(target=watch)
    watcher.start()
    queue_thread_run(at)
    watcher.join()
    if "at" not in seen:
        report("meanwhile a second student", "no batch within 120 s")
        return
    report("meanwhile a second student: Train -> first batch on the page", f"{seen['at'] - start:.2f} s "
           f"(on {os.cpu_count()} cores; the goal is the first chart within 3 s)")
    seen["job"].stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", "data"))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="hostile-"))
    os.environ |= {"LIFECYCLE_TEACHER_KEY": KEY, "MNIST_DIR": str(Path(args.data_dir).resolve()),
                   "LIFECYCLE_RUNS": str(scratch / "runs.sqlite3")}
    app = str(ROOT / "app.py")
    print(f"A server with a teacher's key; every session below is a student's ({time.strftime('%Y-%m-%d')}).")
    browser(app)  # a first session: the store and the queue start
    store_paths(scratch)
    token = ten_tabs(app)
    reload_mid_run(app, token)
    markup_in_names(app)
    largest_link(app)
    second_student_trains(app)
    secrets_on_pages(app)


if __name__ == "__main__":
    main()
