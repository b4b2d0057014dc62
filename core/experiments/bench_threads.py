"""Images/s against threads and against runs at once: the curve a CPU server shares its cores by.

Each timing is whole processes, as the server's workers are: one process per run, each with its share of
the cores (core.serving.cores.share_threads), started together and told to go together once all have
loaded MNIST and warmed up, each timing the step-9 training step exactly as the trainer does it
(core.experiments.bench.train_rate). Two tables:
- alone: one run with 1, 2, ... cores' threads (how far torch's threads pay for this network);
- together: 1, 2, ... runs at once splitting the cores (what the server chooses from).
`--save` writes assets/bench/threads.json, which the server reads (core.serving.cores.load_curve).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from core.project import ROOT
from core.serving.cores import CURVE_FILE, cpu_count, share_threads


def rate_process() -> None:
    """One timed run (started by `_together`): argv = root, threads, batches. Says "ready" once warm,
    waits for a line on stdin, then prints its images/s and its peak resident MB as JSON."""
    import torch

    from core.experiments.bench import train_rate
    from core.training.data import load_cached

    root, threads, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    data = load_cached(root, download=False, device=torch.device("cpu"))
    train_rate(data, 8)  # warm-up: the first batches pay for allocations
    print("ready", flush=True)
    sys.stdin.readline()
    rate, _ = train_rate(data, batches)
    print(json.dumps({"images_per_s": rate, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
          flush=True)


def _together(root: str, thread_counts: list[int], batches: int) -> tuple[float, float]:
    """Runs with these thread counts at once, as separate processes: (images/s of all, largest peak MB)."""
    command = [sys.executable, "-c", "from core.experiments.bench_threads import rate_process; rate_process()"]
    procs = [subprocess.Popen(command + [root, str(t), str(batches)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for t in thread_counts]
    try:
        for proc in procs:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a timed run did not start (see its error above)")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.stdout.readline()) for proc in procs]
    finally:
        for proc in procs:
            proc.wait(600)
    return sum(r["images_per_s"] for r in results), max(r["peak_mb"] for r in results)


def run_threads_bench(data_dir: str | None, cores: int | None, batches: int, repeats: int, save: bool,
                      log: Callable[[str], None], path: Path = CURVE_FILE) -> dict[str, Any]:
    from core.training.data import resolve_root, validate
    from core.training.device import machine

    import torch

    cores = cores or cpu_count()
    root = resolve_root(data_dir)
    validate(root)
    log(f"threads benchmark: {cores} cores, step 9's training step, {batches} batches of 64 a timing, "
        f"{repeats} timings each (the median is kept)")
    alone, together, peaks = [], [], []
    for threads in range(1, cores + 1):
        rates = [_together(str(root), [threads], batches) for _ in range(repeats)]
        peaks += [p for _, p in rates]
        alone.append({"threads": threads, "images_per_s": round(statistics.median(r for r, _ in rates))})
        log(f"  one run, {threads} thread(s): {alone[-1]['images_per_s']:,} images/s")
    for runs in range(1, cores + 1):
        split = share_threads(cores, runs)
        rates = [_together(str(root), split, batches) for _ in range(repeats)]
        peaks += [p for _, p in rates]
        together.append({"runs": runs, "threads": split, "images_per_s": round(statistics.median(r for r, _ in rates))})
        log(f"  {runs} run(s) at once, threads {split}: {together[-1]['images_per_s']:,} images/s in all "
            f"({together[-1]['images_per_s'] / together[0]['images_per_s']:.2f}x one run with every core)")
    doc = {**machine(torch.device("cpu")), "cores": cores, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
           "command": f"python -m core bench threads --batches {batches} --repeats {repeats}" + (" --save" if save else ""),
           "network": "step 9, batch 64: gather, augment, forward, backward, SGD step, weight average",
           "alone": alone, "together": together, "process_peak_mb": round(max(peaks))}
    if save:
        path.write_text(json.dumps(doc, indent=1) + "\n")
        log(f"  saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: the server reads it at start")
    return doc
