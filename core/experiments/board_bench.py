"""The class board's refresh, measured: a store as a busy course leaves it (`fill_store`, also the
tests' fixture) and the time of each view's refresh on it (`python -m core bench --board N`)."""

from __future__ import annotations

import json
from typing import Any, Callable

from core.architecture.challenge import CHALLENGE
from core.classroom import SettingCache, board, leaderboard
from core.serving.store import RunStore
from core.training.config import TrainConfig
from core.training.steps import FINAL_STEP


def fill_store(store: RunStore, runs: int, settings: int = 200, seed: int = 0) -> None:
    """A store as a busy course leaves it: `runs` completed 15-epoch runs of `settings` designs from
    60 browser sessions, each run with its epochs, inserted in one transaction (the app would take
    hours to record them one by one)."""
    import random
    import time

    from core.results.summary import setting_key

    rng = random.Random(seed)
    widths = [4, 6, 8, 10, 12, 16]
    configs = []
    for i in range(settings):
        net = ",".join([f"c{rng.choice(widths)}", f"c{rng.choice(widths)}", "M"]
                       + [f"c{rng.choice(widths)}" for _ in range(4)] + ["G"])
        configs.append(TrainConfig.for_step(FINAL_STEP, net=net, dropout=rng.choice([0.0, 0.05, 0.1])))
    start = time.time() - runs
    run_rows, epoch_rows = [], []
    for run_id in range(1, runs + 1):
        config = configs[rng.randrange(settings)].with_overrides(seed=rng.randint(1, 5))
        accs = [min(99.7, 97.0 + 0.2 * e + rng.gauss(0, 0.1)) for e in range(15)]
        run_rows.append((run_id, config.step, config.seed, json.dumps(config.as_dict()), setting_key(config),
                         "full: all images", "app", "cpu", "bench", 9000 + rng.randrange(900), "completed", "", "bench",
                         start + run_id, start + run_id + 1, f"s{rng.randrange(60)}", f"student {rng.randrange(60)}",
                         "", 15, max(accs), min(accs[-CHALLENGE.last_epochs:])))
        epoch_rows += [(run_id, e + 1, 0.1, 98.0, 0.05, a, 0.01, 10.0, 5000.0) for e, a in enumerate(accs)]

    def insert(c: Any) -> None:
        c.executemany("INSERT INTO runs (id, step, seed, config, config_key, label, source, device, torch, params, "
                      "status, reason, owner, started_at, finished_at, session, student, prediction, epochs_done, "
                      "best_acc, min_last) VALUES (" + ", ".join("?" * 21) + ")", run_rows)
        c.executemany("INSERT INTO epochs (run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, "
                      "images_per_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", epoch_rows)
    store._write(insert)


def refresh(store: RunStore, since: float, settings: SettingCache, view: str = "both", shown: int = 300) -> None:
    """What one refresh of the board's page computes (the runs view, the leaderboard view, or both)."""
    if view in ("both", "runs view"):
        store.board_counts(since)
        [entry.as_row() for entry in board(store, since, settings, limit=shown)]
    if view in ("both", "leaderboard view"):
        leaderboard(store, since, settings)


def board_bench(runs: int, log: Callable[[str], None], refreshes: int = 20) -> dict[str, Any]:
    """Time the board's refresh on a store of `runs` runs: the first one (every setting new to the
    server) and steady ones of each view, for a class that holds every run and for one that holds
    the newest 300."""
    import statistics
    import tempfile
    import time
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder) / "board.sqlite3")
        started = time.perf_counter()
        fill_store(store, runs)
        log(f"board benchmark: a store of {runs:,} runs ({time.perf_counter() - started:.1f} s to fill)")
        newest = store.board(0.0, 300)[-1].started_at
        doc: dict[str, Any] = {"runs_in_store": runs, "date": time.strftime("%Y-%m-%d")}
        for name, since in (("class of every run", 0.0), ("class of the newest 300 runs", newest)):
            cache = SettingCache()
            t0 = time.perf_counter()
            refresh(store, since, cache)
            first = time.perf_counter() - t0
            times = {"runs view": [], "leaderboard view": []}
            for _ in range(refreshes):
                for view in times:
                    t0 = time.perf_counter()
                    refresh(store, since, cache, view)
                    times[view].append(time.perf_counter() - t0)
            steady = {view: statistics.median(t) for view, t in times.items()}
            runs_total = store.board_counts(since)[0]
            log(f"  {name} ({runs_total:,} runs): first refresh {1000 * first:.0f} ms (every setting new to the "
                f"server), then per refresh (median of {refreshes}): runs view {1000 * steady['runs view']:.1f} ms, "
                f"leaderboard view {1000 * steady['leaderboard view']:.1f} ms")
            doc[name] = {"runs": runs_total, "first_ms": round(1000 * first, 1),
                         **{f"{view.replace(' ', '_')}_ms": round(1000 * t, 2) for view, t in steady.items()}}
        store.close()
    return doc
