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
from core.serving.cores import (
    CURVE_FILE,
    MEMORY_SHARE,
    WORKER_MEMORY_MB,
    cpu_count,
    load_curve,
    share_threads,
)


def rate_process() -> None:
    """One timed run (started by `_together`): argv = root, threads, batches, device. Says "ready" once warm,
    waits for a line on stdin, then prints its images/s and its peak resident MB as JSON. On a CPU it times
    the training step alone (train_rate); on a GPU a whole run of `batches` batches through the trainer
    (its first epoch's images/s), as a worker trains it."""
    import torch

    from core.experiments.bench import train_rate
    from core.training.config import TrainConfig
    from core.training.data import load_cached
    from core.training.device import pick_device
    from core.training.loop import run

    root, threads, batches, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), pick_device(sys.argv[4])
    torch.set_num_threads(threads)
    data = load_cached(root, download=False, device=device)
    config = TrainConfig.for_step(9, epochs=1, max_batches=batches, device=str(device), test_limit=1000)
    if device.type == "cpu":
        train_rate(data, 8)  # warm-up: the first batches pay for allocations
    else:
        run(config.with_overrides(max_batches=5), data)  # warm-up: CUDA kernels, cuDNN plans
    print("ready", flush=True)
    sys.stdin.readline()
    rate = train_rate(data, batches)[0] if device.type == "cpu" else run(config, data).history[0].images_per_s
    print(json.dumps({"images_per_s": rate, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
          flush=True)


def _together(root: str, thread_counts: list[int], batches: int, device: str = "cpu") -> tuple[float, float]:
    """Runs with these thread counts at once, as separate processes: (images/s of all, largest peak MB)."""
    command = [sys.executable, "-c", "from core.experiments.bench_threads import rate_process; rate_process()"]
    procs = [subprocess.Popen(command + [root, str(t), str(batches), device], cwd=ROOT, stdin=subprocess.PIPE,
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
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:  # one failed, and the others still wait for "go"
                proc.kill()
    return sum(r["images_per_s"] for r in results), max(r["peak_mb"] for r in results)


def run_threads_bench(data_dir: str | None, cores: int | None, batches: int, repeats: int, save: bool,
                      log: Callable[[str], None], path: Path | None = None) -> dict[str, Any]:
    from core.training.data import resolve_root, validate
    from core.training.device import machine

    import torch

    cores, path = cores or cpu_count(), path or CURVE_FILE
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
        if runs == 1:  # one run with every core: timed above already
            together.append({"runs": 1, "threads": split, "images_per_s": alone[-1]["images_per_s"]})
            continue
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


def runs_per_device(root: str, device: str, counts: list[int], batches: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Small runs side by side on one GPU, each in a process of its own as the server's workers are: images/s
    of all of them for each count, and the count that trains the most (LIFECYCLE_RUNS_PER_GPU). On a CPU,
    with --batches, the same measurement stands in for a GPU's (one thread each)."""
    rows = []
    for count in counts:
        rate, peak = _together(root, [1] * count, batches, device)
        rows.append({"runs": count, "images_per_s": round(rate), "process_peak_mb": round(peak)})
        log(f"  {count} run(s) at once on {device}: {rate:,.0f} images/s in all")
    best = max(rows, key=lambda r: (r["images_per_s"], -r["runs"]))
    return {"device": device, "batches": batches, "rows": rows, "best_runs_per_device": best["runs"],
            "gain": round(best["images_per_s"] / rows[0]["images_per_s"], 3)}


def expectations(cores_list: list[int], students: int, log: Callable[[str], None],
                 path: Path | None = None) -> dict[str, Any]:
    """What to expect on servers of other sizes: the model fitted on this machine's measured curve (Amdahl's
    law, each run alone on its share of the cores), a class of `students` quick step-9 runs pressed at once,
    shared cores against one run at a time. A model, not a measurement: marked so wherever it is shown."""
    from core.training.budget import quick_run
    from core.training.config import TrainConfig

    path = path or CURVE_FILE
    quick = quick_run(TrainConfig.for_step(9))
    images = quick.recipe.epochs * quick.max_batches * quick.recipe.batch_size if quick.max_batches else None
    if images is None:
        raise ValueError("a quick step-9 run trains every image: nothing to size the class by")
    rows = []
    for cores in cores_list:
        curve = load_curve(cores, path)
        runs = curve.best_runs(min(cores, students))
        alone, shared = curve.images_per_s[1], curve.images_per_s[runs]
        rows.append({"cores": cores, "runs_at_once": runs, "threads_each": share_threads(cores, runs),
                     "images_per_s_one_at_a_time": round(alone), "images_per_s_shared": round(shared),
                     "gain": round(shared / alone, 2),
                     "class_minutes_one_at_a_time": round(students * images / alone / 60, 1),
                     "class_minutes_shared": round(students * images / shared / 60, 1),
                     "memory_gb_needed": round(runs * WORKER_MEMORY_MB / MEMORY_SHARE / 1024, 1),
                     "source": curve.source})
        log(f"  {cores:>3} cores: {runs} runs at once, {rows[-1]['images_per_s_shared']:,} images/s against "
            f"{rows[-1]['images_per_s_one_at_a_time']:,} one at a time ({rows[-1]['gain']}x); {students} quick runs "
            f"in {rows[-1]['class_minutes_shared']} min against {rows[-1]['class_minutes_one_at_a_time']} min; "
            f"{rows[-1]['memory_gb_needed']} GB free for the workers ({curve.source.split(' (')[0]})")
    return {"model": True, "students": students, "quick_run_images": images, "rows": rows,
            "note": "training time only (no evaluation, no start-up); a model until measured on such a server"}
