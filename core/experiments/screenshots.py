"""The README's and the lesson plan's pictures, taken from the running app, so that they can be made
again after a change to a page: `python -m core screenshots --data-dir DIR --out docs/img`.

A fresh `streamlit run app.py` with its own run store and a teacher's key; Chromium (Playwright, as
the browser tests) at 1280x720 opens each page as a student would, presses Train on step 4 (a quick
run, about a minute on a laptop's CPU) and photographs the step page, the class board while it
trains and after, the Design page and the Inspect page.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from core.experiments.bench_browser import CHROMIUM_ARGS, Server

KEY = "screenshots"
VIEWPORT = {"width": 1280, "height": 720}
SHOTS = {
    "step_page.png": "step 4 (BatchNorm) after a quick run",
    "step_training.png": "step 4 while its run trains",
    "design.png": "the Design page",
    "board.png": "the class board",
    "inspect.png": "the Inspect page, the shipped step-9 network",
}


def take_screenshots(data_dir: str, out: Path, log: Callable[[str], None] = print) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    scratch = Path(tempfile.mkdtemp(prefix="screenshots-"))
    os.environ["LIFECYCLE_TEACHER_KEY"] = KEY  # the server started below inherits it: a class server
    server = Server(data_dir, scratch / "runs.sqlite3")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            student = browser.new_context(viewport=VIEWPORT).new_page()
            teacher = browser.new_context(viewport=VIEWPORT).new_page()
            student.goto(f"{server.url}/step_4")
            student.get_by_role("button", name="Train", exact=True).wait_for(timeout=120_000)
            student.get_by_role("button", name="Train", exact=True).click()
            student.get_by_text("accuracy per epoch", exact=False).first.wait_for(timeout=120_000)
            student.wait_for_timeout(4_000)
            _shot(student, out / "step_training.png", log)
            teacher.goto(f"{server.url}/board")
            teacher.wait_for_timeout(6_000)
            _shot(teacher, out / "board.png", log)
            student.get_by_text("is not judged against the challenge", exact=False).first.wait_for(timeout=600_000)
            student.wait_for_timeout(3_000)
            _shot(student, out / "step_page.png", log)
            for page, name in (("design", "design.png"), ("inspect", "inspect.png")):
                student.goto(f"{server.url}/{page}")
                student.wait_for_timeout(8_000)
                _shot(student, out / name, log)
            browser.close()
    finally:
        server.close()
        os.environ.pop("LIFECYCLE_TEACHER_KEY", None)
        shutil.rmtree(scratch, ignore_errors=True)
    return [out / name for name in SHOTS]


def _shot(page, path: Path, log: Callable[[str], None]) -> None:
    page.screenshot(path=str(path))
    log(f"wrote {path} ({SHOTS[path.name]})")
