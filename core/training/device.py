"""Which device trains: CUDA, then Apple MPS, then the CPU, unless the user names one."""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

import torch


def pick_device(name: str = "auto") -> torch.device:
    """auto: CUDA, then Apple MPS, then CPU; or cpu, cuda, cuda:N, mps. An explicit choice that is
    absent is an error."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but no CUDA GPU is available (try --device cpu)")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    if kind == "mps" and not _mps_available():
        raise ValueError("device 'mps' was requested but Apple MPS is not available (try --device cpu)")
    return torch.device(name)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple MPS"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


def processor_label(device: torch.device) -> str:
    """What computed a run, finer than device_label: the GPU's name, or the CPU's model and the
    instruction set torch's kernels use on it ('Intel(R) Xeon(R) Processor, AVX512'). The same
    single-thread run repeats bit for bit on one kind of processor; another kind rounds differently."""
    if device.type != "cpu":
        return device_label(device).removeprefix("GPU: ")
    return f"{_cpu_model()}, {torch.backends.cpu.get_cpu_capability()}"


@cache
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux
    return platform.processor() or platform.machine() or "unknown CPU"


def machine(device: torch.device) -> dict[str, str]:
    """What a measurement ran on, for its JSON: device, processor and torch version."""
    return {"device": device_label(device), "processor": processor_label(device), "torch": torch.__version__}
