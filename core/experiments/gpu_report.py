"""The GPU report: what this project does on one GPU, measured in one command that fits in about
eight minutes on an H100/H200 (`python -m core bench --gpu-report`). Each part is written to the
JSON file as soon as it ends, so a run cut short keeps what it measured:

1. step 9 trained for its full recipe (15 epochs): wall time and seconds per epoch;
2. step 9 on 20 seeds at once, as one grouped network: wall time, and how many held the challenge;
3. step 1's full recipe (15 epochs on all 60,000 images), merged into the reference runs;
4. Train -> first chart: a quick run through the app's queue and worker process, timed from the
   submit to its first epoch on the page;
5. the frontier's design with the widest margin (assets/frontier.json) for the same 15 epochs: what
   its extra layers cost on a GPU, beside step 9's, before it could take step 9's place.

With `--batches N` every training is cut to N batches per epoch (labelled reduced): a check that
the report runs, e.g. on a CPU; such figures are not the report's.
"""

from __future__ import annotations

import platform
import shlex
import time
from pathlib import Path
from typing import Any, Callable

import torch

from core.architecture.challenge import CHALLENGE, min_last
from core.experiments.reference_run import reference_runs
from core.report.views import describe_step
from core.results.files import write_json
from core.results.frontier import load_frontier, widest_margin
from core.results.reference import StepReference, merge_step
from core.serving.run_queue import Job, RunQueue
from core.training.budget import describe_limits
from core.training.config import TrainConfig
from core.training.data import load_cached, load_mnist
from core.training.device import device_label, machine, pick_device
from core.training.events import DoneEvent
from core.training.loop import fit_seeds, sync
from core.training.steps import FINAL_STEP, get_step

GOALS = {"step9_15_epochs_s": 10.0, "seeds20_15_epochs_s": 30.0}  # the goals on an H100/H200


def _config(step: int, batches: int | None, device: str, **overrides: Any) -> TrainConfig:
    return TrainConfig.for_step(step, device=device, max_batches=batches, log_every=50, **overrides)


def _timed_group(configs: list[TrainConfig], data, device: torch.device) -> tuple[list[DoneEvent], float]:
    finals: dict[int, DoneEvent] = {}
    sync(device)
    started = time.perf_counter()
    for g, event in fit_seeds(configs, data):
        if isinstance(event, DoneEvent):
            finals[g] = event
    sync(device)
    return [finals[g] for g in range(len(configs))], time.perf_counter() - started


def _min_last(done: DoneEvent) -> float | None:
    return min_last([e.test_acc for e in done.history])


def gpu_report(data_dir: str | None, download: bool, device_name: str, batches: int | None, output: str,
               references: str | None, argv: list[str], log: Callable[[str], None]) -> dict[str, Any]:
    device = pick_device(device_name)
    if device.type != "cuda" and batches is None:
        raise ValueError("the GPU report needs a CUDA GPU (this machine has none); --batches N runs a reduced "
                         "check of it anywhere")
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv)
    started = time.perf_counter()
    data = load_mnist(data_dir, download=download, device=device)
    doc: dict[str, Any] = {"command": command, **machine(device),
                           "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
                           "reduced": batches is not None, "goals": GOALS, "parts": {}}
    path = Path(output)

    def part(name: str, figures: dict[str, Any]) -> None:
        doc["parts"][name] = figures
        doc["wall_seconds"] = round(time.perf_counter() - started, 1)
        write_json(path, doc)
        log(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items() if not isinstance(v, (list, dict))))

    log(f"GPU report on {device_label(device)}, torch {torch.__version__}"
        + (f" (reduced: {batches} batches per epoch)" if batches else ""))
    _timed_group([_config(FINAL_STEP, 5, str(device), epochs=1)], data, device)  # CUDA kernels, cuDNN plans

    step9 = _config(FINAL_STEP, batches, str(device))
    (done,), seconds = _timed_group([step9], data, device)
    part("step9", {"limits": describe_limits(step9, len(data.train_images), len(data.test_images)),
                   "wall_s": round(seconds, 2), "s_per_epoch": round(seconds / step9.recipe.epochs, 3),
                   "min_last": _min_last(done), "goal_wall_s": GOALS["step9_15_epochs_s"]})

    seeds = [step9.with_overrides(seed=s) for s in range(1, 21)]
    finals, seconds = _timed_group(seeds, data, device)
    lows = [_min_last(d) for d in finals]
    part("seeds20", {"wall_s": round(seconds, 2), "s_per_epoch": round(seconds / step9.recipe.epochs, 3),
                     "held": sum(1 for v in lows if CHALLENGE.holds(v)), "of": len(lows),
                     "lowest_min_last": min((v for v in lows if v is not None), default=None),
                     "goal_wall_s": GOALS["seeds20_15_epochs_s"], "min_last": lows})

    step1 = _config(1, batches, str(device))
    (run,), params = reference_runs([step1], data, command, None, log)
    part("step1", {"limits": run.provenance.limits, "wall_s": run.provenance.wall_seconds,
                   "s_per_epoch": round(run.provenance.wall_seconds / step1.recipe.epochs, 2),
                   "min_last": run.min_last, "best": run.best_test, "reason": run.reason})
    if references and run.reason == "completed":
        doc1 = describe_step(1)
        merge_step(references, StepReference(1, get_step(1).title, params, doc1["rf"], doc1["macs"], (run,)),
                   keep_others=True)
        log(f"  step 1's run merged into {references} "
            "(`python -m core reproduce --markdown-only` redraws LIFECYCLE.md)")

    part("train_to_first_chart", first_chart_seconds(data_dir, download, batches))

    # small runs side by side on one GPU, each a worker process: what LIFECYCLE_RUNS_PER_GPU should be
    from core.experiments.bench_threads import runs_per_device
    from core.training.data import resolve_root

    part("runs_per_gpu", runs_per_device(str(resolve_root(data_dir)), str(device),
                                         [1, 2] if batches else [1, 2, 4, 8], batches or 400, log))

    widest = widest_margin(load_frontier())
    if widest is not None:
        design = widest.candidate.config(seed=1, device=str(device)).with_overrides(max_batches=batches, log_every=50)
        (done,), seconds = _timed_group([design], data, device)
        part("widest_margin_design", {"candidate": widest.candidate.name, "net": design.net,
                                      "params": widest.params, "wall_s": round(seconds, 2),
                                      "s_per_epoch": round(seconds / design.recipe.epochs, 3),
                                      "min_last": _min_last(done), "step9_wall_s": doc["parts"]["step9"]["wall_s"]})
    log(f"wrote {path} ({doc['wall_seconds']:.0f} s in all)")
    return doc


def first_chart_seconds(data_dir: str | None, download: bool, batches: int | None) -> dict[str, Any]:
    """Train pressed -> the page's first epoch point, through the app's own queue and worker process
    (the worker started and MNIST loaded beforehand, as a running server has them)."""
    load_cached(data_dir, download=download)  # the server's own check that the data is there
    queue = RunQueue()
    try:
        queue.start()
        queue.executor.warm(data_dir, download)
        warm = queue.submit(Job(_config(FINAL_STEP, 2, "auto", epochs=1), data_dir, download, record=False))
        warm.wait(600)
        started = time.perf_counter()
        job = queue.submit(Job(_config(FINAL_STEP, batches, "auto", epochs=2), data_dir, download, record=False))
        while not job.snapshot().epochs and job.snapshot().active:
            time.sleep(0.01)
        first = time.perf_counter() - started
        job.stop()
        job.wait(600)
        return {"first_epoch_on_page_s": round(first, 2), "status": job.snapshot().status,
                "epochs_per_run": 2, "limits": "full epoch" if batches is None else f"{batches} batches"}
    finally:
        queue.close()
