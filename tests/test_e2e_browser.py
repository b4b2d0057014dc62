"""End to end in a real headless browser: Playwright drives Debian's chromium against the app
served by `streamlit run`, opens step 9, starts a short training run and sees the charts."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.lifecycle import describe_step

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None:
    if os.environ.get("REQUIRE_BROWSER"):
        raise RuntimeError("REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
    pytest.skip("no chromium on this machine: `apt-get install chromium` to run the browser test",
                allow_module_level=True)

playwright = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(mnist_root):
    port = free_port()
    env = {**os.environ, "MNIST_DIR": str(mnist_root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("streamlit did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_step9_and_train(page, server: str) -> None:
    page.goto(server, timeout=60_000)
    page.get_by_text("The challenge:").wait_for(timeout=60_000)
    page.get_by_role("link", name="9. More augmentation").first.click()
    page.get_by_text("Train it").wait_for(timeout=60_000)
    assert page.get_by_text(f"{describe_step(9)['params']:,}").first.is_visible()
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("2")
    epochs.press("Enter")
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Train", exact=True).click()


def test_two_sessions_train_at_once_and_charts_update(server, tmp_path):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        # two browser contexts = two independent Streamlit sessions, training at the same time
        pages = [browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in range(2)]
        for page in pages:
            open_step9_and_train(page, server)
        for page in pages:
            # the batch-loss chart appears while training, the epoch charts follow, then the verdict
            page.locator(".vega-embed").first.wait_for(timeout=120_000)
            page.get_by_text("Best test accuracy").wait_for(timeout=180_000)
            assert page.locator(".vega-embed").count() >= 3  # live loss, live accuracy, batch loss
            assert page.get_by_text("finished: 100%").count() == 1
        pages[0].screenshot(path=os.environ.get("E2E_SCREENSHOT", str(tmp_path / "step9.png")), full_page=True)
        browser.close()
