"""A class presses Train at once: N students, each a quick step-9 run, against one fresh app server.

`browsers` of the students are real Chromium pages that stay and watch their run; the others press Train
and close their page once the server has taken the run (it trains on, as a student's would who walked
away). Each setting is a fresh `streamlit run app.py`, timed one after the other, never at once:
- `shared`: the cores shared among the runs that wait (core.serving.cores, the default);
- `one-at-a-time`: LIFECYCLE_SHARE_CORES=0, one run at a time with every core (the setting of before).

For each it prints the time from the first click until the last student's first chart (a watching page's
chart, timed in the page; a closed page's run: its start in the run store), until the last result, the
runs per hour that makes, and the CPU of the server and of its workers.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from core.experiments.bench_browser import (
    CHROMIUM_ARGS,
    Meter,
    Server,
    _first_chart_seconds,
    _open,
    _wait_runs,
    _watch_first_chart,
    chromium_and_playwright,
)
from core.serving.cores import CPUS_ENV, SHARE_ENV, cpu_count
from core.words import counted

SETTINGS = {"shared": "1", "one-at-a-time": "0"}
MAX_STUDENTS = 60


def run_class_bench(data_dir: str | None, students: int, browsers: int | None, query: str, settings: list[str],
                    log: Callable[[str], None]) -> dict[str, Any]:
    browsers = students if browsers is None else browsers
    if not 1 <= students <= MAX_STUDENTS or not 0 <= browsers <= students:
        raise ValueError(f"--students takes 1 to {MAX_STUDENTS}, and --browsers 0 to --students")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        raise ValueError(f"--settings takes {' and '.join(SETTINGS)}, got {', '.join(unknown) or 'none'}")
    chromium, sync_playwright = chromium_and_playwright("class benchmark")
    import torch

    from core.training.data import resolve_root, validate

    root = str(resolve_root(data_dir))
    validate(Path(root))
    path = "step_9" + (f"?{query}" if query else "")
    cores = cpu_count()
    doc: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "cores": cores, "page": path,
                           "students": students, "browsers": browsers, "settings": []}
    log(f"class benchmark: {counted(students, 'student')} ({browsers} watching in Chromium), {cores} cores, page /{path}")
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        for setting in settings:
            env = {SHARE_ENV: SETTINGS[setting], CPUS_ENV: str(cores)}
            db = Path(tmp) / f"{len(doc['settings'])}-{setting}.sqlite3"  # a setting timed again: a fresh store
            row = _class(browser, root, path, students, browsers, db, env)
            doc["settings"].append({"setting": setting, **row})
            log(f"  {setting}: last student's first chart {row['last_first_chart_s']:.1f} s, last result "
                f"{row['last_result_s']:.1f} s, {row['runs_per_hour']:.0f} runs/hour; CPU seconds per second: server "
                f"{row['server_cpu_per_s']}, its workers {row['worker_cpu_per_s']}")
        browser.close()
    def median_of(setting: str, key: str) -> float:
        return statistics.median(r[key] for r in doc["settings"] if r["setting"] == setting)

    if {"shared", "one-at-a-time"} <= {r["setting"] for r in doc["settings"]}:
        doc["runs_per_hour_ratio"] = round(median_of("shared", "runs_per_hour") / median_of("one-at-a-time", "runs_per_hour"), 3)
        doc["last_first_chart_ratio"] = round(median_of("shared", "last_first_chart_s")
                                              / median_of("one-at-a-time", "last_first_chart_s"), 3)
        log(f"  shared against one at a time{' (medians)' if len(settings) > 2 else ''}: "
            f"{doc['runs_per_hour_ratio']:.2f}x the runs per hour (goal >= 1.3); "
            f"the last first chart at {doc['last_first_chart_ratio']:.2f}x the time (goal <= 1)")
    return doc


def _class(browser, root: str, path: str, students: int, watching: int, db: Path, env: dict[str, str]) -> dict:
    server = Server(root, db, env)
    try:
        pages = [_open(browser, server.url, path) for _ in range(students)]
        for page in pages[:watching]:
            _watch_first_chart(page)
        meter = Meter(server)
        first_click = time.time()
        clicks = []
        for page in pages:
            page.get_by_role("button", name="Train", exact=True).click()
            clicks.append(time.time())
        for page in pages[watching:]:  # these students leave once the server has their run
            stop = page.get_by_role("button", name="Stop", exact=True)
            deadline = time.time() + 120
            while not stop.is_enabled() and time.time() < deadline:
                page.wait_for_timeout(100)
            page.context.close()
        charts = [_first_chart_seconds(page, timeout=3600) for page in pages[:watching]]
        runs = sorted(_wait_runs(db, students, timeout=7200), key=lambda r: r.id)
        cpu = meter.per_second()
        for page in pages[:watching]:
            page.context.close()
        workers = server.worker_memory_mb()
    finally:
        server.close()
    # A closed page draws no chart: there the run's start stands in (its first chart comes about half a second later).
    watched = [chart + click - first_click for chart, click in zip(charts, clicks)]
    last_start = max(r.started_at for r in runs) - first_click
    last_result = max(r.finished_at for r in runs) - first_click
    return {"last_first_chart_s": round(max(watched + [last_start]), 1),
            "watched_first_chart_s": [round(w, 1) for w in sorted(watched)], "last_start_s": round(last_start, 1),
            "last_result_s": round(last_result, 1), "runs_per_hour": round(students / last_result * 3600, 1),
            "run_seconds": [round(r.finished_at - r.started_at, 1) for r in runs], "run_limits": runs[0].limits,
            "devices": sorted({r.device for r in runs}), "worker_memory_mb": workers,
            # the pages that closed took their browser processes' CPU time with them: the browser's is not told
            "server_cpu_per_s": cpu["server_cpu_per_s"], "worker_cpu_per_s": cpu["worker_cpu_per_s"]}
