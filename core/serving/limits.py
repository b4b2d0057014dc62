"""What one run may cost on a shared server, so that one student cannot block a class's queue.

The app checks a run against these limits before it is queued (and says which limit and why);
the queue checks again when it is submitted. The command line has no limits: it is your machine.
A teacher sets them with environment variables before starting the server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.architecture.size import size_of
from core.training.budget import describe_limits, work_of
from core.training.config import TrainConfig

BYTES_PER_FLOAT = 4


@dataclass(frozen=True)
class ServerLimits:
    max_run_minutes: float = 30.0  # estimated training time of one run on this server
    max_memory_gb: float = 2.0  # estimated memory of one training step
    runs_per_student: int = 3  # queued or training at once, per student (a 3-seed group counts 3)
    max_queued: int = 90  # queued or training at once, the whole class

    def describe(self) -> str:
        return (f"a run may take at most about {self.max_run_minutes:g} min and {self.max_memory_gb:g} GB of memory "
                "on this server ($LIFECYCLE_MAX_RUN_MINUTES, $LIFECYCLE_MAX_RUN_GB)")


def server_limits() -> ServerLimits:
    def number(name: str, default: float) -> float:
        try:
            value = float(os.environ.get(name, default))
        except ValueError:
            return default
        return value if value > 0 else default

    return ServerLimits(number("LIFECYCLE_MAX_RUN_MINUTES", 30.0), number("LIFECYCLE_MAX_RUN_GB", 2.0),
                        int(number("LIFECYCLE_RUNS_PER_STUDENT", 3)), int(number("LIFECYCLE_MAX_QUEUE", 90)))


def share_problem(limits: ServerLimits, mine: int, everyone: int, adding: int) -> str | None:
    """Why `adding` more runs may not join the queue, given the student's runs and the whole class's
    queued or training now (None when they may)."""
    if mine + adding > limits.runs_per_student:
        return (f"you have {mine} run{'s' if mine != 1 else ''} queued or training, and each student may have "
                f"{limits.runs_per_student} at once (Train 3 seeds counts 3): wait for one to finish, or stop one")
    if everyone + adding > limits.max_queued:
        return (f"the class's queue is full ({everyone} runs queued or training, at most {limits.max_queued}): "
                "try again when some have finished")
    return None


def training_memory_bytes(config: TrainConfig) -> int:
    """A generous estimate of one training step's memory: the weights four times over (weights,
    gradients, momentum, weight average) and every layer's output kept for the backward pass
    together with its gradient, for a whole batch."""
    work = work_of(config.layers())
    params = size_of(config.layers()).params
    per_image = work.activations + work.dropped + _conv_outputs(config)
    return BYTES_PER_FLOAT * (4 * params + 2 * per_image * config.recipe.batch_size)


def _conv_outputs(config: TrainConfig) -> int:
    from core.architecture.receptive_field import rf_table

    return sum(r.out_shape[0] * r.out_shape[1] * r.out_shape[2] for r in rf_table(config.layers())
               if r.layer.type in ("conv", "linear"))


def run_problems(config: TrainConfig, estimate_s: float, limits: ServerLimits) -> list[str]:
    """Why this run may not go into a shared queue ([] when it may)."""
    too_big = size_of(config.layers()).problem()
    if too_big:
        return [f"this network is too big to build here: {too_big}"]
    problems = []
    if estimate_s > 60 * limits.max_run_minutes:
        problems.append(f"this run would take about {estimate_s / 60:,.0f} min here, more than the "
                        f"{limits.max_run_minutes:g} min a run may take on this server: choose the ≈ 1 min budget, "
                        "fewer epochs or a smaller network")
    memory = training_memory_bytes(config)
    if memory > limits.max_memory_gb * 2**30:
        problems.append(f"one training step would need about {memory / 2**30:,.1f} GB of memory, more than the "
                        f"{limits.max_memory_gb:g} GB a run may use on this server: use fewer channels, pool "
                        "earlier or a smaller batch")
    return problems


def quick_run_problem(config: TrainConfig, modelled_s: float, pace: float, budget_s: float,
                      too_long: float) -> str | None:
    """Why a run already shrunk to the quick budget is still too big for it (None when it is not).
    Judged on the network's modelled cost at no slower than the cost model's own CPU: a server
    measured faster (a GPU) may take bigger networks quickly, but a slow measured pace (a busy
    machine) must not make every quick run look too big: the server's own limits use that pace."""
    seconds = modelled_s * min(pace, 1.0)
    if seconds <= too_long * budget_s:
        return None
    return (f"even shrunk to {describe_limits(config).removeprefix('reduced: ')}, this network needs about "
            f"{seconds:,.0f} s, far beyond the ≈ {budget_s / 60:g} min budget: use fewer channels or pool earlier "
            "(or the full budget, within the server's limits)")
