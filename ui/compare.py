"""The 'Compare with' picker: this step's stored runs (every session's) and its reference runs."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from core.architecture.challenge import CHALLENGE
from core.results.compare import Run, describe, differing
from core.results.reference import StepReference
from core.serving.store import StoredRun
from core.training.config import TrainConfig
from core.words import counted
from ui.state import references, run_store, stored_runs

REFERENCE = "reference"


def reference_runs(ref: StepReference) -> list[Run]:
    return [Run(f"reference seed {r.seed}", r.config, list(r.epochs), "reference") for r in ref.runs]


def _stored_label(run: StoredRun, default: TrainConfig) -> str:
    names = [k for k in differing([default, run.config]) if k not in ("seed", "size")]
    what = describe(run.config, names) if names else "step defaults"
    size = "full" if run.limits.startswith("full") else "≈1 min"
    score = f"{run.min_last:.2f} %" if run.min_last is not None else (
        f"{run.best_test:.2f} %" if run.best_test is not None else "no epoch")
    return f"#{run.id} · {what} · seed {run.seed} · {size} · {score} · {run.status} · {run.started}"


def compare_picker(number: int, key: str, default: TrainConfig | None = None) -> Callable[[], list[Run]]:
    """The multiselect: step `number`'s reference runs and its stored runs (the designs started
    from it among them), labelled by how they differ from `default` (the step's own settings
    unless given). Returns a function giving the chosen runs."""
    default = default or TrainConfig.for_step(number)
    ref = references().get(number)
    store = run_store()
    stored = {f"run {r.id}": r for r in stored_runs(store, step=number)}
    labels = {}
    if ref is not None:
        judged = (f"min(last {CHALLENGE.last_epochs}) {ref.min_last_spread}" if ref.min_last_spread
                  else f"{counted(len(ref.first.epochs), 'epoch')}, no min(last {CHALLENGE.last_epochs})")
        labels[REFERENCE] = (f"reference run{'s' if len(ref.runs) > 1 else ''}: step defaults, seed"
                             f"{'s' if len(ref.runs) > 1 else ''} {', '.join(map(str, ref.seeds))} · "
                             f"{ref.first.provenance.limits.split(':')[0]} · {judged}")
    labels |= {k: _stored_label(r, default) for k, r in stored.items()}
    if key in st.session_state:  # runs deleted elsewhere drop out instead of breaking the widget
        st.session_state[key] = [k for k in st.session_state[key] if k in labels]
    else:  # first visit: the reference runs are on the chart from the start
        st.session_state[key] = [REFERENCE] if REFERENCE in labels else []
    st.multiselect("Compare with", list(labels), key=key, format_func=labels.get,
                   placeholder="earlier runs of this step (every session) and its reference runs",
                   help="Drawn on the same charts: one colour per run, seeds of one setting as a band.")

    def chosen() -> list[Run]:
        runs: list[Run] = []
        for k in st.session_state.get(key, []):
            if k == REFERENCE and ref is not None:
                runs += reference_runs(ref)
            elif k in stored:
                r = stored[k]
                runs.append(Run(k, r.config, list(r.epochs), "stored"))
        return runs

    return chosen
