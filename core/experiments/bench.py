"""Benchmarks. They print figures; they assert nothing.

`run_bench`: this project's pipeline (resident uint8 tensors, batched per-image augmentation,
step-9 model) against the write-up's final recipe as written (PIL transforms per image through a
DataLoader, batch 128, its own 9,964-parameter network), same process, same machine, back to back.

`run_queue_bench`: N quick runs submitted at once through the app's run queue, against the same
runs back to back, and a check that every queued result equals the same seed run alone.
"""

from __future__ import annotations

import copy
import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.architecture.builder import count_params, macs
from core.architecture.writeup import writeup_final_model
from core.serving.run_queue import Job, RunQueue
from core.training.augmentation import augment_batch, normalize, to_float
from core.training.average import WeightAverage
from core.training.config import TrainConfig
from core.training.data import MNISTTensors, load_mnist
from core.training.device import device_label, machine, pick_device
from core.training.loop import (
    EVAL_BATCH,
    build_for,
    evaluate,
    run,
    run_seeds,
    train_step,
)
from core.training.schedule import make_optimizer
from core.training.steps import FINAL_STEP, STEPS


def writeup_loaders(root: str, batch_size: int = 128, workers: int = 0):
    """The write-up notebook's data pipeline as written: per-image PIL transforms through a
    DataLoader, for training and for the test set. On a machine without CUDA its loader
    arguments are only shuffle and batch size, so images are decoded in the main process."""
    from torchvision import datasets, transforms

    normalize = [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    train_tf = transforms.Compose([
        transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
        transforms.RandomAffine(degrees=7, shear=10, translate=(0.1, 0.1), scale=(0.8, 1.2)),
        transforms.RandomRotation((-7.0, 7.0), fill=(1,)),
        *normalize,
    ])
    train = datasets.MNIST(root, train=True, download=False, transform=train_tf)
    test = datasets.MNIST(root, train=False, download=False, transform=transforms.Compose(normalize))
    return tuple(torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers)
                 for ds in (train, test))


def time_writeup_recipe(root: str, device: torch.device, batches: int | None) -> dict[str, Any]:
    torch.manual_seed(0)
    model = writeup_final_model().to(device)
    # the write-up's optimiser: SGD, momentum 0.9, no Nesterov (its one-cycle LR costs nothing to time)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train_loader, test_loader = writeup_loaders(root)
    total = len(train_loader) if batches is None else min(batches, len(train_loader))
    model.train()
    seen, start = 0, time.perf_counter()
    for i, (x, y) in enumerate(train_loader):
        if i == total:
            break
        train_step(model, optimizer, x.to(device), y.to(device))
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - start
    eval_start = time.perf_counter()
    model.eval()
    with torch.no_grad():  # the write-up tests through its DataLoader too: per-image ToTensor + Normalize
        for x, y in test_loader:
            model(x.to(device)).argmax(1).eq(y.to(device)).sum().item()
    eval_s = time.perf_counter() - eval_start
    return _figures("the write-up's final recipe as written (PIL transforms + DataLoader, batch 128)", model, seen,
                    train_s, eval_s, len(train_loader.dataset))


def time_ours(data: MNISTTensors, device: torch.device, batches: int | None) -> dict[str, Any]:
    # an augmented epoch: the recipe's un-augmented finish is cheaper and would flatter the figure
    config = TrainConfig.for_step(FINAL_STEP, epochs=1, max_batches=batches, device=str(device), log_every=10_000,
                                  clean_fraction=0.0)
    model = build_for(config)
    epoch = run(config, data, model=model).history[0]
    seen = config.images_per_epoch(len(data.train_images))
    train_s = seen / epoch.images_per_s
    return _figures("this project (resident tensors, batched per-image augmentation)", model, seen, train_s,
                    epoch.seconds - train_s, len(data.train_images))


def _figures(name: str, model: nn.Module, seen: int, train_s: float, eval_s: float, train_size: int) -> dict[str, Any]:
    rate = seen / train_s
    return {"pipeline": name, "params": count_params(model), "macs_per_image": macs(model.cpu()),
            "images_timed": seen, "train_images_per_s": round(rate, 1), "eval_seconds": round(eval_s, 2),
            "seconds_per_epoch": round(train_size / rate + eval_s, 2)}


def run_bench(data_dir: str | None, download: bool, device_name: str, batches: int | None,
              log: Callable[[str], None]) -> dict[str, Any]:
    device = pick_device(device_name)
    data = load_mnist(data_dir, download=download, device=device)
    log(f"benchmark on {device_label(device)}, torch {torch.__version__}; timing "
        f"{'a full epoch' if batches is None else f'{batches} batches'} per pipeline, back to back")
    ours = time_ours(data, device, batches)
    log(f"  {ours['pipeline']}: {ours['train_images_per_s']:,.0f} img/s, {ours['seconds_per_epoch']:.1f} s/epoch")
    writeup = time_writeup_recipe(data.root, device, batches)
    log(f"  {writeup['pipeline']}: {writeup['train_images_per_s']:,.0f} img/s, "
        f"{writeup['seconds_per_epoch']:.1f} s/epoch")
    speedup = writeup["seconds_per_epoch"] / ours["seconds_per_epoch"]
    log(f"  speed-up per epoch (train + full test evaluation): {speedup:.2f}x")
    return {**machine(device), "ours": ours, "writeup_recipe": writeup,
            "speedup_per_epoch": round(speedup, 2), "date": time.strftime("%Y-%m-%d")}


def run_queue_bench(data_dir: str | None, download: bool, sessions: int, log: Callable[[str], None],
                    max_batches: int = 60, cluster: str | None = None, cpus_per_run: int = 1) -> dict[str, Any]:
    """`sessions` quick step-9 runs (seeds 1..N, one epoch of `max_batches` batches) back to back in
    this process, then all submitted at once through a RunQueue, as N browser sessions pressing Train
    would: to this machine's worker process, or (`cluster`) to a Ray cluster."""
    if not 1 <= sessions <= 64:
        raise ValueError(f"--sessions must be between 1 and 64, got {sessions}")
    executor = None
    if cluster is not None:
        from core.serving.cluster import RayExecutor
        executor = RayExecutor(cluster, cpus_per_run)  # ClusterError: one line, before any timing
    data = load_mnist(data_dir, download=download, device="cpu")
    configs = [TrainConfig.for_step(FINAL_STEP, epochs=1, max_batches=max_batches, seed=s, device="cpu")
               for s in range(1, sessions + 1)]
    log(f"queue benchmark on {device_label(torch.device('cpu'))}: {sessions} runs of {max_batches} batches each")
    threads = torch.get_num_threads()
    if cluster is not None:  # each run as a cluster run gets it: the same threads, so the same sums, bit for bit
        torch.set_num_threads(cpus_per_run)
    try:
        run(configs[0].with_overrides(max_batches=5), data)  # warm-up, so neither timing pays for the first one
        start = time.perf_counter()
        alone = [run(c, data).history for c in configs]
        serial_s = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    log(f"  back to back in this process ({torch.get_num_threads() if cluster is None else cpus_per_run} "
        f"thread(s)): {serial_s:.1f} s")
    queue = RunQueue(executor)
    where = executor.describe() if executor is not None else f"{queue.workers} worker process(es) on this machine"
    queue.start()
    queue.executor.warm(data_dir, download)
    queue.submit(Job(configs[0].with_overrides(max_batches=5), data_dir, download, record=False)).wait()
    actors_before = getattr(queue.executor, "started_actors", 0)
    start = time.perf_counter()
    jobs = [queue.submit(Job(c, data_dir, download, record=False)) for c in configs]
    for job in jobs:
        job.wait()
    queued_s = time.perf_counter() - start
    queue.close()
    snaps = [job.snapshot() for job in jobs]
    same = [s.status == "completed" and [e["test_acc"] for e in s.epochs] == [e.test_acc for e in h]
            and [e["train_loss"] for e in s.epochs] == [e.train_loss for e in h] for s, h in zip(snaps, alone)]
    loss_gap = max((abs(e["train_loss"] - a.train_loss) / abs(a.train_loss) for s, h in zip(snaps, alone)
                    for e, a in zip(s.epochs, h)), default=float("nan"))
    ratio = queued_s / serial_s
    log(f"  submitted at once through the queue ({where}): {queued_s:.1f} s, {ratio:.2f}x the back-to-back time")
    completed = all(s.status == "completed" for s in snaps)
    # runs that share the cores change their thread count as others start and end: float sums in another order
    close = completed and loss_gap < 1e-3
    log(f"  every queued result equals the same seed run alone: {'yes, bit for bit' if all(same) else 'within 1e-3' if close else 'NO'} "
        f"(largest relative train-loss difference {loss_gap:.1e}; failed: "
        f"{[s.reason for s in snaps if s.status != 'completed'] or 'none'})")
    doc = {**machine(torch.device("cpu")), "sessions": sessions,
           "batches_per_run": max_batches, "workers": queue.workers, "back_to_back_seconds": round(serial_s, 3),
           "queued_seconds": round(queued_s, 3), "ratio": round(ratio, 3), "identical_results": all(same),
           "loss_within_1e-3": close, "threads_used": sorted({t for s in snaps for t in s.threads}),
           "largest_relative_loss_difference": loss_gap, "date": time.strftime("%Y-%m-%d")}
    if cluster is not None:
        doc |= {"cluster": where, "cpus_per_run": cpus_per_run,
                "actors_started_while_timed": queue.executor.started_actors - actors_before}
    return doc


def writeup_epoch_process(root: str) -> None:
    """What `python writeup.py` would do for one epoch, as its own process: build the write-up's
    network, train one epoch through its DataLoader pipeline, test once (called by run_whole_process)."""
    time_writeup_recipe(root, torch.device("cpu"), None)


def run_whole_process(data_dir: str | None, repeats: int, net: str | None,
                      log: Callable[[str], None]) -> dict[str, Any]:
    """One epoch of each pipeline as a whole process (Python start, imports, data load, run store,
    training, the test pass, exit), alternating, `repeats` times each."""
    import subprocess
    import sys
    import tempfile

    from core.project import ROOT
    from core.training.data import resolve_root, validate

    if not 1 <= repeats <= 20:
        raise ValueError(f"--repeats takes 1 to 20 repeats, got {repeats}")
    root = resolve_root(data_dir)
    validate(root)
    ours = [sys.executable, "-m", "core", "train", "--step", str(FINAL_STEP), "--epochs", "1", "--clean-fraction", "0",
            "--data-dir", str(root), "--no-download", *(["--net", net] if net else [])]
    writeup = [sys.executable, "-c",
               f"from core.experiments.bench import writeup_epoch_process as run; run({str(root)!r})"]
    times: dict[str, list[float]] = {"ours": [], "writeup": []}
    with tempfile.TemporaryDirectory() as tmp:
        # one untimed process of each first: whichever ran first would otherwise also pay for reading
        # torch's libraries from disk (seen: our first process 14.2 s, the next two 9.8 and 10.6 s)
        for command in (ours + ["--runs-db", f"{tmp}/warm-up.sqlite3", "--max-batches", "1"], writeup[:2] + [
                "import torch, torchvision"]):
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        for i in range(repeats):
            for name, command in (("ours", ours + ["--runs-db", f"{tmp}/runs{i}.sqlite3"]), ("writeup", writeup)):
                started = time.perf_counter()
                subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
                times[name].append(round(time.perf_counter() - started, 2))
                log(f"  {name:<8} {times[name][-1]:6.1f} s")
    ratios = [round(w / o, 2) for o, w in zip(times["ours"], times["writeup"])]
    log(f"  one epoch as a whole process: ours {min(times['ours']):.1f}-{max(times['ours']):.1f} s, the write-up's "
        f"{min(times['writeup']):.1f}-{max(times['writeup']):.1f} s: {', '.join(f'{r:.2f}x' for r in ratios)} "
        "(goal >= 4)")
    return {**machine(torch.device("cpu")),
            "ours_command": "python " + " ".join(ours[1:]),
            "net": net or TrainConfig.for_step(FINAL_STEP).net, "untimed_first": "one process of each (disk cache)",
            "ours_s": times["ours"], "writeup_s": times["writeup"],
            "speedup": ratios, "date": time.strftime("%Y-%m-%d")}


def run_group_bench(data_dir: str | None, download: bool, sizes: list[int], batches: int, device_name: str,
                    log: Callable[[str], None]) -> dict[str, Any]:
    """Seed-images/s of step 9 trained as one seed group of each size (seeds 1..G, one augmented
    epoch of `batches` batches, test evaluation included), one size after the other."""
    if not sizes or any(not 1 <= g <= 64 for g in sizes):
        raise ValueError(f"group sizes must be between 1 and 64, got {sizes}")
    device = pick_device(device_name)
    data = load_mnist(data_dir, download=download, device=device)
    base = TrainConfig.for_step(FINAL_STEP, epochs=1, max_batches=batches, device=str(device), log_every=10_000,
                                clean_fraction=0.0)
    log(f"seed-group benchmark on {device_label(device)}, torch {torch.__version__}: step {FINAL_STEP}, "
        f"{batches} augmented batches of {base.recipe.batch_size} per seed, plus the test set per seed")
    run_seeds([base.with_overrides(max_batches=3)], data)  # warm-up
    one_core = one_core_seconds(base, data, device)
    cores = torch.get_num_threads()
    if one_core is not None:
        log(f"  one seed on one of the {cores} threads: {one_core:.1f} s; G seeds with every thread busy at that "
            f"rate would take G x {one_core / cores:.2f} s")
    rows: list[dict[str, Any]] = []
    for size in sizes:
        configs = [base.with_overrides(seed=s) for s in range(1, size + 1)]
        start = time.perf_counter()
        finals = run_seeds(configs, data)
        seconds = time.perf_counter() - start
        epoch = finals[0].history[0]
        images = base.images_per_epoch(len(data.train_images))
        row = {"seeds": size, "seconds": round(seconds, 2), "train_seconds": round(images / epoch.images_per_s, 2),
               "seed_images_per_s": round(size * epoch.images_per_s, 1)}
        alone = rows[0]["seconds"] if rows and rows[0]["seeds"] == 1 else None
        row["time_vs_one_seed"] = round(row["seconds"] / alone, 2) if alone else None
        # G seeds are G times the work, and one seed already has every thread: this is the time they would
        # take if every thread ran at the rate of one seed alone on one
        row["every_thread_busy_vs_one_seed"] = round(size * one_core / cores / alone, 2) if alone and one_core else None
        rows.append(row)
        versus = f", {row['time_vs_one_seed']:.2f}x the time of one seed" if row["time_vs_one_seed"] else ""
        if row["every_thread_busy_vs_one_seed"]:
            versus += f" (every thread busy at one seed's one-thread rate: {row['every_thread_busy_vs_one_seed']:.2f}x)"
        log(f"  {size:>2} seed(s): {seconds:6.1f} s, {row['seed_images_per_s']:8,.0f} seed-images/s{versus}")
    return {**machine(device), "step": FINAL_STEP, "batches": batches, "threads": cores, "one_seed_one_thread_seconds":
            None if one_core is None else round(one_core, 2), "rows": rows, "date": time.strftime("%Y-%m-%d")}


def one_core_seconds(config: TrainConfig, data: MNISTTensors, device: torch.device) -> float | None:
    """Seconds of one seed's run on one thread, on a CPU with more (None elsewhere): what one core does
    alone, against which a seed group's time shows how much of its cost is the arithmetic itself."""
    if device.type != "cpu" or torch.get_num_threads() < 2:
        return None
    with threads(1):
        start = time.perf_counter()
        run_seeds([config], data)
        return time.perf_counter() - start


# --- variants: what could make an epoch faster on this machine, measured side by side ----------

@contextmanager
def threads(n: int | None):
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_rate(data: MNISTTensors, batches: int, channels_last: bool = False, compiled: bool = False,
               augment_mode: str = "bilinear", flush_denormal: bool = False, mkldnn: bool = True) -> tuple[float, float]:
    """(training images/s, seconds of one-off set-up such as compiling) for the step-9 training step
    exactly as the trainer does it: gather, augment per image, normalise, forward, backward, step,
    weight average."""
    config = TrainConfig.for_step(FINAL_STEP, device="cpu")
    recipe = config.recipe
    model = build_for(config)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(recipe, model)
    average = WeightAverage(model, recipe.ema)
    forward = torch.compile(model) if compiled else model
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(data.train_images), generator=generator)
    aug = recipe.augment

    def step(b: int) -> None:
        idx = order[(b * recipe.batch_size) % (len(order) - recipe.batch_size):][:recipe.batch_size]
        x = to_float(data.train_images[idx])
        x = normalize(augment_batch(x, aug, generator) if augment_mode == "bilinear" else
                      _augment_nearest(x, aug, generator) if augment_mode == "nearest" else x)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        train_step(forward, optimizer, x, data.train_labels[idx], average)

    torch.set_flush_denormal(flush_denormal)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # entering the flags context warns about an unrelated TF32 setting
            with torch.backends.mkldnn.flags(enabled=mkldnn):
                start = time.perf_counter()
                step(0)  # warm-up (and the compile, for torch.compile)
                setup = time.perf_counter() - start
                for b in range(1, 4):
                    step(b)
                start = time.perf_counter()
                for b in range(batches):
                    step(b + 4)
                seconds = time.perf_counter() - start
    finally:
        torch.set_flush_denormal(False)  # PyTorch's default
    return batches * recipe.batch_size / seconds, setup


def _augment_nearest(x: torch.Tensor, cfg, generator: torch.Generator) -> torch.Tensor:
    from core.training.augmentation import affine_matrices

    theta = affine_matrices(x.shape[0], cfg, generator, x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def fold_batchnorm(model: nn.Sequential) -> nn.Sequential:
    """A copy for evaluation in which every BatchNorm after a bias-free convolution is folded into
    that convolution's weights and a bias (the same function of the input, one layer fewer)."""
    folded = copy.deepcopy(model).eval()
    names = list(folded._modules)
    for prev, name in zip(names, names[1:]):
        conv, bn = folded._modules[prev], folded._modules[name]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            conv.weight = nn.Parameter(conv.weight.detach() * scale[:, None, None, None])
            bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach())
            folded._modules[name] = nn.Identity()
    return folded


def eval_seconds(model: nn.Module, data: MNISTTensors, batch_size: int, repeats: int = 3) -> float:
    """Best of `repeats` full passes over the test set, as the trainer evaluates every epoch."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(model, data.test_images, data.test_labels, batch_size)
        times.append(time.perf_counter() - start)
    return min(times)


VARIANTS = ("threads", "channels_last", "cpu_flags", "compile", "augmentation", "eval")


def run_variants(data_dir: str | None, download: bool, batches: int | None, log: Callable[[str], None],
                 skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every speed option the trainer could take, each measured on the same data in one process."""
    data = load_mnist(data_dir, download=download, device="cpu")
    n = batches or 300
    rows: list[dict[str, Any]] = []

    def train(name: str, **kw: Any) -> None:
        rate, setup = train_rate(data, n, **kw)
        rows.append({"variant": name, "train_images_per_s": round(rate, 1), "setup_seconds": round(setup, 1)})
        log(f"  {name:<58} {rate:8,.0f} img/s" + (f"   (set-up {setup:.1f} s)" if setup > 1 else ""))

    default_threads = torch.get_num_threads()
    log(f"speed variants of the step-9 training step ({n} batches each, {default_threads} threads by default):")
    train(f"as the trainer runs it (float32, {default_threads} threads, bilinear augmentation)")
    if "threads" not in skip and default_threads > 1:
        with threads(1):
            train("1 thread")
    if "channels_last" not in skip:
        train("channels_last memory format", channels_last=True)
    if "cpu_flags" not in skip:
        train("denormal floats flushed to zero", flush_denormal=True)
        train("oneDNN (mkldnn) kernels off: PyTorch's own", mkldnn=False)
    if "compile" not in skip:
        train("torch.compile (inductor)", compiled=True)
    if "augmentation" not in skip:
        train("nearest-neighbour augmentation instead of bilinear", augment_mode="nearest")
        train("no augmentation at all (what the augmentation costs)", augment_mode="none")
    evals: list[dict[str, Any]] = []
    if "eval" not in skip:
        model = build_for(TrainConfig.for_step(FINAL_STEP))
        log("evaluation of the 10,000 test images (best of 3):")
        for size in (250, 500, 1000, 2000, 10_000):
            seconds = eval_seconds(model, data, size)
            evals.append({"variant": f"batch {size}" + (" (the trainer's)" if size == EVAL_BATCH else ""),
                          "seconds": round(seconds, 3)})
            log(f"  {evals[-1]['variant']:<58} {seconds:8.3f} s")
        seconds = eval_seconds(fold_batchnorm(model), data, EVAL_BATCH)
        evals.append({"variant": f"batch {EVAL_BATCH}, BatchNorm folded into the convolutions", "seconds": round(seconds, 3)})
        log(f"  {evals[-1]['variant']:<58} {seconds:8.3f} s")
    return {"train": rows, "eval": evals}


# --- the cost model: what a training image costs, fitted from measured runs ------------------------

def cost_model_configs() -> list[TrainConfig]:
    """Networks and recipes that span what the app trains: every step, with and without
    BatchNorm and dropout, and three batch sizes."""
    configs = []
    for number in (step.number for step in STEPS):
        base = TrainConfig.for_step(number, device="cpu")
        configs.append(base)
        if number > 1:
            configs.append(base.with_overrides(batchnorm=not base.toggles.batchnorm))
            configs.append(base.with_overrides(dropout=0.0 if base.toggles.dropout else 0.1))
    for number in (4, FINAL_STEP):
        for batch in (32, 256):
            configs.append(TrainConfig.for_step(number, device="cpu", batch_size=batch))
    return configs


def _nonnegative_fit(rows: list[list[float]], targets: list[float]) -> list[float]:
    """Least squares on relative error, with every coefficient >= 0 (a cost cannot be negative):
    drop the most negative feature and refit until none is."""
    active = list(range(len(rows[0])))
    while True:
        a = torch.tensor([[r[i] / t for i in active] for r, t in zip(rows, targets)], dtype=torch.float64)
        b = torch.ones(len(rows), 1, dtype=torch.float64)
        scale = a.abs().max(0).values.clamp_min(1e-30)
        solution = torch.linalg.lstsq(a / scale, b).solution.squeeze(1) / scale
        if (solution >= 0).all():
            coefs = [0.0] * len(rows[0])
            for i, value in zip(active, solution.tolist()):
                coefs[i] = value
            return coefs
        active.pop(int(solution.argmin()))


def run_cost_model(data_dir: str | None, download: bool, log: Callable[[str], None],
                   train_seconds: float = 3.0) -> dict[str, Any]:
    """Time each config's training (about `train_seconds` each, augmented as its recipe says) and
    evaluation, then fit core.training.budget's CostModel coefficients and show measured against modelled."""
    from core.training.budget import CPU_EVAL, CPU_TRAIN, CostModel, work_of

    data = load_mnist(data_dir, download=download, device="cpu")
    samples = []
    log(f"cost model on {device_label(torch.device('cpu'))}, torch {torch.__version__}")
    for config in cost_model_configs():
        work = work_of(config.layers())
        model = build_for(config)
        batch = config.recipe.batch_size
        run(config.with_overrides(epochs=1, max_batches=2, test_limit=1, log_every=10_000), data)  # warm-up
        guess = max(2, min(400, int(train_seconds / (batch * CPU_TRAIN.seconds(work, batch)))))
        timed = config.with_overrides(epochs=1, max_batches=guess, test_limit=1, log_every=10_000,
                                      clean_fraction=0.0)
        epoch = run(timed, data, model=model).history[0]
        test_n = max(200, min(4000, int(1.0 / CPU_EVAL.seconds(work))))
        eval_s = eval_seconds(model, MNISTTensors(data.train_images[:1], data.train_labels[:1],
                                                  data.test_images[:test_n], data.test_labels[:test_n], data.root),
                              min(EVAL_BATCH, test_n), repeats=2) / test_n
        samples.append((config, work, 1 / epoch.images_per_s, eval_s))
        log(f"  step {config.step} bn={config.toggles.batchnorm!s:<5} dropout={config.toggles.dropout:<4} "
            f"batch {batch:>3}: {work.macs / 1e6:7.2f} M MACs, {work.activations:>8,} + {work.dropped:>7,} "
            f"dropped activations -> "
            f"train {1e6 / epoch.images_per_s:9.1f} µs/image, test {1e6 * eval_s:8.1f} µs/image")
    train = CostModel(*_nonnegative_fit([[1.0, w.macs, w.activations, w.dropped, 1 / c.recipe.batch_size]
                                         for c, w, _, _ in samples], [s for _, _, s, _ in samples]))
    # evaluation: dropout is off in eval mode, and there is no optimiser step
    evaluation = CostModel(*_nonnegative_fit([[1.0, w.macs, w.activations] for _, w, _, _ in samples],
                                             [s for _, _, _, s in samples]), 0.0)
    for name, m in (("CPU_TRAIN", train), ("CPU_EVAL", evaluation)):
        log(f"{name} = CostModel(per_image={m.per_image:.2g}, per_mac={m.per_mac:.2g}, per_activation="
            f"{m.per_activation:.2g}, per_dropped={m.per_dropped:.2g}, per_step={m.per_step:.2g})")
    rows = []
    for config, work, train_s, eval_s in samples:
        modelled = train.seconds(work, config.recipe.batch_size)
        rows.append({"step": config.step, "batchnorm": config.toggles.batchnorm, "dropout": config.toggles.dropout,
                     "batch_size": config.recipe.batch_size, "macs": work.macs, "activations": work.activations,
                     "train_us_measured": round(1e6 * train_s, 2), "train_us_modelled": round(1e6 * modelled, 2),
                     "eval_us_measured": round(1e6 * eval_s, 3),
                     "eval_us_modelled": round(1e6 * evaluation.seconds(work), 3)})
    errors = [abs(r["train_us_modelled"] / r["train_us_measured"] - 1) for r in rows]
    log(f"  training time modelled within {100 * max(errors):.0f} % of measured (median "
        f"{100 * sorted(errors)[len(errors) // 2]:.0f} %) over {len(rows)} configurations")
    return {**machine(torch.device("cpu")), "date": time.strftime("%Y-%m-%d"),
            "train": train.__dict__, "eval": evaluation.__dict__, "samples": rows}


def run_inside_bench(data_dir: str | None, download: bool, steps: list[int], batches: int, repeats: int,
                     log: Callable[[str], None]) -> dict[str, Any]:
    """What looking inside costs, measured two ways for each step. Per step: `batches` steps with the
    probe armed (reading the weights on one in WEIGHTS_EVERY, as the trainer does) and as many without,
    alternating; the extra time of an armed step (the medians of each kind, mixed as the trainer mixes
    them), over `log_every` plain ones (the trainer arms one batch in `log_every`), is the overhead. Per run: whole one-epoch runs of `batches` batches with the probe on
    and off, alternating `repeats` times; the median of the paired ratios is a check that includes
    everything else a run does (noisier: other work on the machine moves it by several per cent)."""
    import statistics

    from core.training.inside import WEIGHTS_EVERY, Probe
    from core.training.loop import Lane, batch_of, fit

    if not steps or not 10 <= batches <= 5_000 or not 1 <= repeats <= 20:
        raise ValueError("bench inside takes --steps, 10 to 5,000 --batches and 1 to 20 --repeats")
    device = pick_device("cpu")
    data = load_mnist(data_dir, download=download, device=device)
    log(f"inside-the-network overhead on {device_label(device)}, torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads: {batches} alternating steps each way, then {repeats} pairs of whole {batches}-batch runs")
    rows = []
    for step in steps:
        config = TrainConfig.for_step(step, seed=1, epochs=1, max_batches=batches, device="cpu", test_limit=500)
        model = build_for(config)
        optimizer = make_optimizer(config.recipe, model)
        probe = Probe(model)
        lane = Lane.start(config, len(data.train_images), device)
        times: dict[str, list[float]] = {"plain": [], "armed": [], "weights": []}
        for i in range(batches + 5):
            for armed in (False, True):  # a new batch each step: one batch over and over drives the weights
                # towards denormal numbers, which a CPU computes many times slower
                x, y = batch_of([lane], data, [lane.plan.subset], (2 * i + armed) % lane.plan.batches, 0)
                weights = armed and i % WEIGHTS_EVERY == 0  # as the trainer arms it
                if armed:
                    probe.arm(weights=weights)
                start = time.perf_counter()
                train_step(model, optimizer, x, y[:, 0], probe=probe)
                probe.take(i, 1)
                if i >= 5:  # the first steps warm the caches up
                    times["weights" if weights else "armed" if armed else "plain"].append(time.perf_counter() - start)
        probe.close()
        # an armed step, on average: the medians of each kind, weighted as the trainer mixes them
        plain = statistics.median(times["plain"])
        armed = ((WEIGHTS_EVERY - 1) * statistics.median(times["armed"]) + statistics.median(times["weights"])) / WEIGHTS_EVERY
        overhead = 100 * (armed - plain) / (config.log_every * plain)
        ratios = []
        for r in range(repeats):  # each pair in the other order from the last, so a drifting machine cancels out
            rate = {on: next(e for e in fit(config, data, look_inside=on) if e.kind == "epoch").images_per_s
                    for on in ((False, True) if r % 2 == 0 else (True, False))}
            ratios.append(rate[False] / rate[True])
        run_overhead = 100 * (statistics.median(ratios) - 1)
        row = {"step": step, "log_every": config.log_every, "plain_step_ms": round(1000 * plain, 3),
               "armed_step_ms": round(1000 * armed, 3), "overhead_percent": round(overhead, 2),
               "whole_run_overhead_percent": round(run_overhead, 2),
               "whole_run_range_percent": [round(100 * (min(ratios) - 1), 2), round(100 * (max(ratios) - 1), 2)]}
        rows.append(row)
        log(f"  step {step}: a step {1000 * plain:.2f} ms, armed {1000 * armed:.2f} ms; one armed in "
            f"{config.log_every}: {overhead:+.1f} % (whole runs, median of {repeats} pairs: {run_overhead:+.1f} %, "
            f"from {row['whole_run_range_percent'][0]:+.1f} to {row['whole_run_range_percent'][1]:+.1f} %)")
    return {**machine(device), "threads": torch.get_num_threads(), "batches": batches, "repeats": repeats,
            "rows": rows, "date": time.strftime("%Y-%m-%d")}
