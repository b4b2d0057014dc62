"""How many runs a CPU server trains at once, and with how many threads each (issue: class throughput).

A network of a few thousand parameters stops gaining from torch's threads early: on a 2-core CPU,
two runs of one thread each train more images in all than one run of two threads
(`python -m core bench threads`, assets/bench/threads.json). So when several runs wait, the server
trains several at once, each in its own worker process, and splits the cores among them; when one run
waits it gets every core, as before. The split changes whenever a run starts or ends: a worker applies
its new thread count between two batches (core.serving.executor), which changes no result beyond float
rounding (tests/test_cores.py).

How many at once comes from the measured curve of images/s against runs for this machine's core count
when assets/bench/threads.json has one, else from a model fitted on it (Amdahl's law: a run's serial
fraction). Memory caps it too: each worker holds torch, MNIST and its network (WORKER_MEMORY_MB,
measured), and the workers may take at most MEMORY_SHARE of the memory free when the server starts.
Plain Python, no torch.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from core.project import ROOT
from core.words import counted

CPUS_ENV = "LIFECYCLE_CPUS"  # the cores the server may train on (default: those this process may run on)
SHARE_ENV = "LIFECYCLE_SHARE_CORES"  # "0": one run at a time with every core (the setting of before)
CURVE_FILE = ROOT / "assets" / "bench" / "threads.json"
# A worker's peak resident size: torch imported, MNIST loaded, step 1's 6.3M-parameter network trained
# (the largest a step page trains). Measured on this project's CPU machine with torch 2.14.1, 2026-12-07:
# 506 MB after importing torch, 563 MB with MNIST, 662 MB after step 9, 1,224 MB at step 1's peak.
WORKER_MEMORY_MB = 1250.0
MEMORY_SHARE = 0.5  # of the memory available at start-up; the rest is the server's, the OS's and the pages'


def cpu_count() -> int:
    """The cores this server trains on: $LIFECYCLE_CPUS, else the cores this process may run on, within a
    container's CPU quota (cgroup v2's cpu.max) where it has one."""
    wanted = os.environ.get(CPUS_ENV, "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, quota)) if quota else cores


def _cgroup_quota() -> int | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else math.ceil(int(quota) / int(period))
    except (OSError, ValueError):
        return None


def sharing_on() -> bool:
    return os.environ.get(SHARE_ENV, "1") != "0"


def available_memory_mb() -> float | None:
    """Memory the OS could give now (Linux's MemAvailable), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def resident_mb(pid: int | None = None) -> float | None:
    """A process's resident memory now (Linux), or None."""
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def share_threads(cores: int, runs: int) -> list[int]:
    """The threads of each of `runs` runs training at once on `cores` cores, in the order they started:
    an even split, the first ones taking what does not divide; never less than one each."""
    if runs <= 0:
        return []
    each, extra = divmod(max(cores, runs), runs)
    return [each + (1 if i < extra else 0) for i in range(runs)]


@dataclass(frozen=True)
class ThreadCurve:
    """Images/s in all, for 1..n runs at once splitting `cores` cores (share_threads)."""

    cores: int
    images_per_s: dict[int, float]  # runs at once -> images/s of all of them together
    source: str  # "measured: ..." or "model: ..."

    def best_runs(self, at_most: int) -> int:
        """How many runs at once train the most images (the fewest, among equals)."""
        choices = [n for n in self.images_per_s if 1 <= n <= max(1, at_most)] or [1]
        return max(choices, key=lambda n: (round(self.images_per_s[n]), -n))

    def gain(self, runs: int) -> float:
        """Images/s of `runs` at once over one run with every core."""
        return self.images_per_s.get(runs, self.images_per_s[1]) / self.images_per_s[1]


def serial_fraction(one_thread: float, threads: int, with_threads: float) -> float:
    """Amdahl's law fitted to two measurements of one run alone: the share of its time no thread splits."""
    speedup = with_threads / one_thread
    if threads <= 1 or speedup <= 1:
        return 1.0
    return max(0.0, min(1.0, (threads / speedup - 1) / (threads - 1)))


def modelled_curve(cores: int, serial: float, one_thread: float, source: str) -> ThreadCurve:
    """Runs at once on `cores` cores as the model sees them: each run alone on its share, at Amdahl's
    speed-up of its thread count (the runs do not slow each other beyond sharing the cores)."""
    def alone(threads: int) -> float:
        return one_thread / (serial + (1 - serial) / threads)

    return ThreadCurve(cores, {n: sum(alone(t) for t in share_threads(cores, n)) for n in range(1, cores + 1)},
                       f"model: Amdahl's law with a serial fraction of {serial:.2f} ({source})")


def load_curve(cores: int, path: Path = CURVE_FILE) -> ThreadCurve:
    """This machine's measured curve when the file has one for `cores` cores, else the model fitted on
    the file's measurements; with no file, one run at a time (nothing to go on)."""
    try:
        doc = json.loads(path.read_text())
        rows = {int(r["runs"]): float(r["images_per_s"]) for r in doc["together"]}
        alone = {int(r["threads"]): float(r["images_per_s"]) for r in doc["alone"]}
        where = f"{doc.get('processor', 'a CPU')}, {doc.get('date', '')}"
        if int(doc.get("cores", 0)) == cores and rows.get(1, 0) > 0:
            return ThreadCurve(cores, rows, f"measured: {path.name}, {where}")
        most = max(alone)
        return modelled_curve(cores, serial_fraction(alone[1], most, alone[most]), alone[1], f"fitted on {where}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ZeroDivisionError):
        # no file, or one this code cannot read: nothing to go on, so the setting of before
        return ThreadCurve(cores, {1: 1.0}, "no measured curve: one run at a time")


@dataclass(frozen=True)
class CpuPlan:
    cores: int
    workers: int  # runs trained at once, at most
    curve: ThreadCurve
    why: str

    @property
    def gain(self) -> float:
        return self.curve.gain(self.workers)


def cpu_plan(cores: int | None = None, memory_mb: float | None = None, share: bool | None = None,
             curve: ThreadCurve | None = None) -> CpuPlan:
    """How many runs this CPU server trains at once: the best of the curve, within memory."""
    cores = cores or cpu_count()
    curve = curve or load_curve(cores)
    if not (sharing_on() if share is None else share):
        return CpuPlan(cores, 1, curve, f"One run at a time with {counted(cores, 'core')} ({SHARE_ENV}=0).")
    memory_mb = available_memory_mb() if memory_mb is None else memory_mb
    by_memory = cores if memory_mb is None else max(1, int(memory_mb * MEMORY_SHARE // WORKER_MEMORY_MB))
    workers = curve.best_runs(min(cores, by_memory))
    why = f"Up to {counted(workers, 'run')} at once on {counted(cores, 'core')} ({curve.source})."
    if by_memory < cores and workers == by_memory:
        why = why[:-1] + f"; memory allows {counted(by_memory, 'worker')} of {WORKER_MEMORY_MB:.0f} MB."
    return CpuPlan(cores, workers, curve, why)
