"""End to end in a real headless browser: Playwright drives Debian's chromium against the app
served by `streamlit run` (with the project's own .streamlit/config.toml)."""

import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from conftest import RAY_CLUSTER

from core.classroom import Prediction
from core.report.views import describe_step
from core.serving.store import RunStore
from core.training.steps import STEPS

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None:
    if os.environ.get("REQUIRE_BROWSER"):
        raise RuntimeError("REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
    pytest.skip("no chromium on this machine: `apt-get install chromium` to run the browser test",
                allow_module_level=True)

playwright = pytest.importorskip("playwright.sync_api")
PAGE_TITLES = {"The challenge", "Runs", "Design a network", "Class board", "Frontier", "Inspect a trained network", "Augmentation viewer", "Data and run history",
               *(f"{s.number}. {s.title}" for s in STEPS)}
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", "")) if os.environ.get("E2E_SCREENSHOTS") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(mnist_root: Path, extra_env: dict | None = None):
    port = free_port()
    env = {**os.environ, "MNIST_DIR": str(mnist_root), **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not start")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def server(mnist_root):
    """A fresh server per test: the first-paint test needs one nobody has visited yet."""
    proc, url = start_server(mnist_root)
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture
def slow_server(tmp_path):
    """A server on 12,000 training images: 30 epochs last minutes, so Stop lands in mid-run (on the
    shared 1,200-image set a run can end before the click arrives)."""
    from conftest import make_mnist_root

    proc, url = start_server(make_mnist_root(tmp_path / "data", 12_000, 400))
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture(autouse=True)
def close_pages(request):
    """A test's pages close with it: a page left open on a stopped server keeps trying to reconnect, and
    the pages of every earlier test would take the CPU from the tests after them."""
    yield
    if "browser" in request.fixturenames:
        for context in request.getfixturevalue("browser").contexts:
            context.close()


def shot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_first_paint_lists_only_real_pages_and_a_link_keeps_its_settings(server, browser):
    """The first visitor of a fresh server arrives through a shared link."""
    page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    seen: set[str] = set()
    page.goto(f"{server}/step_4?bn=false&dropout=0.2", wait_until="commit", timeout=60_000)
    deadline = time.time() + 60
    while time.time() < deadline:  # sample every navigation entry shown, from the first paint on
        seen |= set(page.locator("[data-testid='stSidebarNav'] a, [data-testid='stTopNavLink'], "
                                 "[data-testid='stSidebarNavLink']").all_inner_texts())
        if page.get_by_role("button", name="Train", exact=True).count():
            break
        page.wait_for_timeout(50)
    assert page.get_by_role("button", name="Train", exact=True).count(), "the step page never finished loading"
    names = {t.strip().splitlines()[-1].strip() for t in seen if t.strip()}  # drop the icon's ligature text
    assert names <= PAGE_TITLES | {"Lifecycle", "Tools"}, names - PAGE_TITLES
    for helper in ("common", "step view", "app", "step 4"):
        assert helper not in {n.lower() for n in names}
    assert page.get_by_role("switch", name="BatchNorm").is_checked() is False  # bn=false from the link
    expected = describe_step(4, batchnorm=False, dropout=0.2)["params"]
    page.get_by_text(f"{expected:,}", exact=True).first.wait_for(state="visible", timeout=30_000)  # the page may still be drawing
    shot(page, "first_paint_step4_link")
    # the whole recipe fits on a 720-px screen: every control of the popover, in both of its tabs, can be
    # reached without a scroll, wherever the popover opens (below the button on this page)
    page.get_by_text("Recipe: augmentation").first.click()
    body = page.locator("[data-testid='stPopoverBody']")
    for tab, last_control in (("Augmentation", "Clean finish"), ("Optimiser and weights", "Tested weights")):
        body.get_by_role("tab", name=tab).click()
        body.get_by_text(last_control, exact=True).wait_for(state="visible", timeout=30_000)
        box = body.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 720, (tab, box)
        assert body.evaluate("e => e.scrollHeight <= e.clientHeight + 1"), f"the recipe popover scrolls ({tab})"
    shot(page, "recipe_popover_step4")


def test_three_sessions_train_at_once_through_one_queue(server, browser):
    pages = [browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in range(3)]
    for page in pages:
        page.goto(f"{server}/step_9?epochs=2", timeout=60_000)
        page.get_by_role("button", name="Train", exact=True).wait_for(timeout=90_000)
        page.wait_for_timeout(500)
    for page in pages:
        page.get_by_role("button", name="Train", exact=True).click()
    queued = [page.get_by_text("runs ahead").or_(page.get_by_text("run ahead")) for page in pages[1:]]
    deadline = time.time() + 60
    while time.time() < deadline and not any(q.count() for q in queued):
        pages[0].wait_for_timeout(200)
    assert any(q.count() for q in queued), "no session showed its place in the queue"
    for page in pages:
        page.get_by_text("Best test accuracy").wait_for(timeout=600_000)
        assert page.locator(".vega-embed").count() >= 2  # accuracy and loss, live beside the reference
    shot(pages[-1], "three_sessions_last")
    # inside the network: the finished run's layers over time, as the run store kept them
    page = pages[0]
    page.get_by_role("tab", name="Inside the network").click()
    panel = page.get_by_role("tabpanel", name="Inside the network")
    panel.get_by_text("What to look at").wait_for(timeout=60_000)
    panel.locator(".vega-embed").first.wait_for(timeout=60_000)
    panel.get_by_text("Zero ReLUs", exact=True).click()
    panel.get_by_text("share of each ReLU's outputs that are zero", exact=False).wait_for(timeout=60_000)
    assert panel.locator(".vega-embed").count() == 1
    panel.locator(".vega-embed").first.scroll_into_view_if_needed()
    shot(page, "inside_the_network")
    panel.get_by_text("Weights", exact=True).click()  # the first layer's filters over time, and each layer's weights
    filters = panel.get_by_text("filters, a column each", exact=False)
    filters.wait_for(timeout=60_000)
    panel.locator(".vega-embed").first.wait_for(timeout=60_000)  # the weights' bands, layer by layer
    filters.scroll_into_view_if_needed()
    shot(page, "inside_the_weights")


SCREENS = ((1280, 720), (1920, 1080), (1024, 768))  # a laptop, a large screen, an XGA projector


def test_the_toggle_and_see_loop_fits_one_screen(server, browser):
    """Every step page, at a laptop's and a projector's size: the controls, the count and the chart on the
    first screen (one load per step; the window is resized as a projector would be plugged in)."""
    (width, height), *others = SCREENS
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    for step in STEPS:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{server}/step_{step.number}", timeout=60_000)
        page.get_by_role("button", name="Train", exact=True).wait_for(timeout=90_000)
        page.locator(".vega-embed").first.wait_for(timeout=60_000)  # the reference run is drawn from the start
        for size in SCREENS:
            page.set_viewport_size({"width": size[0], "height": size[1]})
            settled(lambda: fits_one_screen(page, step.number, *size), page)


NEXT_FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def settled(check, page, seconds: float = 5.0) -> None:
    """`check()` once the page has drawn the new size and the layout and the charts have followed it: it must
    hold twice in a row, 150 ms apart (tried again for at most `seconds`; the assertion is the last try's)."""
    deadline, held = time.time() + seconds, 0
    while held < 2:
        page.evaluate(NEXT_FRAMES)
        try:
            check()
            held += 1
        except AssertionError:
            held = 0
            if time.time() > deadline:
                raise
        page.wait_for_timeout(150)


def fits_one_screen(page, number: int, width: int, height: int) -> None:
    visible = {
        "BatchNorm toggle": page.get_by_role("switch", name="BatchNorm"),
        "dropout slider": page.get_by_role("slider").first,
        "Train button": page.get_by_role("button", name="Train", exact=True),
        "parameter count": page.get_by_text(f"{describe_step(number)['params']:,}", exact=True).first,
        "accuracy chart": page.locator(".vega-embed").first,
    }
    for what, locator in visible.items():
        box = locator.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 150) <= height, (
            f"step {number} at {width}x{height}: {what} is not on the first screen ({box})")
    chart = page.locator(".vega-embed").first.bounding_box()
    assert chart["width"] >= 300, f"step {number}: a chart {chart['width']:.0f} px wide is too narrow to read"
    controls = [page.get_by_role("switch", name=n).locator("xpath=ancestor::label[1]")
                for n in ("BatchNorm", "GAP", "Augment")]
    controls += [page.get_by_role("button", name=n, exact=True) for n in ("Train", "Train 3 seeds", "Stop")]
    cut = [text for control in controls for text in control.evaluate(CUT_TEXT)]
    assert not cut, f"step {number} at {width}x{height}: labels cut short: {cut}"
    shot(page, f"step{number}_{width}x{height}")


# the texts inside an element that CSS cuts short with an ellipsis ("BatchNorm" drawn as "Batch…")
CUT_TEXT = """el => [el, ...el.querySelectorAll('*')]
    .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).textOverflow === 'ellipsis')
    .map(e => e.textContent)"""


def open_tab(page, tab: str, shown: str, seconds: float = 90) -> None:
    """Click a tab until its text `shown` is visible: on a loaded machine a click that lands while the page
    redraws can be lost, and the tab's text then stays in the page, hidden."""
    deadline = time.time() + seconds
    while True:
        page.get_by_role("tab", name=tab).click()
        try:
            page.get_by_text(shown).first.wait_for(state="visible", timeout=10_000)
            return
        except playwright.TimeoutError:
            if time.time() > deadline:
                raise


def test_inspect_a_feature_map_click_draws_a_window_and_a_drawing_is_read(server, browser):
    """A mouse click on a unit of a feature map, and a digit drawn with the mouse, as a student would."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{server}/inspect", timeout=60_000)
    confusion = page.locator(".st-key-confusion .vega-embed")
    confusion.wait_for(timeout=90_000)  # the first tab, as a student sees it
    # a click on a cell far from the diagonal (true about 1, read as about 8) lists just those mistakes
    box = confusion.bounding_box()
    page.mouse.click(box["x"] + 40 + (box["width"] - 60) * 0.85, box["y"] + 30 + (box["height"] - 80) * 0.15)
    picked = page.get_by_text(re.compile(r"Mistakes where a \d was read as \d"))
    picked.wait_for(timeout=60_000)
    true, read = re.findall(r"\d", picked.inner_text())[:2]
    assert true != read
    page.get_by_label("Show mistakes on").wait_for(state="detached", timeout=30_000)  # the cell replaced the picker
    shot(page, "inspect_confusion_cell")

    # Export: each download is the file it names
    page.get_by_role("tab", name="Export").click()
    downloaded = {}
    for name in ("weights.pt", "model.py", "config.json"):
        with page.expect_download(timeout=60_000) as info:
            page.get_by_role("button", name=name).click()
        downloaded[name] = Path(info.value.path()).read_bytes()
    weights = torch.load(io.BytesIO(downloaded["weights.pt"]), weights_only=True)
    assert weights and all(isinstance(t, torch.Tensor) for t in weights.values())
    assert "class" in downloaded["model.py"].decode() and "nn.Module" in downloaded["model.py"].decode()
    assert json.loads(downloaded["config.json"])["config"]["step"] == 9

    open_tab(page, "Feature maps and receptive fields", "Click a unit of a map")
    # the chart by its widget key: the Mistakes tab's two charts stay in the page, hidden, once drawn, so
    # counting charts picks one of those whenever they were drawn before the tab changed
    maps = page.locator(".st-key-fm_chart_0 .vega-embed")
    maps.wait_for(timeout=120_000)  # drawn after the maps are computed, slowly on a loaded machine
    box = maps.bounding_box()
    page.mouse.click(box["x"] + 50, box["y"] + 60)  # a unit of the first map of conv1
    page.get_by_text("receptive field 3, units 1 px apart").wait_for(timeout=60_000)
    shot(page, "inspect_unit_window")

    page.get_by_role("tab", name="Try it: draw or upload").click()
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=60_000)
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(1, 25):
        page.mouse.move(x0 - k * 0.4, y0 + k * box["height"] * 0.029)
    page.mouse.up()
    page.get_by_text("It reads a").wait_for(timeout=60_000)
    shot(page, "inspect_drawn_digit")


def test_stop_in_mid_run_and_a_reload_in_mid_run(slow_server, browser, private_run_store):
    """Stop keeps the epochs so far; a page reloaded while its run trains comes back whole and takes up
    the live view of that run (the browser keeps its student identity in a cookie), and the run (which
    trains in the server's worker process, not in the page) goes on and is recorded."""
    from core.serving.store import RunStore

    server = slow_server
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{server}/step_9?epochs=30&budget=full", timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("seed 1: ", exact=False).first.wait_for(timeout=120_000)
    deadline = time.time() + 120
    while time.time() < deadline and not any(r.epochs for r in RunStore(private_run_store).runs()):
        page.wait_for_timeout(200)
    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()  # a second student
    other.goto(f"{server}/step_9?epochs=2&budget=full", timeout=60_000)
    other.get_by_role("button", name="Train", exact=True).click()  # queued behind the first run
    other.get_by_role("button", name="Cancel seed 1").click(timeout=120_000)
    other.get_by_text("cancelled", exact=False).first.wait_for(timeout=60_000)
    slow_motion(page)
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("stopped after").wait_for(timeout=60_000)
    (stopped,) = RunStore(private_run_store).runs()
    assert stopped.status == "stopped" and 1 <= len(stopped.epochs) < 30

    page.goto(f"{server}/step_9?epochs=2&budget=full", timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("seed 1: ", exact=False).first.wait_for(timeout=120_000)
    page.reload()
    train = page.get_by_role("button", name="Train", exact=True)
    train.wait_for(timeout=60_000)
    page.get_by_text("seed 1: ", exact=False).first.wait_for(timeout=60_000)  # its run, live again
    assert not train.is_enabled() and page.get_by_role("button", name="Stop", exact=True).is_enabled()
    deadline = time.time() + 300
    while time.time() < deadline and RunStore(private_run_store).runs()[0].status == "running":
        page.wait_for_timeout(500)
    latest = RunStore(private_run_store).runs()[0]
    assert latest.status == "completed" and len(latest.epochs) == 2
    shot(page, "reloaded_mid_run")


def slow_motion(page) -> None:
    """Pause the training run, step it through two batches (each drawn: its digits, the answers, the filters
    before and after), and resume it."""
    page.get_by_role("button", name="Pause", exact=True).click()
    page.get_by_text("paused (slow motion)", exact=False).wait_for(timeout=60_000)
    for step in (1, 2):
        page.get_by_role("button", name="Step one batch").click()
        page.get_by_text(f"{step} stepped so far", exact=False).wait_for(timeout=60_000)
    panel = page.get_by_text("Slow motion: step", exact=False).locator("xpath=ancestor::div[@data-testid='stVerticalBlock'][1]")
    assert panel.locator("img").count() >= 16 + 2  # the batch's digits, the filters before and after, the change
    panel.scroll_into_view_if_needed()
    shot(page, "slow_motion")
    page.get_by_role("button", name="Resume").click()
    page.get_by_role("button", name="Pause", exact=True).wait_for(timeout=60_000)


EDITOR_COLUMNS = ("layer", "channels", "kernel", "stride", "padding", "dilation")


def edit_first_row(page, editor, column: str, text: str, url_glob: str) -> None:
    """Type `text` into the Design editor's first row as a student would. The grid is drawn on a
    canvas: select the row's 'row' cell (rows are 35 px high under a 35 px header; a 33 px
    row-marker column comes first), step right to `column`, open its editor and type over it. A busy
    machine can draw the grid late and drop keys, so it tries again until the link shows the edit."""
    for _ in range(3):
        page.wait_for_timeout(1000)
        editor.click(position={"x": 60, "y": 35 + 17})
        for _ in range(EDITOR_COLUMNS.index(column) + 1):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
        page.keyboard.press("Control+A")
        page.keyboard.type(text)
        page.wait_for_timeout(300)  # the cell's editor takes the keys a moment after they are typed
        page.keyboard.press("Enter")
        try:
            page.wait_for_url(url_glob, timeout=10_000)
            return
        except playwright.TimeoutError:
            page.keyboard.press("Escape")
    raise AssertionError(f"the edit of {column} to {text} never reached the link")


def test_design_a_network_edit_it_and_share_it(server, browser):
    """Edit a stack in the table and watch the figures follow; the link carries the edit into a fresh
    browser; a step page opens its network in Design."""
    from core.report.views import describe_config
    from core.training.config import TrainConfig

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{server}/step_4", timeout=60_000)
    page.get_by_text("Open this network in Design").click()
    step4 = TrainConfig.for_step(4)
    page.get_by_text(step4.net, exact=False).first.wait_for(timeout=90_000)
    page.get_by_text(f"{describe_config(step4)['params']:,}", exact=True).first.wait_for(timeout=30_000)

    page.goto(f"{server}/design?net=c8,c8,M,c16,c16,G", timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=90_000)
    before = TrainConfig.for_step(9, net="c8,c8,M,c16,c16,G")  # small early receptive fields: room to grow
    page.get_by_text(f"{describe_config(before)['params']:,}", exact=True).first.wait_for(timeout=30_000)
    editor = page.get_by_test_id("stDataFrame").first
    editor.locator("canvas").first.wait_for(timeout=30_000)
    edit_first_row(page, editor, "channels", "12", "**net=c12*")
    after = before.with_overrides(net="c12,c8,M,c16,c16,G")
    page.get_by_text(f"{describe_config(after)['params']:,}", exact=True).first.wait_for(timeout=30_000)
    # a 5x5 first kernel: every layer's receptive field grows with it (the layer table's RF column;
    # its grid is drawn on a canvas, and its accessible copy holds the visible cells' text)
    wider = before.with_overrides(net="c12k5,c8,M,c16,c16,G")
    layers = page.get_by_test_id("stDataFrame").nth(1)

    def rf_cell(row: int, doc: dict) -> None:
        text = str(doc["layers"][row]["rf"])
        layers.locator(f"#glide-cell-4-{row}", has_text=text).first.wait_for(state="attached", timeout=30_000)

    rf_cell(0, describe_config(after))
    assert describe_config(wider)["layers"][0]["rf"] == 5 > describe_config(after)["layers"][0]["rf"]
    edit_first_row(page, editor, "kernel", "5", "**net=c12k5*")
    rf_cell(0, describe_config(wider))
    page.get_by_text(f"{describe_config(wider)['params']:,}", exact=True).first.wait_for(timeout=30_000)
    after = wider
    # a click on a unit of the grid moves the window to it (the page starts at the grid's centre)
    grid = page.locator("[class*='st-key-design_grid_'] .vega-embed").first
    grid.wait_for(timeout=60_000)
    page.get_by_text("click a unit of the grid to move it", exact=False).first.wait_for(timeout=30_000)
    grid.locator(".mark-rect path").first.click()  # Vega draws this chart as SVG: one path per unit, (0, 0) first
    page.get_by_text("click a unit of the grid to move it", exact=False).wait_for(state="detached", timeout=60_000)
    assert page.get_by_text(re.compile(r"Unit \(0, 0\) of layer \d+ .* sees rows 0-")).count() == 1
    shot(page, "design_edited")
    assert "c12k5%2Cc8" in page.url or "c12k5,c8" in page.url

    fresh = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    fresh.goto(page.url, timeout=60_000)
    fresh.get_by_text(f"{describe_config(after)['params']:,}", exact=True).first.wait_for(timeout=90_000)

    # train it (one epoch) beside step 9's reference runs; the run is recorded with its network
    from core.serving.store import RunStore

    fresh.goto(page.url + "&epochs=1", timeout=60_000)
    fresh.get_by_role("button", name="Train", exact=True).click()
    fresh.get_by_text("Best test accuracy").wait_for(timeout=180_000)
    assert fresh.get_by_test_id("stVegaLiteChart").count() >= 2  # accuracy and loss, references included
    (run,) = RunStore(os.environ["LIFECYCLE_RUNS"]).runs()
    assert run.config.net == "c12k5,c8,M,c16,c16,G" and run.status == "completed"
    shot(fresh, "design_trained")


def student_page(browser, url: str, name: str, predict: str | None = None):
    """A student's page: opened, their name typed in the Predict-first popover (and a prediction picked)."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url, timeout=60_000)
    page.get_by_role("button", name="Predict first").click()
    field = page.get_by_label("Your name on the class board")
    field.fill(name)
    field.press("Enter")
    if predict is not None:
        page.get_by_text(predict, exact=True).click()
        # the server has kept it once the popover's label says so (a busy server reruns slowly)
        page.get_by_role("button", name=f"Your prediction: {predict}").wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    page.keyboard.press("Escape")
    return page


def test_a_class_trains_at_once_and_the_board_shows_it_live(server, browser, private_run_store):
    """Two students type their names (one of them hostile) and press Train at once; the board, opened
    before, shows both as plain text while they train, with no reload."""
    board = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    board.goto(f"{server}/board", timeout=60_000)
    board.get_by_text("Class board").first.wait_for(timeout=90_000)
    names = ["Ada", "<b>Bob</b> **x**"]
    pages = [student_page(browser, f"{server}/step_9?epochs=2", name, predict="better") for name in names]
    for page in pages:
        page.get_by_role("button", name="Train", exact=True).click()
    for name in names:  # the grid's cells are drawn on a canvas; its accessible copy holds the text
        board.locator("[id^='glide-cell']", has_text=name).first.wait_for(state="attached", timeout=180_000)
    shot(board, "class_board")
    deadline = time.time() + 300  # a queued run is on the board before it is in the store: wait for both runs
    while len(RunStore(private_run_store).runs()) < len(names) and time.time() < deadline:
        time.sleep(1)
    runs = RunStore(private_run_store).runs()
    assert sorted(r.tags.student for r in runs) == sorted(names)
    assert all(Prediction.from_text(r.tags.prediction).versus_default == "better" for r in runs)

    # the Runs page's download: the epochs of every listed run, as CSV
    for page in pages:
        page.get_by_text("Best test accuracy").wait_for(timeout=600_000)
    board.goto(f"{server}/runs", timeout=60_000)
    with board.expect_download(timeout=60_000) as info:
        board.get_by_role("button", name="Download the epochs of all listed runs (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    done = RunStore(private_run_store).runs()
    assert sorted({int(r["run_id"]) for r in rows}) == sorted(r.id for r in done)
    assert len(rows) == sum(len(r.epochs) for r in done) == 2 * len(names)

    # the board's frontier: a click on a step's mark opens its network in Design
    from urllib.parse import parse_qs, urlparse

    from core.training.config import TrainConfig

    board.goto(f"{server}/board", timeout=60_000)
    board.get_by_text("Frontier", exact=True).click()
    # Vega draws it as SVG: one path per mark (the legend's symbols are another role), and takes the click itself
    marks = board.locator(".st-key-frontier g.mark-symbol.role-mark path")
    marks.first.wait_for(timeout=60_000)
    box = marks.last.bounding_box()
    board.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    board.wait_for_url("**/design?**", timeout=60_000)
    query = parse_qs(urlparse(board.url).query)
    step = int(query["from"][0])
    assert query["net"][0] == TrainConfig.for_step(step).net
    board.get_by_role("button", name="Train", exact=True).wait_for(timeout=60_000)


def test_a_teacher_link_locks_and_only_the_key_unlocks_the_teachers_tools(mnist_root, browser, private_run_store,
                                                                          monkeypatch):
    """On a server started with a teacher's key: an exercise link shows its controls locked (the URL
    cannot unlock them); a student sees no way to start a class until the key is typed."""
    store = RunStore(private_run_store)
    number = store.add_exercise("step_5", {"bn": "true", "dropout": "0.2"}, ["bn"], ["dropout"])
    monkeypatch.setenv("LIFECYCLE_TEACHER_KEY", "open sesame")
    proc, url = start_server(mnist_root)
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{url}/step_5?exercise={number}&bn=false&dropout=0", timeout=60_000)
        locked = page.get_by_role("switch", name="BatchNorm")
        locked.wait_for(timeout=90_000)
        assert locked.is_disabled() and locked.is_checked()
        page.get_by_text("Accuracy per epoch").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        shot(page, "exercise_locked")
        assert page.get_by_text("Dropout after every block", exact=True).count() == 0  # hidden by the exercise

        page.goto(f"{url}/board", timeout=60_000)
        page.get_by_role("button", name="Teacher").click()
        page.get_by_label("Teacher's key").fill("open sesame")
        page.get_by_role("button", name="Unlock").click()
        page.get_by_role("button", name="Start a new class").wait_for(timeout=60_000)
    finally:
        stop_server(proc)


@RAY_CLUSTER
def test_two_servers_one_cluster_one_store_a_class_across_both(mnist_root, browser):
    """Two app servers on one Ray cluster and one PostgreSQL store (.ci/run starts both on loopback):
    a student on each presses Train at once; both runs train on the cluster, and the class board of
    either server shows both students live."""
    from conftest import ray_cluster_alone, require_or_skip

    address = os.environ.get("LIFECYCLE_TEST_RAY")
    if not address:
        require_or_skip("a Ray cluster", "set LIFECYCLE_TEST_RAY=HOST:PORT of a running `ray start --head`")
    with ray_cluster_alone():
        two_servers_on_the_cluster(mnist_root, browser, address)


def two_servers_on_the_cluster(mnist_root, browser, address: str) -> None:
    from conftest import postgres_database, wait_for

    url, drop = postgres_database()
    env = {"RAY_ADDRESS": address, "LIFECYCLE_RUNS": url}
    servers = [start_server(mnist_root, env) for _ in range(2)]
    try:
        board = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        board.goto(f"{servers[1][1]}/board", timeout=60_000)
        board.get_by_text("Class board").first.wait_for(timeout=90_000)
        pages = [student_page(browser, f"{server}/step_9?epochs=2", name)
                 for (_, server), name in zip(servers, ("Ada on A", "Bob on B"))]
        for page in pages:
            page.get_by_role("button", name="Train", exact=True).click()
        # a page of server B watches the run a student of server A started, live, from a link
        wait_for(lambda: any(r.tags.student == "Ada on A" for r in RunStore(url).runs()), 300)
        ada = next(r.id for r in RunStore(url).runs() if r.tags.student == "Ada on A")
        watcher = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        watcher.goto(f"{servers[1][1]}/runs?watch={ada}", timeout=60_000)
        watcher.get_by_text(f"Run {ada}, live").first.wait_for(timeout=120_000)
        watcher.locator(".vega-embed").first.wait_for(timeout=60_000)
        watcher.context.close()
        for name in ("Ada on A", "Bob on B"):  # B's board shows A's student too, while the runs train
            board.locator("[id^='glide-cell']", has_text=name).first.wait_for(state="attached", timeout=300_000)
        for page in pages:
            page.get_by_text("Best test accuracy").wait_for(timeout=600_000)
        shot(board, "two_servers_board")
        runs = RunStore(url).runs()
        assert sorted(r.tags.student for r in runs) == ["Ada on A", "Bob on B"]
        assert {r.status for r in runs} == {"completed"} and all(r.device.startswith("CPU") for r in runs)
        data_page = pages[0]
        data_page.goto(f"{servers[0][1]}/data", timeout=60_000)
        data_page.get_by_text(f"Ray cluster at {address}").first.wait_for(timeout=60_000)
    finally:
        for proc, _ in servers:
            stop_server(proc)
        drop()


def test_the_browser_benchmark_measures_pages_training_at_once_and_watched(tmp_path):
    """`bench --browsers 2 --watchers 0,1` end to end on a small set, as its own process (its own servers and
    Playwright: this module's browser already runs one in this thread): every row it reports is filled from
    the runs its pages started. 6,000 images: an epoch long enough for the page to draw its per-batch chart
    first, the first chart the benchmark times."""
    import json

    from conftest import make_mnist_root

    root = make_mnist_root(tmp_path / "data", 6_000, 200)
    done = subprocess.run([sys.executable, "-m", "core", "bench", "--browsers", "2", "--watchers", "0,1", "--query",
                           "epochs=1&budget=full", "--data-dir", str(root), "--no-download", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    doc, lines = json.loads(done.stdout), done.stderr.splitlines()
    (together,) = doc["sessions"]
    assert together["sessions"] == 2 and together["run_limits"].startswith("full")
    assert len(together["each_queued_seconds"]) == len(together["each_back_to_back_seconds"]) == 2
    assert together["wall_seconds"] > 0 and together["ratio"] == pytest.approx(
        together["wall_seconds"] / together["back_to_back_seconds"], rel=0.05)
    alone, watched = doc["watchers"]
    assert (alone["watchers"], watched["watchers"]) == (0, 1) and watched["run_limits"].startswith("full")
    assert watched["slowdown"] == pytest.approx(watched["run_seconds"] / alone["run_seconds"], rel=0.05)
    assert any("2 sessions pressed Train at once" in line for line in lines)


def test_the_class_benchmark_times_a_class_with_shared_cores_and_one_run_at_a_time(tmp_path):
    """`bench class --students 2 --browsers 1` end to end on a small set, as its own process: one student watches
    in Chromium, the other presses Train and closes the page; each setting's figures come from its own fresh
    server, and the shared one trains the two runs at once, each with one of the two cores."""
    import json

    from conftest import make_mnist_root

    root = make_mnist_root(tmp_path / "data", 3_000, 200)
    # three epochs: each run lasts long enough that the second student's starts before the first's ends
    done = subprocess.run([sys.executable, "-m", "core", "bench", "class", "--students", "2", "--browsers", "1",
                           "--query", "epochs=3&budget=full", "--data-dir", str(root), "--no-download", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "LIFECYCLE_CPUS": "2"})
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    shared, before = doc["settings"]
    assert (shared["setting"], before["setting"]) == ("shared", "one-at-a-time")
    assert "CPU (1 thread)" in shared["devices"] and before["devices"] == ["CPU (2 threads)"]
    for row in (shared, before):
        assert len(row["run_seconds"]) == 2 and len(row["watched_first_chart_s"]) == 1
        assert 0 < row["last_first_chart_s"] <= row["last_result_s"]
        assert row["runs_per_hour"] == pytest.approx(2 / row["last_result_s"] * 3600, rel=0.02)
    assert len(shared["worker_memory_mb"]) == 2 and len(before["worker_memory_mb"]) == 1
    assert doc["runs_per_hour_ratio"] == pytest.approx(shared["runs_per_hour"] / before["runs_per_hour"], rel=0.01)
