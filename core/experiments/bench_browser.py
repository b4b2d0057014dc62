"""The live-training benchmark with real browsers: what a class does to one server.

A benchmark without browsers misses the cost that matters: every watching page reruns on the
server once a second. Here a fresh `streamlit run app.py` serves real Chromium sessions (driven by
Playwright), and the figures come from the run store the worker writes and from the server's own
CPU time (/proc on Linux):

1. `sessions` pages press Train on the same step at once (one flips a toggle mid-run); total wall
   time until the last run is done, against the same runs (their stored configs) trained back to
   back in this one process, as `python -m core train` would.
2. One run with 0, 1 and 5 extra pages watching (pages that pressed Train after it and wait in the
   queue, redrawing every second): its training time, and the server's CPU per watching page.
3. Train -> first chart: from the click to the live run's first chart on the page.

Nothing here imports Streamlit: the app runs in its own process, as in a classroom.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from core.project import ROOT

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A fresh app server with its own run store."""

    def __init__(self, data_dir: str, db: Path, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MNIST_DIR": str(Path(data_dir).resolve()), "LIFECYCLE_RUNS": str(db), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(self.port), "--server.address", "127.0.0.1"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        for _ in range(240):
            try:
                urllib.request.urlopen(self.url + "/_stcore/health", timeout=1)
                return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise RuntimeError("the app server did not start within 2 minutes")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process alone (not its worker), or None off Linux."""
        return _cpu_seconds(self.proc.pid)

    def worker_cpu_seconds(self) -> float | None:
        children = _children(self.proc.pid)
        times = [_cpu_seconds(pid) for pid in children]
        return sum(t for t in times if t is not None) if children else None

    def worker_memory_mb(self) -> list[float]:
        """The resident memory of each of the server's worker processes now (Linux)."""
        from core.serving.cores import resident_mb

        return [round(mb) for mb in (resident_mb(pid) for pid in _children(self.proc.pid)) if mb is not None]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_cpu_seconds() -> float | None:
    """CPU time of every Chromium process on this machine (the benchmark's pages), or None off Linux."""
    total, found = 0.0, False
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if not Path(entry, "comm").read_text().startswith(("chrom", "headless_shell")):
                continue
            seconds = _cpu_seconds(int(entry.name))
        except OSError:
            continue
        if seconds is not None:
            total, found = total + seconds, True
    return total if found else None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


class Meter:
    """CPU seconds per wall second of the server, its training worker and the browser, over a window."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = self._read()

    def _read(self) -> tuple[float, float | None, float | None, float | None]:
        return time.time(), self.server.cpu_seconds(), self.server.worker_cpu_seconds(), browser_cpu_seconds()

    def per_second(self) -> dict[str, float | None]:
        end = self._read()
        wall = end[0] - self.start[0]
        names = ("server_cpu_per_s", "worker_cpu_per_s", "browser_cpu_per_s")
        return {name: round((b - a) / wall, 3) if a is not None and b is not None else None
                for name, a, b in zip(names, self.start[1:], end[1:])}


def _runs(db: Path) -> list[Any]:
    from core.serving.store import RunStore

    if not db.exists():
        return []
    store = RunStore(db)
    try:
        return store.runs()
    finally:
        store.close()


def _wait_runs(db: Path, count: int, timeout: float, statuses: tuple[str, ...] = ("completed",)) -> list[Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = [r for r in _runs(db) if r.status in statuses]
        if len(runs) >= count:
            return runs
        time.sleep(1.0)
    raise RuntimeError(f"fewer than {count} runs ended within {timeout:.0f} s")


def _open(browser, url: str, path: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{url}/{path}", timeout=120_000)
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=180_000)
    page.locator(".vega-embed").first.wait_for(timeout=120_000)
    return page


def _train(page) -> float:
    page.get_by_role("button", name="Train", exact=True).click()
    return time.time()


_WATCH_FIRST_CHART = """(before) => {
    // in the page's own clock: the click on Train, and the moment the live run's first chart is added
    window.__clickAt = null; window.__chartAt = null;
    document.addEventListener("click", () => { if (window.__clickAt === null) window.__clickAt = performance.now(); }, true);
    const seen = new MutationObserver(() => {
        if (window.__chartAt === null && document.querySelectorAll(".vega-embed").length > before) {
            window.__chartAt = performance.now(); seen.disconnect();
        }
    });
    seen.observe(document.body, {childList: true, subtree: true});
}"""


def _watch_first_chart(page) -> None:
    page.evaluate(_WATCH_FIRST_CHART, page.locator(".vega-embed").count())


def _first_chart_seconds(page, timeout: float = 120.0) -> float:
    """Seconds from the click on Train to the live run's first chart, timed inside the page (so
    clicking the other pages of the benchmark does not count)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        times = page.evaluate("[window.__clickAt, window.__chartAt]")
        if times[0] is not None and times[1] is not None:
            return (times[1] - times[0]) / 1000
        page.wait_for_timeout(100)
    raise RuntimeError("the live run's first chart never appeared")


def _serial_seconds(configs: list[Any], data_dir: str, download: bool) -> tuple[float, list[float]]:
    """The same runs back to back in this process (the data loaded once, as one CLI process would)."""
    from core.training.data import load_mnist
    from core.training.loop import run

    data = load_mnist(data_dir, download=download)
    run(configs[0].with_overrides(epochs=1, max_batches=5, test_limit=100), data)  # warm-up
    each = []
    start = time.perf_counter()
    for config in configs:
        t = time.perf_counter()
        run(config.with_overrides(device="cpu"), data)
        each.append(time.perf_counter() - t)
    return time.perf_counter() - start, each


def chromium_and_playwright(what: str) -> tuple[str, Callable[[], Any]]:
    """(Chromium's path, Playwright's sync_playwright) for a benchmark; ValueError saying what to install."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ValueError(f"the {what} needs Playwright: pip install -r requirements-dev.txt") from exc
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise ValueError(f"the {what} needs Chromium (Debian: apt-get install chromium)")
    return chromium, sync_playwright


def run_browser_bench(data_dir: str | None, download: bool, sessions: list[int], watchers: list[int], step: int,
                      query: str, log: Callable[[str], None]) -> dict[str, Any]:
    chromium, sync_playwright = chromium_and_playwright("browser benchmark")
    import torch

    from core.training.data import resolve_root, validate

    root = str(resolve_root(data_dir))
    validate(Path(root))
    path = f"step_{step}" + (f"?{query}" if query else "")
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "cpus": os.cpu_count(),
                              "page": path, "sessions": [], "watchers": []}
    log(f"browser benchmark: {os.cpu_count()} CPUs, torch {torch.__version__}, page /{path}")
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        for n in sessions:
            result["sessions"].append(_sessions(browser, root, download, path, n, Path(tmp) / f"s{n}.sqlite3", log))
        for w in watchers:
            result["watchers"].append(_watched(browser, root, path, w, Path(tmp) / f"w{w}.sqlite3", log))
        browser.close()
    base = next((r for r in result["watchers"] if r["watchers"] == 0), None)
    for row in result["watchers"]:
        if base is not None and row["watchers"]:
            row["slowdown"] = round(row["run_seconds"] / base["run_seconds"], 3)
            if row["server_cpu_per_s"] is not None and base["server_cpu_per_s"] is not None:
                row["server_cpu_per_watcher_per_s"] = round(
                    (row["server_cpu_per_s"] - base["server_cpu_per_s"]) / row["watchers"], 4)
            log(f"  {row['watchers']} watching: {row['slowdown']:.2f}x the unwatched run (goal <= 1.1)"
                + (f"; server CPU {1000 * row['server_cpu_per_watcher_per_s']:.0f} ms per watching page per second"
                   if "server_cpu_per_watcher_per_s" in row else ""))
    return result


def _sessions(browser, root: str, download: bool, path: str, n: int, db: Path, log: Callable[[str], None]) -> dict:
    server = Server(root, db)
    try:
        pages = [_open(browser, server.url, path) for _ in range(n)]
        _watch_first_chart(pages[0])
        meter = Meter(server)
        clicked = [_train(page) for page in pages]
        first_chart = _first_chart_seconds(pages[0])
        if n > 1:  # a student changes a setting while the runs go on
            pages[1].get_by_text("BatchNorm", exact=True).click()
        runs = _wait_runs(db, n, timeout=3600)
        wall = max(r.finished_at for r in runs) - clicked[0]
        cpu = meter.per_second()
        for page in pages:
            page.get_by_text("Best test accuracy").wait_for(timeout=120_000)
            page.context.close()
    finally:
        server.close()
    configs = [r.config for r in sorted(runs, key=lambda r: r.id)]
    serial, each = _serial_seconds(configs, root, download)
    row = {"sessions": n, "wall_seconds": round(wall, 1), "back_to_back_seconds": round(serial, 1),
           "ratio": round(wall / serial, 3), "train_to_first_chart_seconds": round(first_chart, 2),
           "run_limits": runs[0].limits, "each_back_to_back_seconds": [round(s, 1) for s in each],
           "each_queued_seconds": [round(r.finished_at - r.started_at, 1) for r in sorted(runs, key=lambda r: r.id)],
           **cpu}
    log(f"  {n} sessions pressed Train at once: {wall:.1f} s until the last was done; the same {n} runs back to "
        f"back in one process {serial:.1f} s -> {wall / serial:.2f}x (goal <= 1.2); Train -> first chart "
        f"{first_chart:.1f} s ({runs[0].limits}); {_cpu_text(cpu)}")
    return row


def _watched(browser, root: str, path: str, watchers: int, db: Path, log: Callable[[str], None]) -> dict:
    server = Server(root, db)
    try:
        page = _open(browser, server.url, path)
        others = [_open(browser, server.url, path) for _ in range(watchers)]
        _train(page)
        _wait_runs(db, 1, timeout=120, statuses=("running", "completed"))
        for other in others:  # they queue behind the measured run and redraw every second
            _train(other)
        meter = Meter(server)
        measured = min(_wait_runs(db, 1, timeout=3600), key=lambda r: r.id)
        cpu = meter.per_second()
        for p in [page, *others]:
            p.context.close()
    finally:
        server.close()  # its worker goes with it, and with it the watchers' queued runs
    seconds = measured.finished_at - measured.started_at
    row = {"watchers": watchers, "run_seconds": round(seconds, 1), "run_limits": measured.limits, **cpu}
    log(f"  one run with {watchers} other page(s) watching: {seconds:.1f} s of training; {_cpu_text(cpu)}")
    return row


def _cpu_text(cpu: dict[str, float | None]) -> str:
    parts = [f"{name.split('_')[0]} {value:.2f}" for name, value in cpu.items() if value is not None]
    return "CPU seconds per second: " + ", ".join(parts) if parts else "CPU time not readable here"
